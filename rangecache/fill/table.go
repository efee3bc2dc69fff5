package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Head is a response's status and header, known before its body.
type Head struct {
	Status int
	Header http.Header
	// Shareable says whether other clients may be given this response. When it is false
	// (private, Set-Cookie, a Vary the waiter doesn't match…), only the client the fill was
	// started for may read it; everyone else must go to the origin on their own.
	Shareable bool
	// Stored says whether the response is being stored (a shareable response may also be
	// merely relayed to the collapsed requests, like a short server error).
	Stored bool
	// Direct carries the origin's body to the leader when the response is not shareable (it
	// is then not copied into a Body at all); the leader must close it.
	Direct io.ReadCloser
	// Vary and VaryKey describe a shareable response's secondary key (RFC 9111 §4.1): a
	// follower whose own request gives another key must not be served this response.
	Vary    []string
	VaryKey string
	// Reason says why the response is not shareable (a policy reason), for Cache-Status.
	Reason string
	// Rejoin, on a response that is not shareable, says that it was kept from the others by
	// what its leader's own request carried (credentials): the followers should not each go
	// to the origin alone but fill again together, and the fill takes no one new.
	Rejoin bool
}

// ErrNotShareable tells a waiter that the response it waited for was meant for another client.
var ErrNotShareable = errors.New("response is not shareable")

// ErrHeadTimeout tells a waiter that the origin's head did not arrive in the time it was
// willing to wait.
var ErrHeadTimeout = errors.New("timed out waiting for the origin's response head")

// Fill is one origin fetch that any number of clients can follow.
type Fill struct {
	key     string
	ready   chan struct{} // closed once head (or err) is set
	head    Head
	err     error
	body    *Body
	waiters atomic.Int64
	joined  chan struct{} // closed by the first follower's Join
	joinOne sync.Once

	// refs counts the requests holding the fill (leader and followers, from Join to Done);
	// the body's backing store (an open file) is released once they are all done and the
	// fill has ended.
	mu       sync.Mutex
	refs     int
	ended    bool
	released bool
	claimed  bool // the leader took Head.Direct

	// hold keeps the fill joinable for a while after its run returned (HoldFor): an
	// origin error is then shared with the next wave of requests too, instead of each
	// wave sending the failing origin a request of its own.
	hold atomic.Int64 // a time.Duration
}

// HoldFor keeps the fill in the table, joinable, for d after its run returns, even if it
// failed: requests arriving meanwhile get its answer (an error, a relayed error response)
// instead of asking the origin again. Call it from the fill's run.
func (f *Fill) HoldFor(d time.Duration) { f.hold.Store(int64(d)) }

// joinable reports whether a new request may join the fill: a failed one only while held,
// and not one whose response its leader's request kept to itself (Head.Rejoin).
func (f *Fill) joinable() bool {
	select {
	case <-f.ready:
		if f.err == nil && !f.head.Shareable && f.head.Rejoin {
			return false
		}
	default:
	}
	return !f.failed() || f.hold.Load() > 0
}

// Done tells the fill that one request that joined it no longer needs its body.
func (f *Fill) Done() {
	f.mu.Lock()
	f.refs--
	release := f.refs <= 0 && f.ended && !f.released
	f.released = f.released || release
	f.mu.Unlock()
	if release {
		f.releaseBody()
	}
}

func (f *Fill) end() {
	f.mu.Lock()
	f.ended = true
	release := f.refs <= 0 && !f.released
	f.released = f.released || release
	f.mu.Unlock()
	if release {
		f.releaseBody()
	}
}

func (f *Fill) releaseBody() {
	select {
	case <-f.ready:
		if f.body != nil {
			f.body.Release()
		}
		f.mu.Lock()
		orphan := f.head.Direct != nil && !f.claimed
		f.mu.Unlock()
		if orphan {
			// The leader left before taking the origin's body: close it, or its
			// connection leaks.
			f.head.Direct.Close()
		}
	default:
	}
}

// Holders is how many requests hold the fill: joined it and have not called Done yet.
func (f *Fill) Holders() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refs
}

// Key is the cache key the fill is for.
func (f *Fill) Key() string { return f.key }

// Waiters is how many clients joined a fill someone else started (for Cache-Status
// "collapsed" and metrics).
func (f *Fill) Waiters() int64 { return f.waiters.Load() }

// Joined is closed once a request other than the one that started the fill has joined it.
func (f *Fill) Joined() <-chan struct{} { return f.joined }

// SetHead publishes the response head and the body the fill will write. Call it once.
func (f *Fill) SetHead(h Head, body *Body) {
	f.head, f.body = h, body
	close(f.ready)
}

// Fail ends a fill that has no response at all (origin down, timeout before the head).
func (f *Fill) Fail(err error) {
	f.err = err
	close(f.ready)
}

// Head waits for the response head. Followers (leader == false) get ErrNotShareable for a
// response that isn't theirs, and ErrHeadTimeout after maxWait so that a stuck origin
// cannot hold them forever; the caller falls back to its own origin request or a 504.
func (f *Fill) Head(ctx context.Context, leader bool, maxWait time.Duration) (Head, *Body, error) {
	var timeout <-chan time.Time
	if maxWait > 0 {
		t := time.NewTimer(maxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		return Head{}, nil, ctx.Err()
	case <-timeout:
		return Head{}, nil, ErrHeadTimeout
	}
	if f.err != nil {
		return Head{}, nil, f.err
	}
	if !leader && !f.head.Shareable {
		// Only the reason is told, so the follower can pick its own way to the content.
		return Head{Status: f.head.Status, Reason: f.head.Reason, Rejoin: f.head.Rejoin}, nil, ErrNotShareable
	}
	if leader && f.head.Direct != nil {
		f.mu.Lock()
		f.claimed = true
		f.mu.Unlock()
	}
	return f.head, f.body, nil
}

// failed reports whether the fill ended without a usable response: it failed before its
// head, or its body was aborted. Such a fill may linger in the table for a moment after its
// clients saw the error; a new request must start afresh, not inherit the failure.
func (f *Fill) failed() bool {
	select {
	case <-f.ready:
	default:
		return false
	}
	if f.err != nil {
		return true
	}
	if f.body == nil {
		return false
	}
	_, _, err := f.body.State()
	return err != nil
}

// Table coalesces concurrent misses: one Fill per key at a time.
type Table struct {
	mu    sync.Mutex
	fills map[string]*Fill
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{fills: map[string]*Fill{}} }

// Join returns the fill in progress for key or starts one; the caller must call f.Done when
// it no longer reads the fill. A new fill runs run in its own
// goroutine on a context that no client can cancel (one client's disconnect must not kill
// everyone's fill); run must call SetHead or Fail, then write and Finish the body. The key
// leaves the table when run returns, so run should store the object before returning: a
// request arriving in between then finds it in the cache instead of starting a second fetch.
func (t *Table) Join(ctx context.Context, key string, run func(ctx context.Context, f *Fill)) (f *Fill, leader bool) {
	t.mu.Lock()
	if f, ok := t.fills[key]; ok && f.joinable() {
		f.mu.Lock()
		f.refs++
		f.mu.Unlock()
		t.mu.Unlock()
		f.waiters.Add(1)
		f.joinOne.Do(func() { close(f.joined) })
		return f, false
	}
	f = &Fill{key: key, ready: make(chan struct{}), joined: make(chan struct{}), refs: 1}
	t.fills[key] = f
	t.mu.Unlock()

	go func() {
		defer t.retire(key, f)
		defer func() {
			// A run that panicked or forgot its duties must not leave waiters hanging, and a
			// body it did not finish is aborted, never passed off as complete.
			why := errors.New("fill ended without finishing")
			if r := recover(); r != nil {
				why = fmt.Errorf("fill panicked: %v", r)
			}
			select {
			case <-f.ready:
				if f.body != nil {
					if _, done, _ := f.body.State(); !done {
						f.body.Finish(why)
					}
				}
			default:
				f.Fail(why)
			}
		}()
		run(context.WithoutCancel(ctx), f)
	}()
	return f, true
}

// Withdraw takes f out of the table if no request holds it, and reports whether it did: once
// withdrawn, no request can join it any more (a later Join for its key starts a new fill), so
// whoever drives it may give it up without failing anyone.
func (t *Table) Withdraw(f *Fill) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refs > 0 {
		return false
	}
	if t.fills[f.key] == f {
		delete(t.fills, f.key)
	}
	return true
}

// Running reports whether a fill for key is in progress (and has not failed): a request
// joining now would share it. A prefetch that finds one need not fetch.
func (t *Table) Running(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.fills[key]
	return ok && !f.failed()
}

// Len is the number of fills in progress.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.fills)
}

// retire takes a fill whose run returned out of the table and ends it: at once, or when its
// hold is over.
func (t *Table) retire(key string, f *Fill) {
	end := func() {
		t.remove(key, f)
		f.end()
	}
	if d := time.Duration(f.hold.Load()); d > 0 {
		time.AfterFunc(d, end)
		return
	}
	end()
}

func (t *Table) remove(key string, f *Fill) {
	t.mu.Lock()
	if t.fills[key] == f {
		delete(t.fills, key)
	}
	t.mu.Unlock()
}
