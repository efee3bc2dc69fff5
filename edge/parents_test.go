package edge

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRendezvousMovesOnlyNewOwnersKeys checks the property the shield tier rests on: adding a
// parent to N moves about 1/(N+1) of the keys, all of them to the new parent, and the ranking
// doesn't depend on the order the parents are listed in.
func TestRendezvousMovesOnlyNewOwnersKeys(t *testing.T) {
	set := func(urls ...string) *parentSet {
		cfg := DefaultConfig()
		cfg.Parents.URLs = urls
		e := &Edge{cfg: cfg, m: newMetrics(func() float64 { return 0 }, func() float64 { return 0 })}
		s, err := newParentSet(cfg, e.m, nil, e.newUpstream)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	two := set("http://10.0.0.1:8081", "http://10.0.0.2:8081")
	three := set("http://10.0.0.3:8081", "http://10.0.0.2:8081", "http://10.0.0.1:8081")
	const keys = 20000
	moved, toNew := 0, 0
	share := map[string]int{}
	for i := range keys {
		k := fmt.Sprintf("http://example.com/vod/seg-%d.m4s", i)
		before, after := two.rank(k)[0].id, three.rank(k)[0].id
		share[after]++
		if before != after {
			moved++
			if after == "http://10.0.0.3:8081" {
				toNew++
			}
		}
	}
	frac := float64(moved) / keys
	t.Logf("2 → 3 parents: %.3f of %d keys moved (ideal 1/3); shares %v", frac, keys, share)
	if moved != toNew {
		t.Errorf("%d keys moved between old parents; only the new parent may take keys", moved-toNew)
	}
	// Binomial(20000, 1/3): the standard deviation is 0.0033; 0.02 is six of them.
	if frac < 1.0/3-0.02 || frac > 1.0/3+0.02 {
		t.Errorf("moved fraction %.3f, want about 1/3", frac)
	}
	for id, n := range share {
		if f := float64(n) / keys; f < 1.0/3-0.02 || f > 1.0/3+0.02 {
			t.Errorf("%s owns %.3f of the keys, want about 1/3", id, f)
		}
	}
	// The same order for the same set, however listed.
	reordered := set("http://10.0.0.2:8081", "http://10.0.0.1:8081", "http://10.0.0.3:8081")
	for i := range 1000 {
		k := fmt.Sprintf("/k%d", i)
		a, b := three.rank(k), reordered.rank(k)
		for j := range a {
			if a[j].id != b[j].id {
				t.Fatalf("key %s ranked differently when the parents are listed in another order", k)
			}
		}
	}
}

// shieldNode is an in-process reel edge used as a parent: its health can be failed on
// demand, and it counts the requests it gets.
type shieldNode struct {
	*Edge
	URL      string
	sick     atomic.Bool
	requests atomic.Int64
}

func newShield(t *testing.T, name, origin string) *shieldNode {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Memory = 64 << 20
	cfg.Name = name
	cfg.Origins = []Origin{{Host: "*", URL: origin}}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &shieldNode{Edge: e}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == HealthPath && s.sick.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != HealthPath {
			s.requests.Add(1)
		}
		e.ServeHTTP(w, r)
	}), cfg, nil)
	go srv.Serve(ln)
	s.URL = "http://" + ln.Addr().String()
	t.Cleanup(func() { srv.Close(); e.Close() })
	return s
}

// newChild is an edge whose parents are the given shields.
func newChild(t *testing.T, name, origin string, change func(*Config), shields ...*shieldNode) (*Edge, *edgeServer) {
	t.Helper()
	e, srv := newEdge(t, origin, func(c *Config) {
		c.Name = name
		c.Parents.HealthInterval = 50 * time.Millisecond
		for _, s := range shields {
			c.Parents.URLs = append(c.Parents.URLs, s.URL)
		}
		if change != nil {
			change(c)
		}
	})
	t.Cleanup(func() { e.Close() })
	return e, srv
}

// owner is the shield a child sends path to first.
func owner(t *testing.T, child *Edge, host, path string, shields ...*shieldNode) *shieldNode {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, "http://"+host+path, nil)
	first := child.parents.rank(child.keyOf(r))[0]
	for _, s := range shields {
		if s.URL == first.id {
			return s
		}
	}
	t.Fatalf("no shield at %s", first.id)
	return nil
}

// TestShieldTier: a miss at an edge goes to the shield owning the object, which fetches it
// once; Cache-Status lists each hop's member, the shield's first (RFC 9211 §2: caches nearer
// the origin come first); a rule keeps a path off the shield.
func TestShieldTier(t *testing.T) {
	origin := newOrigin(t, cacheable("segment", "max-age=60"))
	s1, s2 := newShield(t, "shield-1", origin.URL), newShield(t, "shield-2", origin.URL)
	off := false
	child, srv := newChild(t, "edge-1", origin.URL, func(c *Config) {
		c.Rules = []Rule{{PathPrefix: "/api/", Parent: &off}}
	}, s1, s2)
	host := strings.TrimPrefix(srv.URL, "http://")

	// Three objects owned by each shield (the spread itself is TestRendezvous…'s business:
	// shields listen on random ports, so a fixed handful of paths may all fall to one).
	var paths []string
	for i, per := 0, map[*shieldNode]int{}; len(paths) < 6 && i < 1000; i++ {
		path := fmt.Sprintf("/vod/seg-%d.m4s", i)
		if own := owner(t, child, host, path, s1, s2); per[own] < 3 {
			per[own]++
			paths = append(paths, path)
		}
	}
	for _, path := range paths {
		own := owner(t, child, host, path, s1, s2)
		before := own.requests.Load()
		r := get(t, srv.URL+path)
		if r.status != 200 || r.body != "segment" {
			t.Fatalf("%s: %d %q", path, r.status, r.body)
		}
		name := own.Edge.name
		want := name + "; fwd=uri-miss; fwd-status=200; stored, edge-1; fwd=uri-miss; fwd-status=200; stored"
		if got := r.cacheStatus(); got != want {
			t.Errorf("%s: Cache-Status %q, want %q", path, got, want)
		}
		if own.requests.Load() != before+1 {
			t.Errorf("%s: its owner %s got %d requests, want 1", path, name, own.requests.Load()-before)
		}
		if got := get(t, srv.URL+path).cacheStatus(); !strings.HasPrefix(got, name+"; fwd=uri-miss") || !strings.Contains(got, "edge-1; hit") {
			t.Errorf("%s second time: Cache-Status %q, want the shield's stored member then edge-1's hit", path, got)
		}
	}
	if n := origin.hits.Load(); n != 6 {
		t.Errorf("origin got %d requests for 6 objects", n)
	}
	if s1.requests.Load() != 3 || s2.requests.Load() != 3 {
		t.Errorf("shields got %d and %d requests, want 3 each (their own objects)", s1.requests.Load(), s2.requests.Load())
	}

	// /api/ goes straight to the origin.
	sum := s1.requests.Load() + s2.requests.Load()
	if r := get(t, srv.URL+"/api/x"); r.status != 200 || strings.Contains(r.cacheStatus(), "shield") {
		t.Errorf("/api/x: %d, Cache-Status %q: want the origin's answer without a shield", r.status, r.cacheStatus())
	}
	if s1.requests.Load()+s2.requests.Load() != sum {
		t.Error("a parent: false path went to a shield")
	}
	// The origin saw both hops' Via entries for a shielded object, the edge's only for /api/.
	if via := origin.lastReq.Load().(*http.Request).Header.Values("Via"); len(via) != 1 || via[0] != "1.1 edge-1" {
		t.Errorf("origin saw Via %q for /api/x, want only the edge's", via)
	}
}

// TestShieldCoalescing: concurrent misses at several edges for one cold object meet at its
// owner and become one origin request.
func TestShieldCoalescing(t *testing.T) {
	release := make(chan struct{})
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", fmt.Sprint(100<<10))
		io.WriteString(w, strings.Repeat("x", 100<<10))
	})
	s1, s2 := newShield(t, "shield-1", origin.URL), newShield(t, "shield-2", origin.URL)
	var edges []*edgeServer
	var children []*Edge
	for i := range 3 {
		e, srv := newChild(t, fmt.Sprintf("edge-%d", i+1), origin.URL, nil, s1, s2)
		edges, children = append(edges, srv), append(children, e)
	}
	const clients = 60
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One site's host at every edge, as a CDN's clients send it.
			req, _ := http.NewRequest(http.MethodGet, edges[i%3].URL+"/vod/cold.m4s", nil)
			req.Host = "cdn.example"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(b) != 100<<10 {
				errs <- fmt.Errorf("status %d, %d bytes", resp.StatusCode, len(b))
			}
		}()
	}
	// Every edge's fill has reached the shield before the origin answers.
	waitUntil(t, func() bool {
		n := int64(0)
		for _, e := range children {
			n += e.stats.Collapsed.Load()
		}
		return n == clients-3
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := origin.hits.Load(); n != 1 {
		t.Errorf("origin got %d requests for %d clients on 3 edges; want 1", n, clients)
	}
	if a, b := s1.requests.Load(), s2.requests.Load(); a+b != 3 || (a != 0 && b != 0) {
		t.Errorf("shields got %d and %d requests; want 3 at the owner, 0 at the other", a, b)
	}
}

// TestShieldFailover: a parent that refuses connections or fails its health check is passed
// over — its objects go to their next owner — and comes back when it is healthy again; with
// every parent down, requests go to the origin, or fail when direct_fallback is off.
func TestShieldFailover(t *testing.T) {
	origin := newOrigin(t, cacheable("body", "max-age=60"))
	s1, s2 := newShield(t, "shield-1", origin.URL), newShield(t, "shield-2", origin.URL)
	// A parent nobody listens on: its port was free a moment ago.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := &shieldNode{URL: "http://" + ln.Addr().String()}
	ln.Close()
	// An object the dead parent owns is answered through its next owner, at once: the
	// refused connection marks the parent down without waiting for a health check.
	passive, psrv := newChild(t, "edge-0", origin.URL, func(c *Config) { c.Parents.HealthInterval = time.Hour }, s1, s2, dead)
	path := ""
	for i := 0; path == "" && i < 1000; i++ {
		if p := fmt.Sprintf("/d/%d", i); owner(t, passive, strings.TrimPrefix(psrv.URL, "http://"), p, s1, s2, dead) == dead {
			path = p
		}
	}
	if path == "" {
		t.Fatal("the dead parent owns none of 1000 keys")
	}
	if r := get(t, psrv.URL+path); r.status != 200 || !strings.Contains(r.cacheStatus(), "shield-") {
		t.Fatalf("object of a dead parent: %d, Cache-Status %q", r.status, r.cacheStatus())
	}
	if passive.parents.parents()[2].healthy.Load() {
		t.Error("a parent refusing connections is still taken for healthy")
	}

	child, srv := newChild(t, "edge-1", origin.URL, nil, s1, s2, dead)

	// A parent failing its health checks is passed over; back in once it passes them.
	s1.sick.Store(true)
	waitUntil(t, func() bool { return !child.parents.parents()[0].healthy.Load() })
	for i := range 10 {
		r := get(t, srv.URL+fmt.Sprintf("/h/%d", i))
		if r.status != 200 || strings.Contains(r.cacheStatus(), "shield-1") {
			t.Errorf("/h/%d with shield-1 sick: %d, Cache-Status %q", i, r.status, r.cacheStatus())
		}
	}
	// The admin API and /metrics tell which parents are up.
	admin := httptest.NewServer(child.AdminHandler("tok"))
	defer admin.Close()
	if r := get(t, admin.URL+"/stats", "Authorization", "Bearer tok"); !strings.Contains(r.body, `"parents":3`) || !strings.Contains(r.body, `"parents_up":1`) {
		t.Errorf("/stats with shield-1 sick and a dead parent: %s", r.body)
	}
	if r := get(t, admin.URL+"/metrics", "Authorization", "Bearer tok"); !strings.Contains(r.body, `reel_edge_parent_up{parent="`+s1.URL+`"} 0`) ||
		!strings.Contains(r.body, `reel_edge_parent_up{parent="`+s2.URL+`"} 1`) {
		t.Errorf("/metrics does not show shield-1 down and shield-2 up")
	}
	s1.sick.Store(false)
	waitUntil(t, func() bool { return child.parents.parents()[0].healthy.Load() })

	// Every parent down: straight to the origin…
	s1.sick.Store(true)
	s2.sick.Store(true)
	waitUntil(t, func() bool {
		return !child.parents.parents()[0].healthy.Load() && !child.parents.parents()[1].healthy.Load()
	})
	if r := get(t, srv.URL+"/all-down"); r.status != 200 || r.cacheStatus() != "edge-1; fwd=uri-miss; fwd-status=200; stored" {
		t.Errorf("all parents down: %d, Cache-Status %q, want the origin's answer", r.status, r.cacheStatus())
	}
	// …or refused when the origin takes only the shield tier.
	_, strict := newChild(t, "edge-2", origin.URL, func(c *Config) { c.Parents.DirectFallback = false }, dead)
	if r := get(t, strict.URL+"/strict"); r.status != http.StatusBadGateway || !strings.Contains(r.body, "no parent") {
		t.Errorf("no parent, no fallback: %d %q, want 502 naming the parents", r.status, r.body)
	}
}

// TestLoopGuard: two edges configured as each other's origin refuse the request when it comes
// back (RFC 8586) instead of bouncing it or waiting on their own fill.
func TestLoopGuard(t *testing.T) {
	lnA, _ := net.Listen("tcp", "127.0.0.1:0")
	lnB, _ := net.Listen("tcp", "127.0.0.1:0")
	start := func(name string, ln net.Listener, origin net.Listener) {
		cfg := DefaultConfig()
		cfg.Memory = 16 << 20
		cfg.Name = name
		cfg.Origins = []Origin{{Host: "*", URL: "http://" + origin.Addr().String()}}
		e, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(e, cfg, nil)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close(); e.Close() })
	}
	start("a", lnA, lnB)
	start("b", lnB, lnA)
	r := get(t, "http://"+lnA.Addr().String()+"/x")
	if r.status != http.StatusLoopDetected {
		t.Fatalf("looping request: %d %q, want 508", r.status, r.body)
	}

	// A request carrying too many reel hops is refused too, whoever marked them.
	_, srv := newEdge(t, "http://127.0.0.1:1", nil)
	hops := strings.TrimSuffix(strings.Repeat("reel; node=x, ", maxHops), ", ")
	if r := get(t, srv.URL+"/y", "CDN-Loop", hops); r.status != http.StatusLoopDetected {
		t.Errorf("%d reel hops: %d, want 508", maxHops, r.status)
	}
	// Other CDNs' members are not counted.
	origin := newOrigin(t, cacheable("ok", "max-age=60"))
	_, srv = newEdge(t, origin.URL, nil)
	if r := get(t, srv.URL+"/z", "CDN-Loop", "cdn-a, cdn-b; node=1, reel; node=x"); r.status != 200 {
		t.Errorf("a request through other CDNs: %d", r.status)
	}
	if got := origin.lastReq.Load().(*http.Request).Header.Values("Cdn-Loop"); len(got) != 2 || !strings.HasPrefix(got[1], "reel; node=") {
		t.Errorf("origin saw CDN-Loop %q, want the client's line then ours", got)
	}
}

// TestHealthEndpoint: every edge answers its health path, never cached.
func TestHealthEndpoint(t *testing.T) {
	origin := newOrigin(t, cacheable("x", "max-age=60"))
	_, srv := newEdge(t, origin.URL, nil)
	r := get(t, srv.URL+HealthPath)
	if r.status != 200 || r.body != "ok\n" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("health: %d %q %q", r.status, r.body, r.header.Get("Cache-Control"))
	}
	if origin.hits.Load() != 0 {
		t.Error("the health check reached the origin")
	}
}

// FuzzLooped: any CDN-Loop field lines (outside bytes) are read without panicking, and lines
// carrying this edge's own member are always recognised as a loop.
func FuzzLooped(f *testing.F) {
	f.Add("cdn-a, reel; node=0011223344556677", "")
	f.Add("reel,reel,,;;reel ; x", "reel; node=\"a,b\"")
	e := &Edge{loopID: newLoopID()}
	f.Fuzz(func(t *testing.T, a, b string) {
		e.looped([]string{a, b})
		if !e.looped([]string{a, b + ", " + cdnID + "; node=" + e.loopID}) {
			t.Fatal("own member not recognised")
		}
	})
}

// TestShieldOverTLS: parents reached over HTTPS are verified against parents.ca_file and
// spoken to in HTTP/2 (RFC 9113 §3.2, ALPN); an untrusted parent is passed over like an
// unreachable one.
func TestShieldOverTLS(t *testing.T) {
	origin := newOrigin(t, cacheable("segment", "max-age=60"))
	pki := newTestPKI(t)
	cert := pki.issue(t, []string{"127.0.0.1"}, false, time.Now().Add(time.Hour))
	shield := newShield(t, "shield-tls", origin.URL)
	var protos sync.Map
	var probes atomic.Int64
	tlsShield := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos.Store(r.Proto, true)
		if r.URL.Path == "/_reel/health" {
			probes.Add(1)
		}
		shield.Edge.ServeHTTP(w, r)
	}))
	tlsShield.EnableHTTP2 = true
	tlsShield.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsShield.StartTLS()
	defer tlsShield.Close()

	e, srv := newEdge(t, origin.URL, func(c *Config) {
		c.Name = "edge-1"
		c.Parents.URLs = []string{tlsShield.URL}
		c.Parents.CAFile = pki.caFile
		c.Parents.DirectFallback = false
		c.Parents.HealthInterval = 100 * time.Millisecond
	})
	t.Cleanup(func() { e.Close() })
	r := get(t, srv.URL+"/seg.m4s")
	if r.status != 200 || !strings.HasPrefix(r.cacheStatus(), "shield-tls; fwd=uri-miss") {
		t.Fatalf("via an HTTPS shield: %d, Cache-Status %q", r.status, r.cacheStatus())
	}
	if _, ok := protos.Load("HTTP/2.0"); !ok {
		t.Error("the edge did not speak HTTP/2 to its HTTPS parent")
	}
	// Its health probes trust the same CA: the parent passes them and stays in use (probes
	// without the CA failed at the handshake and marked it down a moment after start).
	waitUntil(t, func() bool { return probes.Load() >= 2 })
	if r := get(t, srv.URL+"/seg2.m4s"); r.status != 200 || !strings.HasPrefix(r.cacheStatus(), "shield-tls; fwd=uri-miss") {
		t.Fatalf("via the HTTPS shield after its health probes: %d, Cache-Status %q", r.status, r.cacheStatus())
	}

	// Without the CA, the parent's certificate is not trusted: no answer through it.
	e2, untrusting := newEdge(t, origin.URL, func(c *Config) {
		c.Parents.URLs = []string{tlsShield.URL}
		c.Parents.DirectFallback = false
	})
	t.Cleanup(func() { e2.Close() })
	if r := get(t, untrusting.URL+"/seg.m4s"); r.status != http.StatusBadGateway {
		t.Errorf("untrusted parent: %d %q, want 502", r.status, r.body)
	}
}
