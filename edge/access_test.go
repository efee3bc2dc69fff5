package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reelvideo/reel/internal/testkit"
)

// accessEdge is an edge in front of a real loopback origin, served on 127.0.0.1 and on [::1]
// (v6 is "" where the machine has no IPv6 loopback, outside CI), for the access rules' tests:
// requests come from a chosen local address (the whole of 127.0.0.0/8 is loopback on Linux),
// so the edge sees distinct TCP peers without any header a client could forge.
type accessEdge struct {
	e      *Edge
	origin *testOrigin
	v4, v6 string // base URLs
}

func newAccessEdge(t *testing.T, change func(*Config)) *accessEdge {
	t.Helper()
	origin := newOrigin(t, cacheable("media", "max-age=3600"))
	cfg := DefaultConfig()
	cfg.Memory = 64 << 20
	cfg.Origins = []Origin{{Host: "*", URL: origin.URL}}
	change(&cfg)
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &accessEdge{e: e, origin: origin}
	srv := serveEdge(t, e, cfg)
	t.Cleanup(srv.Close)
	a.v4 = srv.URL
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no IPv6 loopback: %v", err)
		}
		t.Logf("no IPv6 loopback (%v): the IPv6 rows are skipped", err)
		return a
	}
	srv6 := NewServer(e, cfg, nil)
	go srv6.Serve(ln)
	t.Cleanup(func() { srv6.Close() })
	a.v6 = "http://" + ln.Addr().String()
	return a
}

// get asks for path from the local address from (127.0.0.x or ::1), with hdr's fields.
func (a *accessEdge) get(t *testing.T, from, path string, hdr ...string) result {
	t.Helper()
	base := a.v4
	if strings.Contains(from, ":") {
		base = a.v6
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return result{resp.StatusCode, resp.Header, string(b)}
}

// accessCase is one request of a table: from where, which path and fields, and what it gets.
type accessCase struct {
	from, path string
	hdr        []string
	status     int
}

// run runs the cases in order, checking each status, and a refusal's whole answer: one short
// line, no-store, nothing from the origin.
func (a *accessEdge) run(t *testing.T, cases []accessCase) {
	t.Helper()
	for _, c := range cases {
		if strings.Contains(c.from, ":") && a.v6 == "" {
			continue
		}
		before := a.origin.hits.Load()
		r := a.get(t, c.from, c.path, c.hdr...)
		if r.status != c.status {
			t.Errorf("%s from %s %v: %d %q, want %d", c.path, c.from, c.hdr, r.status, r.body, c.status)
			continue
		}
		if r.status == http.StatusOK {
			continue
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s from %s: refusal's Cache-Control %q, want no-store", c.path, c.from, cc)
		}
		if strings.Count(r.body, "\n") != 1 || len(r.body) > 64 || r.header.Get("Cache-Status") != "" {
			t.Errorf("%s from %s: refusal %q (Cache-Status %q): want one short line, not the cache's", c.path, c.from, r.body, r.header.Get("Cache-Status"))
		}
		if n := a.origin.hits.Load(); n != before {
			t.Errorf("%s from %s: a refused request reached the origin", c.path, c.from)
		}
	}
}

func refused(e *Edge, reason int) float64 { return testutil.ToFloat64(e.m.accessRefused[reason]) }

// TestAccessReferers: hotlink protection with the Referers browsers send — the site's pages,
// its subdomains, another site, none (players and apps) — on a miss and on a hit, with a
// sub-path rule that sets no access setting keeping its parent's, and [] undoing them.
func TestAccessReferers(t *testing.T) {
	f := false
	a := newAccessEdge(t, func(c *Config) {
		c.Rules = []Rule{
			{PathPrefix: "/vod/", RuleAccess: RuleAccess{Referers: []string{"example.com", "*.Example.com"}}},
			{PathPrefix: "/vod/sub/", TTL: time.Minute}, // no access setting: /vod/'s
			{PathPrefix: "/vod/open/", RuleAccess: RuleAccess{Referers: []string{}}},
			{PathPrefix: "/strict/", RuleAccess: RuleAccess{Referers: []string{"example.com"}, AllowEmptyReferer: &f}},
			// A rule with request conditions may set access settings.
			{Match: RuleMatch{PathPrefix: "/app/", Headers: map[string]string{"X-App": "1"}}, RuleAccess: RuleAccess{Referers: []string{"app.example"}}},
		}
	})
	const lo = "127.0.0.1"
	ref := func(v string) []string { return []string{"Referer", v} }
	a.run(t, []accessCase{
		{lo, "/vod/a.ts", ref("https://example.com/watch?v=1"), 200},
		{lo, "/vod/a.ts", ref("https://www.example.com/watch"), 200},
		{lo, "/vod/a.ts", ref("https://cdn.eu.EXAMPLE.com:8443/x"), 200},
		{lo, "/vod/a.ts", nil, 200}, // no Referer: allow_empty_referer defaults to true
		{lo, "/vod/a.ts", ref(""), 200},
		{lo, "/vod/a.ts", ref("https://evil.test/page"), 403},
		{lo, "/vod/a.ts", ref("https://example.com.evil.test/"), 403},
		{lo, "/vod/a.ts", ref("https://notexample.com/"), 403},
		{lo, "/vod/a.ts", ref("example.com"), 403}, // not an absolute URL: no host to tell
		{lo, "/vod/sub/b.ts", ref("https://evil.test/"), 403},
		{lo, "/vod/sub/b.ts", ref("https://example.com/"), 200},
		{lo, "/vod/open/c.ts", ref("https://evil.test/"), 200},
		{lo, "/strict/d.ts", nil, 403},
		{lo, "/strict/d.ts", ref("https://example.com/"), 200},
		{lo, "/strict/d.ts", ref("https://www.example.com/"), 403},
		{lo, "/app/e", []string{"X-App", "1", "Referer", "https://evil.test/"}, 403},
		{lo, "/app/e", []string{"X-App", "1", "Referer", "https://app.example/"}, 200},
		{lo, "/app/e", []string{"Referer", "https://evil.test/"}, 200},
	})
	// /vod/a.ts is stored now: a hit is refused too, and a good Referer still gets the hit.
	if r := a.get(t, lo, "/vod/a.ts", "Referer", "https://evil.test/"); r.status != 403 || r.body != "referer not allowed\n" {
		t.Errorf("hit with another site's Referer: %d %q", r.status, r.body)
	}
	if r := a.get(t, lo, "/vod/a.ts", "Referer", "https://example.com/"); r.status != 200 || !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("hit with the site's Referer: %d %q", r.status, r.cacheStatus())
	}
	if n := refused(a.e, refusedReferer); n != 9 {
		t.Errorf("reel_edge_access_refused_total{reason=referer} = %v, want 9", n)
	}
}

// TestAccessIPs: allow_ips and deny_ips against the TCP peer, IPv4 and IPv6, deny winning,
// a sub-path rule keeping its parent's allow list, on a miss and on a hit; an X-Forwarded-For
// from the client changes nothing.
func TestAccessIPs(t *testing.T) {
	a := newAccessEdge(t, func(c *Config) {
		c.Rules = []Rule{
			{PathPrefix: "/in/", RuleAccess: RuleAccess{AllowIPs: []string{"127.0.0.0/30", "10.0.0.0/8"}}},
			{PathPrefix: "/in/deny/", RuleAccess: RuleAccess{DenyIPs: []string{"127.0.0.2"}}},
			{PathPrefix: "/in/sub/", TTL: time.Minute},
			{PathPrefix: "/v6/", RuleAccess: RuleAccess{AllowIPs: []string{"::1/128"}}},
			{PathPrefix: "/deny6/", RuleAccess: RuleAccess{DenyIPs: []string{"2001:db8::/32", "::1"}}},
			{PathPrefix: "/both/", RuleAccess: RuleAccess{AllowIPs: []string{"127.0.0.0/8"}, DenyIPs: []string{"127.0.0.9/32"}}},
		}
	})
	a.run(t, []accessCase{
		{"127.0.0.1", "/in/a", nil, 200},
		{"127.0.0.3", "/in/a", nil, 200},
		{"127.0.0.9", "/in/a", nil, 403},
		{"127.0.0.9", "/in/a", []string{"X-Forwarded-For", "127.0.0.1"}, 403},
		{"::1", "/in/a", nil, 403},
		{"127.0.0.2", "/in/deny/b", nil, 403}, // deny_ips here, allow_ips from /in/
		{"127.0.0.1", "/in/deny/b", nil, 200},
		{"127.0.0.9", "/in/deny/b", nil, 403},
		{"127.0.0.9", "/in/sub/c", nil, 403},
		{"127.0.0.1", "/in/sub/c", nil, 200},
		{"::1", "/v6/d", nil, 200},
		{"127.0.0.1", "/v6/d", nil, 403},
		{"::1", "/deny6/e", nil, 403},
		{"127.0.0.1", "/deny6/e", nil, 200},
		{"127.0.0.8", "/both/f", nil, 200},
		{"127.0.0.9", "/both/f", nil, 403}, // deny wins
		{"127.0.0.9", "/open", nil, 200},
	})
	// /in/a is stored: the hit is refused to an address outside the list.
	if r := a.get(t, "127.0.0.1", "/in/a"); !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("/in/a not a hit: %q", r.cacheStatus())
	}
	if r := a.get(t, "127.0.0.9", "/in/a"); r.status != 403 || r.body != "client address not allowed\n" {
		t.Errorf("hit from outside allow_ips: %d %q", r.status, r.body)
	}
	want := 10.0 // 7 in the table from IPv4 clients, 2 from ::1, the hit
	if a.v6 == "" {
		want = 8
	}
	if n := refused(a.e, refusedIP); n != want {
		t.Errorf("reel_edge_access_refused_total{reason=ip} = %v, want %v", n, want)
	}
}

// TestAccessCountries: allow_countries and deny_countries from a MaxMind DB the test writes,
// which places 127.0.0.0/30 in FR, 127.0.0.4/30 in US and ::1 in BE, and leaves 127.0.0.9
// unknown: allowed unless deny_unknown_country.
func TestAccessCountries(t *testing.T) {
	db := testkit.WriteCountryDB(t, map[string]string{"127.0.0.0/30": "FR", "127.0.0.4/30": "US", "::1/128": "BE"})
	tr := true
	a := newAccessEdge(t, func(c *Config) {
		c.GeoIP.Database = db
		c.Rules = []Rule{
			{PathPrefix: "/eu/", RuleAccess: RuleAccess{AllowCountries: []string{"FR", "BE"}}},
			{PathPrefix: "/eu/be/", RuleAccess: RuleAccess{DenyCountries: []string{"FR"}}},
			{PathPrefix: "/eu/sub/", TTL: time.Minute},
			{PathPrefix: "/not-us/", RuleAccess: RuleAccess{DenyCountries: []string{"US"}}},
			{PathPrefix: "/fr/", RuleAccess: RuleAccess{AllowCountries: []string{"FR"}, DenyUnknownCountry: &tr}},
		}
	})
	a.run(t, []accessCase{
		{"127.0.0.1", "/eu/a", nil, 200},
		{"127.0.0.5", "/eu/a", nil, 403},
		{"::1", "/eu/a", nil, 200},
		{"127.0.0.9", "/eu/a", nil, 200}, // unknown: allowed by default
		{"127.0.0.1", "/eu/be/b", nil, 403},
		{"127.0.0.5", "/eu/be/b", nil, 403}, // allow_countries from /eu/
		{"::1", "/eu/be/b", nil, 200},
		{"127.0.0.5", "/eu/sub/c", nil, 403},
		{"127.0.0.2", "/eu/sub/c", nil, 200},
		{"127.0.0.5", "/not-us/d", nil, 403},
		{"127.0.0.1", "/not-us/d", nil, 200},
		{"127.0.0.9", "/not-us/d", nil, 200},
		{"127.0.0.9", "/fr/e", nil, 403},
		{"127.0.0.3", "/fr/e", nil, 200},
		{"::1", "/fr/e", nil, 403},
	})
	if r := a.get(t, "127.0.0.5", "/eu/a"); r.status != 403 || r.body != "country not allowed\n" {
		t.Errorf("hit from US: %d %q", r.status, r.body)
	}
}

// TestAccessRateLimit: a token bucket per client per rule, on the edge's clock (a fake one
// here, so that the test waits for nothing): a burst of concurrent requests gets exactly
// burst through and 429s with Retry-After for the rest; another client has its own bucket; a
// sub-path rule shares its parent's table, `off` undoes it; the bucket refills at rate.
func TestAccessRateLimit(t *testing.T) {
	var shift atomic.Int64
	base := time.Now()
	a := newAccessEdge(t, func(c *Config) {
		c.Rules = []Rule{
			{PathPrefix: "/live/", RuleAccess: RuleAccess{RateLimit: &RateLimit{Rate: "2/s", Burst: 5}}},
			{PathPrefix: "/live/sub/", TTL: time.Minute},
			{PathPrefix: "/live/free/", RuleAccess: RuleAccess{RateLimit: &RateLimit{off: true}}},
			{PathPrefix: "/slow/", RuleAccess: RuleAccess{RateLimit: &RateLimit{Rate: "1/m"}}},
		}
	})
	a.e.now = func() time.Time { return base.Add(time.Duration(shift.Load())) }
	burst := func(from, path string, n int) (ok int, retry []string) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := a.get(t, from, fmt.Sprintf("%s?n=%d", path, i%3))
				mu.Lock()
				defer mu.Unlock()
				switch r.status {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					retry = append(retry, r.header.Get("Retry-After"))
					if r.body != "rate limit exceeded\n" || r.header.Get("Cache-Control") != "no-store" {
						t.Errorf("429: %q, Cache-Control %q", r.body, r.header.Get("Cache-Control"))
					}
				default:
					t.Errorf("%s: %d %q", path, r.status, r.body)
				}
			})
		}
		wg.Wait()
		return ok, retry
	}
	ok, retry := burst("127.0.0.1", "/live/a.ts", 12)
	if ok != 5 || len(retry) != 7 {
		t.Fatalf("a burst of 12: %d passed, %d refused; want 5 and 7", ok, len(retry))
	}
	for _, r := range retry {
		if r != "1" { // 0.5 s until the next token, rounded up
			t.Errorf("Retry-After %q, want 1", r)
		}
	}
	// The sub-path shares /live/'s bucket; /live/free/ has none; another client its own.
	a.run(t, []accessCase{
		{"127.0.0.1", "/live/sub/b.ts", nil, 429},
		{"127.0.0.1", "/live/free/c.ts", nil, 200},
		{"127.0.0.2", "/live/a.ts", nil, 200},
	})
	// Refilling at 2/s: nothing before 0.5 s, one token at 0.5 s, the whole burst after 2.5 s.
	shift.Store(int64(499 * time.Millisecond))
	a.run(t, []accessCase{{"127.0.0.1", "/live/a.ts", nil, 429}})
	shift.Store(int64(500 * time.Millisecond))
	a.run(t, []accessCase{{"127.0.0.1", "/live/a.ts", nil, 200}, {"127.0.0.1", "/live/a.ts", nil, 429}})
	shift.Store(int64(10 * time.Second))
	if ok, retry := burst("127.0.0.1", "/live/sub/b.ts", 8); ok != 5 || len(retry) != 3 {
		t.Errorf("after refilling, a burst of 8: %d passed, %d refused; want 5 and 3", ok, len(retry))
	}
	// 1/m, burst defaulting to 1: the second request waits a minute.
	a.run(t, []accessCase{{"127.0.0.1", "/slow/x", nil, 200}})
	if r := a.get(t, "127.0.0.1", "/slow/x"); r.status != 429 || r.header.Get("Retry-After") != "60" {
		t.Errorf("1/m: %d, Retry-After %q; want 429, 60", r.status, r.header.Get("Retry-After"))
	}
	if n := refused(a.e, refusedRate); n != 7+1+1+1+3+1 {
		t.Errorf("reel_edge_access_refused_total{reason=rate} = %v, want 14", n)
	}
}

// TestRateLimiterBounded: a flood of distinct addresses never grows a rule's table past
// max_clients, buckets full again are dropped as new clients come, and an IPv6 client's /64
// is one client.
func TestRateLimiterBounded(t *testing.T) {
	t0 := time.Now()
	l := newRateLimiter(1, 2, 1000)
	for i := range 100_000 {
		a4 := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		if l.take(netip.AddrFrom4(a4), t0) != 0 {
			t.Fatalf("client %d refused its first request", i)
		}
		if n := l.len(); n > 1000 {
			t.Fatalf("%d clients tracked after %d, want at most 1000", n, i+1)
		}
	}
	// The most recent client is still tracked: its second and third requests are refused.
	last := netip.AddrFrom4([4]byte{10, 1, 0x86, 0x9f}) // 99999
	if l.take(last, t0) != 0 || l.take(last, t0) == 0 {
		t.Error("the most recent client's bucket was forgotten")
	}
	// Idle clients (full again 2 s later) go as new ones come: 500 newcomers push out 1000.
	l = newRateLimiter(1, 2, 1<<20)
	for i := range 1000 {
		l.take(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), t0)
	}
	for i := range 500 {
		l.take(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), t0.Add(3*time.Second))
	}
	if n := l.len(); n != 500 {
		t.Errorf("%d clients tracked, want the 500 newcomers only", n)
	}
	// One /64: one bucket of 2.
	l = newRateLimiter(1, 2, 10)
	for i, want := range []bool{true, true, false} {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1))
		if got := l.take(a, t0) == 0; got != want {
			t.Errorf("%v: passed %v, want %v", a, got, want)
		}
	}
	if l.take(netip.MustParseAddr("2001:db8:1:3::1"), t0) != 0 {
		t.Error("another /64 shares the bucket")
	}
}

// TestAccessConfig: each mistake is one error naming its key.
func TestAccessConfig(t *testing.T) {
	dir := t.TempDir()
	load := func(yaml string) (Config, error) {
		f := dir + "/edge.yaml"
		writeFile(t, f, "origins: [{url: 'http://127.0.0.1:1'}]\n"+yaml)
		cfg, err := LoadConfig(f)
		if err == nil {
			_, err = New(cfg, nil)
		}
		return cfg, err
	}
	db := testkit.WriteCountryDB(t, map[string]string{"10.0.0.0/8": "FR"})
	good := "geoip: {database: " + db + "}\nrules:\n" +
		"  - path_prefix: /a/\n    referers: [example.com, '*.example.com']\n    allow_empty_referer: false\n" +
		"    allow_ips: [10.0.0.0/8, 2001:db8::/32, 192.0.2.1]\n    deny_ips: [10.1.0.0/16]\n" +
		"    allow_countries: [FR, BE]\n    deny_countries: [US]\n    deny_unknown_country: true\n" +
		"    rate_limit: {rate: 10/s, burst: 20, max_clients: 1000}\n" +
		"  - path_prefix: /a/b/\n    rate_limit: off\n" +
		"  - match: {path_prefix: /a/, headers: {X-App: '1'}}\n    referers: [app.example]\n    rate_limit: {rate: 600/m}\n"
	cfg, err := load(good)
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Rules[0].RateLimit; l.perSec != 10 || l.maxBurst != 20 || cfg.Rules[2].RateLimit.maxBurst != 10 || !cfg.Rules[1].RateLimit.off {
		t.Errorf("rate limits read as %+v %+v %+v", l, cfg.Rules[1].RateLimit, cfg.Rules[2].RateLimit)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"rules: [{path_prefix: /a/, allow_ips: [10.0.0.0/33]}]", `rules[0]: allow_ips: "10.0.0.0/33" is not a CIDR`},
		{"rules: [{path_prefix: /a/, deny_ips: [example.com]}]", `rules[0]: deny_ips: "example.com" is not a CIDR`},
		{"rules: [{path_prefix: /a/, allow_countries: [fr]}]", `rules[0]: allow_countries: "fr" is not an ISO 3166-1 alpha-2 code`},
		{"rules: [{path_prefix: /a/, deny_countries: [FRA]}]", `rules[0]: deny_countries: "FRA" is not an ISO 3166-1 alpha-2 code`},
		{"rules: [{path_prefix: /a/, allow_countries: [FR]}]", "rules[0]: allow_countries, deny_countries and deny_unknown_country need geoip.database"},
		{"geoip: {database: " + dir + "/none.mmdb}\nrules: [{path_prefix: /a/, allow_countries: [FR]}]", "geoip.database: open " + dir + "/none.mmdb"},
		{"geoip: {database: " + dir + "/edge.yaml}\n", "geoip.database: "},
		{"rules: [{path_prefix: /a/, rate_limit: {rate: 10 per s}}]", `rules[0]: rate_limit.rate "10 per s"`},
		{"rules: [{path_prefix: /a/, rate_limit: {rate: 10/d}}]", `rules[0]: rate_limit.rate "10/d"`},
		{"rules: [{path_prefix: /a/, rate_limit: {rate: 0/s}}]", `rules[0]: rate_limit.rate "0/s"`},
		{"rules: [{path_prefix: /a/, rate_limit: {burst: 3}}]", `rules[0]: rate_limit.rate ""`},
		{"rules: [{path_prefix: /a/, rate_limit: {rate: 1/s, burst: -1}}]", "rules[0]: rate_limit.burst -1"},
		{"rules: [{path_prefix: /a/, rate_limit: {rate: 1/s, brust: 3}}]", "field brust not found in rate_limit"},
		{"rules: [{path_prefix: /a/, rate_limit: on}]", "rate_limit: want off or {rate: 10/s, burst: 20}"},
		{"rules: [{path_prefix: /a/, referers: ['https://example.com/']}]", `rules[0]: referers: "https://example.com/": want a host`},
		{"rules: [{path_prefix: /a/, referers: ['*']}]", `rules[0]: referers: "*": want a host`},
	} {
		_, err := load(tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line with %q", tc.yaml, err, tc.want)
		}
	}
}

// TestSampleAccessConfig: the commented access rule and geoip section of samples/edge.yaml,
// uncommented, load (every key known) and build an edge, the database being one the test writes.
func TestSampleAccessConfig(t *testing.T) {
	b, err := os.ReadFile("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rule []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "  # - path_prefix: /premium/") || (len(rule) > 0 && strings.HasPrefix(line, "  #   ")) {
			rule = append(rule, strings.Replace(line, "  # ", "  ", 1))
		} else if len(rule) > 0 {
			break
		}
	}
	if !strings.Contains(string(b), "\n# geoip:\n#   database: ") {
		t.Fatal("samples/edge.yaml documents no geoip section")
	}
	db := testkit.WriteCountryDB(t, map[string]string{"10.0.0.0/8": "FR"})
	f := t.TempDir() + "/edge.yaml"
	writeFile(t, f, "origins: [{url: 'http://127.0.0.1:1'}]\ngeoip: {database: "+db+"}\nrules:\n"+strings.Join(rule, "\n")+"\n")
	cfg, err := LoadConfig(f)
	if err == nil {
		_, err = New(cfg, nil)
	}
	if err != nil || len(cfg.Rules) != 1 {
		t.Fatalf("sample access rule: %v\n%s", err, strings.Join(rule, "\n"))
	}
	r := cfg.Rules[0].RuleAccess
	if len(r.Referers) != 2 || r.AllowEmptyReferer == nil || len(r.AllowIPs) != 2 || len(r.DenyIPs) != 1 || len(r.AllowCountries) != 2 ||
		len(r.DenyCountries) != 1 || r.DenyUnknownCountry == nil || r.RateLimit == nil || r.RateLimit.perSec != 10 || r.RateLimit.maxBurst != 20 {
		t.Errorf("sample access rule read as %+v", r)
	}
}

// TestAccessZonedPeer: a link-local peer's address comes with its zone (fe80::1%eth0), which
// netip.Prefix.Contains never matches: deny_ips must still catch it.
func TestAccessZonedPeer(t *testing.T) {
	a := &access{denyIPs: []netip.Prefix{netip.MustParsePrefix("fe80::/10")}}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.RemoteAddr = "[fe80::1%eth0]:4242"
	e := &Edge{m: newMetrics(func() float64 { return 0 }, func() float64 { return 0 }), now: time.Now}
	if !e.refuseAccess(rec, r, a) || rec.Code != http.StatusForbidden {
		t.Errorf("a zoned link-local peer passed deny_ips fe80::/10: %d", rec.Code)
	}
}
