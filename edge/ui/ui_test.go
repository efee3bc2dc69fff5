package ui

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge"
	"github.com/reelvideo/reel/internal/testkit"
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
// (origin bytes against client bytes among them) and one history point per sample of the
// edge's history, rates over the interval before it.
func TestStatsJSON(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	snap := edge.Snapshot{Time: t0.Add(2 * time.Second), Requests: map[string]int64{"hit": 6, "stale": 1, "revalidated": 1, "miss": 2},
		ResponseBytes: map[string]int64{"cache": 3000, "origin": 1000}, OriginRequests: 3, OriginBytes: 1000, Collapsed: 1,
		Prefetch: map[string]int64{"started": 2, "used": 1}, LivePrefetch: map[string]int64{"started": 2, "used": 2, "wasted": 0}, MemoryBytes: 4000, MemoryCapacity: 1 << 20,
		Top: []edge.TopObject{{Path: "/vod/seg.m4s", Requests: 5, Bytes: 2500}},
		History: []edge.Sample{
			{Time: t0},
			{Time: t0.Add(2 * time.Second), Requests: 10, Hits: 7, CacheBytes: 3000, OriginSent: 1000, OriginRequests: 3, OriginBytes: 1000, Collapsed: 1, MemoryBytes: 4000},
		}}
	h := Handler(Options{Stats: func() edge.Snapshot { return snap }})
	r := serve(h, "GET", "/_reel/api/stats")
	if r.code != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("stats: %d, Cache-Control %q", r.code, r.header.Get("Cache-Control"))
	}
	var got statsJSON
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"token", "Bearer", "purge"} {
		if strings.Contains(r.body, secret) {
			t.Fatalf("stats mention %q: %s", secret, r.body)
		}
	}
	tot := got.Totals
	near := func(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-9 }
	if tot.Requests != 10 || tot.Hits != 7 || !near(tot.HitRatio, 0.7) || !near(tot.ByteHitRatio, 0.75) ||
		!near(tot.OriginOffload, 0.7) || !near(tot.ByteOffload, 0.75) || !near(tot.PrefetchHitRatio, 0.75) {
		t.Fatalf("totals: %+v", tot)
	}
	if got.Counters.Top[0].Path != "/vod/seg.m4s" || got.Counters.MemoryBytes != 4000 {
		t.Fatalf("counters: %+v", got.Counters)
	}
	if len(got.History) != 1 {
		t.Fatalf("history: %d points, want 1", len(got.History))
	}
	p := got.History[0]
	if p.Seconds != 2 || p.RequestsPerSecond != 5 || p.HitsPerSecond != 3.5 || p.BytesPerSecond != 2000 ||
		p.CacheBytesPerSec != 1500 || p.OriginRequestsPS != 1.5 || p.OriginBytesPS != 500 || !near(p.HitRatio, 0.7) || !near(p.ByteHitRatio, 0.75) || p.MemoryBytes != 4000 {
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

// TestHistoryWindow: the charts get the configured minutes of the edge's samples, an idle
// spell as points at zero (not one long interval), and a gap (no samples) as no point.
func TestHistoryWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	var samples []edge.Sample
	for i := range 10 {
		samples = append(samples, edge.Sample{Time: t0.Add(time.Duration(i) * time.Second), Requests: 100})
	}
	samples[0].Requests = 0
	pts := points(samples, 3*time.Second)
	if len(pts) != 4 || !pts[3].Time.Equal(t0.Add(9*time.Second)) || pts[0].RequestsPerSecond != 0 {
		t.Fatalf("%d points: %+v", len(pts), pts)
	}
	if pts := points(nil, time.Minute); pts == nil || len(pts) != 0 {
		t.Fatalf("no samples: %#v, want an empty list", pts)
	}
}

// freshEdge is an edge that has served nothing yet (its origin is never asked), until the test
// ends.
func freshEdge(t *testing.T) *edge.Edge {
	t.Helper()
	cfg := edge.DefaultConfig()
	cfg.Origins = []edge.Origin{{Host: "*", URL: "http://127.0.0.1:1"}}
	e, err := edge.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestFreshEdgeStats: a fresh edge's stats — no request yet, no history — carry every list
// and table the page reads as [] or {}, never null (the page said "statistics unavailable
// (Cannot read properties of null …)" until a second sample came), and the edge samples its
// history on its own, with nobody asking.
func TestFreshEdgeStats(t *testing.T) {
	e := freshEdge(t)
	h := Handler(Options{Stats: e.Snapshot})
	var got struct {
		Counters map[string]json.RawMessage `json:"counters"`
		History  json.RawMessage            `json:"history"`
	}
	if err := json.Unmarshal([]byte(serve(h, "GET", "/_reel/api/stats").body), &got); err != nil {
		t.Fatal(err)
	}
	if string(got.History) != "[]" {
		t.Errorf("history: %s, want []", got.History)
	}
	for _, k := range []string{"requests", "response_bytes", "prefetch", "live_prefetch", "evictions", "removals", "top"} {
		if v := string(got.Counters[k]); v == "" || v == "null" {
			t.Errorf("counters.%s: %q, want [] or {}", k, v)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(e.Snapshot().History) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d samples after 20 s with nobody asking", len(e.Snapshot().History))
		}
		time.Sleep(100 * time.Millisecond)
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

// TestStatusPageFreshEdge: the status page in Chromium (e2e/play.mjs) on a fresh edge: its
// first refresh says "updated", not "statistics unavailable", the script logs no error, and the
// page shows the bytes pulled from the origin beside those sent to clients.
func TestStatusPageFreshEdge(t *testing.T) {
	node := testkit.RequireTool(t, "node")
	chromium := testkit.RequireTool(t, "chromium")
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: playwright-core (make ui): %v", err)
		}
		t.Skipf("no playwright-core (make ui): %v", err)
	}
	e := freshEdge(t)
	vendor, err := filepath.Abs("node_modules")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(Options{Stats: e.Snapshot, Vendor: vendor}))
	defer srv.Close()
	conf, _ := json.Marshal(map[string]any{"chromium": chromium, "base": srv.URL, "status": map[string]any{"path": "/_reel/status"}})
	confFile := filepath.Join(t.TempDir(), "play.json")
	if err := os.WriteFile(confFile, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("e2e", "play.mjs"), confFile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("play.mjs: %v\n%s", err, stderr.String())
	}
	var res struct {
		Fatal  string `json:"fatal"`
		Status *struct {
			FirstUpdated    string   `json:"firstUpdated"`
			OriginPulled    string   `json:"originPulled"`
			OriginPulledSub string   `json:"originPulledSub"`
			MemorySub       string   `json:"memorySub"`
			ConsoleErrors   []string `json:"consoleErrors"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Fatal != "" || res.Status == nil {
		t.Fatalf("play.mjs: %v %s\n%s\n%s", err, res.Fatal, out, stderr.String())
	}
	st := res.Status
	if !strings.HasPrefix(st.FirstUpdated, "updated") || len(st.ConsoleErrors) > 0 {
		t.Errorf("first refresh of a fresh edge's status page: %q, console errors %q", st.FirstUpdated, st.ConsoleErrors)
	}
	if st.OriginPulled != "0 B" || !strings.Contains(st.OriginPulledSub, "to clients") || !strings.Contains(st.MemorySub, "0 evicted") {
		t.Errorf("origin bytes tile %q %q, memory %q", st.OriginPulled, st.OriginPulledSub, st.MemorySub)
	}
}
