package edge

import (
	"testing"

	"github.com/reelvideo/reel/edge/cachekey"
)

// choice is what routes says about a GET for path at host: the most specific rule (its index
// in the configuration, -1: none), the origin (-1: none) and the prefix stripped.
type choice struct {
	rule, origin int
	strip        string
}

func (rt *routes) choose(host, path string) choice {
	rl := rt.rules.forRequest(host, path, "GET", nil)
	return choice{rule: rl.first, origin: rt.originFor(host, rl), strip: rl.strip}
}

// mustRoutes compiles the routes of a validated cfg.
func mustRoutes(t *testing.T, cfg Config) routes {
	t.Helper()
	keyer, err := cachekey.New(cfg.Cache.DropParams)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := newRoutes(cfg.Origins, cfg.Rules, keyer, policyOptions(cfg), clientDirectives{})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestRouteChoice: the origin and rule of a request, in the order samples/edge.yaml documents:
// the most specific (longest) matching path prefix is the rule; the origin is the one that
// rule names, else the one the next shorter matching rule names (with that rule's
// strip_prefix), else the origin of the exact Host, else the "*" origin.
func TestRouteChoice(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Origins = []Origin{
		{Host: "*", URL: "http://127.0.0.1:1"},                              // 0
		{Host: "CDN.example.com.", URL: "http://127.0.0.1:2"},               // 1
		{Name: "vod", URL: "http://127.0.0.1:3"},                            // 2: rules only
		{Name: "live", Host: "live.example.com", URL: "http://127.0.0.1:4"}, // 3: rules and a host
	}
	cfg.Rules = []Rule{
		{PathPrefix: "/api/", Bypass: ptr(true)},                   // no origin: the Host's
		{PathPrefix: "/vod/special/", TTL: 1},                      // inherits /vod/'s origin and strip
		{PathPrefix: "/vod/", Origin: "vod", StripPrefix: true},    //
		{PathPrefix: "/live/", Origin: "live"},                     // the whole path
		{PathPrefix: "/live/ll/", Origin: "vod"},                   // a longer rule overrides, its own strip (none)
		{PathPrefix: "/mixed/", Origin: "live", StripPrefix: true}, //
		{PathPrefix: "/mixed/deep/", Origin: "vod"},                // …and does not inherit the shorter one's strip
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rt := mustRoutes(t, cfg)
	tests := []struct {
		host, path string
		rule       string // the chosen rule's prefix, "" for none
		origin     int
		strip      string
	}{
		{"cdn.example.com", "/vod/a/b.m3u8", "/vod/", 2, "/vod/"},
		{"other.example", "/vod/a/b.m3u8", "/vod/", 2, "/vod/"}, // rules win over any host
		{"live.example.com", "/vod/x", "/vod/", 2, "/vod/"},     // …even a named origin's host
		{"cdn.example.com", "/vod/special/s.m4s", "/vod/special/", 2, "/vod/"},
		{"cdn.example.com", "/live/ch1/index.m3u8", "/live/", 3, ""},
		{"cdn.example.com", "/live/ll/ch1.m3u8", "/live/ll/", 2, ""},
		{"cdn.example.com", "/mixed/a", "/mixed/", 3, "/mixed/"},
		{"cdn.example.com", "/mixed/deep/a", "/mixed/deep/", 2, ""},
		{"cdn.example.com", "/api/x", "/api/", 1, ""},  // a rule without origin: the Host's
		{"other.example", "/api/x", "/api/", 0, ""},    // …else "*"
		{"cdn.example.com", "/other", "", 1, ""},       // no rule: the exact host
		{"live.example.com", "/other", "", 3, ""},      // a named origin's host
		{"other.example", "/other", "", 0, ""},         // else "*"
		{"cdn.example.com", "/vodka/x", "", 1, ""},     // prefixes are compared as strings: /vod/ isn't /vodka
		{"cdn.example.com", "/vod", "", 1, ""},         // …nor /vod
		{"cdn.example.com", "/VOD/a", "", 1, ""},       // paths are case-sensitive
		{"vod", "/other", "", 0, ""},                   // a name is not a host
		{"cdn.example.com", "/live/", "/live/", 3, ""}, // the prefix itself
		{"cdn.example.com", "/vod/special", "/vod/", 2, "/vod/"},
	}
	for _, tc := range tests {
		c := rt.choose(tc.host, tc.path)
		rule := ""
		if c.rule >= 0 {
			rule = cfg.Rules[c.rule].PathPrefix
		}
		if rule != tc.rule || c.origin != tc.origin || c.strip != tc.strip {
			t.Errorf("%s%s: rule %q origin %d strip %q; want rule %q origin %d strip %q",
				tc.host, tc.path, rule, c.origin, c.strip, tc.rule, tc.origin, tc.strip)
		}
	}

	// Without a "*" origin, a request no rule or host claims has none (the edge answers 421).
	cfg.Origins = cfg.Origins[1:]
	cfg.Origins[1].Name, cfg.Origins[2].Name = "vod", "live"
	rt = mustRoutes(t, cfg)
	if c := rt.choose("other.example", "/other"); c.origin != -1 {
		t.Errorf("no origin for other.example/other, got %d", c.origin)
	}
	if c := rt.choose("other.example", "/vod/a"); c.origin != 1 {
		t.Errorf("/vod/a: origin %d, want the vod origin (1)", c.origin)
	}
}

// TestOriginPath: what a stripping upstream sends for the client's (escaped, normalised) path.
func TestOriginPath(t *testing.T) {
	up := (&upstream{}).stripped("/vod/")
	for _, tc := range []struct{ in, want string }{
		{"/vod/a/b.m3u8", "/a/b.m3u8"},
		{"/vod/", "/"},
		{"/vod/a%20b/c", "/a%20b/c"},
		{"/v%6Fd/a", "/a"}, // an escaped prefix character (not left so by NormalizePath, but by others)
	} {
		if got := up.originPath(tc.in); got != tc.want {
			t.Errorf("originPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := (&upstream{}).originPath("/vod/a"); got != "/vod/a" {
		t.Errorf("without strip: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }
