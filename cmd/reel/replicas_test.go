package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
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

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// replicaOrigin serves dir with `reel origin`'s handler on loopback, logging every request.
func replicaOrigin(t *testing.T, dir string) (*url.URL, *originLog) {
	t.Helper()
	o, err := packager.NewOrigin(dir, packager.OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	log := &originLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		o.ServeHTTP(sw, r)
		log.add(r, sw.status)
	}))
	t.Cleanup(func() { srv.Close(); o.Close() })
	u, _ := url.Parse(srv.URL)
	return u, log
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
	urlA, logA := replicaOrigin(t, dirA)
	urlB, logB := replicaOrigin(t, dirB)

	// The load balancer sends everything to one replica at a time, switched by the test.
	proxies := []*httputil.ReverseProxy{httputil.NewSingleHostReverseProxy(urlA), httputil.NewSingleHostReverseProxy(urlB)}
	var current atomic.Int32
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxies[current.Load()].ServeHTTP(w, r)
	}))
	defer lb.Close()
	const slice = 64 << 10
	_, edgeURL := edgeInFrontWith(t, lb.URL, nil, func(c *edge.Config) {
		c.SliceSize = slice
		c.SliceThreshold = slice
	})

	get := func(path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, edgeURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	// Revalidation: the playlist is stored from A, then revalidated (a client's no-cache)
	// against B, which must recognise it.
	const playlist = "/master.m3u8"
	if resp, _ := get(playlist); resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", playlist, resp.StatusCode)
	}
	current.Store(1)
	resp, body := get(playlist, "Cache-Control", "no-cache")
	want, _ := os.ReadFile(filepath.Join(dirA, "master.m3u8"))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("%s revalidated: %d, %d bytes", playlist, resp.StatusCode, len(body))
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
	if resp, body := get(media, "Range", fmt.Sprintf("bytes=0-%d", 2*slice-1)); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, file[:2*slice]) {
		t.Fatalf("first two slices via A: %d, %d bytes", resp.StatusCode, len(body))
	}
	if len(logA.take()) == 0 {
		t.Fatal("replica A was not asked for the first slices")
	}
	current.Store(1)
	resp, body = get(media, "Range", fmt.Sprintf("bytes=%d-%d", slice, 4*slice-1))
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, file[slice:4*slice]) {
		t.Errorf("slices 1–3, 1 stored from A and 2–3 from B: %d, %d bytes (want %d)", resp.StatusCode, len(body), 3*slice)
	}
	for _, r := range logB.take() {
		if strings.Contains(r, `range="bytes=0-`) || strings.Contains(r, fmt.Sprintf("range=\"bytes=%d-", slice)) {
			t.Errorf("replica B was asked again for a slice the edge had from A: %s", r)
		}
		if !strings.HasSuffix(r, "→ 206") {
			t.Errorf("replica B: %s, want 206", r)
		}
	}
	if got := logA.take(); len(got) > 0 {
		t.Errorf("replica A was asked %q while the balancer sent everything to B", got)
	}
	// Once more, all from the cache: one object, not two versions.
	logB.take()
	if resp, body := get(media, "Range", fmt.Sprintf("bytes=0-%d", 4*slice-1)); resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, file[:4*slice]) {
		t.Errorf("slices 0–3 from the cache: %d, %d bytes", resp.StatusCode, len(body))
	}
	if got := logB.take(); len(got) > 0 {
		t.Errorf("slices already stored were fetched again: %q", got)
	}
}
