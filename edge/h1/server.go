// Package h1 is the edge's HTTP/1.1 server (RFC 9112): strict request parsing in front of a
// shared cache, and a request loop lean enough that a cache hit costs little more than its
// two system calls.
//
// Why not net/http's server: on this workload — small cached objects, keep-alive clients — it
// spends more than the cache itself per request (a background read goroutine and its system
// call, several contexts, header canonicalisation through textproto), which caps a 2-core
// machine below nginx. And it answers a request carrying both Content-Length and
// Transfer-Encoding by dropping Content-Length and forwarding it, where a cache shared by many
// clients should refuse the smuggling shape outright (RFC 9112 §6.3 allows either).
//
// Between requests a plain TCP connection parks on an event loop (poll_linux.go) rather than
// in a goroutine of its own: a goroutine per connection is woken through Go's scheduler for
// every request, and on a machine the client shares that put the 1 KB hits' p99 above nginx's
// whatever the handler did. A request that must wait leaves the loop first (poll.go).
//
// Handlers are ordinary http.Handlers and see requests shaped as net/http shapes them, so the
// same handler also serves HTTP/2 and HTTP/3 through their own servers.
package h1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.x on the listeners given to Serve.
type Server struct {
	Handler http.Handler
	// MaxHeaderBytes bounds the request line and header section together (default 64 KiB):
	// beyond it the request line gets 414 and the header section 431.
	MaxHeaderBytes int
	// ReadHeaderTimeout is how long a client may take to send a request's head once its first
	// byte arrived; IdleTimeout how long a keep-alive connection may wait for the next request.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// FirstRequestTimeout is how long a new connection may wait before its first request's
	// first byte (0: IdleTimeout). Shorter than IdleTimeout: a connection that never sent
	// anything has earned no keep-alive patience, and holding it is what a slowloris wants.
	FirstRequestTimeout time.Duration
	// BodyIdleTimeout bounds the wait for each read of a request body, BodyTimeout the whole
	// body from the end of its head (0: no bound). A read past either fails with
	// ErrBodyTimeout and the connection closes after the response.
	BodyIdleTimeout time.Duration
	BodyTimeout     time.Duration
	// WriteTimeout is how long a write to the client may go without the client taking a byte
	// (0: no bound): past it the write fails and the connection closes. A client that stops
	// reading holds its connection and the response's buffers no longer than that, however
	// long the body; a slow but steady one gets the whole body.
	WriteTimeout time.Duration
	// MaxConns bounds the open client connections (0: no bound). A connection accepted beyond
	// it is closed at once (see Serve).
	MaxConns int
	// OnLimit, when set, is called each time a connection is cut by one of the limits above:
	// with LimitConns, LimitFirstRequest or LimitWrite (a body timeout surfaces as ErrBodyTimeout to the
	// handler, which counts it).
	OnLimit func(limit string)
	Log     *slog.Logger
	// BaseContext is the parent of every request's context (for values); nil means Background.
	BaseContext context.Context
	// NextProto serves the connections that are not HTTP/1.x, by protocol name: a TLS
	// connection whose ALPN negotiated a listed protocol (RFC 7301; "h2"), and, under "h2c",
	// a cleartext connection that opens with the HTTP/2 client preface (RFC 9113 §3.3, prior
	// knowledge), which the connection given then replays. The function owns the connection
	// until it returns (the server closes it then); Shutdown waits for it like for any
	// connection but can't tell it to finish: whoever serves it must (an HTTP/2 GOAWAY), and
	// Close closes it. Like net/http's TLSNextProto, without its *http.Server.
	NextProto map[string]func(net.Conn)
	// ResponseFields are header field lines in wire form ("Name: value" CRLF each) that
	// every final response carries after the handler's fields: one precomputed write, for a
	// field all responses share (Alt-Svc, RFC 7838 §3). The handler must not set them too.
	ResponseFields []byte
	// GoroutinePerConn serves every connection on a goroutine of its own throughout, as
	// net/http does. By default (on Linux) a plain TCP connection parks between requests on
	// one of a few event loops, which run the requests that don't wait (poll_linux.go). A
	// handler run by a loop leaves it when it reads a body not yet arrived, writes more than
	// the socket takes, or asks for its request context's Done channel — so one that waits on
	// anything else (a channel, a sleep, a lock held long) must ask for Done first, or it
	// holds the loop's other connections meanwhile.
	GoroutinePerConn bool
	// Loops is how many event loops (0: GOMAXPROCS when Serve is first called).
	Loops int

	mu      sync.Mutex
	poller  *poller // the event loops, made by the first Serve (nil: none)
	pollErr error   // why there are none
	// turns bounds the connections copying a large body (bulkWrite or more) into their
	// sockets at once to one per loop (per CPU; GOMAXPROCS without loops): each write or
	// sendfile of such a body holds a turn for its system call. With more Ps than CPUs (see
	// edge.SetGoProcs) as many writers as Ps ran at once, and the client sharing the machine
	// got its CPU later: 4 MB hits under wrk (-c64, six rounds) had a p99 of 112-225 ms
	// (median 152) without turns, 109-176 ms (median 125) with one per CPU, at the same
	// rate; nginx's workers, one per core, give the same shape.
	turns     chan struct{}
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	done      chan struct{} // closed when the last connection is gone after closing
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return 64 << 10
}

// loops is Loops, or GOMAXPROCS when unset: the number of event loops, and of turns.
func (s *Server) loops() int {
	if s.Loops > 0 {
		return s.Loops
	}
	return runtime.GOMAXPROCS(0)
}

func (s *Server) shuttingDown() bool { return s.closing.Load() }

// Serve accepts connections on ln until Shutdown or Close, then returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	if s.poller == nil && s.pollErr == nil && !s.GoroutinePerConn {
		if s.poller, s.pollErr = newPoller(s); s.pollErr != nil {
			s.log().Warn("serving a goroutine per connection: no event loops", "err", s.pollErr)
		}
	}
	if s.turns == nil {
		s.turns = make(chan struct{}, s.loops())
	}
	p := s.poller
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	ctx := s.BaseContext
	if ctx == nil {
		ctx = context.Background()
	}
	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of file descriptors and the like: wait rather than spin (net/http does too).
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log().Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(rwc)
		switch s.track(c) {
		case trackClosing:
			rwc.Close()
			return http.ErrServerClosed
		case trackFull:
			s.limitHit(LimitConns)
			rwc.Close()
			continue
		}
		if p != nil && c.pollable(ctx, p) {
			if !c.park(true) {
				c.close()
			}
			continue
		}
		go c.serve(ctx)
	}
}

// Names given to OnLimit.
const (
	LimitConns        = "client_connections"
	LimitFirstRequest = "first_request_timeout"
	LimitWrite        = "client_write_timeout"
)

func (s *Server) limitHit(limit string) {
	if s.OnLimit != nil {
		s.OnLimit(limit)
	}
}

type trackResult int

const (
	tracked trackResult = iota
	trackClosing
	trackFull
)

// track registers a new connection, unless the server is closing or at MaxConns. Beyond
// MaxConns the connection is closed at once rather than left in the kernel's accept backlog:
// a client in the backlog sees a connection that was established and then silence until its
// own timeout, where a close tells it (or the balancer in front) right away to retry
// elsewhere, and the refusal is counted. The cost is an accept and a close per refused
// connection, which is far less than serving it.
func (s *Server) track(c *conn) trackResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing.Load():
		return trackClosing
	case s.MaxConns > 0 && len(s.conns) >= s.MaxConns:
		return trackFull
	}
	s.conns[c] = struct{}{}
	return tracked
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if len(s.conns) == 0 && s.done != nil {
		close(s.done)
		s.done = nil
	}
}

// Shutdown stops accepting, closes idle connections, lets active requests finish (their
// responses carry Connection: close), and returns when every connection is gone or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	done := s.beginClose()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	var parked []*conn
	for c := range s.conns {
		if c.claim() {
			parked = append(parked, c)
			continue
		}
		c.rwc.Close()
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.close()
	}
	return nil
}

// beginClose marks the server closing, closes its listeners and returns a channel closed
// when no connection is left.
func (s *Server) beginClose() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	if s.poller != nil {
		s.poller.stop() // each loop closes its parked connections
	}
	done := make(chan struct{})
	if len(s.conns) == 0 {
		close(done)
	} else if s.done == nil {
		s.done = done
	} else {
		done = s.done
	}
	return done
}

// closeIdle wakes connections waiting for a request; their loop sees the server closing. A
// request whose first byte races with this is cut off, which a client retries safely since
// nothing of it was processed.
func (s *Server) closeIdle() {
	s.mu.Lock()
	var parked []*conn
	for c := range s.conns {
		if c.claim() {
			parked = append(parked, c)
		} else if c.state.Load() == stateIdle {
			c.rwc.SetReadDeadline(aLongTimeAgo)
		}
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.close()
	}
}

var errTooManyFiles = syscall.EMFILE
