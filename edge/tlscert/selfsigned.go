package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/reelvideo/reel/internal/atomicfile"
)

// Files written by SelfSigned in its folder.
const (
	CAFile   = "ca.pem"   // give this to clients to trust (curl --cacert, a browser's store)
	CertFile = "cert.pem" // the server's chain: leaf, then the CA
	KeyFile  = "key.pem"
)

// SelfSigned makes (or reuses, while valid) a development CA and a server certificate for hosts
// in dir, and returns the server's pair and the CA's path. The CA's key is not kept: the CA
// signs this one certificate, so nothing else can be signed with it later.
func SelfSigned(dir string, hosts []string) (Pair, string, error) {
	pair := Pair{Cert: filepath.Join(dir, CertFile), Key: filepath.Join(dir, KeyFile)}
	caPath := filepath.Join(dir, CAFile)
	if s, err := Load([]Pair{pair}); err == nil && covers(s.first.Leaf, hosts) && time.Until(s.first.Leaf.NotAfter) > 7*24*time.Hour {
		if _, err := os.Stat(caPath); err == nil {
			return pair, caPath, nil
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Pair{}, "", err
	}
	now := time.Now().Add(-time.Hour)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, "", err
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Reel development CA", Organization: []string{"Reel (development only)"}},
		NotBefore:             now,
		NotAfter:              now.Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return Pair{}, "", err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, "", err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now,
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return Pair{}, "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, "", err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), caPEM...)
	// The key first, then the certificate: a reader that sees the new certificate finds its key.
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{pair.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{pair.Cert, chain, 0o644},
		{caPath, caPEM, 0o644},
	} {
		if err := atomicfile.Write(f.path, f.data, f.mode); err != nil {
			return Pair{}, "", fmt.Errorf("tls: %w", err)
		}
	}
	return pair, caPath, nil
}

func covers(leaf *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
