package ui

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge"
)

// fakeVendor makes a node_modules folder with stand-ins for the two player libraries.
func fakeVendor(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "node_modules")
	for name, rel := range vendorFiles {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("/* "+name+" */"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("not for clients"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var testPresentations = []Presentation{
	{Name: "vod", Kind: VOD, HLS: "/vod/master.m3u8", DASH: "/vod/manifest.mpd"},
	{Name: "demo", Kind: Live, HLS: "/live/demo/master.m3u8", DASH: "/live/demo/manifest.mpd", LowLatency: true},
	{Name: "elsewhere", Kind: VOD, HLS: "https://cdn.example.com/x/master.m3u8"},
}

type resp struct {
	code   int
	header http.Header
	body   string
}

func serve(h http.Handler, method, target string) resp {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return resp{rec.Code, rec.Result().Header, string(b)}
}

// TestRoutes: every route answers with its content type and the protective headers; what is
// not a route, not a method the page uses, or not one of the two vendor files is refused.
func TestRoutes(t *testing.T) {
	vendor := fakeVendor(t, t.TempDir())
	h := Handler(Options{Presentations: testPresentations, Vendor: vendor, Stats: func() edge.Snapshot { return edge.Snapshot{} }})
	for _, c := range []struct {
		method, path string
		code         int
		ctype        string
		contains     string
	}{
		{"GET", "/_reel/", 200, "text/html; charset=utf-8", `src="/_reel/app.js"`},
		{"HEAD", "/_reel/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/_reel/status", 200, "text/html; charset=utf-8", `id="status-panel"`},
		{"GET", "/_reel/app.js", 200, "text/javascript; charset=utf-8", "window.reel"},
		{"GET", "/_reel/style.css", 200, "text/css; charset=utf-8", ".tiles"},
		{"GET", "/_reel/api/presentations", 200, "application/json", `"low_latency":true`},
		{"GET", "/_reel/api/stats", 200, "application/json", `"counters"`},
		{"GET", "/_reel/vendor/hls.min.js", 200, "text/javascript; charset=utf-8", "hls.min.js"},
		{"GET", "/_reel/vendor/dash.all.min.js", 200, "text/javascript; charset=utf-8", "dash.all.min.js"},
		{"GET", "/_reel/vendor/secret.txt", 404, "text/plain; charset=utf-8", ""},
		{"GET", "/_reel/vendor/..%2fsecret.txt", 404, "text/plain; charset=utf-8", ""},
		{"GET", "/_reel/vendor/hls.js/dist/hls.min.js", 404, "text/plain; charset=utf-8", ""},
		{"GET", "/_reel/nothing", 404, "text/plain; charset=utf-8", ""},
		{"POST", "/_reel/api/stats", 405, "text/plain; charset=utf-8", ""},
		{"DELETE", "/_reel/", 405, "text/plain; charset=utf-8", ""},
		{"GET", "/_reel", 301, "", ""},
	} {
		r := serve(h, c.method, c.path)
		if r.code != c.code || (c.ctype != "" && r.header.Get("Content-Type") != c.ctype) || !strings.Contains(r.body, c.contains) {
			t.Errorf("%s %s: %d %q, body %.80q; want %d %q containing %q", c.method, c.path, r.code, r.header.Get("Content-Type"), r.body, c.code, c.ctype, c.contains)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no nosniff", c.method, c.path)
		}
		if strings.Contains(r.body, "not for clients") {
			t.Errorf("%s %s: served a file outside the vendor list", c.method, c.path)
		}
	}
	if r := serve(h, "GET", "/_reel"); r.header.Get("Location") != "/_reel/" {
		t.Errorf("/_reel redirects to %q", r.header.Get("Location"))
	}
	csp := serve(h, "GET", "/_reel/").header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "worker-src 'self' blob:", "connect-src 'self' https://cdn.example.com;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP allows unsafe sources: %q", csp)
	}
	if r := serve(h, "GET", "/_reel/app.js"); r.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("app.js Cache-Control %q", r.header.Get("Cache-Control"))
	}
}

// TestWithoutVendor: without the player libraries the page still loads, the vendor files are
// 404s that say how to install them, and the presentation list says so too.
func TestWithoutVendor(t *testing.T) {
	for _, vendor := range []string{"", filepath.Join(t.TempDir(), "node_modules")} {
		h := Handler(Options{Presentations: testPresentations, Vendor: vendor})
		if r := serve(h, "GET", "/_reel/"); r.code != 200 {
			t.Fatalf("page without vendor: %d", r.code)
		}
		if r := serve(h, "GET", "/_reel/vendor/hls.min.js"); r.code != 404 || !strings.Contains(r.body, "make ui") {
			t.Fatalf("vendor file without vendor: %d %q", r.code, r.body)
		}
		var p presentationsJSON
		if err := json.Unmarshal([]byte(serve(h, "GET", "/_reel/api/presentations").body), &p); err != nil {
			t.Fatal(err)
		}
		if p.Vendor || !strings.Contains(p.Hint, "make ui") || len(p.Presentations) != 3 {
			t.Fatalf("presentations without vendor: %+v", p)
		}
		if r := serve(h, "GET", "/_reel/api/stats"); r.code != 404 {
			t.Fatalf("stats without a source: %d", r.code)
		}
	}
}

// TestStatsJSON: the stats answer carries the snapshot as it was read, ratios over its totals
// and one history point per second of rates over the interval before it.
func TestStatsJSON(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	snaps := []edge.Snapshot{
		{Time: t0, Requests: map[string]int64{"hit": 0, "miss": 0}, ResponseBytes: map[string]int64{"cache": 0, "origin": 0}},
		{Time: t0.Add(500 * time.Millisecond), Requests: map[string]int64{"hit": 1, "miss": 1}}, // too soon: no point
		{Time: t0.Add(2 * time.Second), Requests: map[string]int64{"hit": 6, "stale": 1, "revalidated": 1, "miss": 2},
			ResponseBytes: map[string]int64{"cache": 3000, "origin": 1000}, OriginRequests: 3, OriginBytes: 1000, Collapsed: 1,
			Prefetch: map[string]int64{"started": 2, "used": 1}, LivePrefetch: map[string]int64{"started": 2, "used": 2, "wasted": 0}, MemoryBytes: 4000, MemoryCapacity: 1 << 20,
			Top: []edge.TopObject{{Path: "/vod/seg.m4s", Requests: 5, Bytes: 2500}}},
	}
	i := 0
	h := Handler(Options{Stats: func() edge.Snapshot { s := snaps[i]; i++; return s }})
	var got statsJSON
	for range snaps {
		r := serve(h, "GET", "/_reel/api/stats")
		if r.code != 200 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("stats: %d, Cache-Control %q", r.code, r.header.Get("Cache-Control"))
		}
		got = statsJSON{}
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"token", "Bearer", "purge"} {
			if strings.Contains(r.body, secret) {
				t.Fatalf("stats mention %q: %s", secret, r.body)
			}
		}
	}
	tot := got.Totals
	near := func(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-9 }
	if tot.Requests != 10 || tot.Hits != 7 || !near(tot.HitRatio, 0.7) || !near(tot.ByteHitRatio, 0.75) ||
		!near(tot.OriginOffload, 0.7) || !near(tot.PrefetchHitRatio, 0.75) {
		t.Fatalf("totals: %+v", tot)
	}
	if got.Counters.Top[0].Path != "/vod/seg.m4s" || got.Counters.MemoryBytes != 4000 {
		t.Fatalf("counters: %+v", got.Counters)
	}
	if len(got.History) != 1 {
		t.Fatalf("history: %d points, want 1 (the second sample came too soon)", len(got.History))
	}
	p := got.History[0]
	if p.Seconds != 2 || p.RequestsPerSecond != 5 || p.HitsPerSecond != 3.5 || p.BytesPerSecond != 2000 ||
		p.CacheBytesPerSec != 1500 || p.OriginRequestsPS != 1.5 || !near(p.HitRatio, 0.7) || !near(p.ByteHitRatio, 0.75) || p.MemoryBytes != 4000 {
		t.Fatalf("history point: %+v", p)
	}
}

// TestRatiosEmpty: nothing to divide by gives null ratios, not NaN (which JSON can't carry).
func TestRatiosEmpty(t *testing.T) {
	r := ratios(edge.Snapshot{})
	if r.HitRatio != nil || r.ByteHitRatio != nil || r.OriginOffload != nil || r.PrefetchHitRatio != nil {
		t.Fatalf("%+v", r)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryBounded: the history keeps the configured minutes, oldest dropped first.
func TestHistoryBounded(t *testing.T) {
	hi := &history{max: 3}
	t0 := time.Unix(0, 0)
	var pts []Point
	for i := 0; i < 10; i++ {
		pts = hi.add(edge.Snapshot{Time: t0.Add(time.Duration(i) * time.Second)})
	}
	if len(pts) != 3 || !pts[2].Time.Equal(t0.Add(9*time.Second)) {
		t.Fatalf("%d points, last %v", len(pts), pts[len(pts)-1].Time)
	}
}

// TestFindVendor: found from the working directory inside a checkout, refused when a file
// is missing.
func TestFindVendor(t *testing.T) {
	root := t.TempDir()
	vendor := fakeVendor(t, filepath.Join(root, "edge", "ui"))
	sub := filepath.Join(root, "cmd", "reel")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	got, err := FindVendor()
	if err != nil || got != vendor {
		t.Fatalf("FindVendor from %s: %q, %v; want %q", sub, got, err, vendor)
	}
	os.Remove(filepath.Join(vendor, filepath.FromSlash(vendorFiles["dash.all.min.js"])))
	if err := CheckVendor(vendor); err == nil || !strings.Contains(err.Error(), "make ui") {
		t.Fatalf("CheckVendor with a library missing: %v", err)
	}
}

// TestWithEdge: the stats the page gets are the edge's snapshot.
func TestWithEdge(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "segment")
	}))
	defer origin.Close()
	cfg := edge.DefaultConfig()
	cfg.Memory = 16 << 20
	cfg.Origins = []edge.Origin{{Host: "*", URL: origin.URL}}
	e, err := edge.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	mux := http.NewServeMux()
	mux.Handle(Prefix, Handler(Options{Stats: e.Snapshot}))
	mux.Handle("/", e.TrackTopObjects(e))
	for range 3 {
		serve(mux, "GET", "/vod/seg_1.m4s")
	}
	var got statsJSON
	if err := json.Unmarshal([]byte(serve(mux, "GET", "/_reel/api/stats").body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Totals.Requests != 3 || got.Totals.Hits != 2 || got.Counters.OriginRequests != 1 ||
		len(got.Counters.Top) != 1 || got.Counters.Top[0].Path != "/vod/seg_1.m4s" {
		t.Fatalf("stats through the edge: %+v %+v", got.Totals, got.Counters)
	}
}
