package h2

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reelvideo/reel/edge/internal/reqctx"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its response. Fields below are under the connection's mu.
type stream struct {
	c  *conn
	id uint32

	sendWindow int64 // DATA bytes we may still send on it
	recvWindow int64 // DATA bytes the client may still send on it
	// recvUnacked: consumed, not yet returned to the client's stream window.
	recvUnacked int64
	body        *reqBody // nil: the request has no body
	declLen     int64    // the request's Content-Length, -1 without
	gotBytes    int64
	trailer     http.Header // declared by the request's Trailer field, filled by its trailers

	starting    bool // counted in the connection's starting
	remoteDone  bool // END_STREAM received
	localDone   bool // END_STREAM sent
	resetSent   bool
	resetByPeer bool
	closed      bool // gone from the connection's streams

	head bool // a HEAD request
	ctx  reqctx.Context
	req  *http.Request
	rw   responseWriter
}

var errStreamClosed = errors.New("http2: stream closed")

// onHeaders opens a stream (or takes a request's trailers).
func (c *conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 != 1 {
		return connError(http2.ErrCodeProtocol)
	}
	c.lock()
	defer c.unlock()
	if st := c.streams[id]; st != nil {
		if st.resetSent {
			return nil // frames in flight when we reset it
		}
		if st.remoteDone {
			return streamError{id, http2.ErrCodeStreamClosed}
		}
		return c.onTrailers(st, f)
	}
	if id <= c.maxClientID {
		return connError(http2.ErrCodeProtocol)
	}
	c.maxClientID = id
	if c.goAway {
		return nil // after GOAWAY: not processed, the client may retry it elsewhere
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		return streamError{id, http2.ErrCodeProtocol}
	}
	if uint32(len(c.streams)) >= c.maxStreams {
		if c.settingsAcked {
			return streamError{id, http2.ErrCodeProtocol}
		}
		return streamError{id, http2.ErrCodeRefusedStream}
	}
	st := &stream{c: c, id: id, sendWindow: c.peerInitWindow, recvWindow: streamRecvWindow, declLen: -1}
	if err := c.newRequest(st, f); err != nil {
		return err
	}
	c.streams[id] = st
	if c.idle != nil {
		c.idle.Stop()
	}
	if f.StreamEnded() {
		st.remoteDone = true
	}
	if c.running >= int(c.maxStreams) {
		// Handlers of streams the client reset run on: the next streams wait for one to end,
		// and a client that piles them up is told to calm down.
		c.queue = append(c.queue, st)
		if len(c.queue) > 4*int(c.maxStreams) {
			return connError(http2.ErrCodeEnhanceYourCalm)
		}
		return nil
	}
	c.running++
	st.starting = true
	c.starting++
	c.toStart = append(c.toStart, st)
	return nil
}

// startHandlers starts the handlers of the streams opened since the last call: the reader
// calls it when it has no complete frame left to read without waiting, so that the frames
// that came together (the HEADERS of several streams, a request's HEADERS and DATA) are all
// processed before the handlers answer them.
func (c *conn) startHandlers() {
	c.mu.Lock()
	start := c.toStart
	c.toStart = c.toStartBuf[:0]
	c.mu.Unlock()
	for i, st := range start {
		c.s.dispatch(st)
		start[i] = nil
	}
	c.toStartBuf = start[:0]
}

// onTrailers takes the trailing header section of a request (RFC 9113 §8.1). Under mu.
func (c *conn) onTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 || st.body == nil {
		return streamError{st.id, http2.ErrCodeProtocol}
	}
	if st.declLen >= 0 && st.gotBytes != st.declLen {
		return streamError{st.id, http2.ErrCodeProtocol}
	}
	for _, hf := range f.RegularFields() {
		k := http.CanonicalHeaderKey(hf.Name)
		if _, declared := st.trailer[k]; declared {
			st.trailer[k] = append(st.trailer[k], hf.Value)
		}
	}
	st.body.err = io.EOF
	c.remoteClosed(st)
	c.cond.Broadcast()
	return nil
}

// newRequest builds st's request from its HEADERS. Under mu.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) error {
	bad := streamError{st.id, http2.ErrCodeProtocol}
	var method, scheme, authority, path string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		case ":path":
			path = hf.Value
		default: // :protocol (extended CONNECT) is not offered
			return bad
		}
	}
	if method == "" || method == "CONNECT" || scheme == "" || path == "" {
		return bad // RFC 9113 §8.3.1; CONNECT is not served by a cache
	}
	h := make(http.Header, len(f.Fields)-len(f.PseudoFields())+1)
	var cookies []string
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return bad // connection-specific fields are malformed in HTTP/2 (§8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return bad
			}
		case "cookie":
			// RFC 9113 §8.2.3: cookie crumbs are one field again for HTTP/1.1 semantics.
			cookies = append(cookies, hf.Value)
			continue
		}
		k := canonical(hf.Name)
		h[k] = append(h[k], hf.Value)
	}
	if len(cookies) > 0 {
		h["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if authority == "" {
		authority = h.Get("Host")
	}
	// Built here and copied once with its context (WithContext): one allocation.
	var req http.Request
	r := &req
	st.head = method == http.MethodHead
	r.Method = method
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	r.Header = h
	r.Host = authority
	r.RemoteAddr = c.remote
	r.RequestURI = path
	r.TLS = c.tls
	u, err := parseRequestURI(path, method)
	if err != nil {
		return bad
	}
	r.URL = u
	if f.Truncated {
		// Over the header list limit: answered 431 without the handler (st.run).
		st.remoteDone = f.StreamEnded()
	}
	r.ContentLength = -1
	if cl := h["Content-Length"]; len(cl) > 0 {
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 || len(cl) > 1 && !allSame(cl) {
			return bad
		}
		st.declLen, r.ContentLength = n, n
	}
	if f.StreamEnded() {
		if st.declLen > 0 {
			return bad // a declared body that never comes (§8.1.1)
		}
		r.ContentLength = 0
		r.Body = http.NoBody
	} else {
		st.body = &reqBody{st: st, expect: strings.EqualFold(h.Get("Expect"), "100-continue")}
		r.Body = st.body
		if tr := h["Trailer"]; len(tr) > 0 {
			st.trailer = http.Header{}
			for _, v := range tr {
				for _, k := range strings.Split(v, ",") {
					if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" && httpguts.ValidTrailerHeader(k) {
						st.trailer[k] = nil
					}
				}
			}
			r.Trailer = st.trailer
		}
	}
	st.ctx.Init(c.baseCtx, nil)
	st.req = r.WithContext(&st.ctx)
	st.rw = responseWriter{st: st, contentLength: -1}
	if f.Truncated {
		st.rw.tooLarge = true
	}
	return nil
}

func allSame(v []string) bool {
	for _, s := range v[1:] {
		if s != v[0] {
			return false
		}
	}
	return true
}

// parseRequestURI parses :path: an origin-form path, or "*" for OPTIONS.
func parseRequestURI(path, method string) (*url.URL, error) {
	if path == "*" {
		if method != http.MethodOptions {
			return nil, errors.New("* is for OPTIONS")
		}
		return &url.URL{Path: "*"}, nil
	}
	if path[0] != '/' {
		return nil, errors.New("not an origin-form path")
	}
	return url.ParseRequestURI(path)
}

// run runs the handler for st and completes its response.
func (st *stream) run() {
	c := st.c
	c.mu.Lock()
	gone := st.closed
	c.mu.Unlock()
	if gone { // reset by the client before its handler began
		st.done()
		return
	}
	r := st.req
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				c.log.Error("http2: handler panic", "remote", c.remote, "panic", p)
			}
			st.abort(http2.ErrCodeInternal)
		}
		st.done()
	}()
	if st.rw.tooLarge {
		st.rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		st.rw.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		io.WriteString(&st.rw, "request header fields too large\n")
	} else {
		c.s.Handler.ServeHTTP(&st.rw, r)
	}
	st.rw.finish()
}

// abort resets the stream (a handler panic).
func (st *stream) abort(code http2.ErrCode) {
	c := st.c
	c.lock()
	defer c.unlock()
	if !st.closed && !c.closing {
		c.fr.WriteRSTStream(st.id, code)
		st.resetSent = true
		c.closeStream(st)
	}
}

// done is the handler's end: the stream's slot goes to a waiting stream, if any.
func (st *stream) done() {
	c := st.c
	c.lock()
	defer c.unlock()
	st.ctx.Cancel()
	if !st.closed && st.localDone && !st.remoteDone && !c.closing {
		// The response is complete and the request body isn't: the client may stop sending
		// it (RFC 9113 §8.1) — told once the frames it sent meanwhile are processed (a
		// malformed body or a window overflow then gets its own error), see endEarly.
		c.earlyDone = append(c.earlyDone, st)
		c.earlyPending.Store(true)
		if c.earlyTimer == nil {
			c.earlyTimer = time.AfterFunc(earlyResetDelay, c.endEarly)
		} else {
			c.earlyTimer.Reset(earlyResetDelay)
		}
	}
	c.answered(st)
	c.running--
	for len(c.queue) > 0 && c.running < int(c.maxStreams) {
		next := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if next.closed {
			continue // reset while it waited
		}
		c.running++
		c.s.dispatch(next)
	}
	if len(c.streams) == 0 && c.running == 0 && c.idle != nil && !c.closing {
		c.idle.Reset(c.s.IdleTimeout)
	}
	c.checkDrained()
}

// reqBody is a request body: DATA frames' bytes, handed to the handler as it reads, the
// windows reopened as it does.
type reqBody struct {
	st *stream
	// expect: the request asked for 100 Continue (RFC 9110 §10.1.1), sent at the first read
	// if no response has begun.
	expect   bool
	buf      []byte
	err      error // io.EOF at the end; set with buf possibly still holding bytes
	deadline time.Time
	timer    *time.Timer
}

func (b *reqBody) Read(p []byte) (int, error) {
	c := b.st.c
	c.lock()
	defer c.unlock()
	if b.expect {
		b.expect = false
		if st := b.st; !st.rw.sentHeader && !st.closed && !c.closing && len(b.buf) == 0 && b.err == nil {
			c.hbuf.Reset()
			c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "100"})
			c.writeHeaderBlock(st.id, c.hbuf.Bytes(), false)
		}
	}
	for len(b.buf) == 0 && b.err == nil {
		if !b.deadline.IsZero() && !time.Now().Before(b.deadline) {
			return 0, errTimeout
		}
		if c.closing {
			return 0, errStreamClosed
		}
		c.wait()
	}
	if len(b.buf) == 0 {
		return 0, b.err
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	if len(b.buf) == 0 {
		b.buf = nil
	}
	st := b.st
	if !c.closing {
		c.returnConnWindow(int64(n))
		if !st.remoteDone {
			st.recvUnacked += int64(n)
			if st.recvUnacked >= streamRecvWindow/4 {
				c.fr.WriteWindowUpdate(st.id, uint32(st.recvUnacked))
				st.recvWindow += st.recvUnacked
				st.recvUnacked = 0
			}
		}
	}
	return n, nil
}

func (b *reqBody) Close() error {
	c := b.st.c
	c.lock()
	defer c.unlock()
	if n := int64(len(b.buf)); n > 0 {
		b.buf = nil
		if !c.closing {
			c.returnConnWindow(n)
		}
	}
	if b.err == nil {
		b.err = errors.New("http2: request body closed")
	}
	return nil
}

// setReadDeadline bounds the next reads of the body (http.ResponseController).
func (b *reqBody) setReadDeadline(t time.Time) {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	b.deadline = t
	if b.timer != nil {
		b.timer.Stop()
	}
	if !t.IsZero() {
		b.timer = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		})
	}
}

// errTimeout is a body read past its deadline: a net.Error whose Timeout is true.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "http2: request body read timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// cancel ends st's context.
func (st *stream) cancel() { st.ctx.Cancel() }
