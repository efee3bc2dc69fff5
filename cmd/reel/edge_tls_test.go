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
	cmd := exec.Command(bin, "edge", "--origin", origin.URL, "--listen", addr, "--admin", "", "--tls-self-signed", dir)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	var lines []string
	for len(lines) < 5 {
		line, err := out.ReadString('\n')
		if err != nil {
			break
		}
		lines = append(lines, line)
		if strings.Contains(line, "serving") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	text := strings.Join(lines, "")
	if !strings.Contains(text, filepath.Join(dir, "ca.pem")) || !strings.Contains(text, "serving https://") {
		t.Fatalf("edge printed:\n%s", text)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
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
