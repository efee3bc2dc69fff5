package edge

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape reads the edge's /metrics (through the admin API) into "name{labels}" → value.
func scrape(t *testing.T, adminURL string) map[string]float64 {
	t.Helper()
	code, body := adminCall(t, "GET", adminURL+"/metrics", "tok")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestSnapshotAgreesWithMetrics: every number of a Snapshot is the value /metrics exports for
// its series, and TrackTopObjects counts requests and bytes by path without changing what
// clients get (a hit through it still goes out on the server's wire path, with Age).
func TestSnapshotAgreesWithMetrics(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, strings.Repeat("x", len(r.URL.Path)*100))
	})
	cfg := DefaultConfig()
	cfg.Memory = 64 << 20
	cfg.Origins = []Origin{{Host: "*", URL: o.URL}}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(e.TrackTopObjects(e), cfg, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); e.Close() })
	base := "http://" + ln.Addr().String()
	admin := httptest.NewServer(e.AdminHandler("tok"))
	defer admin.Close()

	for i := 0; i < 4; i++ {
		r := get(t, base+"/popular")
		if i > 0 && (!strings.Contains(r.cacheStatus(), "hit") || r.header.Get("Age") == "") {
			t.Fatalf("request %d through TrackTopObjects: Cache-Status %q, Age %q", i, r.cacheStatus(), r.header.Get("Age"))
		}
	}
	get(t, base+"/rare")
	get(t, base+"/popular", "Range", "bytes=0-9")

	// A request is counted when its handler returns, which may be just after the client has
	// read the whole response.
	waitUntil(t, func() bool {
		s := e.Snapshot()
		return s.Requests["hit"]+s.Requests["miss"] == 6 && len(s.Top) > 0 && s.Top[0].Requests >= 4.9
	})
	s := e.Snapshot()
	m := scrape(t, admin.URL)
	check := func(name string, got int64) {
		t.Helper()
		if want, ok := m[name]; !ok || float64(got) != want {
			t.Errorf("%s: snapshot %d, /metrics %v (present %v)", name, got, want, ok)
		}
	}
	for label, v := range s.Requests {
		check(fmt.Sprintf(`reel_edge_requests_total{cache=%q}`, label), v)
	}
	for source, v := range s.ResponseBytes {
		check(fmt.Sprintf(`reel_edge_response_bytes_total{source=%q}`, source), v)
	}
	check("reel_edge_origin_requests_total", s.OriginRequests)
	check("reel_edge_origin_bytes_total", s.OriginBytes)
	check("reel_edge_collapsed_requests_total", s.Collapsed)
	check(`reel_edge_slice_prefetch_total{result="started"}`, s.Prefetch["started"])
	check(`reel_edge_store_bytes{tier="memory"}`, s.MemoryBytes)
	check(`reel_edge_store_bytes{tier="disk"}`, s.DiskBytes)
	if s.Requests["hit"] != 4 || s.Requests["miss"] != 2 || s.OriginRequests != 2 {
		t.Errorf("requests %v, origin requests %d: want 4 hits, 2 misses, 2 origin requests", s.Requests, s.OriginRequests)
	}
	if s.MemoryCapacity != 64<<20 || s.DiskCapacity != 0 || s.MemoryBytes == 0 {
		t.Errorf("tiers: memory %d of %d, disk capacity %d", s.MemoryBytes, s.MemoryCapacity, s.DiskCapacity)
	}
	if len(s.Top) != 2 || s.Top[0].Path != "/popular" || s.Top[1].Path != "/rare" {
		t.Fatalf("top objects: %+v", s.Top)
	}
	// Counts fade by half a minute: the 2% allowed both covers a second and more of a busy
	// machine between the requests and this snapshot.
	if p := s.Top[0]; p.Requests < 4.9 || p.Requests > 5 || p.Bytes < 0.98*(4*800+10) || p.Bytes > 4*800+10 {
		t.Errorf("/popular: %.2f requests, %.0f bytes; want 5 and %d (decay aside)", p.Requests, p.Bytes, 4*800+10)
	}
}

// TestTopObjectsBounded: past topBusyRate requests a second one request in topSampleEvery is
// tracked (weighted), at most topTracked paths are held, and counts fade with time.
func TestTopObjectsBounded(t *testing.T) {
	var s statusState
	t0 := time.Unix(1_000_000, 0)
	for i := 0; i < 2*topBusyRate; i++ {
		s.observe("/hot", 100, 1, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if s.busy.Load() {
		t.Fatal("busy before the second ended")
	}
	s.observe("/hot", 100, 1, t0.Add(time.Second))
	if !s.busy.Load() {
		t.Fatal("not sampling after a busy second")
	}
	s.observe("/hot", 100, 1, t0.Add(3*time.Second)) // a quiet second in between
	if s.busy.Load() {
		t.Fatal("still sampling after a quiet second")
	}
	for i := 0; i < 3*topTracked; i++ {
		s.observe(fmt.Sprintf("/cold/%d", i), 1, 1, t0.Add(3*time.Second))
	}
	if len(s.objects) > topTracked {
		t.Fatalf("%d paths held", len(s.objects))
	}
	top := s.top(t0.Add(3 * time.Second))
	const hot = 2*topBusyRate + 2 // requests to /hot, within 3 s: a few percent faded
	if len(top) != topShown || top[0].Path != "/hot" || top[0].Requests > hot || top[0].Requests < 0.95*hot {
		t.Fatalf("top: %+v", top[:1])
	}
	before := top[0].Requests
	top = s.top(t0.Add(3*time.Second + topHalfLife))
	if r := top[0].Requests; math.Abs(r-before/2) > 1e-6 {
		t.Fatalf("after a half-life: %.3f requests, want %.3f", r, before/2)
	}
	if len(s.top(t0.Add(time.Hour))) != 0 {
		t.Fatal("an hour later paths are still listed")
	}
	s.observe(strings.Repeat("/long", 100), 1, 1, t0.Add(time.Hour))
	if top := s.top(t0.Add(time.Hour)); len(top[0].Path) != topMaxPath {
		t.Fatalf("a long path is kept at %d bytes", len(top[0].Path))
	}
}

// TestSnapshotRemovalsByCause: an object replaced by a refresh (a live manifest's, every
// second) is not an eviction: Evictions counts what left a tier to make room, Removals every
// cause apart, as reel_edge_evictions_total{tier,cause} does.
func TestSnapshotRemovalsByCause(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refreshed" {
			w.Header().Set("Cache-Control", "max-age=0")
			w.Header().Set("ETag", `"v1"`)
			io.WriteString(w, "playlist")
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, strings.Repeat("x", 100<<10))
	})
	e, srv := newEdge(t, o.URL, func(c *Config) { c.Memory = 1 << 20 })
	t.Cleanup(func() { e.Close() })
	for range 3 {
		get(t, srv.URL+"/refreshed")
	}
	waitUntil(t, func() bool { return e.Snapshot().Removals["memory"]["replaced"] >= 2 })
	if s := e.Snapshot(); s.Evictions["memory"] != 0 {
		t.Errorf("refreshes counted as evictions: %v (removals %v)", s.Evictions, s.Removals)
	}
	for i := range 30 { // 3 MB through a 1 MiB tier
		get(t, fmt.Sprintf("%s/big/%d", srv.URL, i))
	}
	waitUntil(t, func() bool { return e.Snapshot().Evictions["memory"] > 0 })
	s := e.Snapshot()
	if s.Evictions["memory"] != s.Removals["memory"]["size"] || s.Removals["memory"]["replaced"] < 2 {
		t.Errorf("evictions %v, removals %v: want evictions = removals by size", s.Evictions, s.Removals)
	}
}

// TestHistorySampled: the edge samples its counters every second on its own — nobody reads
// them in between — into a bounded ring, oldest first.
func TestHistorySampled(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	e, srv := newEdge(t, o.URL, nil)
	t.Cleanup(func() { e.Close() })
	get(t, srv.URL+"/a")
	deadline := time.Now().Add(20 * time.Second)
	for len(e.status.samples.read()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d samples after 20 s", len(e.status.samples.read()))
		}
		time.Sleep(100 * time.Millisecond)
	}
	h := e.Snapshot().History
	for i := 1; i < len(h); i++ {
		if !h[i].Time.After(h[i-1].Time) || h[i].Requests < h[i-1].Requests {
			t.Fatalf("samples out of order: %+v", h)
		}
	}
	if last := h[len(h)-1]; last.Requests != 1 || last.OriginRequests != 1 {
		t.Errorf("last sample %+v, want the one request", last)
	}

	var r sampleRing
	t0 := time.Unix(0, 0)
	for i := range historyLength + 5 {
		r.add(Sample{Time: t0.Add(time.Duration(i) * time.Second)})
	}
	got := r.read()
	if len(got) != historyLength || !got[0].Time.Equal(t0.Add(5*time.Second)) || !got[len(got)-1].Time.Equal(t0.Add((historyLength+4)*time.Second)) {
		t.Fatalf("ring of %d: first %v, last %v", len(got), got[0].Time, got[len(got)-1].Time)
	}
}
