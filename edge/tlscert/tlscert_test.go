package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/h1"
)

// serve runs edge/h1 over TLS with s's certificates; the handler answers whether it saw r.TLS
// and for which server name.
func serve(t *testing.T, s *Store) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			io.WriteString(w, "plain")
			return
		}
		io.WriteString(w, "tls "+r.TLS.ServerName)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(tls.NewListener(ln, s.Config("http/1.1")))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func client(caFile, serverName string, maxVersion uint16) *http.Client {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(caFile); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName, MaxVersion: maxVersion},
	}}
}

func get(c *http.Client, url string) (string, *tls.ConnectionState, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.TLS, err
}

// TestSelfSignedSNIAndReload: the development CA written by SelfSigned is what a client needs to
// trust the edge; the certificate is chosen by SNI (exact name, then the first pair); a renewed
// certificate file is served after Reload without a restart, and a broken one leaves the
// working certificate in use; TLS below 1.2 is refused; requests carry r.TLS.
func TestSelfSignedSNIAndReload(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a, caA, err := SelfSigned(dirA, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, caB, err := SelfSigned(dirB, []string{"video.example"})
	if err != nil {
		t.Fatal(err)
	}
	// Reused while valid: the same files, the same certificate.
	if again, _, err := SelfSigned(dirA, []string{"localhost", "127.0.0.1"}); err != nil || again != a {
		t.Fatalf("SelfSigned again: %v %v", again, err)
	}
	s, err := Load([]Pair{a, b})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, s)

	body, st, err := get(client(caA, "localhost", 0), "https://"+addr+"/")
	if err != nil || body != "tls localhost" || st.Version < tls.VersionTLS12 {
		t.Fatalf("localhost: %q %v", body, err)
	}
	first := st.PeerCertificates[0].SerialNumber
	if body, st, err = get(client(caB, "video.example", 0), "https://"+addr+"/"); err != nil || body != "tls video.example" {
		t.Fatalf("SNI video.example: %q %v", body, err)
	}
	if st.PeerCertificates[0].VerifyHostname("video.example") != nil {
		t.Fatal("SNI did not select video.example's certificate")
	}
	// An unknown name gets the first certificate, which the client then refuses to trust.
	if _, _, err := get(client(caA, "other.example", 0), "https://"+addr+"/"); err == nil {
		t.Fatal("a certificate for other.example was trusted")
	}
	if _, _, err := get(client(caA, "localhost", tls.VersionTLS11), "https://"+addr+"/"); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}

	// Renewal: new files in place (the CA stays the client's trust anchor only if reissued by
	// it, so the client trusts the renewed CA file too).
	os.Remove(filepath.Join(dirA, CertFile))
	future := time.Now().Add(2 * time.Second)
	if _, _, err := SelfSigned(dirA, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(a.Cert, future, future)
	os.Chtimes(a.Key, future, future)
	if changed, err := s.Reload(); err != nil || !changed {
		t.Fatalf("Reload after renewal: %v %v", changed, err)
	}
	_, st, err = get(client(caA, "localhost", 0), "https://"+addr+"/")
	if err != nil || st.PeerCertificates[0].SerialNumber.Cmp(first) == 0 {
		t.Fatalf("after reload: %v (same serial: %v)", err, err == nil)
	}
	// A broken renewal keeps the working certificate.
	os.WriteFile(a.Cert, []byte("not a certificate"), 0o644)
	later := future.Add(time.Second)
	os.Chtimes(a.Cert, later, later)
	if _, err := s.Reload(); err == nil {
		t.Fatal("a broken certificate file loaded")
	}
	if body, _, err := get(client(caA, "localhost", 0), "https://"+addr+"/"); err != nil || body != "tls localhost" {
		t.Fatalf("after a broken renewal: %q %v", body, err)
	}
}

// TestWildcard: "*.example.com" serves its subdomains.
func TestWildcard(t *testing.T) {
	dir := t.TempDir()
	p, ca, err := SelfSigned(dir, []string{"*.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load([]Pair{p})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "cdn.EXAMPLE.com."})
	if c == nil || c.Leaf.VerifyHostname("cdn.example.com") != nil {
		t.Fatal("wildcard not chosen")
	}
	_ = ca
	if _, err := Load(nil); err == nil {
		t.Fatal("no certificate accepted")
	}
	if _, err := Load([]Pair{{Cert: "/nonexistent.pem", Key: "/nonexistent.key"}}); err == nil {
		t.Fatal("missing files accepted")
	}
}
