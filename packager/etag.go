package packager

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// A VOD ETag names the file's bytes: a digest of its content, so that replicas of one folder
// (origins behind a load balancer, a restarted process, a copy on another host) agree on it and
// an edge can revalidate against any of them or assemble one object from slices fetched from
// several. Hashing reads the whole file, so the digest is computed once, on the first request,
// and kept in memory under the file's identity: a file replaced or rewritten (new inode, size or
// mtime) gets a new digest.

// digestCacheEntries bounds the cache: about 200 bytes an entry, so a few MiB at most, enough
// for every file of a two-hour ladder (one segment every 2 s, five tracks: ~18,000 files).
const digestCacheEntries = 1 << 15

// hashBufferSize is the read size while hashing: large enough that syscalls don't dominate,
// small enough that many first requests at once cost little memory.
const hashBufferSize = 64 << 10

// digestAttempts bounds how often a request waits on a digest that another request started and
// gave up (its client went away) before computing it itself.
const digestAttempts = 3

// fileIdentity is what makes a cached digest valid for an open file.
type fileIdentity struct {
	name  string
	ino   uint64
	size  int64
	mtime int64
}

// digestEntry is one file's digest, or the computation of it in progress (done not closed yet).
type digestEntry struct {
	id   fileIdentity
	done chan struct{}
	etag string
	err  error
	elem *list.Element // in digestCache.lru once computed
}

// digestCache maps file identities to ETags, least recently used first out. Concurrent first
// requests for one file share one computation.
type digestCache struct {
	max int

	mu      sync.Mutex
	entries map[fileIdentity]*digestEntry
	lru     *list.List // computed entries, most recently used at the front
}

func newDigestCache(max int) *digestCache {
	return &digestCache{max: max, entries: map[fileIdentity]*digestEntry{}, lru: list.New()}
}

// etag returns the strong ETag of the open file f, whose stat is fi, computing its digest if
// no request has yet. ctx bounds the hashing; an error is ctx's or a read failure.
func (c *digestCache) etag(ctx context.Context, name string, f io.ReaderAt, fi fs.FileInfo) (string, error) {
	id := fileIdentity{name: name, ino: inode(fi), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	for range digestAttempts {
		e, mine := c.lookup(id)
		if mine {
			e.etag, e.err = contentETag(ctx, f, id.size)
			c.finish(e)
			return e.etag, e.err
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if e.err == nil {
			return e.etag, nil
		}
		if !errors.Is(e.err, context.Canceled) && !errors.Is(e.err, context.DeadlineExceeded) {
			return "", e.err
		}
		// The request computing it went away; this one still wants it: try again.
	}
	return "", fmt.Errorf("digest of %s: abandoned %d times", name, digestAttempts)
}

// lookup returns id's entry, creating it when there is none; mine says the caller created it
// and must compute it, then call finish.
func (c *digestCache) lookup(id fileIdentity) (e *digestEntry, mine bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil {
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		return e, false
	}
	e = &digestEntry{id: id, done: make(chan struct{})}
	c.entries[id] = e
	return e, true
}

// finish publishes a computed entry (and evicts the least recently used beyond the bound), or
// forgets a failed one so that the next request tries afresh.
func (c *digestCache) finish(e *digestEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err != nil {
		delete(c.entries, e.id)
	} else {
		e.elem = c.lru.PushFront(e)
		for c.lru.Len() > c.max {
			old := c.lru.Remove(c.lru.Back()).(*digestEntry)
			delete(c.entries, old.id)
		}
	}
	close(e.done)
}

// len is the number of digests held (tests).
func (c *digestCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// contentETag hashes the first size bytes of f (xxHash64: several GB/s, and 64 bits make an
// accidental collision between two files of one size negligible) into a strong ETag that also
// carries the size.
func contentETag(ctx context.Context, f io.ReaderAt, size int64) (string, error) {
	h := xxhash.New()
	buf := make([]byte, hashBufferSize)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && !(errors.Is(err, io.EOF) && off == size) {
			return "", fmt.Errorf("hashing at offset %d of %d: %w", off, size, err)
		}
	}
	etag := make([]byte, 0, 36)
	etag = append(etag, '"')
	etag = appendHex64(etag, h.Sum64())
	etag = append(etag, '-')
	etag = strconv.AppendInt(etag, size, 16)
	etag = append(etag, '"')
	return string(etag), nil
}

// appendHex64 appends v as 16 hex digits (fixed width, so ETags of one shape sort and read alike).
func appendHex64(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>uint(shift))&0xf])
	}
	return dst
}
