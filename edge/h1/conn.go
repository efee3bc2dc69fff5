package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/edge/internal/reqctx"
)

// Connection states, for graceful shutdown: an idle connection waits for a request's first
// byte and may be closed at once; an active one finishes its request first.
const (
	stateActive int32 = iota
	stateIdle
	stateHandedOff // served by a NextProto function: not ours to close when idle
)

// maxDrain is how much of an unread request body is read and dropped to keep the connection;
// more than that and the connection closes instead.
const maxDrain = 256 << 10

var aLongTimeAgo = time.Unix(1, 0)

// conn serves the requests of one client connection, one at a time, in order (RFC 9112 §9.3:
// responses to pipelined requests go out in the order the requests came).
type conn struct {
	srv   *Server
	rwc   net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	out   outWriter // what bw writes to
	state atomic.Int32

	remoteAddr string
	deadline   time.Time            // the read deadline set on rwc (zero: none)
	idleSet    bool                 // deadline is an idle one (not the first request's, a head's)
	tls        *tls.ConnectionState // the handshake's result on a TLS connection, else nil
	rd         reader               // reads request heads and chunked bodies' trailers
	h          head                 // the current request's head

	// The background read that notices a client going away (see Watch).
	peerMu      sync.Mutex
	peerWatch   bool          // a background read is running
	peerDone    chan struct{} // closed when it has returned
	peerByte    [1]byte
	peerHasByte bool  // the background read got a byte of the next request
	peerErr     error // it failed: the client is gone

	resp response // reused for every request of the connection

	// Parking on an event loop between requests (poll.go, poll_linux.go); loop is nil for a
	// connection with a goroutine of its own throughout (TLS; a server without loops).
	loop         *loop
	ctx          context.Context // the server's base context, for requests run by the loop
	fd           int32
	registered   bool          // the socket is in the loop's epoll set
	parked       atomic.Bool   // waiting on the loop; whoever swaps it to false owns c
	parkedUntil  atomic.Int64  // when a parked c times out (time.Since(monoBase); 0: never)
	firstPending bool          // c parked before its first request
	onLoop       atomic.Uint64 // the loop's generation while its goroutine runs c, else 0
	rbuf         []byte        // readNow's state (fields, so that a read allocates nothing)
	rn           int
	rerr         error
	readFn       func(uintptr) bool
}

// peerReader is what the connection's bufio.Reader reads from: the socket, after the byte a
// background read may have taken.
type peerReader struct{ c *conn }

func (r peerReader) Read(p []byte) (int, error) {
	c := r.c
	if c.onLoop.Load() != 0 {
		// On the loop's goroutine: take what the socket holds, and leave the loop rather
		// than wait for more (a background read runs only off the loop, see Watch).
		if n, err, ok := c.readNow(p); ok {
			return n, err
		}
		c.leaveLoop()
	}
	c.peerMu.Lock()
	if c.peerHasByte && len(p) > 0 {
		p[0] = c.peerByte[0]
		c.peerHasByte = false
		c.peerMu.Unlock()
		return 1, nil
	}
	err := c.peerErr
	c.peerMu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.rwc.Read(p)
}

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, remoteAddr: rwc.RemoteAddr().String()}
	c.br = bufio.NewReaderSize(peerReader{c}, 4<<10)
	c.rd = reader{br: c.br, last: make(map[string]string)}
	c.out = newOutWriter(rwc, s.WriteTimeout, func() { s.limitHit(LimitWrite) })
	c.out.turns = s.turns
	c.bw = bufio.NewWriterSize(&c.out, 8<<10)
	c.resp.c = c
	return c
}

// serve runs a connection on a goroutine of its own: the TLS handshake, then its requests
// until the client closes, a response requires closing, the server shuts down, a timeout
// hits, or the connection parks on an event loop.
func (c *conn) serve(ctx context.Context) {
	parked := false
	defer func() { c.end(recover(), parked) }()
	if tc, ok := c.rwc.(*tls.Conn); ok {
		// The handshake is bounded like a request head; its result is every request's r.TLS
		// (the cache key's scheme, RFC 9110 §4.2.2, depends on it).
		if d := c.srv.ReadHeaderTimeout; d > 0 {
			tc.SetDeadline(time.Now().Add(d))
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			return
		}
		tc.SetDeadline(time.Time{})
		st := tc.ConnectionState()
		c.tls = &st
		if next := c.srv.NextProto[st.NegotiatedProtocol]; next != nil && st.NegotiatedProtocol != "" {
			c.handOff(next, tc)
			return
		}
	}
	parked = c.requests(ctx, true, false)
}

// requests serves the connection's requests one after another (first: its first is next),
// and reports whether it stopped because the connection parked on its loop; otherwise the
// connection is to be closed. A connection resumed by its loop has bytes waiting: it reads
// them rather than parking again at once.
func (c *conn) requests(ctx context.Context, first, resumed bool) (parked bool) {
	h2c := first && c.tls == nil && c.srv.NextProto["h2c"] != nil
	for ; ; first, resumed = false, false {
		c.state.Store(stateIdle)
		if c.srv.shuttingDown() {
			return false
		}
		if c.loop != nil && !resumed && c.br.Buffered() == 0 && !c.peerByteHeld() {
			return c.park(first)
		}
		if first && c.srv.FirstRequestTimeout > 0 {
			c.setReadDeadline(time.Now().Add(c.srv.FirstRequestTimeout))
		} else {
			c.idleDeadline()
		}
		// Wait for the first byte before starting the header timeout, so an idle keep-alive
		// connection is judged by IdleTimeout and a slow header sender by ReadHeaderTimeout.
		if _, err := c.br.Peek(1); err != nil {
			if first && isTimeout(err) && !c.srv.shuttingDown() {
				c.srv.limitHit(LimitFirstRequest)
			}
			return false
		}
		c.state.Store(stateActive)
		if d := c.srv.ReadHeaderTimeout; d > 0 && !c.headBuffered() {
			c.setReadDeadline(time.Now().Add(d))
		}
		if h2c {
			// Only a connection's first bytes can be the preface.
			h2c = false
			if c.sawH2Preface() {
				c.handOff(c.srv.NextProto["h2c"], &replayConn{Conn: c.rwc, r: c.br})
				return false
			}
		}
		h := &c.h
		if err := c.rd.readHead(h, c.srv.maxHeaderBytes()); err != nil {
			var pe *protoError
			if errors.As(err, &pe) {
				c.refuse(pe)
			}
			return false
		}
		if h.chunked || h.contentLength > 0 {
			// The handler reads the body under the body timeouts (body.go), not the header's.
			c.setReadDeadline(time.Time{})
		}
		if !c.serveRequest(ctx, h) {
			return false
		}
	}
}

// peerByteHeld reports whether a background read took the next request's first byte.
func (c *conn) peerByteHeld() bool {
	c.peerMu.Lock()
	defer c.peerMu.Unlock()
	return c.peerHasByte
}

// end is deferred by whoever runs a connection's requests: it logs a handler's panic and
// closes the connection unless it parked.
func (c *conn) end(v any, parked bool) {
	if v != nil && v != http.ErrAbortHandler {
		buf := make([]byte, 16<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.srv.log().Error("panic serving request", "remote", c.remoteAddr, "panic", v, "stack", string(buf))
	}
	if !parked {
		c.close()
	}
}

// close closes the connection and forgets it.
func (c *conn) close() {
	if c.loop != nil {
		c.loop.remove(c)
	}
	c.rwc.Close()
	c.srv.forget(c)
}

// h2Preface opens every HTTP/2 connection (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sawH2Preface reports whether the connection starts with the HTTP/2 client preface. It
// reads no further than the bytes keep matching, so an HTTP/1.x request shorter than the
// preface (an HTTP/1.0 "GET / HTTP/1.0" with no fields) is not held up waiting for more;
// the current read deadline bounds a client that stops midway.
func (c *conn) sawH2Preface() bool {
	for {
		b, _ := c.br.Peek(c.br.Buffered())
		n := min(len(b), len(h2Preface))
		if string(b[:n]) != h2Preface[:n] {
			return false
		}
		if n == len(h2Preface) {
			return true
		}
		if _, err := c.br.Peek(n + 1); err != nil {
			return false
		}
	}
}

// handOff gives the connection to a NextProto function, with no deadline left from ours.
func (c *conn) handOff(next func(net.Conn), nc net.Conn) {
	c.leaveLoop() // HTTP/2 has a goroutine of its own per connection, which it never leaves
	if c.loop != nil {
		// Now, while the socket is surely open: HTTP/2 may close it before returning.
		c.loop.remove(c)
	}
	c.state.Store(stateHandedOff)
	c.rwc.SetDeadline(time.Time{})
	next(nc)
}

// replayConn is a cleartext connection handed off after its first bytes were read: they are
// read again from the buffer before the socket.
type replayConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Read deadlines cost a timer update each; on a busy keep-alive connection the idle deadline is
// moved only when it has fallen more than a second behind, and the header deadline is skipped
// when the whole head already arrived (it can't be read slowly then). Between requests without
// a body the conn keeps whatever deadline it had: nothing reads from it while the handler runs
// except the peer watch, which clears it first.
func (c *conn) idleDeadline() {
	d := c.srv.IdleTimeout
	if d <= 0 {
		if !c.deadline.IsZero() {
			c.setReadDeadline(time.Time{})
		}
		return
	}
	// Compared on the monotonic clock, which is cheaper to read than time.Now; the deadline
	// (from time.Now) carries its monotonic reading.
	want := time.Since(monoBase) + d
	if at := c.deadline.Sub(monoBase); !c.idleSet || at < want-time.Second || at > want {
		c.setReadDeadline(time.Now().Add(d))
		c.idleSet = true
	}
}

// monoBase anchors monotonic clock readings: time.Since(monoBase) reads only that clock.
var monoBase = time.Now()

func (c *conn) setReadDeadline(t time.Time) {
	c.deadline, c.idleSet = t, false
	c.rwc.SetReadDeadline(t)
}

// headBuffered reports whether a complete request head is already in the read buffer.
func (c *conn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	// A client that waits for each response before its next request sends one head at a
	// time, which then ends the buffer: no need to search it.
	return bytes.HasSuffix(b, crlfcrlf) || bytes.Contains(b, crlfcrlf) || bytes.Contains(b, lflf)
}

var crlfcrlf, lflf = []byte("\r\n\r\n"), []byte("\n\n")

// serveRequest runs the handler for one request and reports whether the connection can carry
// another.
func (c *conn) serveRequest(ctx context.Context, h *head) (keepAlive bool) {
	a := &reqAlloc{}
	rctx := &a.ctx
	rctx.Init(ctx, c)
	req, err := h.request(rctx, &a.url)
	if err != nil {
		var pe *protoError
		if errors.As(err, &pe) {
			c.refuse(pe)
		}
		return false
	}
	req.RemoteAddr = c.remoteAddr
	req.TLS = c.tls
	var b *body
	if h.chunked || h.contentLength > 0 {
		b = newBody(c, h)
		req.Body = b
		if h.chunked {
			req.TransferEncoding = []string{"chunked"}
		}
	} else {
		req.Body = http.NoBody
	}

	w := &c.resp
	w.reset(req, b)
	defer func() {
		rctx.Cancel()
		c.stopPeerWatch()
	}()
	c.srv.Handler.ServeHTTP(w, req)
	// The context ends when the handler returns, before the client can see the response's end
	// (as with net/http); the deferred call covers a handler that panics.
	rctx.Cancel()
	if !w.finish() {
		return false
	}
	if b != nil && !b.drain(maxDrain) {
		return false
	}
	return !h.close && !w.closeAfter
}

// refuse answers a request the server can't take and leaves the connection to be closed.
func (c *conn) refuse(pe *protoError) {
	c.leaveLoop() // it lingers below
	c.out.setDeadline(time.Now().Add(5 * time.Second))
	msg := pe.reason + "\n"
	c.bw.WriteString("HTTP/1.1 ")
	c.bw.WriteString(statusLine(pe.status))
	c.bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ")
	c.bw.WriteString(itoa(int64(len(msg))))
	c.bw.WriteString("\r\n\r\n")
	c.bw.WriteString(msg)
	c.bw.Flush()
	// Let the client read the answer before the close resets the connection over unread bytes.
	if tc, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(c.rwc, 256<<10))
	}
}

func (c *conn) writeContinue() error {
	if _, err := c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
		return err
	}
	return c.bw.Flush()
}

// skipTrailers reads a chunked body's trailer section up to its empty line and drops it; a
// cache forwards no request trailers (RFC 9110 §6.5.1 lets a recipient discard them).
func (c *conn) skipTrailers() error {
	r := &c.rd
	r.budget = c.srv.maxHeaderBytes()
	for {
		line, err := r.line(errHeaderTooLarge)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// Watch (reqctx.Watcher), called when a handler first waits on its request's context, starts
// the background read that cancels x when the client goes away: a goroutine and a system call
// that net/http spends on every request, here only on requests that wait (for an origin
// fill, say). It does nothing while the handler may still read the request body from the
// connection, or while bytes of a pipelined request are already buffered (the client is
// evidently still there).
func (c *conn) Watch(x *reqctx.Context) {
	c.leaveLoop() // the handler is about to wait
	if b := c.resp.body; b != nil {
		b.mu.Lock()
		eof := b.eof
		b.mu.Unlock()
		if !eof {
			return
		}
	}
	if c.br.Buffered() > 0 {
		return
	}
	c.peerMu.Lock()
	defer c.peerMu.Unlock()
	if c.peerWatch || c.peerHasByte || c.peerErr != nil {
		return
	}
	c.peerWatch = true
	c.peerDone = make(chan struct{})
	c.rwc.SetReadDeadline(time.Time{}) // see idleDeadline
	go func() {
		defer close(c.peerDone)
		n, err := c.rwc.Read(c.peerByte[:])
		c.peerMu.Lock()
		defer c.peerMu.Unlock()
		if n == 1 {
			c.peerHasByte = true
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			return // stopped by stopPeerWatch
		}
		c.peerErr = err
		go x.Cancel() // x's lock may be held by Done, which waits for nothing but this lock
	}()
}

// stopPeerWatch ends the background read, keeping any byte it got for the next request.
func (c *conn) stopPeerWatch() {
	c.peerMu.Lock()
	watching := c.peerWatch
	c.peerMu.Unlock()
	if !watching {
		return
	}
	c.rwc.SetReadDeadline(aLongTimeAgo)
	<-c.peerDone
	c.setReadDeadline(time.Time{})
	c.peerMu.Lock()
	c.peerWatch = false
	c.peerMu.Unlock()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
