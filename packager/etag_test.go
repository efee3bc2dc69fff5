package packager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// originETag serves dir with a fresh Origin and returns the ETag of GET name.
func originETag(t *testing.T, dir, name string) string {
	t.Helper()
	o, err := NewOrigin(dir, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rec := httptest.NewRecorder()
	o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+name, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", name, rec.Code, rec.Body)
	}
	return rec.Header().Get("ETag")
}

// TestOriginETagNamesContent: two folders holding the same bytes (copies: other inodes, other
// mtimes), each served by its own Origin as replicas or a restarted process would, give every
// file the same ETag; different bytes give a different one.
func TestOriginETagNamesContent(t *testing.T) {
	files := map[string][]byte{
		"master.m3u8":              []byte("#EXTM3U\n#EXT-X-VERSION:7\n"),
		"video_720p/seg_00001.m4s": segBytes(200_000),
		"video_720p/seg_00002.m4s": segBytes(200_001)[1:], // same size as seg 1, other bytes
		"audio_eng/init.mp4":       []byte("ftypcmfc-audio-init"),
	}
	a, b := t.TempDir(), t.TempDir()
	for name, body := range files {
		writeFixtureFile(t, filepath.Join(a, name), body)
	}
	later := fixedMtime.Add(time.Hour)
	for name, body := range files {
		p := filepath.Join(b, name)
		writeFixtureFile(t, p, body)
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]string{}
	for name := range files {
		ea, eb := originETag(t, a, name), originETag(t, b, name)
		if ea == "" || ea != eb {
			t.Errorf("%s: ETag %s in one folder, %s in its copy", name, ea, eb)
		}
		if other, dup := seen[ea]; dup {
			t.Errorf("%s and %s have different bytes but one ETag %s", name, other, ea)
		}
		seen[ea] = name
	}
}

// TestOriginETagFollowsChanges: a file replaced (by rename, as the packager publishes) or
// rewritten in place gets the ETag of its new bytes, not the cached one of the old.
func TestOriginETagFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "video_720p", "seg_00001.m4s")
	writeFixtureFile(t, p, []byte("version one"))
	o, err := NewOrigin(dir, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	get := func() string {
		rec := httptest.NewRecorder()
		o.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/video_720p/seg_00001.m4s", nil))
		return rec.Header().Get("ETag")
	}
	v1 := get()
	// Same size and same mtime: only the inode tells the new file from the old.
	tmp := filepath.Join(dir, "video_720p", ".new")
	writeFixtureFile(t, tmp, []byte("version two"))
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	v2 := get()
	if v2 == v1 {
		t.Fatalf("replaced file kept ETag %s", v1)
	}
	if err := os.WriteFile(p, []byte("version three, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v3 := get(); v3 == v2 || v3 == v1 {
		t.Fatalf("rewritten file kept ETag %s", v3)
	}
	writeFixtureFile(t, tmp, []byte("version one"))
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if again := get(); again != v1 {
		t.Fatalf("the first version's bytes again: ETag %s, first served as %s", again, v1)
	}
}

// countingReader counts full passes over its bytes and can hold the first read until released.
type countingReader struct {
	data    []byte
	passes  atomic.Int32
	entered chan struct{} // closed when the first read starts
	release chan struct{} // the first read waits for it
	once    sync.Once
}

func newCountingReader(data []byte) *countingReader {
	return &countingReader{data: data, entered: make(chan struct{}), release: make(chan struct{})}
}

func (r *countingReader) ReadAt(p []byte, off int64) (int, error) {
	if off == 0 {
		r.passes.Add(1)
		r.once.Do(func() { close(r.entered); <-r.release })
	}
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

type fixedInfo struct {
	os.FileInfo
	size int64
}

func (f fixedInfo) Size() int64        { return f.size }
func (f fixedInfo) ModTime() time.Time { return fixedMtime }
func (f fixedInfo) Sys() any           { return nil }

// TestDigestOncePerFile: many first requests for one file at once read it once.
func TestDigestOncePerFile(t *testing.T) {
	c := newDigestCache(8)
	r := newCountingReader(segBytes(1 << 20))
	fi := fixedInfo{size: 1 << 20}
	const n = 16
	etags := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			etags[i], errs[i] = c.etag(context.Background(), "seg", r, fi)
		}()
	}
	<-r.entered
	close(r.release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || etags[i] != etags[0] {
			t.Fatalf("request %d: %q, %v; request 0: %q", i, etags[i], errs[i], etags[0])
		}
	}
	if got := r.passes.Load(); got != 1 {
		t.Fatalf("%d concurrent first requests hashed the file %d times, want 1", n, got)
	}
}

// TestDigestAbandoned: the request hashing a file goes away; another one waiting for the same
// digest still gets it, and the failure is not cached.
func TestDigestAbandoned(t *testing.T) {
	c := newDigestCache(8)
	data := segBytes(1 << 20)
	r := newCountingReader(data)
	fi := fixedInfo{size: int64(len(data))}
	ctx, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		_, err := c.etag(ctx, "seg", r, fi)
		firstErr <- err
	}()
	<-r.entered // the first request is hashing
	second := make(chan string, 1)
	go func() {
		etag, err := c.etag(context.Background(), "seg", r, fi)
		if err != nil {
			etag = err.Error()
		}
		second <- etag
	}()
	cancel()
	close(r.release)
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned hashing returned %v, want context.Canceled", err)
	}
	want, err := contentETag(context.Background(), bytes.NewReader(data), fi.size)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-second:
		if got != want {
			t.Fatalf("waiting request got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting request never answered")
	}
}

// TestDigestCacheBounded: the cache keeps at most its bound, dropping the least recently used.
func TestDigestCacheBounded(t *testing.T) {
	c := newDigestCache(2)
	readers := []*countingReader{newCountingReader([]byte("a")), newCountingReader([]byte("b")), newCountingReader([]byte("c"))}
	for _, r := range readers {
		close(r.release)
	}
	get := func(i int) {
		t.Helper()
		if _, err := c.etag(context.Background(), string(rune('a'+i)), readers[i], fixedInfo{size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	get(0)
	get(1)
	get(0) // 0 is now the most recently used
	get(2) // evicts 1
	if c.len() != 2 {
		t.Fatalf("cache holds %d digests, bound 2", c.len())
	}
	get(0)
	get(1)
	if p0, p1 := readers[0].passes.Load(), readers[1].passes.Load(); p0 != 1 || p1 != 2 {
		t.Fatalf("hash passes: a %d (want 1, kept), b %d (want 2, evicted then hashed again)", p0, p1)
	}
}

// BenchmarkContentETag measures hashing throughput (MB/s) from memory: the first request for a
// file pays size / this, plus reading it from disk if it is not in the page cache.
func BenchmarkContentETag(b *testing.B) {
	data := segBytes(64 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := contentETag(context.Background(), bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
