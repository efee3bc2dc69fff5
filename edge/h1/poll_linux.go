package h1

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An event loop waits, with epoll(7), for the next request on the plain TCP connections parked
// on it, and runs each request that arrives on its own goroutine, inline. That is what makes a
// hit cheap under load: a goroutine per connection is woken by Go's network poller for every
// request and queued behind whatever else the two cores run (the client, on a benchmark
// machine), and measured under wrk the tail of a do-nothing server built that way was 1.5× nginx's; one
// goroutine per core answering every ready connection in turn, as nginx's workers do, was
// 0.6× nginx's.
//
// A request may wait, though — for the origin, for a slow client's socket, for a body still
// arriving — and while the loop's goroutine waits, no other connection of the loop is served.
// So before any wait the connection leaves the loop (conn.leaveLoop): a fresh goroutine takes
// the loop over, from the next ready connection on, and the one that was the loop's carries on
// as that connection's own goroutine, with the deadlines and blocking reads and writes of the
// goroutine-per-connection server, until the connection is idle again and parks once more. The
// waits are the few places that block: a read that finds no bytes (peerReader), a write the
// socket can't take (outWriter.outcome), a handler waiting on its request's context (Watch), a
// refusal's linger and a hand-off to HTTP/2.
type loop struct {
	srv  *Server
	epfd int
	wake int // an eventfd that ends the loop's wait when the server closes

	// gen counts the goroutines that have been the loop: the one whose generation it holds
	// runs it; leaveLoop moves it on to a new one.
	gen atomic.Uint64
	// evs[next:n] are ready events not handled yet: the state a new goroutine takes over.
	evs     []unix.EpollEvent
	n, next int

	mu    sync.Mutex
	conns map[int32]*conn // every connection of the loop, by socket

	closed bool // epfd is closed: nothing may be armed (under mu)

	tick      time.Duration // how often parked connections' timeouts are checked
	lastSweep time.Duration // on the monotonic clock (time.Since(monoBase))
	stopping  atomic.Bool
}

// poller is a server's event loops (Server.Loops).
type poller struct {
	loops []*loop
	next  atomic.Uint32
}

func newPoller(s *Server) (*poller, error) {
	p := &poller{}
	for range s.loops() {
		l, err := newLoop(s)
		if err != nil {
			p.stop()
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	for _, l := range p.loops {
		l.gen.Store(1)
		go l.run(1)
	}
	return p, nil
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	return &loop{srv: s, epfd: epfd, wake: wake, evs: make([]unix.EpollEvent, 128),
		conns: map[int32]*conn{}, tick: sweepTick(s), lastSweep: time.Since(monoBase)}, nil
}

// sweepTick is how often a loop looks for parked connections past their timeout: an eighth
// of the shortest, between 5 ms and a second, so a timeout is kept to within an eighth.
func sweepTick(s *Server) time.Duration {
	t := time.Second
	for _, d := range []time.Duration{s.IdleTimeout, s.FirstRequestTimeout} {
		if d > 0 {
			t = min(t, d/8)
		}
	}
	return max(t, 5*time.Millisecond)
}

// pick chooses the loop a new connection parks on, in turn, passing over a loop that stopped
// on an error (nil when all did: the connection gets a goroutine of its own).
func (p *poller) pick() *loop {
	for range p.loops {
		if l := p.loops[int(p.next.Add(1))%len(p.loops)]; !l.stopping.Load() {
			return l
		}
	}
	return nil
}

// stop ends every loop: each closes its own descriptors when it sees it, so that no wait can
// find an epoll descriptor closed (and its number reused) under it.
func (p *poller) stop() {
	for _, l := range p.loops {
		l.stopping.Store(true)
		unix.Write(l.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}
}

// socketOf returns the descriptor under a plain TCP connection's RawConn.
func socketOf(raw syscall.RawConn) (int32, bool) {
	fd := int32(-1)
	raw.Control(func(s uintptr) { fd = int32(s) })
	return fd, fd >= 0
}

// add makes c one of the loop's connections.
func (l *loop) add(c *conn) {
	l.mu.Lock()
	l.conns[c.fd] = c
	l.mu.Unlock()
}

// park makes c parked and asks for its next readable event (one: EPOLLONESHOT), under mu so
// that nobody claims c (sweep, Server.closeIdle) before it is in the epoll set; an event can't
// come before.
func (l *loop) park(c *conn) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: c.fd}
	op := unix.EPOLL_CTL_MOD
	if !c.registered {
		op = unix.EPOLL_CTL_ADD
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errLoopClosed
	}
	c.parked.Store(true)
	if err := unix.EpollCtl(l.epfd, op, int(c.fd), &ev); err != nil {
		c.parked.Store(false)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	c.registered = true
	return nil
}

// claim takes a parked c off the loop for its caller to close, and reports whether it was
// parked.
func (l *loop) claim(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return c.parked.CompareAndSwap(true, false)
}

var errLoopClosed = errors.New("event loop closed")

// remove forgets c, while its socket is still open: once it closes, its number may be a new
// connection's, whose entry and registration this must not touch (so nothing is done for a
// c removed before).
func (l *loop) remove(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[c.fd] != c {
		return
	}
	delete(l.conns, c.fd)
	if c.registered && !l.closed {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	}
	c.registered = false
}

// run is the loop, on the goroutine of generation gen: it returns when a request it ran left
// the loop to a newer goroutine, or when the server closes.
func (l *loop) run(gen uint64) {
	for {
		if l.next >= l.n {
			if l.stopping.Load() {
				l.close()
				return
			}
			l.sweep()
			n, err := l.poll()
			if n == 0 && err == nil {
				n, err = unix.EpollWait(l.epfd, l.evs, int(l.tick/time.Millisecond))
			}
			if err != nil && !errors.Is(err, unix.EINTR) {
				l.srv.log().Error("event loop wait failed; its connections are closed", "err", err)
				l.stopping.Store(true)
				n = 0
			}
			l.n, l.next = max(n, 0), 0
			continue
		}
		fd := l.evs[l.next].Fd
		l.next++
		if fd == int32(l.wake) {
			continue
		}
		l.mu.Lock()
		c := l.conns[fd]
		l.mu.Unlock()
		// A stale event (a connection gone, its number given to a new one) finds the new one
		// either running elsewhere (the claim fails) or parked, which a read that finds nothing
		// then hands to a goroutine of its own: no harm either way.
		if c == nil || !c.parked.CompareAndSwap(true, false) {
			continue
		}
		c.onLoop.Store(gen)
		c.resume()
		if l.gen.Load() != gen {
			return // a request left the loop: a newer goroutine runs it from l.next
		}
	}
}

// leave hands the loop from generation gen to a new goroutine (if gen still runs it).
func (l *loop) leave(gen uint64) {
	if l.gen.CompareAndSwap(gen, gen+1) {
		go l.run(gen + 1)
	}
}

// sweep closes the parked connections whose idle (or first request) timeout has passed.
func (l *loop) sweep() {
	now := time.Since(monoBase)
	if now-l.lastSweep < l.tick {
		return
	}
	l.lastSweep = now
	var expired []*conn
	l.mu.Lock()
	for _, c := range l.conns {
		if until := time.Duration(c.parkedUntil.Load()); until != 0 && now >= until && c.parked.CompareAndSwap(true, false) {
			expired = append(expired, c)
		}
	}
	l.mu.Unlock()
	for _, c := range expired {
		if c.firstPending && !l.srv.shuttingDown() {
			l.srv.limitHit(LimitFirstRequest)
		}
		c.close()
	}
}

// close ends a stopped loop: its parked connections closed, its descriptors released.
func (l *loop) close() {
	var parked []*conn
	l.mu.Lock()
	for _, c := range l.conns {
		if c.parked.CompareAndSwap(true, false) {
			parked = append(parked, c)
		}
	}
	l.mu.Unlock()
	for _, c := range parked {
		c.close()
	}
	l.mu.Lock()
	l.closed = true
	unix.Close(l.epfd)
	unix.Close(l.wake)
	l.mu.Unlock()
}

// poll takes the ready events without waiting and without telling Go's scheduler of a system
// call (which would hand the loop's processor to other work and make the loop wait for one
// when it returns): under load there usually are some.
func (l *loop) poll() (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.evs[0])), uintptr(len(l.evs)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
