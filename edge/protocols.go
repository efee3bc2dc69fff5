package edge

import (
	"errors"
	"fmt"
	"time"

	"github.com/reelvideo/reel/edge/tlscert"
)

// TLS is the `tls:` section of the configuration: the certificates the client listener serves
// (HTTPS once there is one) and HTTP/3 beside it. The --tls-cert/--tls-key and
// --tls-self-signed flags replace the certificates given here.
type TLS struct {
	// Certificates are chosen per handshake by SNI: the exact name, then a wildcard for its
	// parent domain, else the first pair. Each is reloaded when its files change.
	Certificates []CertKey `yaml:"certificates"`
	// SelfSigned is a folder for a development CA and a certificate for localhost, 127.0.0.1
	// and ::1 (made once, reused while valid); clients trust its ca.pem.
	SelfSigned string `yaml:"self_signed"`
	// HTTP3 serves HTTP/3 (RFC 9114, QUIC) on UDP at the TCP listener's port, with the same
	// certificates, and advertises it on TCP responses with Alt-Svc (RFC 7838).
	HTTP3 bool `yaml:"http3"`
	// AltSvcMaxAge is the ma= of that Alt-Svc: how long clients may remember that HTTP/3 is
	// here (RFC 7838 §3). Default 24h.
	AltSvcMaxAge time.Duration `yaml:"alt_svc_max_age"`
}

// CertKey is a certificate chain file and its private key file (PEM).
type CertKey struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Enabled reports whether the client listener speaks TLS.
func (t TLS) Enabled() bool { return len(t.Certificates) > 0 || t.SelfSigned != "" }

// HTTP1 is the `http1:` section.
type HTTP1 struct {
	// GoroutinePerConnection serves every HTTP/1.1 connection on a goroutine of its own
	// throughout, as net/http does. By default a plain (not TLS) connection parks between
	// requests on one of a few event loops, one per CPU, which serve each request that
	// arrives at once on their own goroutine and hand a request that must wait (a miss, a
	// slow client) to a goroutine of its own (edge/h1, poll_linux.go).
	GoroutinePerConnection bool `yaml:"goroutine_per_connection"`
}

// HTTP2 is the `http2:` section: HTTP/2 (RFC 9113) to clients and its limits against the
// known HTTP/2 abuses. Zero values mean the defaults.
type HTTP2 struct {
	// Off keeps HTTP/2 out of TLS's ALPN: clients speak HTTP/1.1.
	Off bool `yaml:"off"`
	// H2C serves HTTP/2 without TLS to clients that open a plain connection with the HTTP/2
	// preface ("prior knowledge", RFC 9113 §3.3); the Upgrade: h2c dance RFC 7540 had is
	// deprecated and not offered. For a plain listener behind a TLS-terminating balancer.
	H2C bool `yaml:"h2c"`
	// MaxConcurrentStreams is SETTINGS_MAX_CONCURRENT_STREAMS: requests one connection may
	// have open at once (RFC 9113 §5.1.2; a stream beyond it is reset), and so the handlers
	// one connection can run at once. Default 250.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// MaxReadFrameSize is SETTINGS_MAX_FRAME_SIZE, the largest frame a client may send (RFC
	// 9113 §4.2; larger: FRAME_SIZE_ERROR), 16KiB to 16MiB. Default 64KiB: requests are
	// small, and each connection's read buffer grows to it.
	MaxReadFrameSize Size `yaml:"max_read_frame_size"`
	// IdleTimeout closes a connection with no open stream for this long (GOAWAY). Default 2m,
	// as for HTTP/1.1 keep-alive connections.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ResetRate and ResetBurst bound the streams a client may cancel (RST_STREAM): a token
	// bucket of ResetBurst tokens refilled at ResetRate per second; a connection that runs
	// out gets GOAWAY ENHANCE_YOUR_CALM and is closed ("rapid reset", CVE-2023-44487: each
	// cancelled request still costs the server a handler and perhaps an origin fetch).
	// Players cancel requests when they switch renditions or seek, a few at a time.
	// Defaults 100 per second, burst 500.
	ResetRate  float64 `yaml:"reset_rate"`
	ResetBurst int     `yaml:"reset_burst"`
	// Server picks the HTTP/2 server: "reel" (default), the edge's own (edge/h2: cache hits
	// without a header map or a goroutine hand-off per frame), or "x", golang.org/x/net/http2's,
	// which it replaced — kept for a release as the fallback. The limits above apply to both.
	Server string `yaml:"server"`
}

// HTTP/2 servers (http2.server).
const (
	H2ServerReel = "reel"
	H2ServerX    = "x"
)

// HTTP/2 defaults (zero values in HTTP2).
const (
	defaultH2MaxStreams   = 250
	defaultH2MaxFrameSize = 64 << 10
	defaultH2IdleTimeout  = 2 * time.Minute
	defaultH2ResetRate    = 100
	defaultH2ResetBurst   = 500
	defaultAltSvcMaxAge   = 24 * time.Hour
)

func (h HTTP2) withDefaults() HTTP2 {
	if h.MaxConcurrentStreams == 0 {
		h.MaxConcurrentStreams = defaultH2MaxStreams
	}
	if h.MaxReadFrameSize == 0 {
		h.MaxReadFrameSize = defaultH2MaxFrameSize
	}
	if h.IdleTimeout == 0 {
		h.IdleTimeout = defaultH2IdleTimeout
	}
	if h.ResetRate == 0 {
		h.ResetRate = defaultH2ResetRate
	}
	if h.ResetBurst == 0 {
		h.ResetBurst = defaultH2ResetBurst
	}
	if h.Server == "" {
		h.Server = H2ServerReel
	}
	return h
}

// validateProtocols checks the tls and http2 sections.
func (c *Config) validateProtocols() error {
	t, h := c.TLS, c.HTTP2
	for i, p := range t.Certificates {
		switch {
		case p.Cert == "" && p.Key == "":
			return fmt.Errorf("tls.certificates[%d]: cert and key are missing", i)
		case p.Cert == "":
			return fmt.Errorf("tls.certificates[%d]: cert is missing (key %s)", i, p.Key)
		case p.Key == "":
			return fmt.Errorf("tls.certificates[%d]: key is missing (cert %s)", i, p.Cert)
		}
	}
	switch {
	case len(t.Certificates) > 0 && t.SelfSigned != "":
		return errors.New("tls: certificates and self_signed exclude each other")
	case t.HTTP3 && !t.Enabled():
		return errors.New("tls.http3 (--http3) needs TLS: give tls.certificates or tls.self_signed (--tls-cert/--tls-key, --tls-self-signed); QUIC is always encrypted")
	case t.AltSvcMaxAge < 0:
		return errors.New("tls.alt_svc_max_age must not be negative")
	case h.H2C && t.Enabled():
		return errors.New("http2.h2c (--h2c) is for a plain listener; over TLS, HTTP/2 is negotiated by ALPN")
	case h.H2C && h.Off:
		return errors.New("http2.h2c needs HTTP/2 (http2.off is set)")
	case h.MaxReadFrameSize != 0 && (h.MaxReadFrameSize < 16<<10 || h.MaxReadFrameSize > 16<<20-1):
		return fmt.Errorf("http2.max_read_frame_size %s must be between 16KiB and 16MiB (RFC 9113 §6.5.2)", h.MaxReadFrameSize)
	case h.IdleTimeout < 0:
		return errors.New("http2.idle_timeout must not be negative")
	case h.ResetRate < 0 || h.ResetBurst < 0:
		return errors.New("http2.reset_rate and http2.reset_burst must not be negative")
	case h.Server != "" && h.Server != H2ServerReel && h.Server != H2ServerX:
		return fmt.Errorf("http2.server %q: want reel (the edge's own) or x (golang.org/x/net/http2)", h.Server)
	}
	return nil
}

// certificates loads the configured certificates (making the self-signed ones first), or
// returns nil without TLS. caFile is the development CA clients should trust, if any.
func (t TLS) certificates() (store *tlscert.Store, caFile string, err error) {
	var pairs []tlscert.Pair
	switch {
	case t.SelfSigned != "":
		p, ca, err := tlscert.SelfSigned(t.SelfSigned, []string{"localhost", "127.0.0.1", "::1"})
		if err != nil {
			return nil, "", fmt.Errorf("tls.self_signed: %w", err)
		}
		pairs, caFile = []tlscert.Pair{p}, ca
	case len(t.Certificates) > 0:
		for _, c := range t.Certificates {
			pairs = append(pairs, tlscert.Pair{Cert: c.Cert, Key: c.Key})
		}
	default:
		return nil, "", nil
	}
	store, err = tlscert.Load(pairs)
	if err != nil {
		return nil, "", err
	}
	return store, caFile, nil
}
