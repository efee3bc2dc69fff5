// Package tlscert holds the edge's TLS certificates: several key pairs chosen by SNI, reloaded
// from their files when they change (a renewed certificate is picked up without a restart;
// a broken renewal keeps the working one), and a self-signed mode for development that writes
// its CA so that clients can trust it.
package tlscert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Pair is a certificate chain file and its private key file (PEM).
type Pair struct {
	Cert, Key string
}

// Store chooses a certificate for each TLS handshake.
type Store struct {
	pairs []Pair

	mu      sync.RWMutex
	byName  map[string]*tls.Certificate // exact names and "*.suffix" wildcards, lower case
	first   *tls.Certificate            // for clients that send no (or an unknown) server name
	modTime map[string]time.Time
}

// Load reads every pair. The first pair is the default certificate.
func Load(pairs []Pair) (*Store, error) {
	if len(pairs) == 0 {
		return nil, errors.New("no certificate")
	}
	s := &Store{pairs: pairs}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the pairs if any file changed and reports whether it did. On an error the
// certificates in use are kept.
func (s *Store) Reload() (bool, error) {
	mod := map[string]time.Time{}
	for _, p := range s.pairs {
		for _, f := range []string{p.Cert, p.Key} {
			st, err := os.Stat(f)
			if err != nil {
				return false, fmt.Errorf("tls: %w", err)
			}
			mod[f] = st.ModTime()
		}
	}
	s.mu.RLock()
	same := s.modTime != nil
	for f, t := range mod {
		same = same && s.modTime[f].Equal(t)
	}
	s.mu.RUnlock()
	if same {
		return false, nil
	}
	byName := map[string]*tls.Certificate{}
	var first *tls.Certificate
	for _, p := range s.pairs {
		c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			return false, fmt.Errorf("tls: %s: %w", p.Cert, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return false, fmt.Errorf("tls: %s: %w", p.Cert, err)
		}
		if time.Now().After(leaf.NotAfter) {
			return false, fmt.Errorf("tls: %s expired on %s", p.Cert, leaf.NotAfter.Format(time.DateOnly))
		}
		c.Leaf = leaf
		if first == nil {
			first = &c
		}
		names := leaf.DNSNames
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if _, taken := byName[n]; !taken {
				byName[n] = &c
			}
		}
	}
	s.mu.Lock()
	s.byName, s.first, s.modTime = byName, first, mod
	s.mu.Unlock()
	return true, nil
}

// GetCertificate is tls.Config.GetCertificate: the exact server name, else a wildcard for its
// parent domain, else the first certificate.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.byName[name]; c != nil {
		return c, nil
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c := s.byName["*."+parent]; c != nil {
			return c, nil
		}
	}
	return s.first, nil
}

// Watch reloads changed files every interval until ctx ends, logging failures (the previous
// certificates stay in use).
func (s *Store) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := s.Reload()
			switch {
			case err != nil && log != nil:
				log.Error("tls: reloading certificates; keeping the ones in use", "err", err)
			case changed && log != nil:
				log.Info("tls: certificates reloaded")
			}
		}
	}
}

// Config is the server TLS configuration: TLS 1.2 and up with Go's modern defaults (AEAD
// cipher suites with forward secrecy only, X25519 first), certificates from s, and ALPN for
// the given protocols (e.g. "h2", "http/1.1").
func (s *Store) Config(protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
		NextProtos:     protos,
	}
}
