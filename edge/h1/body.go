package h1

import (
	"errors"
	"io"
	"net/http/httputil"
	"sync"
	"time"
)

// body is a request body read straight from the connection: Content-Length bytes, or a chunked
// body (RFC 9112 §7.1) with its trailer section, which is read and dropped.
type body struct {
	c         *conn
	remaining int64     // Content-Length bytes still to read
	chunked   io.Reader // the chunked decoder, when chunked
	continue_ bool      // 100 Continue still owed (RFC 9110 §10.1.1)
	expires   time.Time // when the whole body must have arrived (zero: never; Server.BodyTimeout)

	mu     sync.Mutex
	eof    bool // the whole body was read: the connection is positioned at the next request
	closed bool
	err    error
}

var errBodyClosed = errors.New("h1: read on closed request body")

// ErrBodyTimeout is the error of a request body read that waited longer than the server's
// BodyIdleTimeout, or ran past its BodyTimeout. It is a net.Error whose Timeout is true.
var ErrBodyTimeout error = bodyTimeout{}

type bodyTimeout struct{}

func (bodyTimeout) Error() string   { return "h1: request body timeout" }
func (bodyTimeout) Timeout() bool   { return true }
func (bodyTimeout) Temporary() bool { return false }

// arm sets the connection's read deadline for the next read of the body: the idle timeout
// from now, or the body's own end if that comes first. Without it, a client that declared a
// body and sent none of it would hold the connection — and the origin connection the
// handler streams it to — for ever.
func (b *body) arm(idle time.Duration) {
	var d time.Time
	if idle > 0 {
		d = time.Now().Add(idle)
	}
	if !b.expires.IsZero() && (d.IsZero() || b.expires.Before(d)) {
		d = b.expires
	}
	if !d.Equal(b.c.deadline) {
		b.c.setReadDeadline(d)
	}
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, errBodyClosed
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	}
	if b.continue_ {
		// The client waits for this before it sends the body; a handler that never reads the
		// body never triggers it, and the client then sends nothing it would have to discard.
		b.continue_ = false
		if err := b.c.writeContinue(); err != nil {
			b.err = err
			return 0, err
		}
	}
	b.arm(b.c.srv.BodyIdleTimeout)
	var n int
	var err error
	if b.chunked != nil {
		n, err = b.chunked.Read(p)
		if err == io.EOF {
			if terr := b.c.skipTrailers(); terr != nil {
				err = terr
			}
		}
	} else {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = b.c.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			err = io.EOF
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case isTimeout(err):
		err = ErrBodyTimeout
		b.err = err
	case err != nil:
		b.err = err
	}
	return n, err
}

// failed reports whether a read of the body failed (b may be nil: no body).
func (b *body) failed() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil
}

// Close stops the handler's reads; the connection decides later whether the unread rest can be
// discarded or the connection must close.
func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// drain reads and drops what the handler left unread, up to limit bytes, and reports whether the
// connection is positioned at the next request afterwards.
func (b *body) drain(limit int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return true
	}
	if b.err != nil || b.continue_ {
		// Continue was never sent: the client may or may not send the body; the framing is
		// unknowable, so the connection closes (as RFC 9110 §10.1.1 lets a server do).
		return false
	}
	// The rest may have arrived while the handler ran: give it the idle timeout to be read.
	b.expires = time.Time{}
	b.arm(b.c.srv.BodyIdleTimeout)
	var r io.Reader
	if b.chunked != nil {
		r = b.chunked
	} else {
		if b.remaining > limit {
			return false
		}
		r = io.LimitReader(b.c.br, b.remaining)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, limit+1))
	if err != nil || n > limit {
		return false
	}
	if b.chunked != nil {
		return b.c.skipTrailers() == nil
	}
	return n == b.remaining
}

func newBody(c *conn, h *head) *body {
	b := &body{c: c, remaining: h.contentLength, continue_: h.expectContinue}
	if d := c.srv.BodyTimeout; d > 0 {
		b.expires = time.Now().Add(d)
	}
	if h.chunked {
		b.remaining = 0
		b.chunked = httputil.NewChunkedReader(c.br)
	}
	return b
}
