package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		ok   bool
	}{
		{"512MiB", 512 << 20, true},
		{"10GiB", 10 << 30, true},
		{"1.5KiB", 1536, true},
		{"2GB", 2e9, true},
		{"4096", 4096, true},
		{" 64 KiB ", 64 << 10, true},
		{"-1MiB", 0, false},
		{"lots", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if s := Size(512 << 20).String(); s != "512MiB" {
		t.Errorf("String = %s", s)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := LoadConfig(write("full.yaml", `
memory: 64MiB
slice_threshold: 8MiB
origins:
  - host: "*"
    url: http://127.0.0.1:8080
  - host: CDN.Example.com
    url: https://10.0.0.5
    host_header: origin
rules:
  - path_prefix: /live/
    ttl: 2s
  - path_prefix: /api/
    bypass: true
cache:
  stale_if_error: 1m
  error_ttl: {404: 10s} # the old name of default_ttl's 4xx entries: still read
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Memory != 64<<20 || cfg.SliceThreshold != 8<<20 || cfg.Origins[1].Host != "cdn.example.com" || cfg.Rules[0].TTL != 2*time.Second ||
		cfg.Cache.DefaultTTL[404] != 10*time.Second || cfg.Cache.StaleIfError != time.Minute {
		t.Fatalf("config not read as written: %+v", cfg)
	}
	// Defaults survive where the file is silent.
	if cfg.Cache.HeuristicFraction != 0.1 || cfg.Limits.CoalesceWait != 10*time.Second || len(cfg.Cache.DropParams) != 4 || cfg.SliceSize != 1<<20 {
		t.Fatalf("defaults lost: %+v", cfg.Cache)
	}

	if _, err := LoadConfig(write("empty.yaml", "")); err != nil {
		t.Fatalf("empty file: %v", err)
	}

	bad := []struct{ name, body, want string }{
		{"typo.yaml", "memroy: 1GiB\n", "memroy"},
		{"size.yaml", "memory: lots\n", "not a size"},
		// Route mistakes are reported with the file's name (nothing flags change affects them).
		{"route.yaml", "rules:\n  - {path_prefix: /vod/, origin: vod}\n", `route.yaml: rules[0]: origin "vod" is not the name of an origin`},
	}
	for _, b := range bad {
		if _, err := LoadConfig(write(b.name, b.body)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: err %v, want mention of %q", b.name, err, b.want)
		}
	}
}

func TestValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Origins = []Origin{{Host: "*", URL: "http://127.0.0.1:8080"}}
		return c
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no origin", func(c *Config) { c.Origins = nil }, "no origin"},
		{"bad url", func(c *Config) { c.Origins[0].URL = "ftp://x" }, "not an http(s) URL"},
		{"duplicate host", func(c *Config) { c.Origins = append(c.Origins, Origin{Host: "*", URL: "http://a"}) }, "listed twice"},
		{"relative rule", func(c *Config) { c.Rules = []Rule{{PathPrefix: "live/"}} }, "clean absolute path"},
		{"dotdot rule", func(c *Config) { c.Rules = []Rule{{PathPrefix: "/a/../b"}} }, "clean absolute path"},
		{"admin on listen", func(c *Config) { c.Admin = c.Listen }, "own address"},
		{"fraction", func(c *Config) { c.Cache.HeuristicFraction = 2 }, "heuristic_fraction"},
		{"disk tier smaller than its folder's structures", func(c *Config) { c.CacheDir, c.Disk = "/var/cache/reel", 4<<20 }, "at least 8MiB"},
		{"slice threshold without slices", func(c *Config) { c.SliceSize, c.SliceThreshold = 0, 8<<20 }, "needs slicing"},
		{"slice threshold below a slice", func(c *Config) { c.SliceThreshold = c.SliceSize / 2 }, "at least slice_size"},
		{"name with a space", func(c *Config) { c.Name = "edge 1" }, "name"},
		{"name with a slash", func(c *Config) { c.Name = "edge/1" }, "name"},
		{"parent not a URL", func(c *Config) { c.Parents.URLs = []string{"shield-1:8081"} }, "parents.urls[0]"},
		{"parent with a path", func(c *Config) { c.Parents.URLs = []string{"http://s1:8081/cache"} }, "without a path"},
		{"parent twice", func(c *Config) { c.Parents.URLs = []string{"http://s1", "http://s1"} }, "parents.urls[1]"},
		{"health interval", func(c *Config) { c.Parents.URLs, c.Parents.HealthInterval = []string{"http://s1"}, 0 }, "health_interval"},
		{"health path", func(c *Config) { c.Parents.URLs, c.Parents.HealthPath = []string{"http://s1"}, "health" }, "health_path"},
		{"no client connections", func(c *Config) { c.Limits.MaxClientConns = 0 }, "max_client_conns"},
		{"no origin connections", func(c *Config) { c.Limits.MaxConnsPerOrigin = -1 }, "max_conns_per_origin"},
		{"body timeout", func(c *Config) { c.Limits.RequestBodyIdleTimeout = 0 }, "request_body_idle_timeout"},
		{"origin queue wait", func(c *Config) { c.Limits.OriginQueueWait = 0 }, "origin_queue_wait"},
		{"buffered body", func(c *Config) { c.Limits.MaxBufferedBody = -1 }, "max_buffered_body"},
		// Per-path origins (route.go).
		{"origin name twice", func(c *Config) {
			c.Origins = append(c.Origins, Origin{Name: "vod", URL: "http://a"}, Origin{Name: "vod", URL: "http://b"})
		}, `origins[2]: name "vod" listed twice`},
		{"origin name with a slash", func(c *Config) { c.Origins[0].Name = "v/od" }, `origins[0]: name "v/od"`},
		{"origin url with a query", func(c *Config) { c.Origins[0].URL = "http://a/?x=1" }, "origins[0]: url"},
		{"unknown origin", func(c *Config) { c.Rules = []Rule{{PathPrefix: "/vod/", Origin: "vdo"}} }, `rules[0]: origin "vdo" is not the name of an origin`},
		{"rule twice", func(c *Config) {
			c.Origins = append(c.Origins, Origin{Name: "vod", URL: "http://a"}, Origin{Name: "live", URL: "http://b"})
			c.Rules = []Rule{{PathPrefix: "/v/", Origin: "vod"}, {PathPrefix: "/v/", Origin: "live"}}
		}, `rules[1]: the same conditions as rules[0]`},
		// The rule matcher (edge/rules, resolve.go).
		{"same conditions written two ways", func(c *Config) {
			c.Rules = []Rule{{PathPrefix: "/v/", TTL: time.Second}, {Match: RuleMatch{PathPrefix: "/v/"}, Bypass: ptr(true)}}
		}, `rules[1]: the same conditions as rules[0]`},
		{"path_prefix twice in one rule", func(c *Config) {
			c.Rules = []Rule{{PathPrefix: "/v/", Match: RuleMatch{PathPrefix: "/w/"}}}
		}, "rules[0]: path_prefix and match.path_prefix"},
		{"bad host condition", func(c *Config) { c.Rules = []Rule{{Match: RuleMatch{Host: "a.com:80"}}} }, "rules[0]: host"},
		{"bad method condition", func(c *Config) { c.Rules = []Rule{{Match: RuleMatch{Methods: []string{"get"}}}} }, "rules[0]: methods"},
		{"ttl by header", func(c *Config) {
			c.Rules = []Rule{{Match: RuleMatch{Headers: map[string]string{"X-Tier": "gold"}}, TTL: time.Hour}}
		}, "rules[0]: ttl can't depend on methods, headers or cookies"},
		{"key by cookie", func(c *Config) {
			c.Rules = []Rule{{Match: RuleMatch{Cookies: map[string]string{"ab": "b"}}, KeyHeaders: []string{"X-A"}}}
		}, "rules[0]: key_headers can't depend"},
		{"origin by header, cached", func(c *Config) {
			c.Origins = append(c.Origins, Origin{Name: "beta", URL: "http://a"})
			c.Rules = []Rule{{Match: RuleMatch{Headers: map[string]string{"X-Beta": "1"}}, Origin: "beta"}}
		}, "rules[0]: origin can't depend"},
		{"parent by method", func(c *Config) {
			c.Rules = []Rule{{Match: RuleMatch{Methods: []string{"HEAD"}}, Parent: ptr(false)}}
		}, "rules[0]: parent can't depend"},
		{"origin prefix without a slash", func(c *Config) {
			c.Origins = append(c.Origins, Origin{Name: "vod", URL: "http://a"})
			c.Rules = []Rule{{PathPrefix: "vod/", Origin: "vod"}}
		}, `rules[0]: path_prefix "vod/" must be a clean absolute path`},
		{"strip without origin", func(c *Config) { c.Rules = []Rule{{PathPrefix: "/vod/", StripPrefix: true}} }, "rules[0]: strip_prefix needs origin"},
		{"strip of a partial segment", func(c *Config) {
			c.Origins = append(c.Origins, Origin{Name: "vod", URL: "http://a"})
			c.Rules = []Rule{{PathPrefix: "/vod", Origin: "vod", StripPrefix: true}}
		}, "rules[0]: strip_prefix needs a path_prefix ending in '/'"},
		{"two unnamed default origins", func(c *Config) { c.Origins = append(c.Origins, Origin{URL: "http://a"}) }, `origins[1]: host "*" listed twice`},
	}
	for _, tc := range tests {
		c := base()
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	if c := base(); c.Validate() != nil {
		t.Errorf("base config invalid: %v", c.Validate())
	}
	// What a rule with request conditions may set: what leaves the stored response alone.
	c0 := base()
	c0.Origins = append(c0.Origins, Origin{Name: "app", URL: "http://a"})
	c0.Rules = []Rule{
		{Match: RuleMatch{Cookies: map[string]string{"session": "*"}}, Bypass: ptr(true), Origin: "app"},
		{Match: RuleMatch{Methods: []string{"POST"}, PathPrefix: "/api/"}, Token: "off"},
		{Match: RuleMatch{Headers: map[string]string{"X-Debug": "1"}}, Bypass: ptr(true)},
	}
	if err := c0.Validate(); err != nil {
		t.Errorf("request-conditioned rules that store nothing: %v", err)
	}
	// Named origins without a host are reached through rules only: they don't claim "*".
	c := base()
	c.Origins = append(c.Origins, Origin{Name: "vod", URL: "http://a"}, Origin{Name: "live", URL: "http://b"})
	c.Rules = []Rule{{PathPrefix: "/vod/", Origin: "vod", StripPrefix: true}, {PathPrefix: "/live/", Origin: "live"}}
	if err := c.Validate(); err != nil || c.Origins[1].Host != "" || c.Origins[0].Host != "*" {
		t.Errorf("per-path origins: %v, hosts %q %q", err, c.Origins[0].Host, c.Origins[1].Host)
	}
}

// TestSampleConfig: the example shipped in samples/ loads and validates.
func TestSampleConfig(t *testing.T) {
	cfg, err := LoadConfig("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Origins) != 3 || len(cfg.Rules) != 4 || cfg.Cache.StaleIfError != 5*time.Minute {
		t.Fatalf("sample config read wrong: %+v", cfg)
	}
	// Signed-URL parameters are left out of the key but must still reach the origin.
	if r := cfg.Rules[3]; r.PathPrefix != "/downloads/" || r.ForwardIgnoredParams == nil || !*r.ForwardIgnoredParams {
		t.Fatalf("sample /downloads/ rule does not forward its signed-URL parameters: %+v", r)
	}
	// The lifetime keys (config_ttl.go) are read where the sample documents them.
	if r := cfg.Rules[0]; r.BrowserTTL == nil || *r.BrowserTTL != time.Hour {
		t.Errorf("sample /vod/ rule's browser_ttl: %+v", r.RuleTTLs)
	}
	if r := cfg.Rules[3]; r.MinTTL != time.Minute || r.MaxTTL != 24*time.Hour || r.DefaultTTL[200] != 6*time.Hour {
		t.Errorf("sample /downloads/ rule's lifetimes: %+v", r.RuleTTLs)
	}
	if c := cfg.Cache; c.DefaultTTL[302] != 5*time.Minute || c.DefaultTTL[404] != 10*time.Second || c.MaxNegativeTTL != 10*time.Second {
		t.Errorf("sample cache lifetimes: %v, max_negative_ttl %v", c.DefaultTTL, c.MaxNegativeTTL)
	}
	if got, want := cfg.Limits.ClientLimits, defaultClientLimits(); got != want {
		t.Errorf("sample client limits %+v, want the defaults %+v", got, want)
	}
}

// TestSamplePathsConfig: samples/edge-paths.yaml (README "Per-path origins") loads, validates
// and routes /vod/ to reel origin without its prefix and /live/ to reel live with it.
func TestSamplePathsConfig(t *testing.T) {
	cfg, err := LoadConfig("../samples/edge-paths.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rt := mustRoutes(t, cfg)
	for _, tc := range []struct {
		path, origin, strip string
	}{
		{"/vod/master.m3u8", "vod", "/vod/"},
		{"/live/ch/manifest.mpd", "live", ""},
	} {
		c := rt.choose("cdn.example.com", tc.path)
		if c.origin < 0 || cfg.Origins[c.origin].Name != tc.origin || c.strip != tc.strip {
			t.Errorf("%s: origin %d strip %q, want %s strip %q", tc.path, c.origin, c.strip, tc.origin, tc.strip)
		}
	}
	if c := rt.choose("cdn.example.com", "/other"); c.origin != -1 {
		t.Errorf("/other: origin %d, want none (421)", c.origin)
	}
}
