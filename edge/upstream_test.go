package edge

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPKI is a private CA that issues the origin and client certificates of the upstream
// tests; ca.pem in dir is what a config names as ca_file.
type testPKI struct {
	dir    string
	caFile string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "reel upstream test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{dir: t.TempDir(), ca: ca, caKey: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

var serial atomic.Int64

// issue makes a certificate for names (host names or IP addresses), for a server or a client,
// valid until notAfter.
func (p *testPKI) issue(t testing.TB, names []string, client bool, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(100 + serial.Add(1)),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-48 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// files writes c as PEM certificate and key files named after name.
func (p *testPKI) files(t testing.TB, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", c.Certificate[0])
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", der)
	return certFile, keyFile
}

func writePEM(t testing.TB, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsOrigin is an HTTPS origin on loopback that counts connections and requests and
// remembers the HTTP version of the last request.
type tlsOrigin struct {
	*httptest.Server
	conns, hits, protoMajor atomic.Int64
}

// newTLSOrigin starts an origin with tc's certificate and client authentication; h2 offers
// h2 by ALPN besides http/1.1 (as nginx and most servers do).
func newTLSOrigin(t testing.TB, tc *tls.Config, h2 bool, body []byte) *tlsOrigin {
	t.Helper()
	o := &tlsOrigin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.protoMajor.Store(int64(r.ProtoMajor))
		w.Header().Set("Cache-Control", "public, max-age=600")
		if body != nil {
			w.Write(body)
			return
		}
		fmt.Fprintf(w, "hello %s over HTTP/%d", r.URL.Path, r.ProtoMajor)
	}))
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	// The handshake failures the tests cause on purpose are not news.
	o.Config.ErrorLog = discardLog()
	o.EnableHTTP2 = h2
	o.TLS = tc.Clone()
	if o.TLS.NextProtos == nil {
		o.TLS.NextProtos = []string{"http/1.1"}
		if h2 {
			o.TLS.NextProtos = []string{"h2", "http/1.1"}
		}
	}
	o.StartTLS()
	t.Cleanup(o.Close)
	return o
}

// TestUpstreamTLS: the edge reaches https origins over HTTP/2 or HTTP/1.1 as configured,
// verifies their certificates (against ca_file, for server_name), authenticates itself with a
// client certificate when asked, and answers 502 with a short reason — storing nothing, and
// opening one connection per failed request (no retries) — when TLS fails.
func TestUpstreamTLS(t *testing.T) {
	pki := newTestPKI(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	byIP := pki.issue(t, []string{"127.0.0.1"}, false, year)
	byName := pki.issue(t, []string{"origin.test"}, false, year)
	expired := pki.issue(t, []string{"127.0.0.1"}, false, time.Now().Add(-time.Hour))
	clientCert, clientKey := pki.files(t, "client", pki.issue(t, []string{"reel-edge"}, true, year))
	mtls := &tls.Config{Certificates: []tls.Certificate{byIP}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.pool}

	tests := []struct {
		name      string
		server    *tls.Config
		h2        bool // the origin offers h2
		origin    Origin
		status    int
		proto     int    // HTTP major version the origin saw (0: no request reached it)
		conn      string // reel_edge_origin_connections_total label expected at 1
		reason    string // in the 502's body
		plainHTTP bool   // the origin speaks HTTP without TLS
	}{
		// RFC 9113 §3.2: HTTP/2 over TLS is chosen by ALPN; a CA file vouches for the origin.
		{name: "h2 by ALPN, trusted by ca_file", server: &tls.Config{Certificates: []tls.Certificate{byIP}}, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 200, proto: 2, conn: connH2},
		{name: "protocol http1 to an h2 origin", server: &tls.Config{Certificates: []tls.Certificate{byIP}}, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile, Protocol: ProtocolHTTP1}}, status: 200, proto: 1, conn: connHTTP1},
		{name: "auto to an HTTP/1.1-only origin", server: &tls.Config{Certificates: []tls.Certificate{byIP}},
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 200, proto: 1, conn: connHTTP1},
		{name: "protocol http2 to an HTTP/1.1-only origin", server: &tls.Config{Certificates: []tls.Certificate{byIP}},
			origin: Origin{Connection: Connection{CAFile: pki.caFile, Protocol: ProtocolHTTP2}}, status: 502, reason: "no application protocol"},
		{name: "protocol http2, origin ignores ALPN", server: &tls.Config{Certificates: []tls.Certificate{byIP}, NextProtos: []string{}},
			origin: Origin{Connection: Connection{CAFile: pki.caFile, Protocol: ProtocolHTTP2}}, status: 502, reason: "did not negotiate HTTP/2"},
		// RFC 8446 §4.4.2.2: the certificate must chain to a trusted anchor — not ours
		// without ca_file.
		{name: "untrusted: no ca_file", server: &tls.Config{Certificates: []tls.Certificate{byIP}}, h2: true,
			status: 502, reason: "not trusted"},
		{name: "expired certificate", server: &tls.Config{Certificates: []tls.Certificate{expired}}, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 502, reason: "expired"},
		// The URL says 127.0.0.1, the certificate origin.test: server_name bridges the two.
		{name: "name mismatch without server_name", server: &tls.Config{Certificates: []tls.Certificate{byName}}, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 502, reason: "does not match"},
		{name: "wrong server_name", server: &tls.Config{Certificates: []tls.Certificate{byName}}, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile, ServerName: "other.test"}}, status: 502, reason: "does not match"},
		{name: "right server_name", server: &tls.Config{Certificates: []tls.Certificate{byName}}, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile, ServerName: "origin.test"}}, status: 200, proto: 2, conn: connH2},
		// RFC 8446 §4.3.2 / §4.4.2: the origin asks for a client certificate.
		{name: "mTLS with client_cert", server: mtls, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile, ClientCert: clientCert, ClientKey: clientKey}}, status: 200, proto: 2, conn: connH2},
		{name: "mTLS without client_cert", server: mtls, h2: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 502, reason: "refused the"},
		{name: "mTLS without client_cert over HTTP/1.1", server: mtls,
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 502, reason: "refused the"},
		// RFC 8996: TLS 1.0 and 1.1 are deprecated; the edge asks for 1.2 at least.
		{name: "origin stuck at TLS 1.1", server: &tls.Config{Certificates: []tls.Certificate{byIP}, MaxVersion: tls.VersionTLS11},
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 502, reason: "refused the TLS handshake"},
		{name: "https URL, plain HTTP origin", plainHTTP: true,
			origin: Origin{Connection: Connection{CAFile: pki.caFile}}, status: 502, reason: "does not speak TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var url string
			var conns, hits, protoMajor *atomic.Int64
			if tc.plainHTTP {
				o := newOrigin(t, cacheable("plain", "max-age=60"))
				url = strings.Replace(o.URL, "http://", "https://", 1)
				hits, conns, protoMajor = &o.hits, new(atomic.Int64), new(atomic.Int64)
			} else {
				o := newTLSOrigin(t, tc.server, tc.h2, nil)
				url, conns, hits, protoMajor = o.URL, &o.conns, &o.hits, &o.protoMajor
			}
			e, srv := newEdge(t, url, func(c *Config) {
				o := tc.origin
				o.Host, o.URL = "*", url
				c.Origins = []Origin{o}
			})
			const requests = 3
			for i := range requests {
				r := get(t, srv.URL+"/obj")
				if r.status != tc.status {
					t.Fatalf("request %d: status %d %q, want %d", i, r.status, r.body, tc.status)
				}
				if tc.status != 200 {
					if !strings.Contains(r.body, tc.reason) {
						t.Errorf("502 body %q, want a reason with %q", r.body, tc.reason)
					}
					continue
				}
				if want := fmt.Sprintf("hello /obj over HTTP/%d", tc.proto); r.body != want {
					t.Errorf("body %q, want %q", r.body, want)
				}
				if i > 0 && !strings.Contains(r.cacheStatus(), "hit") {
					t.Errorf("request %d not a hit: %s", i, r.cacheStatus())
				}
			}
			if tc.status == 200 {
				if h := hits.Load(); h != 1 || protoMajor.Load() != int64(tc.proto) {
					t.Errorf("origin saw %d requests over HTTP/%d, want 1 over HTTP/%d", h, protoMajor.Load(), tc.proto)
				}
				if got := counterValue(e.m.originConns.WithLabelValues(tc.conn)); got != 1 {
					t.Errorf("origin connections{protocol=%q} = %v, want 1", tc.conn, got)
				}
				return
			}
			if h := hits.Load(); h != 0 {
				t.Errorf("the origin served %d requests through a failed TLS connection", h)
			}
			if s := e.Stats().Stored.Load(); s != 0 {
				t.Errorf("%d objects stored after TLS failures", s)
			}
			// One connection attempt per failing request: nothing retries a handshake
			// failure (which would only multiply the load on a broken origin). (Go's HTTP/2
			// client may redial once when a fresh connection dies under a first request,
			// which a client certificate refused after a TLS 1.3 handshake looks like.)
			if n := conns.Load(); !tc.plainHTTP && (n < requests || n > 2*requests) {
				t.Errorf("origin accepted %d connections for %d requests", n, requests)
			}
			if got := counterValue(e.m.originTLSFailures); got != requests {
				t.Errorf("TLS failures counted %v, want %d", got, requests)
			}
		})
	}
}

// TestUpstreamH2C: protocol http2 on an http:// origin speaks HTTP/2 with prior knowledge
// (RFC 9113 §3.3) over plain TCP; auto stays on HTTP/1.1 with the same origin.
func TestUpstreamH2C(t *testing.T) {
	var protoMajor atomic.Int64
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	origin := &http.Server{
		Protocols: &p,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			protoMajor.Store(int64(r.ProtoMajor))
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprintf(w, "HTTP/%d", r.ProtoMajor)
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go origin.Serve(ln)
	t.Cleanup(func() { origin.Close() })
	url := "http://" + ln.Addr().String()
	for _, tc := range []struct {
		protocol string
		want     int
		conn     string
	}{
		{ProtocolHTTP2, 2, connH2C},
		{ProtocolAuto, 1, connHTTP1},
		{ProtocolHTTP1, 1, connHTTP1},
	} {
		e, srv := newEdge(t, url, func(c *Config) { c.Origins[0].Protocol = tc.protocol })
		r := get(t, srv.URL+"/"+tc.protocol)
		if r.status != 200 || r.body != fmt.Sprintf("HTTP/%d", tc.want) || protoMajor.Load() != int64(tc.want) {
			t.Errorf("protocol %s: %d %q, origin saw HTTP/%d; want HTTP/%d", tc.protocol, r.status, r.body, protoMajor.Load(), tc.want)
		}
		if got := counterValue(e.m.originConns.WithLabelValues(tc.conn)); got != 1 {
			t.Errorf("protocol %s: connections{protocol=%q} = %v, want 1", tc.protocol, tc.conn, got)
		}
	}
}

// TestValidateUpstream: bad connection settings stop the edge at start with one line naming
// the setting (and the file).
func TestValidateUpstream(t *testing.T) {
	pki := newTestPKI(t)
	certFile, keyFile := pki.files(t, "client", pki.issue(t, []string{"edge"}, true, time.Now().Add(time.Hour)))
	_, otherKey := pki.files(t, "other", pki.issue(t, []string{"edge"}, true, time.Now().Add(time.Hour)))
	noCert := filepath.Join(pki.dir, "nocert.pem")
	os.WriteFile(noCert, []byte("just text\n"), 0o600)
	badCert := filepath.Join(pki.dir, "bad.pem")
	writePEM(t, badCert, "CERTIFICATE", []byte("not DER"))
	missing := filepath.Join(pki.dir, "missing.pem")

	tests := []struct {
		name   string
		origin Origin
		want   string
	}{
		{"unknown protocol", Origin{URL: "https://o", Connection: Connection{Protocol: "h3"}}, `origins[0]: protocol "h3": want auto, http1 or http2`},
		{"ca_file on http", Origin{URL: "http://o", Connection: Connection{CAFile: pki.caFile}}, "origins[0]: ca_file needs an https:// url"},
		{"server_name on http", Origin{URL: "http://o", Connection: Connection{ServerName: "o"}}, "server_name needs an https:// url"},
		{"client_cert on http", Origin{URL: "http://o", Connection: Connection{ClientCert: certFile, ClientKey: keyFile}}, "client_cert needs an https:// url"},
		{"missing ca_file", Origin{URL: "https://o", Connection: Connection{CAFile: missing}}, "ca_file open " + missing + ": no such file"},
		{"ca_file without a certificate", Origin{URL: "https://o", Connection: Connection{CAFile: noCert}}, "ca_file " + noCert + ": no PEM certificate in it"},
		{"ca_file with a broken certificate", Origin{URL: "https://o", Connection: Connection{CAFile: badCert}}, "ca_file " + badCert + ": certificate 1:"},
		{"client_cert alone", Origin{URL: "https://o", Connection: Connection{ClientCert: certFile}}, "client_cert and client_key go together"},
		{"client_key alone", Origin{URL: "https://o", Connection: Connection{ClientKey: keyFile}}, "client_cert and client_key go together"},
		{"key of another certificate", Origin{URL: "https://o", Connection: Connection{ClientCert: certFile, ClientKey: otherKey}}, "client_cert " + certFile},
		{"server_name with a port", Origin{URL: "https://o", Connection: Connection{ServerName: "o.test:443"}}, `server_name "o.test:443"`},
		{"server_name as a URL", Origin{URL: "https://o", Connection: Connection{ServerName: "https://o.test"}}, "server_name"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		c.Origins = []Origin{tc.origin}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want one line with %q", tc.name, err, tc.want)
		}
		if _, err := New(c, nil); err == nil {
			t.Errorf("%s: New accepted the config", tc.name)
		}
	}
	good := []Origin{
		{URL: "https://o", Connection: Connection{Protocol: ProtocolHTTP2, CAFile: pki.caFile, ServerName: "o.internal", ClientCert: certFile, ClientKey: keyFile}},
		{URL: "https://10.0.0.1", Connection: Connection{ServerName: "10.0.0.2"}},
		{URL: "http://o", Connection: Connection{Protocol: ProtocolHTTP2}},
		{URL: "http://o", Connection: Connection{Protocol: ProtocolAuto}},
	}
	for _, o := range good {
		c := DefaultConfig()
		c.Origins = []Origin{o}
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}

	// The YAML keys, and no switch to turn verification off.
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	os.WriteFile(file, []byte(`origins:
  - url: https://origin.internal:8443
    protocol: http2
    ca_file: `+pki.caFile+`
    server_name: origin.internal
    client_cert: `+certFile+`
    client_key: `+keyFile+`
`), 0o600)
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.Origins[0]; o.Protocol != "http2" || o.CAFile != pki.caFile || o.ServerName != "origin.internal" || o.ClientCert != certFile || o.ClientKey != keyFile {
		t.Errorf("origin read as %+v", o)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
	os.WriteFile(file, []byte("origins:\n  - url: https://o\n    insecure_skip_verify: true\n"), 0o600)
	if _, err := LoadConfig(file); err == nil || !strings.Contains(err.Error(), "insecure_skip_verify") {
		t.Errorf("insecure_skip_verify: err %v, want it refused as unknown", err)
	}
}

// discardLog is a server ErrorLog that drops what it is told.
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// TestUpstreamTLSFailureLoggedOnce: a broken origin certificate is logged once, not once
// per request; its recovery is logged, and a new failure after it is logged again at once.
func TestUpstreamTLSFailureLoggedOnce(t *testing.T) {
	pki, stranger := newTestPKI(t), newTestPKI(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	trusted := pki.issue(t, []string{"127.0.0.1"}, false, year)
	untrusted := stranger.issue(t, []string{"127.0.0.1"}, false, year)
	var current atomic.Pointer[tls.Certificate]
	current.Store(&untrusted)
	// (GetCertificate would not be asked: without SNI — an IP address — the server uses the
	// first of its Certificates, which httptest fills in.)
	o := newTLSOrigin(t, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		// No resumption: a resumed session would skip the certificate.
		return &tls.Config{Certificates: []tls.Certificate{*current.Load()}, NextProtos: []string{"h2", "http/1.1"}, SessionTicketsDisabled: true}, nil
	}}, true, nil)

	var logs syncBuffer
	cfg := DefaultConfig()
	cfg.Memory = 64 << 20
	cfg.Origins = []Origin{{Host: "*", URL: o.URL, Connection: Connection{CAFile: pki.caFile}}}
	e, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := serveEdge(t, e, cfg)
	t.Cleanup(srv.Close)

	for i := range 5 {
		if r := get(t, fmt.Sprintf("%s/a%d", srv.URL, i)); r.status != 502 {
			t.Fatalf("untrusted: status %d", r.status)
		}
	}
	current.Store(&trusted)
	if r := get(t, srv.URL+"/b"); r.status != 200 {
		t.Fatalf("trusted: status %d %q", r.status, r.body)
	}
	// The edge keeps its HTTP/2 connection; a new one is needed to meet the bad certificate.
	e.origins["*"].client.CloseIdleConnections()
	current.Store(&untrusted)
	if r := get(t, srv.URL+"/c"); r.status != 502 {
		t.Fatalf("untrusted again: status %d", r.status)
	}
	text := logs.String()
	if n := strings.Count(text, "origin TLS failed"); n != 2 {
		t.Errorf("logged %d TLS failures for two incidents of 5 and 1 requests:\n%s", n, text)
	}
	if n := strings.Count(text, "origin TLS working again"); n != 1 {
		t.Errorf("logged the recovery %d times:\n%s", n, text)
	}
	if !strings.Contains(text, "reason=\"origin certificate not trusted\"") || !strings.Contains(text, "unknown authority") {
		t.Errorf("log lacks the reason or the cause:\n%s", text)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
