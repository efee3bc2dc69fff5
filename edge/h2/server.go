// Package h2 is the edge's HTTP/2 server (RFC 9113): one connection loop per client that reads
// frames with golang.org/x/net/http2's Framer and HPACK decoder, runs each request's
// http.Handler on a goroutine of its own, and lets that goroutine write its response frames
// straight into the connection's buffered writer, within the flow-control windows, under
// one lock.
//
// Why not x/net/http2's server: on a cache hit of a small object the edge's own work is a
// map lookup and one copy, and x/net spends several times that around it. Each request there
// crosses goroutines at every step — the frame reader hands each frame to the serve loop over
// a channel, the handler hands its HEADERS and each DATA write to the serve loop and waits
// for the write scheduler's answer on another — so a 1 KB hit costs half a dozen goroutine
// switches, a context with its own goroutine-safe cancellation, and HPACK encoding through a
// fresh header map. On two cores that caps HTTP/2 below half of what nginx answers (issue 19).
// Here a hit is one goroutine start and one lock for its HEADERS and DATA, frames of streams
// answered together leave in one TLS write, and a stored object's header fields can go out
// HPACK-encoded once per object (HitWriter). The pieces that are easy to get wrong and are
// well kept upstream — frame parsing and validation, HPACK, header block limits and
// CONTINUATION bounds — are x/net's.
//
// Fairness: a response body is written one frame per turn at the connection's lock, so a
// large body interleaves with every other stream's frames (no stream writes a whole object
// before the next one's frame), and each connection is its own goroutines, scheduled by Go.
package h2

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Server serves HTTP/2 connections handed to ServeConn.
type Server struct {
	Handler http.Handler
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS (default 250), and the
	// handlers a connection runs at once: streams beyond it wait for a handler, and a client
	// that makes more than 4× that many wait (resetting streams whose handlers run on) gets
	// GOAWAY ENHANCE_YOUR_CALM.
	MaxConcurrentStreams uint32
	// MaxReadFrameSize is SETTINGS_MAX_FRAME_SIZE (default 16 KiB).
	MaxReadFrameSize uint32
	// MaxHeaderBytes bounds a request's header list (SETTINGS_MAX_HEADER_LIST_SIZE is it plus
	// HPACK's 32 bytes for ten fields, as x/net pads it): a longer list gets 431 without the
	// handler; a single field longer than the whole list is a COMPRESSION_ERROR. Default 1 MiB.
	MaxHeaderBytes int
	// IdleTimeout closes a connection with no open stream for this long (GOAWAY NO_ERROR).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the connection: a client that stops reading for this
	// long loses its connection (default 30s). It bounds as well a stream's wait for
	// flow-control window: a client that opens no window on a stream for this long has the
	// stream reset (CANCEL), however alive its connection.
	WriteTimeout time.Duration
	// OnWriteTimeout, when set, is called each time WriteTimeout ends a connection or a
	// stream.
	OnWriteTimeout func()
	// ResponseFields are added to every final response (Alt-Svc), lower-case names.
	ResponseFields [][2]string
	// BaseContext is the parent of every request's context (for values); nil means Background.
	BaseContext context.Context
	Log         *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	shutdown bool

	// work hands streams to idle handler goroutines: a goroutine that ran a handler waits
	// for the next one for workerIdle, keeping the stack the edge's handler grew (a new
	// goroutine would grow it again, copying, on every request).
	workOnce sync.Once
	work     chan *stream
}

const workerIdle = 10 * time.Second

// dispatch runs st's handler on an idle handler goroutine, or a new one.
func (s *Server) dispatch(st *stream) {
	s.workOnce.Do(func() { s.work = make(chan *stream) })
	select {
	case s.work <- st:
	default:
		go s.worker(st)
	}
}

func (s *Server) worker(st *stream) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		st.run()
		t.Reset(workerIdle)
		select {
		case st = <-s.work:
		case <-t.C:
			return
		}
	}
}

const (
	defaultMaxStreams     = 250
	defaultMaxHeaderBytes = 1 << 20
	defaultWriteTimeout   = 30 * time.Second
	// Request bodies: the window a stream and the connection open to the client.
	streamRecvWindow = 1 << 20
	connRecvWindow   = 1 << 20
)

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return defaultMaxStreams
	}
	return s.MaxConcurrentStreams
}

func (s *Server) maxFrameSize() uint32 {
	if s.MaxReadFrameSize < 16<<10 || s.MaxReadFrameSize > 1<<24-1 {
		return 16 << 10
	}
	return s.MaxReadFrameSize
}

// maxHeaderListSize is what SETTINGS_MAX_HEADER_LIST_SIZE advertises.
func (s *Server) maxHeaderListSize() uint32 {
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = defaultMaxHeaderBytes
	}
	return uint32(n + 10*32)
}

func (s *Server) writeTimedOut() {
	if s.OnWriteTimeout != nil {
		s.OnWriteTimeout()
	}
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout <= 0 {
		return defaultWriteTimeout
	}
	return s.WriteTimeout
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// ServeConn serves HTTP/2 on nc, whose first bytes are the client preface, until the
// connection ends; nc is closed then. A *tls.Conn (or a net.Conn with a
// ConnectionState method) gives its requests their TLS state.
func (s *Server) ServeConn(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	shut := s.shutdown
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	if shut {
		c.startGoAway(http2.ErrCodeNo)
	}
	c.serve()
}

// Shutdown sends GOAWAY (NO_ERROR) on every connection, and on every connection served from
// now on: streams already begun finish, then each connection closes. It doesn't wait.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.startGoAway(http2.ErrCodeNo)
	}
}
