package store

import (
	"maps"

	"github.com/maypok86/otter/v2"
)

// Coding names a content-coded copy of a stored variant: the variant's secondary key and the
// content coding ("br", "gzip"; "identity" for the same body under another header).
type Coding struct{ VK, Name string }

// PutCoded stores obj, a copy of the variant vk of primary in content coding name made by the
// edge, beside that variant — provided the variant stored is still obj.Of (else a newer
// response replaced it meanwhile and the copy is dropped). The copies go when their variant
// is replaced, evicted or purged, and weigh in the entry like variants.
func (m *Memory) PutCoded(primary, vk, name string, obj *Object) {
	if obj.Of == nil || !m.Fits(int64(len(obj.Body))) {
		return
	}
	m.c.Compute(primary, func(old *Entry, found bool) (*Entry, otter.ComputeOp) {
		if !found || old.Variants[vk] != obj.Of {
			return old, otter.CancelOp
		}
		e := &Entry{Vary: old.Vary, Variants: old.Variants, order: old.order, Coded: maps.Clone(old.Coded)}
		if e.Coded == nil {
			e.Coded = map[Coding]*Object{}
		}
		e.Coded[Coding{VK: vk, Name: name}] = obj
		return e, otter.WriteOp
	})
}

// CodedOf returns the copy in coding name of base, stored as the variant vk of primary, if
// one is stored and base is still that variant.
func (m *Memory) CodedOf(primary, vk, name string, base *Object) *Object {
	e, ok := m.c.GetIfPresent(primary)
	if !ok || e.Coded == nil {
		return nil
	}
	if o := e.Coded[Coding{VK: vk, Name: name}]; o != nil && o.Of == base {
		return o
	}
	return nil
}

// codedExcept is e's coded copies but those of the variant vk (nil for none).
func (e *Entry) codedExcept(vk string) map[Coding]*Object {
	var c map[Coding]*Object
	for k, o := range e.Coded {
		if k.VK == vk {
			continue
		}
		if c == nil {
			c = map[Coding]*Object{}
		}
		c[k] = o
	}
	return c
}

// dropCoded deletes the coded copies of the variant vk.
func (e *Entry) dropCoded(vk string) {
	for k := range e.Coded {
		if k.VK == vk {
			delete(e.Coded, k)
		}
	}
}

// sharesBody reports whether a and b hold the same body bytes (one slice, not equal copies).
func sharesBody(a, b *Object) bool {
	return len(a.Body) > 0 && len(a.Body) == len(b.Body) && &a.Body[0] == &b.Body[0]
}
