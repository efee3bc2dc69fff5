package edge

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/tlscert"
)

// TestConfigTLSSection: the tls: section lists several certificates, and each handshake gets
// the one for its server name (SNI, RFC 6066 §3), the first for an unknown or missing name;
// http2 and http3 settings are read with it.
func TestConfigTLSSection(t *testing.T) {
	dir := t.TempDir()
	// Two certificates from two development CAs: for a.example and for b.example.
	pa, caA, err := tlscert.SelfSigned(filepath.Join(dir, "a"), []string{"a.example"})
	if err != nil {
		t.Fatal(err)
	}
	pb, caB, err := tlscert.SelfSigned(filepath.Join(dir, "b"), []string{"b.example"})
	if err != nil {
		t.Fatal(err)
	}
	o := newProtoOrigin(t)
	file := filepath.Join(dir, "edge.yaml")
	os.WriteFile(file, []byte(`
origins:
  - host: "*"
    url: `+o.URL+`
tls:
  certificates:
    - cert: `+pa.Cert+`
      key: `+pa.Key+`
    - {cert: `+pb.Cert+`, key: `+pb.Key+`}
  http3: true
  alt_svc_max_age: 1h
http2:
  max_concurrent_streams: 100
  max_read_frame_size: 32KiB
  idle_timeout: 30s
  reset_rate: 10
  reset_burst: 50
`), 0o644)
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.TLS.Certificates) != 2 || !cfg.TLS.HTTP3 || cfg.TLS.AltSvcMaxAge != time.Hour || cfg.HTTP2.MaxConcurrentStreams != 100 ||
		cfg.HTTP2.MaxReadFrameSize != 32<<10 || cfg.HTTP2.IdleTimeout != 30*time.Second || cfg.HTTP2.ResetRate != 10 || cfg.HTTP2.ResetBurst != 50 {
		t.Fatalf("read as %+v %+v", cfg.TLS, cfg.HTTP2)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFrontend(e, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := f.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.Serve(ln)
	defer f.Close()
	if !strings.HasSuffix(f.AltSvc(), "; ma=3600") {
		t.Errorf("Alt-Svc %q", f.AltSvc())
	}
	pool := func(ca string) *x509.CertPool {
		b, _ := os.ReadFile(ca)
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(b)
		return p
	}
	tests := []struct {
		sni, ca, wantName string
	}{
		{"a.example", caA, "a.example"},
		{"b.example", caB, "b.example"},
		{"", caA, "a.example"},              // no SNI: the first
		{"other.example", caA, "a.example"}, // unknown: the first
	}
	for _, tc := range tests {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: tc.sni, RootCAs: pool(tc.ca), NextProtos: []string{"h2"},
			InsecureSkipVerify: tc.sni == "" || tc.sni == "other.example"})
		if err != nil {
			t.Errorf("SNI %q: %v", tc.sni, err)
			continue
		}
		st := conn.ConnectionState()
		conn.Close()
		if got := st.PeerCertificates[0].DNSNames; len(got) == 0 || got[0] != tc.wantName || st.NegotiatedProtocol != "h2" {
			t.Errorf("SNI %q: certificate for %v, ALPN %q", tc.sni, got, st.NegotiatedProtocol)
		}
	}
	// And a request through the second certificate, verified.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(caB), ServerName: "b.example"}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + ln.Addr().String() + "/sni/obj")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("%d over %s", resp.StatusCode, resp.Proto)
	}
}

// TestConfigProtocolErrors: every bad tls:/http2: setting is refused with a one-line error
// naming it; a missing certificate file names the file.
func TestConfigProtocolErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"key missing", func(c *Config) { c.TLS.Certificates = []CertKey{{Cert: "a.pem"}} }, "tls.certificates[0]: key is missing"},
		{"cert missing", func(c *Config) { c.TLS.Certificates = []CertKey{{Cert: "a.pem", Key: "a.key"}, {Key: "b.key"}} }, "tls.certificates[1]: cert is missing"},
		{"both sources", func(c *Config) { c.TLS = TLS{Certificates: []CertKey{{"a", "b"}}, SelfSigned: "dir"} }, "exclude each other"},
		{"http3 without tls", func(c *Config) { c.TLS.HTTP3 = true }, "tls.http3 (--http3) needs TLS"},
		{"h2c with tls", func(c *Config) { c.TLS.SelfSigned, c.HTTP2.H2C = "dir", true }, "http2.h2c (--h2c) is for a plain listener"},
		{"h2c with http2 off", func(c *Config) { c.HTTP2.H2C, c.HTTP2.Off = true, true }, "http2.h2c needs HTTP/2"},
		{"frame too small", func(c *Config) { c.HTTP2.MaxReadFrameSize = 1000 }, "http2.max_read_frame_size"},
		{"frame too large", func(c *Config) { c.HTTP2.MaxReadFrameSize = 32 << 20 }, "http2.max_read_frame_size"},
		{"negative idle", func(c *Config) { c.HTTP2.IdleTimeout = -1 }, "http2.idle_timeout"},
		{"negative reset rate", func(c *Config) { c.HTTP2.ResetRate = -1 }, "http2.reset_rate"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		c.Origins = []Origin{{Host: "*", URL: "http://127.0.0.1:8080"}}
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
	// Files are checked when the frontend loads them.
	c := DefaultConfig()
	c.Origins = []Origin{{Host: "*", URL: "http://127.0.0.1:8080"}}
	c.TLS.Certificates = []CertKey{{Cert: "/nonexistent/edge.pem", Key: "/nonexistent/edge.key"}}
	if _, err := NewFrontend(http.NotFoundHandler(), c, nil); err == nil || !strings.Contains(err.Error(), "/nonexistent/edge.pem") {
		t.Errorf("missing certificate file: %v", err)
	}
	// Unknown keys in the sections are refused like any other.
	file := filepath.Join(t.TempDir(), "typo.yaml")
	os.WriteFile(file, []byte("tls:\n  certs: []\n"), 0o644)
	if _, err := LoadConfig(file); err == nil || !strings.Contains(err.Error(), "certs") {
		t.Errorf("unknown key: %v", err)
	}
}
