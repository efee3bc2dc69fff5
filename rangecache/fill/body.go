// Package fill is the read-while-write core of the cache: one origin response being stored (a
// Fill) while any number of clients read it, each at its own pace, from the first byte on.
// Every body the edge stores — a whole object, a slice, a slice of a stream — is written
// through one.
//
// A Body is append-only: one writer, many readers. Readers block until more bytes arrive or
// the body ends; an aborted body ends every reader with an error, never with io.EOF, so a
// truncated response can't pass for a complete one.
package fill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrAborted is what readers get when the writer gave up (origin reset, timeout…).
var ErrAborted = errors.New("fill aborted before the body was complete")

// backing stores a body's bytes: memory chunks for small objects, a file for large ones.
type backing interface {
	append(p []byte) error
	// view returns what a reader may use without the body's lock to read bytes written so
	// far; it is called under the lock.
	view() backing
	readAt(p []byte, off int64) (int, error)
	release() error
}

// Body is an append-only byte sequence written by one fill and read concurrently.
type Body struct {
	mu      sync.Mutex
	store   backing
	size    int64 // bytes readers may read
	held    int64 // bytes written but not yet revealed
	done    bool
	err     error         // non-nil once aborted
	changed chan struct{} // closed and replaced on every append/finish: a broadcast readers can select on
}

func newBody(store backing) *Body {
	return &Body{store: store, changed: make(chan struct{})}
}

// NewMemoryBody returns a body kept in memory.
func NewMemoryBody() *Body { return newBody(&memBacking{chunk: defaultChunk}) }

// NewMemoryBodySize returns a memory body for a response whose length is known: one
// allocation, and Bytes returns it without copying.
func NewMemoryBodySize(n int64) *Body {
	if n <= 0 {
		return NewMemoryBody()
	}
	return newBody(&memBacking{chunk: n})
}

// Written returns the bytes a memory body holds so far (nil for a file body), for storing a
// body before Finish publishes it as complete.
func (b *Body) Written() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, isMem := b.store.(*memBacking)
	if !isMem {
		return nil
	}
	if len(m.chunks) == 1 {
		return m.chunks[0][:m.size]
	}
	out := make([]byte, 0, m.size)
	for i, c := range m.chunks {
		out = append(out, c[:min(int64(len(c)), m.size-int64(i)*m.chunk)]...)
	}
	return out
}

// Bytes returns a complete memory body's bytes (copied only when they span several chunks).
// ok is false for an unfinished, aborted or file body.
func (b *Body) Bytes() (data []byte, ok bool) {
	b.mu.Lock()
	complete := b.done && b.err == nil
	b.mu.Unlock()
	if data = b.Written(); !complete || data == nil {
		return nil, false
	}
	return data, true
}

// NewFileBody returns a body written to f (typically a temp file in the cache folder), which
// it owns: Release closes it. Readers use ReadAt, so they never disturb the writer's offset.
func NewFileBody(f *os.File) *Body { return newBody(&fileBacking{f: f}) }

// Write appends p. It never blocks on readers: slow clients cannot slow the fill.
func (b *Body) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, errors.New("write to a finished body")
	}
	if err := b.store.append(p); err != nil {
		return 0, err
	}
	b.size += b.held + int64(len(p))
	b.held = 0
	b.broadcast()
	return len(p), nil
}

// Hold appends p like Write, but readers don't see it until Reveal. Writing the last bytes
// this way lets a fill store its object before any client can have read all of it — so a
// client that got the whole body and then purges it can't be overtaken by the store.
func (b *Body) Hold(p []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return errors.New("write to a finished body")
	}
	if err := b.store.append(p); err != nil {
		return err
	}
	b.held += int64(len(p))
	return nil
}

// CopyHoldingLast writes src into the body until src ends, keeping the latest chunk held back
// (Hold): when src ends, its last bytes stay invisible until the fill has stored the object
// and called Finish — so no client can have a whole object (or slice) before it is in the
// cache. It is how every fill writes a body it stores: whole objects, slices, streams.
func (b *Body) CopyHoldingLast(src io.Reader) (int64, error) {
	return io.Copy(holdLast{b}, src)
}

type holdLast struct{ b *Body }

func (h holdLast) Write(p []byte) (int, error) {
	h.b.Reveal()
	if err := h.b.Hold(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Reveal makes held bytes readable.
func (b *Body) Reveal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held > 0 {
		b.size += b.held
		b.held = 0
		b.broadcast()
	}
}

// Finish ends the body: err == nil marks it complete, anything else aborts it. Held bytes
// are revealed by a successful Finish.
func (b *Body) Finish(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	if err != nil {
		b.err = fmt.Errorf("%w: %w", ErrAborted, err)
	} else {
		b.size += b.held
		b.held = 0
	}
	b.broadcast()
}

func (b *Body) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// State reports the bytes written so far, whether the body is finished and, if it was
// aborted, why.
func (b *Body) State() (size int64, done bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size, b.done, b.err
}

// Wait blocks until the body is finished or ctx ends.
func (b *Body) Wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		done, err, ch := b.done, b.err, b.changed
		b.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Started waits until readers can read some of the body or it ended, and reports whether it
// ended and, if it was aborted, why (ctx's error if ctx ended first).
func (b *Body) Started(ctx context.Context) (done bool, err error) {
	for {
		b.mu.Lock()
		size, done, err, ch := b.size, b.done, b.err, b.changed
		b.mu.Unlock()
		if size > 0 || done {
			return done, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// Release frees the backing store (closes the file). Only once no reader needs it: Fill
// does this when every request that joined it is done.
func (b *Body) Release() error { return b.store.release() }

// NewCompleteFileBody returns a finished body of size bytes read from f, for serving a stored
// file to a coalesced group (after a revalidation, say). Release closes f.
func NewCompleteFileBody(f *os.File, size int64) *Body {
	b := newBody(&fileBacking{f: f})
	b.size, b.done = size, true
	return b
}

// NewReader returns a reader from offset off that follows the body as it grows. Its reads
// end with io.EOF only when the body is complete, or with ErrAborted or ctx's error.
func (b *Body) NewReader(ctx context.Context, off int64) *Reader {
	return &Reader{b: b, ctx: ctx, off: off}
}

// Reader reads a Body while it is being written.
type Reader struct {
	b   *Body
	ctx context.Context
	off int64
}

func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		r.b.mu.Lock()
		size, done, err, ch, view := r.b.size, r.b.done, r.b.err, r.b.changed, r.b.store.view()
		r.b.mu.Unlock()
		if r.off < size {
			// Bytes below size never change, so they are read without the lock.
			n := int(min(int64(len(p)), size-r.off))
			n, rerr := view.readAt(p[:n], r.off)
			r.off += int64(n)
			if rerr != nil && rerr != io.EOF {
				return n, rerr
			}
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if done {
			return 0, io.EOF
		}
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
}

// memBacking keeps bytes in fixed-size chunks, allocated whole, so that an append never moves
// or re-slices what readers may be reading; only the list of chunks grows.
type memBacking struct {
	chunk  int64 // chunk size
	chunks [][]byte
	size   int64
}

const defaultChunk = 64 << 10

func (m *memBacking) append(p []byte) error {
	for len(p) > 0 {
		co := int(m.size % m.chunk)
		if co == 0 && int(m.size/m.chunk) == len(m.chunks) {
			m.chunks = append(m.chunks, make([]byte, m.chunk))
		}
		n := copy(m.chunks[len(m.chunks)-1][co:], p)
		p = p[n:]
		m.size += int64(n)
	}
	return nil
}

func (m *memBacking) view() backing {
	return &memBacking{chunk: m.chunk, chunks: m.chunks, size: m.size}
}

func (m *memBacking) readAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= m.size {
			return n, io.EOF
		}
		ci, co := int(pos/m.chunk), int(pos%m.chunk)
		n += copy(p[n:min(len(p), n+int(m.size-pos))], m.chunks[ci][co:])
	}
	return n, nil
}

func (m *memBacking) release() error {
	m.chunks = nil
	return nil
}

type fileBacking struct {
	f *os.File
}

func (fb *fileBacking) append(p []byte) error {
	_, err := fb.f.Write(p)
	return err
}

func (fb *fileBacking) view() backing { return fb }

func (fb *fileBacking) readAt(p []byte, off int64) (int, error) { return fb.f.ReadAt(p, off) }

func (fb *fileBacking) release() error { return fb.f.Close() }
