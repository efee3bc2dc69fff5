package h2

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// responseWriter is a stream's http.ResponseWriter. Its head goes out with the first body
// write (or Flush, or the handler's end); the body in DATA frames within the windows.
type responseWriter struct {
	st            *stream
	h             http.Header
	status        int
	wroteHeader   bool  // WriteHeader called with a final status
	sentHeader    bool  // HEADERS written
	contentLength int64 // declared (-1: not)
	written       int64
	noBody        bool // HEAD, or a status without content
	tooLarge      bool
	omitDate      bool
	// block is a pre-encoded run of header fields (HitWriter) sent after the map's.
	block []byte
	// fields are per-response fields given by WriteFields.
	fields [][2]string
}

var errConnClosed = errors.New("http2: connection closed")

func (w *responseWriter) Header() http.Header {
	if w.h == nil {
		w.h = make(http.Header, 8)
	}
	return w.h
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		// Interim responses (103 Early Hints) go out at once, and the handler goes on.
		if code != http.StatusSwitchingProtocols {
			w.sendInterim(code)
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.Header().Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.contentLength = n
		} else {
			w.h.Del("Content-Length")
		}
	}
	if w.st.head || !bodyAllowed(code) {
		w.noBody = true
	}
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.st.head {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLength >= 0 && w.written+int64(len(p)) > w.contentLength {
		return 0, http.ErrContentLength
	}
	if len(p) == 0 {
		return 0, nil
	}
	return w.writeData(p)
}

func (w *responseWriter) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// writeData sends p as DATA frames (END_STREAM on the last once the declared length is
// reached), the head first if not yet sent. One frame per turn at the lock when others wait:
// other streams' frames interleave with a long body's.
func (w *responseWriter) writeData(p []byte) (int, error) {
	st := w.st
	c := st.c
	c.lock()
	defer c.unlock()
	if !w.sentHeader {
		if err := w.writeHeadLocked(false); err != nil {
			return 0, err
		}
	}
	n := 0
	var stalled windowStall
	defer stalled.stop()
	for n < len(p) {
		if st.closed || c.closing || st.localDone {
			return n, errStreamClosed
		}
		win := min(st.sendWindow, c.sendWindow, int64(c.peerMaxFrame))
		if win <= 0 {
			if stalled.expired(c) {
				// The client has given this stream no window for WriteTimeout: it reads
				// nothing, though its connection may be alive and well. Give up on the
				// stream as on a stalled connection write (nginx's send_timeout).
				c.fr.WriteRSTStream(st.id, http2.ErrCodeCancel)
				st.resetSent = true
				c.closeStream(st)
				c.s.writeTimedOut()
				return n, errWindowTimeout
			}
			c.wait()
			continue
		}
		stalled.stop()
		k := min(int64(len(p)-n), win)
		endStream := w.contentLength >= 0 && w.written+k == w.contentLength
		w.writeDataFrame(p[n:n+int(k)], endStream)
		st.sendWindow -= k
		c.sendWindow -= k
		n += int(k)
		w.written += k
		if endStream {
			w.localEnd()
			c.answered(st)
			return n, nil
		}
		if n < len(p) && c.pendingW.Load() > 0 {
			// Let the others write their frames before the next of ours: the one Unlock
			// woke runs next on this P when we yield (else a running writer could take the
			// lock back for up to a millisecond, sync.Mutex's starvation bound).
			c.unlock()
			runtime.Gosched()
			c.lock()
		}
	}
	c.answered(st)
	return n, nil
}

// errWindowTimeout is a write that waited Server.WriteTimeout for flow-control window.
var errWindowTimeout = fmt.Errorf("http2: no flow-control window from the client for the write timeout: %w", os.ErrDeadlineExceeded)

// windowStall times one wait of a stream's writer for flow-control window: its timer wakes
// the connection's waiters when the write timeout has passed, so the writer can give up.
type windowStall struct {
	since time.Time
	timer *time.Timer
}

// expired starts the clock on the first call of a wait and reports whether the write
// timeout has passed since. Under mu.
func (s *windowStall) expired(c *conn) bool {
	d := c.s.writeTimeout()
	if s.timer == nil {
		s.since = time.Now()
		s.timer = time.AfterFunc(d, func() {
			c.lock()
			c.cond.Broadcast()
			c.unlock()
		})
		return false
	}
	return time.Since(s.since) >= d
}

// stop ends the wait: window came (or the write ended).
func (s *windowStall) stop() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// writeDataFrame writes one DATA frame's header and its payload to the buffer. Under mu.
func (w *responseWriter) writeDataFrame(p []byte, end bool) {
	c := w.st.c
	var flags byte
	if end {
		flags = 0x1 // END_STREAM
	}
	hdr := [9]byte{byte(len(p) >> 16), byte(len(p) >> 8), byte(len(p)), 0x0, flags,
		byte(w.st.id >> 24), byte(w.st.id >> 16), byte(w.st.id >> 8), byte(w.st.id)}
	c.bw.Write(hdr[:])
	c.bw.Write(p)
	c.dataBytes.Add(int64(len(p)))
}

// localEnd records END_STREAM sent. Under mu.
func (w *responseWriter) localEnd() {
	st := w.st
	st.localDone = true
	if st.remoteDone {
		st.c.closeStream(st)
	}
}

// writeHeadLocked encodes and writes the response's HEADERS (END_STREAM with end). Under mu.
func (w *responseWriter) writeHeadLocked(end bool) error {
	st := w.st
	c := st.c
	if st.closed || c.closing {
		return errStreamClosed
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.sentHeader = true
	c.hbuf.Reset()
	enc := c.enc
	if w.status == 200 {
		c.hbuf.WriteByte(0x88) // :status 200, static table index 8 (RFC 7541 Appendix A)
	} else {
		enc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(w.status)})
	}
	for k, vs := range w.h {
		lk, ok := lowerName(k)
		if !ok {
			continue
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue
			}
			enc.WriteField(hpack.HeaderField{Name: lk, Value: v})
		}
	}
	if w.block != nil {
		c.hbuf.Write(w.block)
	}
	for _, f := range w.fields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if w.contentLength >= 0 && w.h["Content-Length"] == nil && bodyAllowed(w.status) {
		var b [20]byte
		enc.WriteField(hpack.HeaderField{Name: "content-length", Value: string(strconv.AppendInt(b[:0], w.contentLength, 10))})
	}
	if !w.omitDate && w.h["Date"] == nil {
		enc.WriteField(hpack.HeaderField{Name: "date", Value: httpDate()})
	}
	for _, f := range c.s.ResponseFields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.writeHeaderBlock(st.id, c.hbuf.Bytes(), end)
	if end {
		w.localEnd()
	}
	return nil
}

// writeHeaderBlock writes block as HEADERS and as many CONTINUATION frames as the client's
// frame size needs. Under mu.
func (c *conn) writeHeaderBlock(id uint32, block []byte, end bool) {
	first := true
	for first || len(block) > 0 {
		k := min(len(block), int(c.peerMaxFrame))
		frag := block[:k]
		block = block[k:]
		if first {
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			c.fr.WriteContinuation(id, len(block) == 0, frag)
		}
	}
}

// sendInterim sends a 1xx head with the map's fields (103 Early Hints' Link).
func (w *responseWriter) sendInterim(code int) {
	st := w.st
	c := st.c
	c.lock()
	defer c.unlock()
	if st.closed || c.closing || w.sentHeader {
		return
	}
	c.hbuf.Reset()
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(code)})
	for k, vs := range w.h {
		if lk, ok := lowerName(k); ok {
			for _, v := range vs {
				if httpguts.ValidHeaderFieldValue(v) {
					c.enc.WriteField(hpack.HeaderField{Name: lk, Value: v})
				}
			}
		}
	}
	c.writeHeaderBlock(st.id, c.hbuf.Bytes(), false)
}

// Flush sends the head, if not yet sent, and what is buffered.
func (w *responseWriter) Flush() { w.FlushError() }

func (w *responseWriter) FlushError() error {
	st := w.st
	c := st.c
	c.lock()
	defer c.mu.Unlock()
	var err error
	if !w.sentHeader {
		err = w.writeHeadLocked(false)
	}
	c.flushLocked()
	if err == nil && c.werr != nil {
		err = c.werr
	}
	return err
}

// SetReadDeadline bounds reads of the request body (http.ResponseController).
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	if w.st.body != nil {
		w.st.body.setReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline is accepted and ignored: writes are bounded per connection
// (Server.WriteTimeout).
func (w *responseWriter) SetWriteDeadline(time.Time) error { return nil }

// finish completes the response when the handler returns: the head if none was sent, the
// trailers or END_STREAM, or a reset when the body came out shorter than declared.
func (w *responseWriter) finish() {
	st := w.st
	c := st.c
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	c.lock()
	defer c.unlock()
	if st.closed || c.closing || st.localDone {
		return
	}
	trailers := w.trailers()
	if !w.sentHeader {
		if w.contentLength < 0 && !w.noBody {
			w.contentLength = 0
		}
		w.writeHeadLocked(len(trailers) == 0)
		if len(trailers) == 0 {
			return
		}
	}
	if w.contentLength >= 0 && w.written < w.contentLength && !w.noBody {
		// The handler wrote less than it declared: the client must not take it as whole.
		c.fr.WriteRSTStream(st.id, http2.ErrCodeInternal)
		st.resetSent = true
		c.closeStream(st)
		return
	}
	if len(trailers) > 0 {
		c.hbuf.Reset()
		for _, f := range trailers {
			c.enc.WriteField(f)
		}
		c.writeHeaderBlock(st.id, c.hbuf.Bytes(), true)
	} else {
		w.writeDataFrame(nil, true)
	}
	w.localEnd()
}

// trailers are the fields the handler declared in Trailer, or set with
// http.TrailerPrefix, after the head.
func (w *responseWriter) trailers() []hpack.HeaderField {
	var out []hpack.HeaderField
	for k, vs := range w.h {
		name := ""
		switch {
		case strings.HasPrefix(k, http.TrailerPrefix):
			name = k[len(http.TrailerPrefix):]
		case w.sentHeader && w.declaredTrailer(k):
			name = k
		default:
			continue
		}
		if !httpguts.ValidTrailerHeader(name) {
			continue
		}
		lk, ok := lowerName(http.CanonicalHeaderKey(name))
		if !ok {
			continue
		}
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				out = append(out, hpack.HeaderField{Name: lk, Value: v})
			}
		}
	}
	return out
}

func (w *responseWriter) declaredTrailer(k string) bool {
	for _, v := range w.h["Trailer"] {
		for _, t := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(t)) == k {
				return true
			}
		}
	}
	return false
}

// HitWriter is how a cache answers a hit without a header map: block is a run of header
// fields HPACK-encoded without the dynamic table (EncodeStatic), sent as is after the map's
// fields (if any); fields are per-response fields (Age, say) the connection's encoder adds;
// length is the body's; date false leaves the Date field to block.
type HitWriter interface {
	WriteHit(status int, block []byte, fields [][2]string, length int64, date bool)
}

// WriteHit sets the head of a hit; the body follows with Write.
func (w *responseWriter) WriteHit(status int, block []byte, fields [][2]string, length int64, date bool) {
	if w.wroteHeader {
		return
	}
	w.block, w.fields, w.omitDate = block, fields, !date
	w.contentLength = length
	w.wroteHeader = true
	w.status = status
	if w.st.head || !bodyAllowed(status) {
		w.noBody = true
	}
}

// EncodeStatic HPACK-encodes fields without the dynamic table (literals with static-table
// names where there are, Huffman-coded): a block that means the same on every connection,
// encoded once and sent by many (HitWriter). Names must be lower-case.
func EncodeStatic(fields [][2]string) []byte {
	var buf strings.Builder
	e := hpack.NewEncoder(&buf)
	e.SetMaxDynamicTableSizeLimit(0)
	// The first field carries the table size update the limit triggers: encode one and
	// drop it, so the block holds field representations only.
	e.WriteField(hpack.HeaderField{Name: "x", Value: ""})
	var out []byte
	for _, f := range fields {
		buf.Reset()
		e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		out = append(out, buf.String()...)
	}
	return out
}

// lowerName is k's HTTP/2 field name, false for a name HTTP/2 doesn't carry
// (connection-specific, RFC 9113 §8.2.2) or an invalid one.
func lowerName(k string) (string, bool) {
	if lk, ok := commonLower[k]; ok {
		return lk, lk != ""
	}
	if !httpguts.ValidHeaderFieldName(k) {
		return "", false
	}
	lk := strings.ToLower(k)
	switch lk {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade", "te":
		return "", false
	}
	return lk, true
}

// commonLower maps canonical field names to their HTTP/2 names ("" for those never sent).
var commonLower = map[string]string{}

func init() {
	for _, k := range []string{"Accept-Ranges", "Age", "Alt-Svc", "Cache-Control", "Cache-Status",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Range", "Content-Type",
		"Content-Security-Policy", "Date", "Etag", "Expires", "Last-Modified", "Link", "Location",
		"Retry-After", "Server", "Set-Cookie", "Strict-Transport-Security", "Vary", "Via",
		"Www-Authenticate", "X-Content-Type-Options", "Access-Control-Allow-Origin",
		"Access-Control-Expose-Headers", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
		"Access-Control-Max-Age", "Access-Control-Allow-Credentials", "Timing-Allow-Origin", "Trailer"} {
		commonLower[k] = strings.ToLower(k)
	}
	for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Te"} {
		commonLower[k] = ""
	}
}

// canonical is a request field name's canonical form (http.Header keys).
func canonical(name string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}

var commonCanonical = map[string]string{}

func init() {
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Content-Length", "Content-Type", "Cookie", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
		"If-Range", "If-Unmodified-Since", "Origin", "Pragma", "Range", "Referer", "User-Agent", "Via",
		"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "Priority", "Sec-Fetch-Mode",
		"Sec-Fetch-Site", "Sec-Fetch-Dest", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Upgrade-Insecure-Requests",
		"Dnt", "Te", "Trailer", "Expect", "Forwarded", "Cdn-Loop"} {
		commonCanonical[strings.ToLower(k)] = k
	}
}

// httpDate is the Date field's value, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &cachedDate{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.s
}

type cachedDate struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[cachedDate]
