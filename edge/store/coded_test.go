package store

import (
	"bytes"
	"net/http"
	"testing"
)

// TestPutCoded: a coded copy is kept beside its variant, weighs in the entry (an identity
// copy sharing the body only by its header), goes when the variant is replaced, evicted by
// the variant cap or purged, and is refused when its variant was replaced meanwhile.
func TestPutCoded(t *testing.T) {
	m, err := NewMemory(1<<20, 0, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 10000)
	v1 := &Object{Status: 200, Header: http.Header{"Etag": {`"1"`}}, Body: body}
	m.Put("k", nil, "", v1)
	m.c.CleanUp()
	w0 := m.Weight()
	br := &Object{Status: 200, Header: http.Header{"Content-Encoding": {"br"}}, Body: []byte("small"), Of: v1}
	m.PutCoded("k", "", "br", br)
	id := &Object{Status: 200, Header: http.Header{"Vary": {"Accept-Encoding"}}, Body: body, Of: v1}
	m.PutCoded("k", "", "identity", id)
	m.c.CleanUp()
	if m.CodedOf("k", "", "br", v1) != br || m.CodedOf("k", "", "identity", v1) != id {
		t.Fatal("coded copies not found")
	}
	if grew := int64(m.Weight() - w0); grew <= 0 || grew >= int64(len(body)) {
		t.Fatalf("two copies (one sharing the %d-byte body) added %d bytes of weight", len(body), grew)
	}
	if m.CodedOf("k", "", "gzip", v1) != nil || m.CodedOf("k", "other", "br", v1) != nil {
		t.Fatal("a copy found under another coding or variant")
	}

	// A new version of the variant takes its copies along; a late copy of the old is refused.
	v2 := &Object{Status: 200, Header: http.Header{"Etag": {`"2"`}}, Body: []byte("new")}
	m.Put("k", nil, "", v2)
	if m.CodedOf("k", "", "br", v1) != nil || m.CodedOf("k", "", "br", v2) != nil {
		t.Fatal("a copy of the replaced version survived")
	}
	if e, _ := m.Lookup("k"); len(e.Coded) != 0 {
		t.Fatalf("%d copies left after the variant was replaced", len(e.Coded))
	}
	m.PutCoded("k", "", "br", br) // made from v1 while v2 arrived
	if e, _ := m.Lookup("k"); len(e.Coded) != 0 {
		t.Fatal("a copy of a replaced version was stored")
	}

	// The variant cap (2) drops the oldest variant and its copies; a purge drops all.
	a := &Object{Status: 200, Body: []byte("a")}
	m.Put("v", []string{"Accept-Encoding"}, "a", a)
	m.PutCoded("v", "a", "br", &Object{Body: []byte("A"), Of: a})
	m.Put("v", []string{"Accept-Encoding"}, "b", &Object{Status: 200, Body: []byte("b")})
	m.Put("v", []string{"Accept-Encoding"}, "c", &Object{Status: 200, Body: []byte("c")})
	if e, _ := m.Lookup("v"); len(e.Coded) != 0 || e.Variants["a"] != nil {
		t.Fatalf("variant a evicted: %v, copies left %d", e.Variants["a"] == nil, len(e.Coded))
	}
	m.PutCoded("k", "", "br", &Object{Body: []byte("B"), Of: v2})
	m.Invalidate("k")
	if m.CodedOf("k", "", "br", v2) != nil {
		t.Fatal("a copy survived its purge")
	}
}
