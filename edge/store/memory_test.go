package store

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func obj(body string) *Object {
	return &Object{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: []byte(body)}
}

// TestVariants: variants of one URL live side by side (RFC 9111 §4.1), a changed Vary
// replaces them, the oldest variant goes past the cap, and Invalidate drops them all.
func TestVariants(t *testing.T) {
	m, err := NewMemory(1<<20, 0, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Put("u", []string{"Accept-Encoding"}, "gzip", obj("g"))
	m.Put("u", []string{"Accept-Encoding"}, "br", obj("b"))
	e, ok := m.Lookup("u")
	if !ok || len(e.Variants) != 2 || string(e.Variants["gzip"].Body) != "g" || string(e.Variants["br"].Body) != "b" {
		t.Fatalf("variants: %+v", e)
	}
	m.Put("u", []string{"Accept-Encoding"}, "identity", obj("i")) // cap 2: gzip (oldest) goes
	e, _ = m.Lookup("u")
	if _, ok := e.Variants["gzip"]; ok || len(e.Variants) != 2 {
		t.Fatalf("cap not enforced: %v", e.Variants)
	}
	m.Put("u", []string{"Accept-Language"}, "fr", obj("f")) // new Vary spec replaces the old
	e, _ = m.Lookup("u")
	if len(e.Variants) != 1 || e.Vary[0] != "Accept-Language" {
		t.Fatalf("changed Vary kept stale variants: %+v", e)
	}
	if !m.Invalidate("u") {
		t.Fatal("Invalidate found nothing")
	}
	if _, ok := m.Lookup("u"); ok {
		t.Fatal("entry survived Invalidate")
	}
}

// TestMemoryBound: the tier holds about its capacity, and refuses objects above an eighth of it.
func TestMemoryBound(t *testing.T) {
	const capacity = 64 << 10
	var evicted atomic.Int64
	m, err := NewMemory(capacity, 0, 4, func(cause string) {
		if cause == "size" {
			evicted.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Fits(capacity/8 + 1) {
		t.Fatal("an object larger than capacity/8 fits")
	}
	m.Put("big", nil, "", &Object{Body: make([]byte, capacity/4)})
	if _, ok := m.Lookup("big"); ok {
		t.Fatal("oversize object stored")
	}
	for i := range 200 {
		m.Put(fmt.Sprint(i), nil, "", &Object{Body: make([]byte, 1024)})
	}
	m.c.CleanUp()
	if w := m.Weight(); w > capacity {
		t.Fatalf("holds %d bytes, capacity %d", w, capacity)
	}
	if w := m.Weight(); w < capacity/2 {
		t.Fatalf("holds only %d bytes of %d: eviction too eager", w, capacity)
	}
	for i := 0; i < 100 && evicted.Load() == 0; i++ {
		time.Sleep(10 * time.Millisecond) // deletion events are delivered asynchronously
	}
	if evicted.Load() == 0 {
		t.Fatal("no size eviction was reported")
	}
}
