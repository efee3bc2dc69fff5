package edge

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRuleConditions: each kind of condition, through a real edge in front of a loopback
// origin that sends no freshness at all (so only a rule's ttl makes a second request a hit)
// and counts what it is asked.
func TestRuleConditions(t *testing.T) {
	var other atomic.Int64
	app := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		other.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "app")
	})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.URL.Path) // no Cache-Control, no Last-Modified: not fresh
	})
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.Origins = append(c.Origins, Origin{Name: "app", URL: app.URL})
		c.Rules = []Rule{
			{Match: RuleMatch{Host: "a.test"}, TTL: time.Hour},
			{Match: RuleMatch{Hosts: []string{"*.b.test"}}, TTL: time.Hour},
			{Match: RuleMatch{Extensions: []string{"m3u8"}}, TTL: time.Hour},
			{Match: RuleMatch{PathGlob: "/live/*/seg.m4s"}, TTL: time.Hour},
			{PathPrefix: "/api/", TTL: time.Hour},
			{PathPrefix: "/api/", Match: RuleMatch{Cookies: map[string]string{"session": "*"}}, Bypass: ptr(true), Origin: "app"},
			{PathPrefix: "/api/", Match: RuleMatch{Headers: map[string]string{"X-Debug": "1"}}, Bypass: ptr(true)},
		}
	})
	twice := func(path string, hdr ...string) string {
		t.Helper()
		get(t, srv.URL+path, hdr...)
		return get(t, srv.URL+path, hdr...).cacheStatus()
	}
	for _, tc := range []struct {
		name, path string
		hdr        []string
		hit        bool
	}{
		{"exact host", "/x", []string{"Host", "a.test"}, true},
		{"exact host, any case and port", "/x2", []string{"Host", "A.Test:80"}, true},
		{"another host", "/x", []string{"Host", "c.test"}, false},
		{"wildcard host", "/x", []string{"Host", "v.b.test"}, true},
		{"wildcard host is not its apex", "/x", []string{"Host", "b.test"}, false},
		{"extension", "/vod/index.m3u8", nil, true},
		{"another extension", "/vod/index.mpd", nil, false},
		{"glob", "/live/ch1/seg.m4s", nil, true},
		{"glob, '*' is one segment", "/live/a/b/seg.m4s", nil, false},
		{"prefix", "/api/list", nil, true},
	} {
		if got := twice(tc.path, tc.hdr...); strings.Contains(got, "hit") != tc.hit {
			t.Errorf("%s: %s %v: second request %q, want a hit: %v", tc.name, tc.path, tc.hdr, got, tc.hit)
		}
	}
	// Request conditions choose handling, never what is stored: a session cookie bypasses the
	// cache to the app origin, a debug header to the usual one; the same URL without either is
	// still the stored copy.
	get(t, srv.URL+"/api/me")
	r := get(t, srv.URL+"/api/me", "Cookie", "theme=dark; session=abc")
	if r.body != "app" || !strings.Contains(r.cacheStatus(), "fwd=bypass") || other.Load() != 1 {
		t.Errorf("session cookie: %q %q, app origin asked %d times", r.body, r.cacheStatus(), other.Load())
	}
	if r := get(t, srv.URL+"/api/me", "X-Debug", "1"); r.body != "origin /api/me" || !strings.Contains(r.cacheStatus(), "fwd=bypass") {
		t.Errorf("debug header: %q %q", r.body, r.cacheStatus())
	}
	if r := get(t, srv.URL+"/api/me", "Cookie", "theme=dark"); r.body != "origin /api/me" || !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("without the session cookie: %q %q, want the stored copy", r.body, r.cacheStatus())
	}
}

// TestRuleInheritance: each setting comes from the most specific matching rule that sets it —
// a rule for a sub-path setting only a ttl keeps the key settings and the origin of the rule
// above it, and a more specific rule can undo a setting (bypass: false, include_params: []).
func TestRuleInheritance(t *testing.T) {
	var asked atomic.Int64
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		io.WriteString(w, r.URL.Path+"?"+r.URL.RawQuery)
	})
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.Rules = []Rule{
			{PathPrefix: "/vod/", ExcludeParams: []string{"session"}, TTL: time.Minute},
			{PathPrefix: "/vod/hd/", TTL: time.Hour},
			{PathPrefix: "/vod/raw/", ExcludeParams: []string{}},
			{PathPrefix: "/off/", Bypass: ptr(true)},
			{PathPrefix: "/off/on/", Bypass: ptr(false), TTL: time.Hour},
		}
	})
	check := func(name, path string, wantHit bool, wantBody string) {
		t.Helper()
		r := get(t, srv.URL+path)
		if strings.Contains(r.cacheStatus(), "hit") != wantHit || r.body != wantBody {
			t.Errorf("%s: %s: %q %q, want hit %v, body %q", name, path, r.cacheStatus(), r.body, wantHit, wantBody)
		}
	}
	check("first", "/vod/hd/a?session=1", false, "/vod/hd/a?")
	check("the exclusion of /vod/ holds under /vod/hd/", "/vod/hd/a?session=2", true, "/vod/hd/a?")
	check("first", "/vod/raw/a?session=1", false, "/vod/raw/a?session=1")
	check("an empty list undoes it", "/vod/raw/a?session=2", false, "/vod/raw/a?session=2")
	check("…with /vod/'s ttl still", "/vod/raw/a?session=2", true, "/vod/raw/a?session=2")
	check("first", "/off/x", false, "/off/x?")
	check("bypassed", "/off/x", false, "/off/x?")
	check("first", "/off/on/x", false, "/off/on/x?")
	check("bypass: false undoes it", "/off/on/x", true, "/off/on/x?")
	if n := asked.Load(); n != 6 {
		t.Errorf("origin asked %d times, want 6", n)
	}
}
