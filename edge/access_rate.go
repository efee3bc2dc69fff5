package edge

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is one rule's rate limit: a token bucket per client (an IPv4 address, an IPv6
// client's /64 — one host may hold a whole /64), in a table bounded by max. The table is kept in
// least-recently-used order: a bucket full again (its client idle long enough to refill it) is
// the same as none and is dropped when it reaches the end, and past max the least recently seen
// client is forgotten (a flood of distinct addresses can't grow it; the cost is that a client
// forgotten mid-flood starts again with a full bucket).
type rateLimiter struct {
	perSec, burst float64
	max           int

	mu      sync.Mutex
	clients map[netip.Addr]*bucket
	head    bucket // sentinel of the LRU ring: head.next is the most recent
}

// bucket is one client's tokens at the time of its last request.
type bucket struct {
	key        netip.Addr
	tokens     float64
	at         time.Time
	prev, next *bucket
}

func newRateLimiter(perSec, burst float64, max int) *rateLimiter {
	l := &rateLimiter{perSec: perSec, burst: burst, max: max, clients: map[netip.Addr]*bucket{}}
	l.head.prev, l.head.next = &l.head, &l.head
	return l
}

// clientKey is the key of addr's bucket.
func clientKey(addr netip.Addr) netip.Addr {
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// take takes a token from addr's bucket at now: 0 when there was one, else how long until
// there is.
func (l *rateLimiter) take(addr netip.Addr, now time.Time) time.Duration {
	key := clientKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[key]
	if b == nil {
		l.dropIdle(now)
		if len(l.clients) >= l.max {
			l.remove(l.head.prev)
		}
		b = &bucket{key: key, tokens: l.burst, at: now}
		l.clients[key] = b
	} else {
		l.unlink(b)
		b.tokens = l.refilled(b, now)
		b.at = now
	}
	l.pushFront(b)
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / l.perSec * float64(time.Second))
}

// refilled is b's tokens at now.
func (l *rateLimiter) refilled(b *bucket, now time.Time) float64 {
	if d := now.Sub(b.at); d > 0 {
		return min(l.burst, b.tokens+d.Seconds()*l.perSec)
	}
	return b.tokens
}

// dropIdle drops up to two buckets at the LRU end that are full again at now.
func (l *rateLimiter) dropIdle(now time.Time) {
	for range 2 {
		b := l.head.prev
		if b == &l.head || l.refilled(b, now) < l.burst {
			return
		}
		l.remove(b)
	}
}

// len is the number of clients tracked.
func (l *rateLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

func (l *rateLimiter) remove(b *bucket) {
	l.unlink(b)
	delete(l.clients, b.key)
}

func (l *rateLimiter) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (l *rateLimiter) pushFront(b *bucket) {
	b.prev, b.next = &l.head, l.head.next
	l.head.next.prev = b
	l.head.next = b
}
