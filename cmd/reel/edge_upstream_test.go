package main

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestEdgeOriginCA: `reel edge --origin https://… --origin-ca FILE` trusts the origin's CA
// (and only it), reaches the origin over HTTP/2 and caches; without the flag the origin's
// certificate is not trusted and the client gets a 502 saying so.
func TestEdgeOriginCA(t *testing.T) {
	var proto atomic.Int64
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int64(r.ProtoMajor))
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "private origin")
	}))
	origin.EnableHTTP2 = true
	origin.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	origin.StartTLS()
	defer origin.Close()
	ca := filepath.Join(t.TempDir(), "origin-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: origin.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildReel(t)

	_, trusted := startEdge(t, bin, "--origin", origin.URL, "--origin-ca", ca)
	for i := range 2 {
		status, body, cs := fetch(t, trusted+"/x")
		if status != 200 || body != "private origin" || proto.Load() != 2 {
			t.Fatalf("request %d: %d %q, origin saw HTTP/%d", i, status, body, proto.Load())
		}
		if i == 1 && !strings.Contains(cs, "hit") {
			t.Errorf("second request not a hit: %s", cs)
		}
	}

	_, untrusted := startEdge(t, bin, "--origin", origin.URL)
	if status, body, _ := fetch(t, untrusted+"/y"); status != http.StatusBadGateway || !strings.Contains(body, "not trusted") {
		t.Errorf("without --origin-ca: %d %q, want 502 naming the certificate", status, body)
	}

	cfg := writeConfig(t, "edge.yaml", "origins:\n  - host: example.com\n    url: "+origin.URL+"\n")
	missing := filepath.Join(t.TempDir(), "nope.pem")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--origin", origin.URL, "--origin-ca", missing}, missing},
		{"http origin", []string{"--origin", "http://127.0.0.1:1", "--origin-ca", ca}, "ca_file needs an https:// url"},
		{"no default origin", []string{"--config", cfg, "--origin-ca", ca}, "--origin-ca is for the default origin"},
	} {
		code, stdout, stderr := runReel(t, append([]string{"edge", "--admin", ""}, tc.args...)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d naming %q", tc.name, code, stdout, stderr, exitUsage, tc.want)
		}
		assertOneLine(t, tc.name, stderr)
	}
}

// fetch GETs url, with the header fields hdr gives as name, value pairs, and returns the
// status, body and Cache-Status.
func fetch(t *testing.T, url string, hdr ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Cache-Status")
}
