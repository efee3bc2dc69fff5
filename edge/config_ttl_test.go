package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTTLConfig: the lifetime keys as written in a file — read, inherited, and refused with a
// message naming the key when they can't work (old error_ttl configs included).
func TestTTLConfig(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (Config, error) {
		t.Helper()
		p := filepath.Join(dir, "edge.yaml")
		if err := os.WriteFile(p, []byte("origins: [{url: http://127.0.0.1:8080}]\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(p)
		if err == nil {
			err = cfg.Validate()
		}
		return cfg, err
	}

	cfg, err := load(`
cache:
  default_ttl: {200: 1h, 301: 1h, 302: 5m, 404: 5s}
  max_negative_ttl: 30s
rules:
  - path_prefix: /vod/
    default_ttl: {200: 24h}
    min_ttl: 1m
    max_ttl: 24h
    max_negative_ttl: 0s
    browser_ttl: 10m
  - path_prefix: /vod/
    match: {headers: {X-Debug: "1"}}
    browser_ttl: 0s
`)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Cache; c.DefaultTTL[302] != 5*time.Minute || c.MaxNegativeTTL != 30*time.Second {
		t.Errorf("cache section read as %+v", c)
	}
	r := cfg.Rules[0].RuleTTLs
	if r.DefaultTTL[200] != 24*time.Hour || r.MinTTL != time.Minute || r.MaxTTL != 24*time.Hour ||
		r.MaxNegativeTTL == nil || *r.MaxNegativeTTL != 0 || r.BrowserTTL == nil || *r.BrowserTTL != 10*time.Minute {
		t.Errorf("rule read as %+v", r)
	}
	// The ruling: each entry of default_ttl from the most specific rule naming its status.
	res := mustRoutes(t, cfg).rules
	rl := res.forURL("x", "/vod/a.mp4")
	if d := rl.pol.DefaultTTL; d[200] != 24*time.Hour || d[302] != 5*time.Minute || d[404] != 5*time.Second {
		t.Errorf("merged default_ttl %v", d)
	}
	if rl.pol.MaxNegativeTTL >= 0 || rl.pol.MinTTL != time.Minute || rl.browserTTL != 10*time.Minute {
		t.Errorf("ruling %+v, browser %v", rl.pol, rl.browserTTL)
	}
	if rl := res.forRequest("x", "/vod/a.mp4", "GET", map[string][]string{"X-Debug": {"1"}}); rl.browserTTL != 0 {
		t.Errorf("a request condition's browser_ttl: %v", rl.browserTTL)
	}
	if rl := res.forURL("x", "/other"); rl.pol.DefaultTTL[200] != time.Hour || rl.pol.MaxNegativeTTL != 30*time.Second || rl.browserTTL != -1 {
		t.Errorf("outside the rule: %+v, browser %v", rl.pol, rl.browserTTL)
	}

	// error_ttl, the old name, still works when it can.
	cfg, err = load("cache: {error_ttl: {404: 10s, 410: 5s}}\n")
	if err != nil || cfg.Cache.DefaultTTL[404] != 10*time.Second || cfg.Cache.DefaultTTL[410] != 5*time.Second {
		t.Errorf("error_ttl: %v, default_ttl %v", err, cfg.Cache.DefaultTTL)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"cache: {default_ttl: {503: 5s}}", "cache.default_ttl: 503 is a temporary error"},
		{"cache: {default_ttl: {429: 5s}}", "cache.default_ttl: 429 is a temporary error"},
		{"cache: {default_ttl: {304: 5s}}", "cache.default_ttl: 304 is never stored"},
		{"cache: {default_ttl: {99: 5s}}", "cache.default_ttl: 99 is not a final status"},
		{"cache: {default_ttl: {200: -5s}}", "must not be negative"},
		{"cache: {default_ttl: {404: 1m}}", "cache.default_ttl: 404: 1m0s is longer than cache.max_negative_ttl (10s)"},
		{"cache: {max_negative_ttl: -1s}", "cache.max_negative_ttl must not be negative"},
		{"cache: {error_ttl: {404: 1m}}", "cache.error_ttl: 404: 1m0s is longer than cache.max_negative_ttl (10s)"},
		{"cache: {error_ttl: {503: 5s}}", "cache.error_ttl: 503: error_ttl is now cache.default_ttl"},
		{"cache: {error_ttl: {404: 5s}, default_ttl: {404: 3s}}", "both give 404 a lifetime"},
		{"rules: [{path_prefix: /a/, min_ttl: 1h, max_ttl: 1m}]", "rules[0]: min_ttl (1h0m0s) is longer than max_ttl (1m0s)"},
		{"rules: [{path_prefix: /a/, max_ttl: -1s}]", "rules[0]: min_ttl and max_ttl must not be negative"},
		{"rules: [{path_prefix: /a/, browser_ttl: -1s}]", "rules[0]: browser_ttl must not be negative"},
		{"rules: [{path_prefix: /a/, default_ttl: {500: 1s}}]", "rules[0]: default_ttl: 500 is a temporary error"},
		{"rules: [{path_prefix: /a/, max_negative_ttl: 5s, default_ttl: {410: 1m}}]", "rules[0]: default_ttl: 410: 1m0s is longer than max_negative_ttl (5s)"},
		{"rules: [{path_prefix: /a/, match: {cookies: {s: '*'}}, min_ttl: 1h}]", "rules[0]: min_ttl can't depend on methods, headers or cookies"},
		{"rules: [{path_prefix: /a/, match: {headers: {X: '1'}}, default_ttl: {200: 1h}}]", "rules[0]: default_ttl can't depend"},
		{"rules: [{path_prefix: /a/, match: {methods: [GET]}, max_negative_ttl: 1s}]", "rules[0]: max_negative_ttl can't depend"},
		{"rules: [{path_prefix: /a/, match: {methods: [GET]}, max_ttl: 1s}]", "rules[0]: max_ttl can't depend"},
		{"rules: [{path_prefix: /a/, mx_ttl: 1s}]", "field mx_ttl not found"},
	} {
		if _, err := load(tc.yaml + "\n"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
