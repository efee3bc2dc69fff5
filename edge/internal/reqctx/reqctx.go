// Package reqctx is the request context of the edge's own HTTP servers, edge/h1 and edge/h2:
// cancelled when the handler returns, when the server closes, and when the client goes away
// (a reset stream; a closed HTTP/1.1 connection, once something waits).
//
// Its Done channel is made only when asked for. net/http pays for a cancellable context and,
// for HTTP/1.1, a background read per request; here a request that nothing waits on — a
// cache hit served from memory — pays for neither, and edge/h1 starts its background read
// (Watcher) only when a handler first waits on Done.
package reqctx

import (
	"context"
	"sync"
	"time"
)

// A Watcher is told when a live context's Done channel is first asked for, with the
// context's lock held: it must not call back into the context before returning (Cancel from
// another goroutine is fine).
type Watcher interface {
	Watch(*Context)
}

// Context is a request's context.Context. Its zero value is not usable: Init it.
type Context struct {
	parent  context.Context
	watcher Watcher

	mu   sync.Mutex
	done chan struct{}
	err  error
}

// Init makes x a live context under parent (for values), watched by w (nil: none).
func (x *Context) Init(parent context.Context, w Watcher) {
	*x = Context{parent: parent, watcher: w}
}

func (x *Context) Deadline() (time.Time, bool) { return time.Time{}, false }
func (x *Context) Value(key any) any           { return x.parent.Value(key) }
func (x *Context) String() string              { return "reqctx.Context" }

func (x *Context) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		} else if x.watcher != nil {
			x.watcher.Watch(x)
		}
	}
	return x.done
}

func (x *Context) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// Cancel ends the context (context.Canceled), once.
func (x *Context) Cancel() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		return
	}
	x.err = context.Canceled
	if x.done != nil {
		close(x.done)
	}
}
