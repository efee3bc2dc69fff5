package edge

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestDiskTier: an object too large for the memory tier is filled to a file, served from it
// (with ranges), and — like every stored object — found again by an edge restarted on the same
// folder.
func TestDiskTier(t *testing.T) {
	big := make([]byte, 3<<20)
	rand.Read(big)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"big1"`)
		w.Header().Set("Surrogate-Key", "big-tag")
		if r.URL.Path == "/small" {
			w.Write([]byte("small"))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		w.Write(big)
	})
	dir := t.TempDir()
	withDisk := func(c *Config) {
		c.Memory = 8 << 20 // objects over 1 MiB skip memory
		c.CacheDir = dir
		c.Disk = 64 << 20
	}
	e, srv := newEdge(t, o.URL, withDisk)
	e.tiers.disk.SetMinFree(0)
	if r := get(t, srv.URL+"/big", "Host", "cdn.test"); r.body != string(big) || !strings.Contains(r.cacheStatus(), "fwd=uri-miss") {
		t.Fatalf("first: %d bytes, %q", len(r.body), r.cacheStatus())
	}
	get(t, srv.URL+"/small", "Host", "cdn.test")
	if _, ok := e.tiers.mem.Lookup(e.keyOfURL(mustURL(t, "http://cdn.test/big"), nil)); ok {
		t.Fatal("a 3 MiB object went into an 8 MiB memory tier")
	}
	r := get(t, srv.URL+"/big", "Range", "bytes=1000-1999", "Host", "cdn.test")
	if r.status != http.StatusPartialContent || r.body != string(big[1000:2000]) || !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("range from disk: %d %q", r.status, r.cacheStatus())
	}
	if o.hits.Load() != 2 {
		t.Fatalf("origin saw %d requests, want 2", o.hits.Load())
	}
	srv.Close()
	e.Close()

	// Restart on the same folder: both objects are hits, the origin is not asked again.
	e2, srv2 := newEdge(t, o.URL, withDisk)
	defer e2.Close()
	for _, p := range []string{"/big", "/small"} {
		r := get(t, srv2.URL+p, "Host", "cdn.test")
		if !strings.Contains(r.cacheStatus(), "hit") {
			t.Fatalf("%s after restart: %q", p, r.cacheStatus())
		}
	}
	if r := get(t, srv2.URL+"/big", "Host", "cdn.test"); !bytes.Equal([]byte(r.body), big) {
		t.Fatal("body changed across restart")
	}
	if o.hits.Load() != 2 {
		t.Fatalf("origin saw %d requests after restart, want still 2", o.hits.Load())
	}
	// Surrogate keys survive too: purging the tag after the restart reaches both objects.
	if n := len(e2.tiers.tags.take("big-tag")); n != 2 {
		t.Fatalf("tag index after restart holds %d objects, want 2", n)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestPurgeReachesDisk: hard purge, soft purge and invalidation after a POST act on the disk
// tier too, and a soft purge also holds under a per-path TTL rule.
func TestPurgeReachesDisk(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "v%d", version.Load())
	})
	e, srv := newEdge(t, o.URL, func(c *Config) {
		c.CacheDir, c.Disk, c.Memory = t.TempDir(), 64<<20, 8<<20
		c.Rules = []Rule{{PathPrefix: "/ttl/", TTL: time.Hour}}
	})
	e.tiers.disk.SetMinFree(0)
	admin := httptest.NewServer(e.AdminHandler("t"))
	defer admin.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	purge := func(query string) {
		if code, body := adminCall(t, "POST", admin.URL+"/purge?"+query, "t"); code != 200 {
			t.Fatalf("purge %s: %d %s", query, code, body)
		}
	}
	for _, p := range []string{"/hard", "/soft", "/post", "/ttl/x"} {
		get(t, srv.URL+p)
	}
	version.Store(2)
	purge("url=" + url.QueryEscape("http://"+host+"/hard"))
	purge("mode=soft&url=" + url.QueryEscape("http://"+host+"/soft"))
	purge("mode=soft&url=" + url.QueryEscape("http://"+host+"/ttl/x"))
	do(t, http.MethodPost, srv.URL+"/post")
	for _, p := range []string{"/hard", "/soft", "/post", "/ttl/x"} {
		if r := get(t, srv.URL+p); r.body != "v2" {
			t.Errorf("%s after purge: %q %q", p, r.body, r.cacheStatus())
		}
	}
}
