package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// TestEdgeHTTP2HTTP3: `reel edge --tls-self-signed DIR --http3` says where it serves HTTP/3,
// and serves HTTP/2 (ALPN h2, RFC 9113) and HTTP/3 (RFC 9114, UDP at the same port) to clients
// that trust the printed CA, from one cache: what HTTP/2 stored is a hit over HTTP/3. TCP
// responses advertise HTTP/3 (Alt-Svc, RFC 7838). SIGTERM shuts it down cleanly.
func TestEdgeHTTP2HTTP3(t *testing.T) {
	bin := buildReel(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "hello over "+r.URL.Path)
	}))
	defer origin.Close()
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd, text := startEdgeUntil(t, bin, "HTTP/3 on udp", "--origin", origin.URL, "--listen", addr, "--admin", "", "--tls-self-signed", dir, "--http3")
	if !strings.Contains(text, "HTTP/3 on udp "+addr) || !strings.Contains(text, "HTTP/1.1 and HTTP/2 over TLS on tcp "+addr) ||
		!strings.Contains(text, "serving https://"+addr) {
		t.Fatalf("edge printed:\n%s", text)
	}
	tlsConf := trustCA(t, dir)
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}}
	h3t := &http3.Transport{TLSClientConfig: tlsConf}
	defer h3t.Close()
	h3 := &http.Client{Timeout: 10 * time.Second, Transport: h3t}
	tests := []struct {
		client    *http.Client
		major     int
		wantCache string
		altSvc    bool
	}{
		{h2, 2, "fwd=uri-miss", true},
		{h2, 2, "reel; hit", true},
		{h3, 3, "reel; hit", false},
	}
	for i, tc := range tests {
		resp, err := tc.client.Get("https://" + addr + "/x")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != tc.major || string(b) != "hello over /x" || !strings.Contains(resp.Header.Get("Cache-Status"), tc.wantCache) {
			t.Errorf("request %d: %s %q Cache-Status %q", i, resp.Proto, b, resp.Header.Get("Cache-Status"))
		}
		if alt := resp.Header.Get("Alt-Svc"); tc.altSvc && !strings.HasPrefix(alt, `h3=":`+addr[strings.LastIndex(addr, ":")+1:]+`"`) {
			t.Errorf("request %d: Alt-Svc %q", i, alt)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("reel edge exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("reel edge still running 15s after SIGTERM")
	}
}
