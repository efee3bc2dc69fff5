package rangecache

import (
	"strconv"
	"sync"
	"sync/atomic"
)

// readAhead starts fetching slice idx, which the request does not need, for the request
// most likely to come next. Nobody waits for it: the fill stores the slice on its own (an
// answer that is not a slice is dropped unread when the fill ends).
func (c *Cache) readAhead(q *Request, gen uint64, idx int64, m *meta) {
	if hasSlice(q.Store, q.Key, m.epoch, idx, m.identity) {
		return
	}
	f, leader := c.joinSlice(q, gen, idx, m)
	f.Done()
	if leader {
		c.ahead.add(q.Key, idx)
		c.Counters.ReadAheadStarted()
	}
}

// aheadSet remembers the slices read ahead and not yet asked for, so that the requests that
// use them can be counted (reel_edge_slice_prefetch_total{result="used"}). It is bounded: a
// read-ahead forgotten when it is full is merely not counted.
type aheadSet struct {
	n  atomic.Int64 // len(m), read without the lock on every slice
	mu sync.Mutex
	m  map[string]struct{}
}

const maxAhead = 4096

func aheadKey(key string, idx int64) string { return key + "\x00" + strconv.FormatInt(idx, 10) }

func (a *aheadSet) add(key string, idx int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]struct{}{}
	}
	if len(a.m) >= maxAhead {
		for k := range a.m {
			delete(a.m, k)
			break
		}
	}
	a.m[aheadKey(key, idx)] = struct{}{}
	a.n.Store(int64(len(a.m)))
}

// take reports whether slice idx of key was read ahead, and forgets it.
func (a *aheadSet) take(key string, idx int64) bool {
	if a.n.Load() == 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := aheadKey(key, idx)
	_, ok := a.m[k]
	delete(a.m, k)
	a.n.Store(int64(len(a.m)))
	return ok
}
