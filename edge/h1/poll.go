package h1

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// The connection's side of the event loops (poll_linux.go): parking between requests,
// resuming on the loop's goroutine, and leaving the loop before any wait.

// pollable prepares a new plain TCP connection to park on one of p's loops, and reports
// whether it can (a TLS connection can't: it keeps a goroutine of its own).
func (c *conn) pollable(ctx context.Context, p *poller) bool {
	if c.out.raw == nil { // TLS: only plain TCP connections park
		return false
	}
	fd, ok := socketOf(c.out.raw)
	l := p.pick()
	if !ok || l == nil {
		return false
	}
	c.fd, c.ctx, c.loop = fd, ctx, l
	c.readFn = c.readStep
	c.out.waiting = c.leaveLoop
	c.loop.add(c)
	return true
}

// park gives the idle connection to its loop until its next request's first byte arrives, and
// reports whether it did (false: the loop is closed, and the connection must close). Nothing
// may touch c once it is parked: the loop may already be serving it on another goroutine.
func (c *conn) park(first bool) bool {
	d := c.srv.IdleTimeout
	if first && c.srv.FirstRequestTimeout > 0 {
		d = c.srv.FirstRequestTimeout
	}
	var until time.Duration
	if d > 0 {
		until = time.Since(monoBase) + d
	}
	c.parkedUntil.Store(int64(until))
	c.firstPending = first
	c.onLoop.Store(0)
	if err := c.loop.park(c); err != nil {
		if err != errLoopClosed {
			c.srv.log().Warn("can't park a connection on its event loop; closing it", "remote", c.remoteAddr, "err", err)
		}
		return false
	}
	return true
}

// claim takes c off its loop if it is parked there, for the caller to close.
func (c *conn) claim() bool { return c.loop != nil && c.loop.claim(c) }

// resume serves a parked connection whose next request arrived, on the loop's goroutine,
// until the connection parks again or closes.
func (c *conn) resume() {
	parked := false
	defer func() { c.end(recover(), parked) }()
	parked = c.requests(c.ctx, c.firstPending, true)
}

// leaveLoop is called before anything that may wait: when the connection is being served
// on its loop's goroutine, a new goroutine takes over the loop and this one carries on as
// the connection's own (see loop). Otherwise it does nothing.
func (c *conn) leaveLoop() {
	if gen := c.onLoop.Swap(0); gen != 0 {
		c.loop.leave(gen)
	}
}

// readNow reads what the socket holds without waiting, for a connection served on its loop's
// goroutine; ok is false when it holds nothing yet.
func (c *conn) readNow(p []byte) (n int, err error, ok bool) {
	c.rbuf, c.rn, c.rerr = p, 0, nil
	if err := c.out.raw.Read(c.readFn); err != nil {
		c.rbuf = nil
		return 0, err, true // closed, or a deadline already past
	}
	c.rbuf = nil
	switch {
	case c.rerr == syscall.EAGAIN:
		return 0, nil, false
	case c.rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Addr: c.rwc.LocalAddr(), Err: os.NewSyscallError("read", c.rerr)}, true
	case c.rn == 0:
		return 0, io.EOF, true
	}
	return c.rn, nil, true
}

// readStep is readNow's one read(2), never asking to wait.
func (c *conn) readStep(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), c.rbuf)
		if err == syscall.EINTR {
			continue
		}
		c.rn, c.rerr = max(n, 0), err
		return true
	}
}
