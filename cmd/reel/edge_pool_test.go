package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge"
)

// TestOriginsSummaryPool: the start-up line names a pool's members, not an empty URL.
func TestOriginsSummaryPool(t *testing.T) {
	cfg := edge.Config{Origins: []edge.Origin{
		{Host: "*", URLs: []edge.PoolMember{{URL: "http://a:8080"}, {URL: "http://b:8080", Weight: 2}}},
		{Name: "live", URL: "http://l:8090"},
	}}
	if got, want := originsSummary(cfg), "http://a:8080|http://b:8080, live=http://l:8090"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
}

// TestEdgePoolConfigBad: a mistake in an origin pool stops `reel edge` with one line naming
// the file and the key, exit 1.
func TestEdgePoolConfigBad(t *testing.T) {
	for _, tc := range []struct{ name, origin, want string }{
		{"url and urls", "  - {url: http://127.0.0.1:1, urls: [http://127.0.0.1:2]}\n", "origins[0]: give url or urls, not both"},
		{"negative weight", "  - urls: [{url: http://127.0.0.1:1, weight: -2}]\n", "origins[0]: urls[0]: weight -2"},
		{"misspelt member key", "  - urls: [{url: http://127.0.0.1:1, wieght: 2}]\n", "field wieght not found"},
		{"health check path", "  - urls: [http://127.0.0.1:1]\n    health_check: {path: health}\n", `origins[0]: health_check.path "health"`},
		{"pool settings without a pool", "  - url: http://127.0.0.1:1\n    max_fails: 2\n", "origins[0]: max_fails, fail_timeout, health_check and retry_budget need urls"},
	} {
		cfg := writeConfig(t, "edge.yaml", "origins:\n"+tc.origin)
		code, stdout, stderr := runReel(t, "edge", "--admin", "", "--listen", "127.0.0.1:0", "--config", cfg)
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, cfg+": ") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d with %s: …%s", tc.name, code, stdout, stderr, exitFailure, cfg, tc.want)
		}
		assertOneLine(t, tc.name, stderr)
	}
}

// TestEdgePool: a real `reel edge` with a pool from its config file keeps answering when one
// member is gone, and --origin replaces the pool, settings and all.
func TestEdgePool(t *testing.T) {
	named := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprintf(w, "%s:%s", name, r.URL.Path)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b, other := named("pool"), named("pool"), named("other")
	cfg := writeConfig(t, "edge.yaml", "origins:\n  - urls: ["+a.URL+", {url: "+b.URL+", weight: 2}]\n    health_check: {path: /, interval: 1s}\n")
	bin := buildReel(t)
	_, base := startEdge(t, bin, "--config", cfg)
	b.Close()
	for i := range 20 {
		path := fmt.Sprintf("/x%d", i)
		if status, body, _ := fetch(t, base+path); status != 200 || body != "pool:"+path {
			t.Fatalf("%s with a member gone: %d %q", path, status, body)
		}
	}
	_, base = startEdge(t, bin, "--config", cfg, "--origin", other.URL)
	if status, body, _ := fetch(t, base+"/y"); status != 200 || body != "other:/y" {
		t.Fatalf("--origin beside a pool: %d %q, want the flag's origin", status, body)
	}
}

// TestParentFlagReplacesDNS: --parent is the whole shield tier, as its help says: a config
// file's parents found by DNS go with its URLs (they stayed once, beside the flag's).
func TestParentFlagReplacesDNS(t *testing.T) {
	p := edge.Parents{URLs: []string{"http://file:8081"}, DNS: "_http._tcp.reel-shield.ns.svc.cluster.local",
		DNSServer: "10.96.0.10:53", Scheme: "https", Refresh: time.Minute, HealthPath: "/_reel/health"}
	setParents(&p, []string{"http://flag:8081"})
	want := edge.Parents{URLs: []string{"http://flag:8081"}, HealthPath: "/_reel/health"}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("after --parent: %+v, want %+v", p, want)
	}
}
