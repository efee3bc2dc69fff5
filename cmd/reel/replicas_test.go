package main

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge"
	"github.com/reelvideo/reel/packager"
)

// originLog records what one origin was asked and what it answered.
type originLog struct {
	mu       sync.Mutex
	requests []string // "PATH RANGE IF-NONE-MATCH → STATUS"
}

func (l *originLog) add(r *http.Request, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, fmt.Sprintf("%s range=%q inm=%q → %d", r.URL.Path, r.Header.Get("Range"), r.Header.Get("If-None-Match"), status))
}

func (l *originLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.requests
	l.requests = nil
	return out
}

// replicaOrigin serves dir with `reel origin`'s handler on loopback and returns a proxy to it
// that logs every exchange before passing the answer on (so the log is complete by the time
// the edge, and the test's client, see the answer).
func replicaOrigin(t *testing.T, dir string) (*httputil.ReverseProxy, *originLog) {
	t.Helper()
	o, err := packager.NewOrigin(dir, packager.OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { srv.Close(); o.Close() })
	u, _ := url.Parse(srv.URL)
	log := &originLog{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		log.add(resp.Request, resp.StatusCode)
		return nil
	}
	return proxy, log
}

// copyTree copies every file of src into dst (new inodes) and dates the copies an hour later,
// as a replica synchronised at another time would be.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	later := time.Now().Add(time.Hour)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		return os.Chtimes(target, later, later)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOriginReplicasBehindEdge: two origins serve copies of one presentation (other inodes,
// other mtimes) behind a load balancer, with one edge in front. The edge's revalidation of what
// it got from one origin is answered 304 by the other, and an object stored as slices is
// assembled from slices fetched from both: the ETags name the bytes, not the machine.
func TestOriginReplicasBehindEdge(t *testing.T) {
	dirA := filepath.Join(t.TempDir(), "vod")
	if _, err := packager.Package(context.Background(), packager.Options{
		Inputs: []string{sample("ladder_360p.mp4")}, Output: dirA, SingleFile: true,
	}); err != nil {
		t.Fatal(err)
	}
	dirB := t.TempDir()
	copyTree(t, dirA, dirB)
	proxyA, logA := replicaOrigin(t, dirA)
	proxyB, logB := replicaOrigin(t, dirB)

	// The load balancer sends everything to one replica at a time, switched by the test.
	proxies := []*httputil.ReverseProxy{proxyA, proxyB}
	var current atomic.Int32
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[current.Load()].ServeHTTP(w, r)
	}))
	defer lb.Close()
	const slice = 64 << 10
	_, edgeURL := edgeInFrontWith(t, lb.URL, nil, func(c *edge.Config) {
		c.SliceSize = slice
		c.SliceThreshold = slice
		c.Cache.ClientCacheControl = "honor" // a client's no-cache revalidates (below)
	})

	get := func(path string, hdr ...string) (int, string) {
		t.Helper()
		status, body, _ := fetch(t, edgeURL+path, hdr...)
		return status, body
	}

	// Revalidation: the playlist is stored from A, then revalidated (a client's no-cache)
	// against B, which must recognise it.
	const playlist = "/master.m3u8"
	if status, _ := get(playlist); status != http.StatusOK {
		t.Fatalf("%s: %d", playlist, status)
	}
	current.Store(1)
	status, body := get(playlist, "Cache-Control", "no-cache")
	want, _ := os.ReadFile(filepath.Join(dirA, "master.m3u8"))
	if status != http.StatusOK || body != string(want) {
		t.Errorf("%s revalidated: %d, %d bytes", playlist, status, len(body))
	}
	if got := logB.take(); len(got) != 1 || !strings.HasSuffix(got[0], "→ 304") {
		t.Errorf("replica B was asked %q, want one conditional request answered 304", got)
	}

	// Slices: the first two slices of the single-file track come from A, the next two from B,
	// and the edge assembles one answer from them.
	const media = "/video_360p/media.mp4"
	file, err := os.ReadFile(filepath.Join(dirA, "video_360p", "media.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if len(file) < 4*slice {
		t.Fatalf("%s is %d bytes, the test needs 4 slices of %d", media, len(file), slice)
	}
	current.Store(0)
	logA.take()
	if status, body := get(media, "Range", fmt.Sprintf("bytes=0-%d", 2*slice-1)); status != http.StatusPartialContent || body != string(file[:2*slice]) {
		t.Fatalf("first two slices via A: %d, %d bytes", status, len(body))
	}
	if len(logA.take()) == 0 {
		t.Fatal("replica A was not asked for the first slices")
	}
	// The edge reads one slice ahead (slice 2, from A, maybe still on its way when the
	// balancer switches); slice 3 can only come from B.
	current.Store(1)
	status, body = get(media, "Range", fmt.Sprintf("bytes=%d-%d", slice, 4*slice-1))
	if status != http.StatusPartialContent || body != string(file[slice:4*slice]) {
		t.Errorf("slices 1–3, 1 stored from A and 3 from B: %d, %d bytes (want %d)", status, len(body), 3*slice)
	}
	fromB := logB.take()
	if !slices.ContainsFunc(fromB, func(r string) bool {
		return strings.Contains(r, sliceRange(3, slice)) && strings.HasSuffix(r, "→ 206")
	}) {
		t.Errorf("replica B was asked %q, want slice 3 answered 206", fromB)
	}
	for _, r := range fromB {
		if strings.Contains(r, sliceRange(0, slice)) || strings.Contains(r, sliceRange(1, slice)) {
			t.Errorf("replica B was asked again for a slice the edge had from A: %s", r)
		}
	}
	// Once more, all from the cache: one object, not two versions.
	if status, body := get(media, "Range", fmt.Sprintf("bytes=0-%d", 4*slice-1)); status != http.StatusPartialContent || body != string(file[:4*slice]) {
		t.Errorf("slices 0–3 from the cache: %d, %d bytes", status, len(body))
	}
	for _, r := range append(logA.take(), logB.take()...) {
		for _, idx := range []int{0, 1, 3} { // 2 may be A's read-ahead, logged late
			if strings.Contains(r, sliceRange(idx, slice)) {
				t.Errorf("slice %d, stored already, was fetched again: %s", idx, r)
			}
		}
	}
}

// sliceRange is the Range field value the edge sends for slice idx.
func sliceRange(idx, size int) string {
	return fmt.Sprintf("range=\"bytes=%d-%d\"", idx*size, idx*size+size-1)
}
