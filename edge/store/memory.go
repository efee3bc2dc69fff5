// Package store holds the edge's stored responses: the memory tier (this file) and, later, the
// disk tier. Objects are immutable once stored; an update (a 304 merging new headers) stores
// a new Object that shares the old body.
package store

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/maypok86/otter/v2"
)

// Object is one stored response.
type Object struct {
	Status int
	Header http.Header // as stored: hop-by-hop fields removed
	// RequestTime and ResponseTime bracket the origin exchange (RFC 9111 §4.2.3).
	RequestTime, ResponseTime time.Time
	Body                      []byte
	// Invalidated marks a soft purge: revalidate before reuse; still usable when the origin
	// fails (stale-if-error).
	Invalidated bool
	// FreshUntil and InitialAge are computed once when the object is stored, so that a hit
	// on a fresh object needs no header parsing: a request without Cache-Control or Pragma
	// may use the object until FreshUntil, with Age = InitialAge + time since ResponseTime
	// (RFC 9111 §4.2.3). A zero FreshUntil means "always evaluate" (no-cache and the like).
	FreshUntil time.Time
	InitialAge time.Duration
	// Prepared is what the edge derives from the object once, when it is stored, to serve hits
	// faster (its view of the object, with the serialised header). Read-only after Put; copies
	// of the object share it.
	Prepared any
	// Of, for a content-coded copy the edge made of a stored variant (PutCoded), is that
	// variant: the copy is valid only while it is still the variant stored.
	Of *Object
}

// Size is what the object costs in memory: its body as the Go allocator holds it, its header
// twice (the stored map, and Prepared's serialised copy for hits), and the structures around
// them. The memory tier is weighed by it, so it must not undercount: the Go memory limit is
// set from the tier's size (cmd/reel), and a tier that holds more than it weighs pushes the
// process past it.
func (o *Object) Size() int64 {
	body := allocated(int64(len(o.Body)))
	if o.Of != nil && sharesBody(o, o.Of) {
		body = 0 // an identity copy with another header: the body is weighed once, in Of
	}
	return body + memObjectOverhead + 2*headerHeap(o.Header)
}

// headerHeap is what a stored header costs the heap, roughly: its strings, a map slot and
// slice per field, a string header per value (and the ": " and CRLF of a wire copy).
func headerHeap(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		n += headerFieldOverhead + int64(len(k))
		for _, v := range vs {
			n += int64(len(v)+len(k)) + headerValueOverhead
		}
	}
	return n
}

// Per-object costs besides the bytes of the body and header, measured with runtime.MemStats
// on the edge's hit path (TestMemoryTierWeighsItsHeap in package edge): the Object, its
// header map, the hit header prepared for it, its entry's map and otter's node.
const (
	memObjectOverhead   = 1536
	headerFieldOverhead = 64 // a map slot and the []string
	headerValueOverhead = 32 // a string header, and the ": " and CRLF of the wire form
	memEntryOverhead    = 512
)

// allocated is what the Go allocator sets aside for a []byte of n bytes: large allocations
// are whole 8 KiB pages (a 100 KB body holds 104 KiB), small ones fall into size classes at
// most 1/8 apart (rounded up here to that bound).
func allocated(n int64) int64 {
	const page, largeObject = 8 << 10, 32 << 10
	if n > largeObject {
		return (n + page - 1) / page * page
	}
	return n + n/8
}

// Entry groups the variants stored for one URL (primary key): the request fields its
// responses vary on (RFC 9111 §4.1) and one object per secondary key.
type Entry struct {
	Vary     []string // canonical header names; empty when the response has no Vary
	Variants map[string]*Object
	// Coded holds the content-coded copies the edge made of variants (PutCoded).
	Coded map[Coding]*Object
	order []string // insertion order, to drop the oldest variant when over the cap
}

// size is what the entry weighs in the memory tier, with its primary key (held by otter and
// by the entry's node).
func (e *Entry) size(primary string) int64 {
	n := memEntryOverhead + 2*int64(len(primary))
	for _, vk := range e.order {
		n += int64(len(vk))
	}
	for _, o := range e.Variants {
		n += o.Size()
	}
	for c, o := range e.Coded {
		n += int64(len(c.VK)+len(c.Name)) + o.Size()
	}
	return n
}

// Memory is the memory tier: entries weighed by bytes in an otter cache (W-TinyLFU, which
// measured 61% hit rate on a live-edge workload against 15% for ristretto, DESIGN.md).
type Memory struct {
	c           *otter.Cache[string, *Entry]
	maxVariants int
	maxObject   int64
}

// NewMemory returns a memory tier of capacity bytes. Objects larger than maxObject are not
// kept in memory (one huge object would evict everything else; 0: capacity/8); maxVariants
// caps the variants kept per URL.
// onEvict, when set, is told the cause of every entry that leaves ("size", "expired",
// "replaced", "invalidated").
func NewMemory(capacity, maxObject int64, maxVariants int, onEvict func(cause string)) (*Memory, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("memory capacity must be positive, got %d", capacity)
	}
	if maxVariants <= 0 {
		maxVariants = 16
	}
	if maxObject <= 0 {
		maxObject = max(capacity/8, 1)
	}
	c, err := otter.New(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(capacity),
		Weigher: func(primary string, e *Entry) uint32 {
			return uint32(min(e.size(primary), 1<<32-1))
		},
		OnDeletion: func(ev otter.DeletionEvent[string, *Entry]) {
			if onEvict != nil {
				onEvict(deletionCause(ev.Cause))
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &Memory{c: c, maxVariants: maxVariants, maxObject: maxObject}, nil
}

func deletionCause(c otter.DeletionCause) string {
	switch c {
	case otter.CauseOverflow:
		return "size"
	case otter.CauseExpiration:
		return "expired"
	case otter.CauseReplacement:
		return "replaced"
	default:
		return "invalidated"
	}
}

// Keys iterates over the primary keys held (for purge by prefix).
func (m *Memory) Keys() func(yield func(string) bool) { return m.c.Keys() }

// MaxObject is the largest body the memory tier keeps.
func (m *Memory) MaxObject() int64 { return m.maxObject }

// Fits reports whether an object of size bytes may be kept in memory.
func (m *Memory) Fits(size int64) bool { return size <= m.maxObject }

// Lookup returns the entry for a primary key.
func (m *Memory) Lookup(primary string) (*Entry, bool) {
	return m.c.GetIfPresent(primary)
}

// Put stores obj as the variant vk of primary, whose responses vary on vary. A response
// that varies on different fields than the stored ones replaces them all: the origin changed
// how it negotiates.
func (m *Memory) Put(primary string, vary []string, vk string, obj *Object) {
	if !m.Fits(int64(len(obj.Body))) {
		return
	}
	m.c.Compute(primary, func(old *Entry, found bool) (*Entry, otter.ComputeOp) {
		e := &Entry{Vary: vary, Variants: map[string]*Object{}}
		if found && slices.Equal(old.Vary, vary) {
			for k, v := range old.Variants {
				e.Variants[k] = v
			}
			e.order = slices.Clone(old.order)
			e.Coded = old.codedExcept(vk) // the copies of the replaced variant go with it
		}
		if _, ok := e.Variants[vk]; !ok {
			e.order = append(e.order, vk)
		}
		e.Variants[vk] = obj
		for len(e.order) > m.maxVariants {
			delete(e.Variants, e.order[0])
			e.dropCoded(e.order[0])
			e.order = e.order[1:]
		}
		return e, otter.WriteOp
	})
}

// Invalidate drops every variant stored for primary.
func (m *Memory) Invalidate(primary string) bool {
	_, ok := m.c.Invalidate(primary)
	return ok
}

// Weight is the bytes currently held.
func (m *Memory) Weight() uint64 { return m.c.WeightedSize() }

// CleanUp runs the cache's pending maintenance now: evictions otter has decided but not yet
// applied still hold their entries (tests measuring the heap call it first).
func (m *Memory) CleanUp() { m.c.CleanUp() }
