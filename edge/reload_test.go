package edge

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestReload: a reload swaps origins, rules and the cache policy in, names the restart-only
// keys it ignores (keeping their values), keeps pools as they run, and changes nothing when
// the new configuration is invalid.
func TestReload(t *testing.T) {
	a := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") })
	b := newOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") })
	e, srv := newEdge(t, a.URL, func(c *Config) {
		c.Origins = append(c.Origins, Origin{Name: "pool", URLs: []PoolMember{{URL: a.URL}}})
		c.Rules = []Rule{{PathPrefix: "/p/", Origin: "pool"}}
	})
	if got := get(t, srv.URL+"/x").body; got != "A" {
		t.Fatalf("before: %q", got)
	}
	next := e.rt().cfg
	next.Origins = []Origin{{Host: "*", URL: b.URL}, {Name: "pool", URLs: []PoolMember{{URL: a.URL}}}}
	next.Memory *= 2
	next.Cache.DropParams = []string{"utm_source"}
	next.Cache.HeuristicMax = time.Hour
	ignored, err := e.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"memory", "cache.drop_params"}; !reflect.DeepEqual(ignored, want) {
		t.Errorf("ignored %q, want %q", ignored, want)
	}
	if got := get(t, srv.URL+"/x").body; got != "B" {
		t.Errorf("after: %q, want B's", got)
	}
	if cur := e.rt().cfg; cur.Memory != e.cfg.Memory || !reflect.DeepEqual(cur.Cache.DropParams, e.cfg.Cache.DropParams) || cur.Cache.HeuristicMax != time.Hour {
		t.Errorf("running config: memory %v drop_params %v heuristic_max %v", cur.Memory, cur.Cache.DropParams, cur.Cache.HeuristicMax)
	}

	// A changed pool keeps the running one.
	pooled := e.rt().cfg
	pooled.Origins = []Origin{{Host: "*", URL: b.URL}, {Name: "pool", URLs: []PoolMember{{URL: b.URL}}}}
	if ignored, err = e.Reload(pooled); err != nil || len(ignored) != 1 || !strings.Contains(ignored[0], "pool") {
		t.Errorf("pool change: %q %v", ignored, err)
	}
	if got := get(t, srv.URL+"/p/x").body; got != "A" {
		t.Errorf("pool after its change was ignored: %q, want A's", got)
	}

	// An invalid one changes nothing.
	before := e.rt()
	bad := before.cfg
	bad.Rules = []Rule{{PathPrefix: "/y/", Origin: "nosuch"}}
	if _, err := e.Reload(bad); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("bad config: %v", err)
	}
	if e.rt() != before {
		t.Error("a failed reload swapped the routing")
	}
}
