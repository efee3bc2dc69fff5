package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEdgeHeaderRules: the real `reel edge` with header rules in its config file sends the
// origin what they say and clients what they say, a miss and a hit alike; a refused field is
// one line naming the file, the rule and the key, and exit 1.
func TestEdgeHeaderRules(t *testing.T) {
	t.Parallel()
	bin := buildReel(t)
	var mu sync.Mutex
	var seen []http.Header
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("X-Powered-By", "php")
		io.WriteString(w, "object")
	}))
	defer origin.Close()
	cfgFile := writeConfig(t, "edge.yaml", `rules:
  - path_prefix: /
    request_headers:
      set: {X-Origin-Auth: s3cr3t}
      remove: [Cookie]
    response_headers:
      set: {Strict-Transport-Security: max-age=63072000, X-Cache: "{cache_status} from {client_ip}"}
      remove: [X-Powered-By]
`)
	_, base := startEdge(t, bin, "--origin", origin.URL, "--config", cfgFile)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	for i, want := range []string{"uri-miss from 127.0.0.2", "hit from 127.0.0.2"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/a", nil)
		req.Header.Set("Cookie", "session=1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		h := resp.Header
		if h.Get("X-Cache") != want || h.Get("Strict-Transport-Security") != "max-age=63072000" || h.Get("X-Powered-By") != "" {
			t.Errorf("request %d: X-Cache %q (want %q), Strict-Transport-Security %q, X-Powered-By %q", i, h.Get("X-Cache"), want,
				h.Get("Strict-Transport-Security"), h.Get("X-Powered-By"))
		}
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].Get("X-Origin-Auth") != "s3cr3t" || seen[0].Get("Cookie") != "" {
		t.Errorf("the origin saw %d requests, the first %v", len(seen), seen)
	}
	mu.Unlock()

	bad := writeConfig(t, "bad.yaml", "rules:\n  - path_prefix: /\n    request_headers:\n      set: {X-Real-IP: \"{client_ip}\"}\n")
	code, _, stderr := runReel(t, "edge", "--origin", origin.URL, "--config", bad)
	if code != 1 || !strings.Contains(stderr, bad) || !strings.Contains(stderr, "rules[0]: request_headers.set.X-Real-IP: {client_ip} differs per client") {
		t.Errorf("a per-client field to the origin of a cached path: exit %d, %q", code, stderr)
	}
	assertOneLine(t, "the per-client request header error", stderr)
}
