package h1

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// bufferBeforeChunking is how much of a body without Content-Length is held back: a handler
// that finishes within it gets a Content-Length response instead of a chunked one.
const bufferBeforeChunking = 4 << 10

// response is the http.ResponseWriter of one request. Its header and status line are written
// into the connection's buffer when the body starts (or the handler returns, or flushes), then
// the body is framed by Content-Length, chunked (RFC 9112 §7.1), or — HTTP/1.0 clients without
// a length — by closing the connection.
type response struct {
	c    *conn
	req  *http.Request
	body *body

	header      http.Header
	status      int
	wroteHeader bool // the status is decided
	committed   bool // the header is in the write buffer
	noBody      bool // HEAD, 1xx, 204, 304
	chunked     bool
	closeAfter  bool
	length      int64 // declared Content-Length, -1 if none
	wireLength  int64 // the length SetContentLength declared, -1 if none
	lengthField bool  // the server writes Content-Length (the length came from SetContentLength)
	omitDate    bool  // OmitDate was called
	written     int64 // body bytes accepted
	pending     []byte
	wire        []byte // fields already in wire form (WireFields)
}

func (w *response) reset(req *http.Request, b *body) {
	hdr := w.header
	if hdr == nil {
		hdr = make(http.Header, 16)
	} else {
		// The previous request's handler has returned; net/http gives no guarantee that its
		// header map outlives the request either.
		clear(hdr)
	}
	*w = response{c: w.c, req: req, body: b, header: hdr, length: -1, wireLength: -1,
		pending: w.pending[:0], wire: w.wire[:0]}
}

func (w *response) Header() http.Header { return w.header }

// WireFields returns the response's buffer of header fields already in wire form, for the
// handler to append HTTP/1.1 field lines to ("Name: value" CRLF each); what it holds when the
// header is written goes out after the fields of Header(). A cache serving one stored response
// many times serialises its fields once instead of copying a map per response, and appends the
// few it sets per response (Age, say) without a map round trip either. The buffer belongs to the
// connection and is reused; it is empty when the handler starts. The caller vouches for the
// lines (valid names, no CR, LF or NUL in values) and that none of them repeats a field of
// Header() or is one this writer manages (Content-Length, Transfer-Encoding, Connection, Date).
// Lines appended after the header was written are not sent.
func (w *response) WireFields() *[]byte { return &w.wire }

// SetContentLength declares the body's length as a Content-Length field in Header() would, for
// a handler that keeps its fields out of the map (see WireFields); the server writes the field.
// A Content-Length in Header() takes precedence. It must come before the status is written.
func (w *response) SetContentLength(n int64) {
	if !w.wroteHeader && n >= 0 {
		w.wireLength = n
	}
}

// OmitDate keeps the server from adding its Date field, as a nil Date in Header() does with
// net/http: for a handler that sends its own in WireFields.
func (w *response) OmitDate() { w.omitDate = true }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational responses (103 Early Hints) go out at once; the final one follows.
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified || code < 200
	// The field by its canonical name, as net/http's server reads it.
	if cl := w.header["Content-Length"]; len(cl) > 0 && cl[0] != "" {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		} else {
			w.header.Del("Content-Length")
		}
	}
	if w.length < 0 && w.wireLength >= 0 {
		w.length, w.lengthField = w.wireLength, true
	}
}

func (w *response) writeInformational(code int) {
	bw := w.c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(statusLine(code))
	bw.WriteString("\r\n")
	writeFields(bw, w.header)
	bw.WriteString("\r\n")
	bw.Flush()
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		if w.status == http.StatusNotModified || w.status == http.StatusNoContent {
			return 0, http.ErrBodyNotAllowed
		}
		w.written += int64(len(p))
		return len(p), nil // HEAD: the body is counted, not sent
	}
	if w.length >= 0 {
		if rest := w.length - w.written; int64(len(p)) > rest {
			n, err := w.Write(p[:rest])
			if err == nil {
				err = http.ErrContentLength
			}
			return n, err
		}
	}
	if !w.committed {
		if w.length < 0 && len(w.pending)+len(p) <= bufferBeforeChunking {
			w.pending = append(w.pending, p...)
			w.written += int64(len(p))
			return len(p), nil
		}
		w.commit()
	}
	n, err := w.writeBody(p)
	w.written += int64(n)
	return n, err
}

func (w *response) writeBody(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	bw := w.c.bw
	if !w.chunked && len(p) > bw.Available() && bw.Buffered() > 0 && w.c.out.vectored() {
		// A body larger than the buffer's room (a large cached object, written whole): the
		// head already buffered and the body go out in one writev, rather than the body's
		// first bytes copied in to fill the buffer, that written, then the rest.
		return w.c.out.flushWith(bw, p)
	}
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		n, err := bw.Write(p)
		if err != nil {
			return n, err
		}
		_, err = bw.WriteString("\r\n")
		return n, err
	}
	return bw.Write(p)
}

// WriteString avoids a copy for handlers that write strings (io.WriteString).
func (w *response) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// commit puts the status line and header into the write buffer, choosing the body's framing,
// and then the body held back so far.
func (w *response) commit() {
	if w.committed {
		return
	}
	w.committed = true
	h := w.header
	delete(h, "Transfer-Encoding") // the framing is this writer's choice, not the handler's
	switch {
	case w.status == http.StatusNotModified || w.status == http.StatusNoContent || w.status < 200:
		delete(h, "Content-Length")
		w.lengthField = false
	case w.length >= 0:
	case w.req.Method == http.MethodHead:
	case w.req.ProtoMinor >= 1:
		w.chunked = true
		h["Transfer-Encoding"] = chunkedValue
	default:
		w.closeAfter = true // HTTP/1.0: the body ends when the connection does
	}
	if w.req.Close || w.c.srv.shuttingDown() || w.body.failed() {
		// After a failed body read (a timeout, broken chunked framing) the next request's
		// start is unknown: the connection closes, and the response says so (RFC 9110 §15.5.9).
		w.closeAfter = true
	}
	if w.closeAfter {
		h["Connection"] = closeValue
	} else if w.req.ProtoMinor == 0 {
		h["Connection"] = keepAliveValue
	}
	if _, ok := h["Date"]; !ok && !w.omitDate {
		h["Date"] = []string{httpDate()}
	}
	bw := w.c.bw
	if w.req.ProtoMinor == 0 {
		bw.WriteString("HTTP/1.0 ")
	} else {
		bw.WriteString("HTTP/1.1 ")
	}
	bw.WriteString(statusLine(w.status))
	bw.WriteString("\r\n")
	writeFields(bw, h)
	if w.lengthField {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.length, 10))
		bw.WriteString("\r\n")
	}
	bw.Write(w.wire)
	bw.Write(w.c.srv.ResponseFields)
	bw.WriteString("\r\n")
	if len(w.pending) > 0 && !w.noBody {
		w.writeBody(w.pending)
	}
	w.pending = w.pending[:0]
}

var (
	chunkedValue   = []string{"chunked"}
	closeValue     = []string{"close"}
	keepAliveValue = []string{"keep-alive"}
)

// writeFields writes header fields. A field whose name isn't a token is dropped, and CR or LF
// in a value (which no handler should produce) become spaces, as net/http does, so that a
// value can't split the response.
func writeFields(bw *bufio.Writer, h http.Header) {
	for k, vs := range h {
		if !isToken(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			if hasCRLF(v) {
				v = crlfToSpace.Replace(v)
			}
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
}

var crlfToSpace = strings.NewReplacer("\r", " ", "\n", " ")

func hasCRLF(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			return true
		}
	}
	return false
}

// finish completes the response after the handler returned and reports whether the
// connection is still usable.
func (w *response) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed && w.length < 0 {
		switch {
		case !w.noBody:
			// The whole body is held back: send it with its length.
			w.length = int64(len(w.pending))
			w.header["Content-Length"] = []string{strconv.Itoa(len(w.pending))}
		case w.req.Method == http.MethodHead && w.status >= 200 && w.status != http.StatusNoContent &&
			w.status != http.StatusNotModified && w.written > 0:
			// HEAD: the length the GET's body would have had (RFC 9110 §9.3.2).
			w.header["Content-Length"] = []string{strconv.FormatInt(w.written, 10)}
		}
	}
	w.commit()
	if w.chunked {
		w.c.bw.WriteString("0\r\n\r\n")
	}
	if err := w.c.bw.Flush(); err != nil {
		return false
	}
	if w.length >= 0 && !w.noBody && w.written < w.length {
		// Fewer bytes than declared: the client would wait for the rest, so only closing the
		// connection tells it the response is incomplete.
		return false
	}
	return !w.closeAfter
}

// Flush sends what is buffered to the client (http.Flusher, http.ResponseController).
func (w *response) Flush() { w.FlushError() }

func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.commit()
	return w.c.bw.Flush()
}

// ReadFrom sends a file body with sendfile(2) when its length is declared, as net/http does.
func (w *response) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody || w.length < 0 {
		return io.CopyBuffer(writerOnly{w}, src, nil)
	}
	w.commit()
	if err := w.c.bw.Flush(); err != nil {
		return 0, err
	}
	n, err := w.c.out.readFrom(src, w.length-w.written)
	w.written += n
	return n, err
}

// writerOnly hides ReadFrom so io.Copy doesn't come back to it.
type writerOnly struct{ io.Writer }

func (w *response) SetWriteDeadline(t time.Time) error { return w.c.out.setDeadline(t) }
func (w *response) SetReadDeadline(t time.Time) error  { return w.c.rwc.SetReadDeadline(t) }

// The Date header changes once a second; formatting it per response would cost more than the
// rest of a small header.
var dateCache atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	val string
}

func httpDate() string {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &dateValue{now.Unix(), now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.val
}

// statusLine is "code reason" with the reason phrase of RFC 9110 §15, precomputed.
func statusLine(code int) string {
	if code >= 100 && code < 600 {
		if s := statusLines[code]; s != "" {
			return s
		}
	}
	return strconv.Itoa(code) + " status code " + strconv.Itoa(code)
}

var statusLines = func() (t [600]string) {
	for c := 100; c < 600; c++ {
		if txt := http.StatusText(c); txt != "" {
			t[c] = strconv.Itoa(c) + " " + txt
		}
	}
	return t
}()

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

var _ interface {
	http.ResponseWriter
	http.Flusher
	io.ReaderFrom
} = (*response)(nil)
