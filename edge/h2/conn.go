package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// conn is one client connection. Its goroutine (serve) reads and processes frames; each
// stream's handler runs on a goroutine of its own and writes its frames itself. Everything
// below mu — stream states, windows, the HPACK encoder and the write buffer — is shared by
// them under mu.
type conn struct {
	s       *Server
	nc      net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	fr      *http2.Framer
	tls     *tls.ConnectionState
	remote  string
	baseCtx context.Context
	log     *slog.Logger

	mu   sync.Mutex
	cond sync.Cond // flow-control windows, request bodies, stream ends: waited on under mu
	// pendingW counts goroutines waiting for mu: whoever releases mu with none waiting
	// flushes the write buffer, so frames written by streams together leave together.
	pendingW atomic.Int32
	// starting counts handlers started together (one batch of frames read) that have not
	// yet written their response or returned: while some have not, the others leave the
	// flush to the last of them, and frames answered together leave in one write. A handler
	// that takes longer (a miss) would hold the others' frames: flushTimer sends them
	// after flushDelay at the latest.
	starting     int
	flushTimer   *time.Timer
	flushPending bool

	dataBytes atomic.Int64 // DATA payload bytes written (tests)

	// earlyDone are streams whose response ended before their request: each gets
	// RST_STREAM(NO_ERROR) when the reader has processed what it had read, or after
	// earlyResetDelay (endEarly).
	earlyDone    []*stream
	earlyPending atomic.Bool
	earlyTimer   *time.Timer

	enc  *hpack.Encoder
	hbuf bytes.Buffer

	streams     map[uint32]*stream
	maxClientID uint32 // the highest stream the client opened
	maxStreams  uint32
	running     int       // handlers running, or about to (toStart)
	queue       []*stream // streams waiting for a handler
	toStart     []*stream // handlers to start once the frames read together are processed
	toStartBuf  []*stream // the reader's: the spare backing array of toStart
	// settingsAcked: the client acknowledged our SETTINGS (a stream past the limit is then
	// PROTOCOL_ERROR rather than REFUSED_STREAM).
	settingsAcked bool

	peerMaxFrame   uint32
	peerInitWindow int64
	sendWindow     int64 // connection-level: DATA bytes we may still send
	recvWindow     int64 // connection-level: DATA bytes the client may still send
	recvUnacked    int64 // consumed by handlers, not yet returned with WINDOW_UPDATE

	goAway     bool // GOAWAY sent: no new streams
	peerGoAway bool
	closing    bool // no more frames: a connection error, or the end
	werr       error
	idle       *time.Timer
	drained    chan struct{} // closed when a graceful GOAWAY finds no stream left
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s: s, nc: nc, log: s.log(),
		streams:        map[uint32]*stream{},
		maxStreams:     s.maxStreams(),
		peerMaxFrame:   16 << 10,
		peerInitWindow: 65535,
		sendWindow:     65535,
		recvWindow:     connRecvWindow,
		drained:        make(chan struct{}),
	}
	c.cond.L = &c.mu
	c.br = bufio.NewReaderSize(nc, 16<<10)
	c.bw = bufio.NewWriterSize(deadlineWriter{nc, s}, 32<<10)
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(s.maxFrameSize())
	c.fr.MaxHeaderListSize = s.maxHeaderListSize()
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.ReadMetaHeaders.SetMaxStringLength(int(s.maxHeaderListSize()))
	c.enc = hpack.NewEncoder(&c.hbuf)
	if cs, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := cs.ConnectionState()
		c.tls = &st
	}
	if a := nc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
	c.baseCtx = s.BaseContext
	if c.baseCtx == nil {
		c.baseCtx = context.Background()
	}
	return c
}

// deadlineWriter arms the write deadline before each write to the connection (the write
// buffer's flushes).
type deadlineWriter struct {
	nc  net.Conn
	srv *Server
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.nc.SetWriteDeadline(time.Now().Add(w.srv.writeTimeout()))
	n, err := w.nc.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		w.srv.writeTimedOut()
	}
	return n, err
}

// lock takes mu to write (or to change what writers wait for).
func (c *conn) lock() {
	c.pendingW.Add(1)
	c.mu.Lock()
	c.pendingW.Add(-1)
}

// unlock releases mu, flushing first when no other goroutine waits to write more and no
// handler of the same batch is yet to answer (then after flushDelay at the latest).
func (c *conn) unlock() {
	if c.pendingW.Load() == 0 && c.bw.Buffered() > 0 {
		if c.starting == 0 {
			c.flushLocked()
		} else if !c.flushPending {
			c.flushPending = true
			if c.flushTimer == nil {
				c.flushTimer = time.AfterFunc(flushDelay, c.delayedFlush)
			} else {
				c.flushTimer.Reset(flushDelay)
			}
		}
	}
	c.mu.Unlock()
}

// flushDelay bounds how long a response's frames may wait for those of handlers started
// with it.
const flushDelay = 500 * time.Microsecond

func (c *conn) delayedFlush() {
	c.mu.Lock()
	c.flushPending = false
	if c.bw.Buffered() > 0 && !c.closing {
		c.flushLocked()
	}
	c.mu.Unlock()
}

// answered records that a handler of the current batch wrote its response (or returned).
// Under mu.
func (c *conn) answered(st *stream) {
	if st.starting {
		st.starting = false
		c.starting--
	}
}

// flushLocked sends what is buffered; a failed write ends the connection.
func (c *conn) flushLocked() {
	if c.werr != nil {
		return
	}
	if c.flushPending { // what the timer was to send goes now
		c.flushPending = false
		c.flushTimer.Stop()
	}
	if err := c.bw.Flush(); err != nil {
		c.werr = err
		c.closing = true
		c.nc.Close()
		c.cond.Broadcast()
	}
}

// wait waits on cond, with what is buffered sent first (the client may need it to answer).
func (c *conn) wait() {
	if c.bw.Buffered() > 0 {
		c.flushLocked()
	}
	c.cond.Wait()
}

// connError is a connection error (RFC 9113 §5.4.1); streamError a stream error (§5.4.2).
type connError http2.ErrCode

func (e connError) Error() string { return "connection error: " + http2.ErrCode(e).String() }

type streamError struct {
	id   uint32
	code http2.ErrCode
}

func (e streamError) Error() string { return "stream error: " + e.code.String() }

const handshakeTimeout = 10 * time.Second

// serve runs the connection until it ends.
func (c *conn) serve() {
	defer c.finish()
	c.lock()
	c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.s.maxFrameSize()},
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.maxStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.s.maxHeaderListSize()},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamRecvWindow},
	)
	c.fr.WriteWindowUpdate(0, connRecvWindow-65535)
	c.unlock()

	c.nc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil || string(preface[:]) != http2.ClientPreface {
		c.fail(http2.ErrCodeProtocol, "bad client preface")
		return
	}
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.readFailed(err)
		return
	}
	if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
		c.fail(http2.ErrCodeProtocol, "the client's first frame is not SETTINGS")
		return
	}
	c.mu.Lock()
	if !c.closing { // else a GOAWAY came first (Shutdown) and the connection is on its way out
		c.nc.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if c.s.IdleTimeout > 0 {
		c.idle = time.AfterFunc(c.s.IdleTimeout, c.idleExpired)
	}
	for {
		if err := c.process(f); err != nil {
			var se streamError
			if errors.As(err, &se) {
				c.resetStream(se.id, se.code)
			} else {
				var ce connError
				if !errors.As(err, &ce) {
					ce = connError(http2.ErrCodeInternal)
				}
				c.fail(http2.ErrCode(ce), "")
				return
			}
		}
		if (len(c.toStart) > 0 || c.earlyPending.Load()) && !c.frameBuffered() {
			c.startHandlers()
			if c.earlyPending.Load() {
				c.endEarly()
			}
		}
		if f, err = c.fr.ReadFrame(); err != nil {
			if c.readFailed(err) {
				return
			}
		}
	}
}

const earlyResetDelay = 100 * time.Millisecond

// endEarly resets the streams of earlyDone still open with NO_ERROR.
func (c *conn) endEarly() {
	c.lock()
	defer c.unlock()
	c.earlyPending.Store(false)
	for i, st := range c.earlyDone {
		if !st.closed && !c.closing {
			c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
			st.resetSent = true
			c.closeStream(st)
		}
		c.earlyDone[i] = nil
	}
	c.earlyDone = c.earlyDone[:0]
}

// frameBuffered reports whether a whole frame is buffered: the next ReadFrame won't wait.
func (c *conn) frameBuffered() bool {
	n := c.br.Buffered()
	if n < 9 {
		return false
	}
	h, _ := c.br.Peek(9)
	return n >= 9+(int(h[0])<<16|int(h[1])<<8|int(h[2]))
}

// readFailed answers a read error; true when the connection is done.
func (c *conn) readFailed(err error) bool {
	var ce http2.ConnectionError
	var se http2.StreamError
	switch {
	case errors.As(err, &se):
		c.resetStream(se.StreamID, se.Code)
		return false
	case errors.As(err, &ce):
		c.fail(http2.ErrCode(ce), "")
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.fail(http2.ErrCodeFrameSize, "")
	default:
		c.mu.Lock()
		c.closing = true
		c.cond.Broadcast()
		c.mu.Unlock()
	}
	return true
}

// fail ends the connection with GOAWAY and code, and keeps it open a moment longer reading
// nothing, so that the client reads the GOAWAY before it sees the connection close.
func (c *conn) fail(code http2.ErrCode, why string) {
	c.lock()
	if !c.closing {
		if code != http2.ErrCodeNo {
			c.log.Debug("http2: connection error", "remote", c.remote, "code", code.String(), "why", why)
		}
		c.fr.WriteGoAway(c.maxClientID, code, nil)
		c.flushLocked()
		c.closing = true
		c.goAway = true
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	c.linger()
}

// linger reads and drops what the client still sends for up to a second: closing with
// unread bytes would reset the connection, and the client might lose the GOAWAY.
func (c *conn) linger() {
	end := time.Now().Add(time.Second)
	c.nc.SetReadDeadline(end)
	buf := make([]byte, 4<<10)
	for {
		if _, err := c.nc.Read(buf); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				// The reading side is done (the client closed, or the reset limiter
				// refuses more): wait out the rest, unless the client has closed.
				if !errors.Is(err, io.EOF) {
					t := time.NewTimer(time.Until(end))
					<-t.C
				}
			}
			return
		}
	}
}

// finish closes the connection and ends its streams.
func (c *conn) finish() {
	c.mu.Lock()
	c.closing = true
	if c.idle != nil {
		c.idle.Stop()
	}
	for _, st := range c.streams {
		st.cancel()
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.nc.Close()
}

// idleExpired closes a connection that had no stream for the idle timeout.
func (c *conn) idleExpired() {
	c.mu.Lock()
	idle := len(c.streams) == 0 && c.running == 0 && !c.closing
	c.mu.Unlock()
	if !idle {
		return
	}
	c.startGoAway(http2.ErrCodeNo)
}

// startGoAway sends GOAWAY(code) with the last stream the client opened: streams up to it
// finish; the connection closes once none is left.
func (c *conn) startGoAway(code http2.ErrCode) {
	c.lock()
	defer c.unlock()
	if c.goAway || c.closing {
		return
	}
	c.goAway = true
	c.fr.WriteGoAway(c.maxClientID, code, nil)
	c.flushLocked()
	c.checkDrained()
}

// checkDrained closes the connection once a GOAWAY was sent (or received) and no stream or
// handler is left. Under mu.
func (c *conn) checkDrained() {
	if (c.goAway || c.peerGoAway) && len(c.streams) == 0 && c.running == 0 && len(c.queue) == 0 && !c.closing {
		c.closing = true
		c.flushLocked()
		c.cond.Broadcast()
		// The reader sees the connection end. A graceful close: the write side first, so
		// the client reads everything before its end.
		go func() {
			if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			c.nc.SetReadDeadline(time.Now().Add(time.Second))
		}()
	}
}

// process handles one frame (the reader's goroutine).
func (c *conn) process(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.lock()
			c.fr.WritePing(true, f.Data)
			c.unlock()
		}
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.PriorityFrame:
		// Priorities are ignored (RFC 9113 §5.3.2 deprecates them); one on itself is an error.
		if f.StreamDep == f.StreamID {
			return streamError{f.StreamID, http2.ErrCodeProtocol}
		}
	case *http2.GoAwayFrame:
		c.lock()
		c.peerGoAway = true
		c.checkDrained()
		c.unlock()
	case *http2.PushPromiseFrame:
		return connError(http2.ErrCodeProtocol)
	case *http2.ContinuationFrame:
		return connError(http2.ErrCodeProtocol) // the Framer joins valid ones to their HEADERS
	}
	return nil // unknown frame types are ignored (RFC 9113 §5.5)
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		c.mu.Lock()
		c.settingsAcked = true
		c.mu.Unlock()
		return nil
	}
	if err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return connError(ce)
			}
			return connError(http2.ErrCodeProtocol)
		}
		return nil
	}); err != nil {
		return err
	}
	c.lock()
	defer c.unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
		case http2.SettingInitialWindowSize:
			// RFC 9113 §6.9.2: the change applies to every open stream's window, which may
			// go negative; past 2^31-1 it is a FLOW_CONTROL_ERROR.
			delta := int64(s.Val) - c.peerInitWindow
			c.peerInitWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return connError(http2.ErrCodeFlowControl)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.fr.WriteSettingsAck()
	c.cond.Broadcast()
	return nil
}

const maxWindow = 1<<31 - 1

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > maxWindow {
			return connError(http2.ErrCodeFlowControl)
		}
		c.cond.Broadcast()
		return nil
	}
	if f.StreamID > c.maxClientID {
		return connError(http2.ErrCodeProtocol) // idle stream
	}
	st := c.streams[f.StreamID]
	if st == nil {
		return nil // closed
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > maxWindow {
		return streamError{f.StreamID, http2.ErrCodeFlowControl}
	}
	c.cond.Broadcast()
	return nil
}

func (c *conn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID > c.maxClientID {
		return connError(http2.ErrCodeProtocol) // idle stream
	}
	if st := c.streams[f.StreamID]; st != nil {
		st.resetByPeer = true
		c.closeStream(st)
	}
	return nil
}

// resetStream sends RST_STREAM(code) and closes the stream.
func (c *conn) resetStream(id uint32, code http2.ErrCode) {
	c.lock()
	defer c.unlock()
	if c.closing {
		return
	}
	c.fr.WriteRSTStream(id, code)
	if st := c.streams[id]; st != nil {
		st.resetSent = true
		c.closeStream(st)
	}
}

// closeStream forgets st (both sides done, or reset): its window credit goes back to the
// connection, its handler's context ends, and writers waiting on it give up. Under mu.
func (c *conn) closeStream(st *stream) {
	if st.closed {
		return
	}
	st.closed = true
	delete(c.streams, st.id)
	if st.body != nil {
		if n := int64(len(st.body.buf)); n > 0 { // never read: the connection gets it back
			st.body.buf = nil
			c.returnConnWindow(n)
		}
		if st.body.err == nil {
			st.body.err = errStreamClosed
		}
	}
	st.cancel()
	c.cond.Broadcast()
	if len(c.streams) == 0 && c.idle != nil && c.running == 0 {
		c.idle.Reset(c.s.IdleTimeout)
	}
	c.checkDrained()
}

// returnConnWindow gives n consumed bytes back to the client's connection window, in
// WINDOW_UPDATEs of at least a quarter of the window. Under mu.
func (c *conn) returnConnWindow(n int64) {
	c.recvUnacked += n
	if c.recvUnacked >= connRecvWindow/4 && !c.closing {
		c.fr.WriteWindowUpdate(0, uint32(c.recvUnacked))
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
}

func (c *conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	c.lock()
	defer c.unlock()
	if id > c.maxClientID {
		return connError(http2.ErrCodeProtocol) // idle stream
	}
	// The whole frame, padding included, counts against the connection's window (§6.9.1).
	n := int64(f.Length)
	if n > c.recvWindow {
		return connError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	st := c.streams[id]
	if st == nil || st.remoteDone || st.body == nil {
		c.returnConnWindow(n)
		if st != nil && st.resetSent {
			return nil
		}
		return streamError{id, http2.ErrCodeStreamClosed}
	}
	if n > st.recvWindow {
		c.returnConnWindow(n)
		return streamError{id, http2.ErrCodeFlowControl}
	}
	st.recvWindow -= n
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		c.returnConnWindow(pad) // padding is never read
		st.recvUnacked += pad
	}
	b := st.body
	st.gotBytes += int64(len(data))
	if st.declLen >= 0 && (st.gotBytes > st.declLen || f.StreamEnded() && st.gotBytes != st.declLen) {
		c.returnConnWindow(int64(len(data)))
		b.err = errors.New("http2: request body length differs from its Content-Length")
		return streamError{id, http2.ErrCodeProtocol}
	}
	if len(data) > 0 {
		b.buf = append(b.buf, data...)
	}
	if f.StreamEnded() {
		b.err = io.EOF
		c.remoteClosed(st)
	}
	c.cond.Broadcast()
	return nil
}

// remoteClosed records the client's END_STREAM on st. Under mu.
func (c *conn) remoteClosed(st *stream) {
	st.remoteDone = true
	if st.localDone {
		c.closeStream(st)
	}
}
