package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestEdgeAccessRules: the real `reel edge` with access rules in its config file — a country
// database (written by the test) placing 127.0.0.1 in FR and 127.0.0.2 in US, a referer
// allow-list and a rate limit — refuses what they say, from real clients on distinct
// loopback addresses, before the origin sees anything; a mistake in them is one line naming
// the file and the key.
func TestEdgeAccessRules(t *testing.T) {
	t.Parallel()
	bin := buildReel(t)
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "object")
	}))
	defer origin.Close()
	db := testkit.WriteCountryDB(t, map[string]string{"127.0.0.1/32": "FR", "127.0.0.2/32": "US"})
	cfgFile := writeConfig(t, "edge.yaml", "geoip: {database: "+db+"}\nrules:\n"+
		"  - path_prefix: /vod/\n    deny_countries: [US]\n    referers: [example.com, '*.example.com']\n"+
		"  - path_prefix: /live/\n    rate_limit: {rate: 1/m, burst: 2}\n")
	_, base := startEdge(t, bin, "--origin", origin.URL, "--config", cfgFile)

	get := func(from, path string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 30 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, c := range []struct {
		from, path, referer string
		status              int
		body                string
	}{
		{"127.0.0.1", "/vod/a.ts", "https://www.example.com/watch", 200, "object"},
		{"127.0.0.1", "/vod/a.ts", "", 200, "object"},
		{"127.0.0.2", "/vod/a.ts", "https://www.example.com/watch", 403, "country not allowed\n"},
		{"127.0.0.1", "/vod/a.ts", "https://evil.test/", 403, "referer not allowed\n"},
		{"127.0.0.1", "/live/x.m3u8", "", 200, "object"},
		{"127.0.0.1", "/live/x.m3u8", "", 200, "object"},
		{"127.0.0.1", "/live/x.m3u8", "", 429, "rate limit exceeded\n"},
		{"127.0.0.2", "/live/x.m3u8", "", 200, "object"},
	} {
		var hdr []string
		if c.referer != "" {
			hdr = []string{"Referer", c.referer}
		}
		status, h, body := get(c.from, c.path, hdr...)
		if status != c.status || body != c.body {
			t.Errorf("%s from %s (Referer %q): %d %q, want %d %q", c.path, c.from, c.referer, status, body, c.status, c.body)
		}
		if status == 429 && h.Get("Retry-After") != "60" {
			t.Errorf("429's Retry-After %q, want 60", h.Get("Retry-After"))
		}
	}
	if n := hits.Load(); n != 2 { // /vod/a.ts and /live/x.m3u8 once each: the rest were hits or refused
		t.Errorf("the origin had %d requests, want 2", n)
	}

	bad := writeConfig(t, "bad.yaml", "rules:\n  - path_prefix: /vod/\n    allow_ips: [10.0.0.0/33]\n")
	code, _, stderr := runReel(t, "edge", "--origin", origin.URL, "--config", bad)
	if code == 0 || !strings.Contains(stderr, bad) || !strings.Contains(stderr, `rules[0]: allow_ips: "10.0.0.0/33"`) {
		t.Errorf("bad allow_ips: exit %d, %q", code, stderr)
	}
	assertOneLine(t, "the bad allow_ips error", stderr)
}
