package edge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readAccessLog parses every line of a JSON access log strictly.
func readAccessLog(t *testing.T, path string) []accessEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []accessEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var a accessEntry
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, a)
	}
	return out
}

// TestAccessLogJSON: access_log_format json writes one JSON object per request with the
// fields log shippers read, for a miss, a hit, a 404 and a bypass.
func TestAccessLogJSON(t *testing.T) {
	o := opsOrigin(t)
	path := filepath.Join(t.TempDir(), "access.log")
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.AccessLog, c.AccessLogFormat, c.AccessLogPath = true, "json", path
		c.Rules = []Rule{{PathPrefix: "/live/", Bypass: ptr(true)}}
	})
	get(t, srv.URL+"/ok?a=1", "User-Agent", "test-player/1.0", "Referer", "https://site.example/watch", "X-Request-Id", "req-42")
	get(t, srv.URL+"/ok?a=1")
	get(t, srv.URL+"/missing")
	get(t, srv.URL+"/live/ok")
	// The log is written once the response is done, which is after the client has it: wait
	// for the four lines.
	var lines []accessEntry
	waitUntil(t, func() bool { lines = readAccessLog(t, path); return len(lines) >= 4 })
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4: %+v", len(lines), lines)
	}
	for i, want := range []struct {
		path, query, cache string
		status             int
		bytes              int64
	}{
		{"/ok", "a=1", "miss", 200, 2},
		{"/ok", "a=1", "hit", 200, 2},
		{"/missing", "", "miss", 404, 3},
		{"/live/ok", "", "bypass", 200, 2},
	} {
		a := lines[i]
		if a.Path != want.path || a.Query != want.query || a.Cache != want.cache || a.Status != want.status || a.BytesSent != want.bytes {
			t.Errorf("line %d: %+v, want %+v", i, a, want)
		}
		if a.Method != "GET" || a.ClientIP != "127.0.0.1" || !strings.HasPrefix(a.Host, "127.0.0.1:") || a.Protocol != "HTTP/1.1" {
			t.Errorf("line %d: method, client, host or protocol: %+v", i, a)
		}
		if a.TTFBMS < 0 || a.DurationMS < a.TTFBMS || a.Time == "" {
			t.Errorf("line %d: times %q ttfb %v duration %v", i, a.Time, a.TTFBMS, a.DurationMS)
		}
		if a.Origin != strings.TrimPrefix(o.URL, "http://") {
			t.Errorf("line %d: origin %q, want %s", i, a.Origin, o.URL)
		}
	}
	if a := lines[0]; a.UserAgent != "test-player/1.0" || a.Referer != "https://site.example/watch" || a.RequestID != "req-42" {
		t.Errorf("user agent, referer, request id: %+v", a)
	}
}

// TestAccessLogNoToken: the logged URL is the one the edge took the signed-URL token out of,
// for an accepted token and a refused one alike.
func TestAccessLogNoToken(t *testing.T) {
	o := opsOrigin(t)
	path := filepath.Join(t.TempDir(), "access.log")
	_, srv := newEdge(t, o.URL, func(c *Config) {
		withTokens(c)
		c.AccessLog, c.AccessLogFormat, c.AccessLogPath = true, "json", path
	})
	tok := mint(t, "/*", "k1", nil)
	if r := get(t, srv.URL+"/ok?b=2&token="+tok); r.status != 200 {
		t.Fatalf("signed request: %d", r.status)
	}
	if r := get(t, srv.URL+"/ok?token=forged.token&b=3"); r.status != 403 {
		t.Fatalf("forged token: %d", r.status)
	}
	var lines []accessEntry
	waitUntil(t, func() bool { lines = readAccessLog(t, path); return len(lines) >= 2 })
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), tok) || strings.Contains(string(raw), "forged") || strings.Contains(string(raw), "token=") {
		t.Errorf("a token reached the access log:\n%s", raw)
	}
	if lines[0].Query != "b=2" || lines[1].Query != "b=3" || lines[1].Status != 403 {
		t.Errorf("lines: %+v", lines)
	}
}

// TestAccessLogFormatChecked: an unknown format is a config error naming the key.
func TestAccessLogFormatChecked(t *testing.T) {
	c := DefaultConfig()
	c.Origins = []Origin{{Host: "*", URL: "http://127.0.0.1:1"}}
	c.AccessLogFormat = "xml"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "access_log_format") {
		t.Errorf("Validate: %v", err)
	}
}
