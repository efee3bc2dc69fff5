package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEdgeTLSSelfSigned: `reel edge --tls-self-signed DIR` serves HTTPS (TLS 1.2+) with a
// certificate its printed CA vouches for; caching works over it.
func TestEdgeTLSSelfSigned(t *testing.T) {
	bin := buildReel(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "hello over tls")
	}))
	defer origin.Close()
	dir := t.TempDir()
	addr := freeAddr(t)
	_, text := startEdgeUntil(t, bin, "serving", "--origin", origin.URL, "--listen", addr, "--admin", "", "--tls-self-signed", dir)
	if !strings.Contains(text, filepath.Join(dir, "ca.pem")) || !strings.Contains(text, "serving https://") {
		t.Fatalf("edge printed:\n%s", text)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: trustCA(t, dir)}}
	var status []string
	for range 2 {
		resp, err := c.Get("https://" + addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "hello over tls" || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("body %q, TLS %v", b, resp.TLS)
		}
		status = append(status, resp.Header.Get("Cache-Status"))
	}
	if !strings.Contains(status[1], "hit") {
		t.Errorf("second request over TLS not a hit: %q", status)
	}
	// Plain HTTP to the TLS port is refused, not served.
	if resp, err := http.Get("http://" + addr + "/x"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) == "hello over tls" {
			t.Error("plain HTTP served on the TLS listener")
		}
	}
}

// startEdgeUntil runs `reel edge args…` until the test ends and returns it with what it
// printed up to the line containing last (at most 8 lines); the rest of its output is
// discarded.
func startEdgeUntil(t *testing.T, bin, last string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"edge"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewReader(stdout)
	var lines []string
	for len(lines) < 8 {
		line, err := out.ReadString('\n')
		if err != nil {
			break
		}
		lines = append(lines, line)
		if strings.Contains(line, last) {
			break
		}
	}
	go io.Copy(io.Discard, out)
	return cmd, strings.Join(lines, "")
}

// trustCA is a client TLS configuration for localhost trusting the CA that
// `reel edge --tls-self-signed dir` wrote.
func trustCA(t *testing.T, dir string) *tls.Config {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}
