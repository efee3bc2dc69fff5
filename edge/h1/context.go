package h1

import (
	"context"
	"net/url"
	"sync"
	"time"
)

// reqAlloc is what a request allocates besides its *http.Request and its header: its context
// and its URL, in one allocation, since both live as long as the request.
type reqAlloc struct {
	ctx reqContext
	url url.URL
}

// reqContext is a request's context. It is cancelled when the handler returns, when the server
// closes, and — as with net/http — when the client goes away while the handler runs.
//
// Noticing that the client went away takes a read on the connection in the background, which
// costs a goroutine and a system call per request. net/http pays that on every request; here
// it is started only when something actually waits on Done (a request waiting for an origin
// fill, say), so a cache hit served straight from memory never pays it.
type reqContext struct {
	parent context.Context
	c      *conn

	mu   sync.Mutex
	done chan struct{}
	err  error
}

func (x *reqContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (x *reqContext) Value(key any) any           { return x.parent.Value(key) }

func (x *reqContext) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		} else {
			x.c.watchPeer(x)
		}
	}
	return x.done
}

func (x *reqContext) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// cancel ends the context with err (context.Canceled), once.
func (x *reqContext) cancel() {
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

func (x *reqContext) String() string { return "h1.requestContext" }
