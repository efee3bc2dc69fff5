package edge

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// holdingOrigin is an origin answering with h, where a request carrying X-Hold (a field not in
// the key, forwarded) first waits for release — called at the latest by the test's cleanup, so
// that a failing test never leaves the origin server waiting on it.
func holdingOrigin(t *testing.T, h http.HandlerFunc) (o *testOrigin, release func()) {
	held := make(chan struct{})
	o = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			<-held
		}
		h(w, r)
	})
	release = sync.OnceFunc(func() { close(held) })
	t.Cleanup(release) // before the origin's own Close (cleanups run last first)
	return o, release
}

// ccOrigin is a holdingOrigin answering every path with a fresh, validated body, and
// remembering the caching fields of the last request it saw.
func ccOrigin(t *testing.T) (o *testOrigin, seen *atomic.Value, release func()) {
	seen = &atomic.Value{} // string: Cache-Control and Pragma as the origin got them
	o, release = holdingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Cache-Control") + "|" + r.Header.Get("Pragma"))
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("body of " + r.URL.Path))
	})
	return o, seen, release
}

// TestClientCacheControlIgnored: by default a client's own caching directives (RFC 9111
// §5.2.1, §5.4) change nothing the edge does — no revalidation, no refetch, no response kept
// from being stored, nothing of them sent to the origin — so no client can push its requests
// past the cache (client_cache_control: ignore; clientcc.go). only-if-cached (§5.2.1.7) still
// holds: it only ever spares the origin.
func TestClientCacheControlIgnored(t *testing.T) {
	o, seen, release := ccOrigin(t)
	e, srv := newEdge(t, o.URL, nil)

	if r := get(t, srv.URL+"/a"); r.status != 200 || !strings.Contains(r.cacheStatus(), "stored") {
		t.Fatalf("first request: %d %q", r.status, r.cacheStatus())
	}
	for _, hdr := range [][]string{
		{"Cache-Control", "no-cache"},                            // §5.2.1.4: would revalidate
		{"Pragma", "no-cache"},                                   // §5.4
		{"Cache-Control", "max-age=0"},                           // §5.2.1.1: a browser's reload
		{"Cache-Control", "min-fresh=3600"},                      // §5.2.1.3
		{"Cache-Control", "no-store"},                            // §5.2.1.5
		{"Cache-Control", "no-cache, no-store, must-revalidate"}, // a hard reload, and more
		{"Cache-Control", "no-cache", "Pragma", "no-cache"},
	} {
		if r := get(t, srv.URL+"/a", hdr...); r.status != 200 || !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
			t.Errorf("%q: %d %q, want a hit", hdr, r.status, r.cacheStatus())
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Errorf("the origin saw %d requests, want 1: clients' directives went past the cache", n)
	}

	// A miss whose request says no-store and no-cache: fetched once, stored for everyone, and
	// the origin is not told the client's directives.
	r := get(t, srv.URL+"/b", "Cache-Control", "no-store, no-cache", "Pragma", "no-cache")
	if r.status != 200 || !strings.Contains(r.cacheStatus(), "fwd=uri-miss") || !strings.Contains(r.cacheStatus(), "stored") {
		t.Errorf("no-store miss: %d %q, want a stored miss", r.status, r.cacheStatus())
	}
	if s := seen.Load(); s != "|" {
		t.Errorf("the origin got Cache-Control|Pragma %q, want none", s)
	}
	if r := get(t, srv.URL+"/b"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("after a no-store miss: %q, want a hit", r.cacheStatus())
	}

	// A no-store request leading a fill others join: they all get the one origin response,
	// and it is stored.
	const followers = 5
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range followers + 1 {
		hdr := []string{}
		if i == 0 {
			hdr = []string{"Cache-Control", "no-store", "X-Hold", "1"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := get(t, srv.URL+"/c", hdr...); r.status == 200 && r.body == "body of /c" {
				ok.Add(1)
			}
		}()
		if i == 0 {
			pollUntil(func() bool { return o.hits.Load() == 3 }) // the leader is at the origin
		}
	}
	waitCollapsed(e, followers)
	release()
	wg.Wait() // (before any check: the goroutines' requests may fail the test)
	if ok.Load() != followers+1 || o.hits.Load() != 3 {
		t.Errorf("%d of %d requests got the body; origin requests %d, want 3 (one for /c)", ok.Load(), followers+1, o.hits.Load())
	}
	if r := get(t, srv.URL+"/c"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("after a fill led by no-store: %q, want a hit", r.cacheStatus())
	}

	// only-if-cached is kept: nothing stored → 504 without asking the origin.
	if r := get(t, srv.URL+"/absent", "Cache-Control", "only-if-cached, no-cache"); r.status != http.StatusGatewayTimeout {
		t.Errorf("only-if-cached of an absent object: %d, want 504", r.status)
	}
	if n := o.hits.Load(); n != 3 {
		t.Errorf("only-if-cached reached the origin (%d requests)", n)
	}
}

// TestClientCacheControlHonored: where the rules say honor, a client's directives act as RFC
// 9111 §5.2.1 says — no-cache revalidates with the origin, and is sent on — and a no-store
// request (§5.2.1.5) goes to the origin on its own: it leads no fill, so the requests arriving
// meanwhile share one fill of their own, which is stored. Other paths keep the default.
func TestClientCacheControlHonored(t *testing.T) {
	o, seen, release := ccOrigin(t)
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.Rules = []Rule{{PathPrefix: "/honor/", ClientCacheControl: "honor"}}
	})

	get(t, srv.URL+"/honor/a")
	r := get(t, srv.URL+"/honor/a", "Cache-Control", "no-cache")
	if cs := r.cacheStatus(); r.status != 200 || !strings.Contains(cs, "fwd=request") || !strings.Contains(cs, "fwd-status=304") {
		t.Errorf("honoured no-cache: %d %q, want a revalidation (fwd=request; fwd-status=304)", r.status, cs)
	}
	if s := seen.Load(); s != "no-cache|" {
		t.Errorf("the origin got Cache-Control|Pragma %q, want the client's no-cache", s)
	}
	get(t, srv.URL+"/other")
	if r := get(t, srv.URL+"/other", "Cache-Control", "no-cache"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("no-cache outside the honouring rule: %q, want a hit", r.cacheStatus())
	}
	if n := o.hits.Load(); n != 3 {
		t.Fatalf("origin requests: %d, want 3", n)
	}

	// The no-store request is held at the origin; plain requests for the same object must not
	// wait on it.
	noStore := make(chan result, 1)
	go func() { noStore <- get(t, srv.URL+"/honor/held", "Cache-Control", "no-store", "X-Hold", "1") }()
	pollUntil(func() bool { return o.hits.Load() == 4 })
	const plain = 4
	done := make(chan result, plain)
	for range plain {
		go func() { done <- get(t, srv.URL+"/honor/held") }()
	}
	var got []result
	timeout := time.After(10 * time.Second)
collect:
	for len(got) < plain {
		select {
		case r := <-done:
			got = append(got, r)
		case <-timeout:
			break collect
		}
	}
	answered := len(got)
	release()
	for len(got) < plain {
		got = append(got, <-done)
	}
	if answered < plain {
		t.Fatalf("%d of %d plain requests answered while a no-store request was at the origin: they waited on it", answered, plain)
	}
	for _, r := range got {
		if r.status != 200 || r.body != "body of /honor/held" {
			t.Errorf("plain request: %d %q", r.status, r.body)
		}
	}
	ns := <-noStore
	if cs := ns.cacheStatus(); ns.status != 200 || !strings.Contains(cs, "fwd=request") || strings.Contains(cs, "stored") {
		t.Errorf("no-store request: %d %q, want forwarded (fwd=request), not stored", ns.status, cs)
	}
	if n := o.hits.Load(); n != 5 {
		t.Errorf("origin requests: %d, want 5 (the no-store request alone, one fill for the %d others)", n, plain)
	}
	if r := get(t, srv.URL+"/honor/held"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("after: %q, want a hit", r.cacheStatus())
	}
}

// TestClientCacheControlConfig: the setting's values, cache-wide and per rule, the most
// specific rule winning.
func TestClientCacheControlConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		yaml string
		err  string
	}{
		// Both named with the file (LoadConfig), as `reel edge --config` reports them.
		{"bad cache-wide", "cache: {client_cache_control: obey}\n", `edge.yaml: cache.client_cache_control: "obey" is not ignore or honor`},
		{"bad rule", "rules: [{path_prefix: /a/, client_cache_control: Honor}]\n", `edge.yaml: rules[0]: client_cache_control: "Honor" is not ignore or honor`},
		{"rule with request conditions", "rules: [{match: {headers: {X-Debug: \"1\"}}, client_cache_control: honor}]\n", ""},
		{"bad cache-wide preconditions", "cache: {client_preconditions: evaluate}\n", `edge.yaml: cache.client_preconditions: "evaluate" is not ignore or forward`},
		{"bad rule preconditions", "rules: [{path_prefix: /a/, client_preconditions: pass}]\n", `edge.yaml: rules[0]: client_preconditions: "pass" is not ignore or forward`},
		{"preconditions forwarded", "cache: {client_preconditions: forward}\nrules: [{path_prefix: /a/, client_preconditions: ignore}]\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := t.TempDir() + "/edge.yaml"
			writeFile(t, f, "origins: [{url: 'http://127.0.0.1:1'}]\n"+c.yaml)
			cfg, err := LoadConfig(f)
			if err == nil {
				_, err = New(cfg, nil)
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("got %v, want %q", err, c.err)
			}
		})
	}

	o, _, _ := ccOrigin(t)
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.Cache.ClientCacheControl = "honor"
		c.Rules = []Rule{{PathPrefix: "/vod/", ClientCacheControl: "ignore"}}
	})
	for _, c := range []struct{ path, want string }{{"/vod/x", "reel; hit"}, {"/other", "reel; fwd=request"}} {
		get(t, srv.URL+c.path)
		if r := get(t, srv.URL+c.path, "Cache-Control", "no-cache"); !strings.HasPrefix(r.cacheStatus(), c.want) {
			t.Errorf("%s with no-cache: %q, want %q", c.path, r.cacheStatus(), c.want)
		}
	}
}

// TestClientPreconditions: a GET's or HEAD's If-Match and If-Unmodified-Since (RFC 9110
// §13.1.1, §13.1.4) are ignored by default — the cache answers as if they were absent, hit or
// fill, and the origin never sees them — so no client can send requests past the cache with
// them (before, every such request went to the origin). Where a rule says forward, they go to
// the origin with the request, for that client alone, and nothing of the answer is stored.
// Unsafe methods carry theirs to the origin either way.
func TestClientPreconditions(t *testing.T) {
	var seen atomic.Value // string: If-Match|If-Unmodified-Since as the origin last got them
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		im, ius := r.Header.Get("If-Match"), r.Header.Get("If-Unmodified-Since")
		seen.Store(im + "|" + ius)
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Sun, 06 Dec 2026 12:00:00 GMT")
		w.Header().Set("Cache-Control", "max-age=60")
		if im != "" && im != `"v1"` || ius != "" && ius != "Sun, 06 Dec 2026 12:00:00 GMT" {
			w.WriteHeader(http.StatusPreconditionFailed) // RFC 9110 §13.1.1, §13.1.4, loosely
			return
		}
		w.Write([]byte("body of " + r.URL.Path))
	})
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.Rules = []Rule{{PathPrefix: "/fwd/", ClientPreconditions: "forward"}}
	})
	preconditions := [][]string{
		{"If-Match", `"stale"`},
		{"If-Match", "*"},
		{"If-Unmodified-Since", "Sun, 01 Jan 2006 00:00:00 GMT"},
		{"If-Match", `"stale"`, "If-Unmodified-Since", "Sun, 01 Jan 2006 00:00:00 GMT"},
	}

	// Ignored: a miss carrying them is filled for everyone without them; then hits.
	if r := get(t, srv.URL+"/a", preconditions[0]...); r.status != 200 || r.body != "body of /a" || !strings.Contains(r.cacheStatus(), "stored") {
		t.Fatalf("miss with If-Match: %d %q %q, want the body, stored", r.status, r.body, r.cacheStatus())
	}
	if s := seen.Load(); s != "|" {
		t.Errorf("the origin got If-Match|If-Unmodified-Since %q, want neither", s)
	}
	for _, hdr := range preconditions {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req, _ := http.NewRequest(method, srv.URL+"/a", nil)
			for i := 0; i < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if cs := resp.Header.Get("Cache-Status"); resp.StatusCode != 200 || !strings.HasPrefix(cs, "reel; hit") {
				t.Errorf("%s %q: %d %q, want a hit", method, hdr, resp.StatusCode, cs)
			}
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Errorf("the origin saw %d requests, want 1: preconditions went past the cache", n)
	}

	// Forwarded where the rule says so: to the origin, which decides (412 here), nothing stored.
	get(t, srv.URL+"/fwd/b")
	for _, hdr := range preconditions[:1] {
		r := get(t, srv.URL+"/fwd/b", hdr...)
		if r.status != http.StatusPreconditionFailed || !strings.Contains(r.cacheStatus(), "fwd=request") || strings.Contains(r.cacheStatus(), "stored") {
			t.Errorf("forwarded %q: %d %q, want the origin's 412, not stored", hdr, r.status, r.cacheStatus())
		}
		if s := seen.Load(); s != hdr[1]+"|" {
			t.Errorf("the origin got %q, want %q", s, hdr[1]+"|")
		}
	}
	if r := get(t, srv.URL+"/fwd/b"); r.status != 200 || !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("after a forwarded If-Match: %d %q, want a hit", r.status, r.cacheStatus())
	}

	// An unsafe method's preconditions reach the origin, ignored or not.
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/a", strings.NewReader("new"))
	req.Header.Set("If-Match", `"stale"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed || seen.Load() != `"stale"|` {
		t.Errorf("PUT with If-Match: %d, the origin got %q; want its 412 on the PUT's own If-Match", resp.StatusCode, seen.Load())
	}
}
