package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The connections to origins: HTTP/1.1, or HTTP/2 (RFC 9113) over TLS chosen by ALPN or
// cleartext with prior knowledge (h2c), and TLS (1.2 or later, RFC 8446 for 1.3) that verifies
// the origin's certificate against the system roots or the origin's own CA file, with an
// optional client certificate.

// Origin.Protocol values.
const (
	// ProtocolAuto is HTTP/2 when an https origin offers it by ALPN, else HTTP/1.1; HTTP/1.1
	// on http origins (nothing says a cleartext origin speaks h2c, and asking would cost an
	// Upgrade round trip per connection).
	ProtocolAuto = "auto"
	// ProtocolHTTP1 never uses HTTP/2: for origins whose HTTP/2 is broken or slower.
	ProtocolHTTP1 = "http1"
	// ProtocolHTTP2 requires HTTP/2: negotiated by ALPN on https (a connection that doesn't
	// get h2 is refused), h2c with prior knowledge (RFC 9113 §3.3) on http.
	ProtocolHTTP2 = "http2"
)

// Values of the protocol label of reel_edge_origin_connections_total.
const (
	connHTTP1 = "http/1.1"
	connH2    = "h2"
	connH2C   = "h2c"
)

// errNoH2 refuses a TLS connection on which the origin did not select h2 although the
// origin's protocol is http2.
var errNoH2 = errors.New("origin did not select h2 by ALPN")

// checkUpstream validates an origin's connection settings (u is its parsed URL) and loads
// its TLS files, so that a bad file stops the edge at start with its name.
func (o Origin) checkUpstream(u *url.URL) error {
	switch o.Protocol {
	case "", ProtocolAuto, ProtocolHTTP1, ProtocolHTTP2:
	default:
		return fmt.Errorf("protocol %q: want auto, http1 or http2", o.Protocol)
	}
	if u.Scheme != "https" {
		for _, s := range []struct{ key, val string }{
			{"ca_file", o.CAFile}, {"server_name", o.ServerName}, {"client_cert", o.ClientCert}, {"client_key", o.ClientKey},
		} {
			if s.val != "" {
				// Most likely an http:// typed for https://: the TLS settings would be
				// silently ignored and the traffic sent in the clear.
				return fmt.Errorf("%s needs an https:// url (url is %s)", s.key, u.Redacted())
			}
		}
		return o.checkS3()
	}
	if sn := o.ServerName; sn != "" && net.ParseIP(sn) == nil && (strings.ContainsAny(sn, ":/ ") || strings.HasSuffix(sn, ".")) {
		return fmt.Errorf("server_name %q: want a host name without scheme, port or trailing dot", sn)
	}
	if _, err := o.clientTLS(); err != nil {
		return err
	}
	return o.checkS3()
}

// clientTLS is the TLS client configuration of an https origin.
func (o Origin) clientTLS() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Empty: the transport sends (and verifies) the URL's host.
		ServerName: o.ServerName,
		// Resumption makes the HTTP/1.1 pool's many connections cheaper to reopen.
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if o.CAFile != "" {
		pool, err := loadCAFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file %w", err)
		}
		// Instead of the system roots, not in addition: a private origin's operator means
		// "trust these" — a public CA must not be able to vouch for it.
		cfg.RootCAs = pool
	}
	switch {
	case o.ClientCert == "" && o.ClientKey == "":
	case o.ClientCert == "" || o.ClientKey == "":
		return nil, errors.New("client_cert and client_key go together")
	default:
		pair, err := tls.LoadX509KeyPair(o.ClientCert, o.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client_cert %s / client_key %s: %w", o.ClientCert, o.ClientKey, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// loadCAFile reads a PEM bundle of CA certificates. Unlike x509.CertPool.AppendCertsFromPEM,
// a certificate that doesn't parse is an error, not silently skipped: a trust file half read
// is a surprise at the first handshake.
func loadCAFile(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err // *fs.PathError: "open FILE: no such file or directory"
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// newUpstream builds the connection pools of one validated origin: one for ordinary requests
// and one for LL-HLS blocking reloads.
func (e *Edge) newUpstream(o Origin) (*upstream, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, err
	}
	oc := &originConns{name: u.Redacted(), protocol: o.Protocol, log: e.log, m: e.m}
	if o.Name != "" {
		// Several origins may share a host with different paths: the log names the one meant.
		oc.name = o.Name + " " + oc.name
	}
	if oc.protocol == "" {
		oc.protocol = ProtocolAuto
	}
	if o.S3 != nil {
		if oc.s3, err = newS3Signer(o, oc.name, e.log); err != nil { // s3sign.go
			return nil, err
		}
	}
	if u.Scheme == "https" {
		if oc.tls, err = o.clientTLS(); err != nil {
			return nil, err
		}
		oc.tls.VerifyConnection = oc.verifyConnection
		oc.tls.GetClientCertificate = clientCertificate(oc.tls.Certificates)
	}
	blocking := e.cfg.Limits
	blocking.OriginFirstByteTimeout = max(blocking.OriginFirstByteTimeout, e.live.BlockingWait)
	return &upstream{url: u, hostHeader: o.HostHeader, client: oc.client(e.cfg.Limits), blocking: oc.client(blocking),
		uploads: newUploadSlots(e.cfg.Limits.MaxUploadsPerOrigin)}, nil
}

// originConns is what one origin's pools share: TLS settings, the protocol, and the
// accounting of connections and TLS failures.
type originConns struct {
	name     string
	protocol string
	tls      *tls.Config // nil for http origins
	s3       *s3Signer   // signs every request of an S3 origin (s3sign.go), else nil
	log      *slog.Logger
	m        *metrics

	// TLS failures are logged once per cause (again after a minute, or after the origin
	// recovered): every request to a misconfigured origin fails the same way, and the cause
	// belongs in the log once, not once per request.
	failing  atomic.Bool
	mu       sync.Mutex
	lastWhy  string
	lastTime time.Time
}

// client is a keep-alive pool to the origin with the configured timeouts. It never follows
// redirects (a cache passes them on) and never asks for compression itself (the client's
// Accept-Encoding is forwarded and the representation cached as the origin sent it).
func (oc *originConns) client(l Limits) *http.Client {
	d := &net.Dialer{Timeout: l.OriginConnectTimeout, KeepAlive: 30 * time.Second}
	var p http.Protocols
	switch {
	case oc.tls == nil && oc.protocol == ProtocolHTTP2:
		// HTTP1 unset is what makes the transport speak h2c with prior knowledge.
		p.SetUnencryptedHTTP2(true)
	case oc.tls == nil || oc.protocol == ProtocolHTTP1:
		p.SetHTTP1(true)
	case oc.protocol == ProtocolHTTP2:
		p.SetHTTP2(true)
	default:
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	}
	dial := d.DialContext
	if oc.tls == nil {
		// Over TLS the protocol is known only after the handshake (verifyConnection counts
		// those); in the clear, it is fixed by the configuration.
		label := connHTTP1
		if p.UnencryptedHTTP2() {
			label = connH2C
		}
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				oc.m.originConns.WithLabelValues(label).Inc()
			}
			return c, err
		}
	}
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         dial,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: l.MaxIdleConnsPerOrigin,
		// Beyond it requests queue in the transport for a connection to come free;
		// originTransport bounds that wait (OriginQueueWait).
		MaxConnsPerHost:        l.MaxConnsPerOrigin,
		IdleConnTimeout:        l.OriginIdleTimeout,
		ResponseHeaderTimeout:  l.OriginFirstByteTimeout,
		TLSHandshakeTimeout:    l.OriginConnectTimeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: int64(max(l.MaxHeaderBytes, 16<<10)),
		Protocols:              &p,
		HTTP2: &http.HTTP2Config{
			// One HTTP/2 connection carries every request to the origin: a dead one must be
			// found by an unanswered PING, not by each request's own timeout.
			SendPingTimeout: 15 * time.Second,
		},
	}
	if oc.tls != nil {
		// Each transport gets its own copy: it writes its ALPN list into the config.
		t.TLSClientConfig = oc.tls.Clone()
		if oc.protocol == ProtocolHTTP1 {
			t.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
	}
	return &http.Client{
		Transport:     &originTransport{Transport: t, oc: oc, queueWait: l.OriginQueueWait},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// verifyConnection runs after the certificate was verified, on every handshake (resumed ones
// too): it refuses a connection without h2 when HTTP/2 is required, and counts the others by
// the protocol ALPN chose (RFC 7301; no ALPN means HTTP/1.1).
func (oc *originConns) verifyConnection(cs tls.ConnectionState) error {
	proto := connHTTP1
	if cs.NegotiatedProtocol == "h2" {
		proto = connH2
	} else if oc.protocol == ProtocolHTTP2 {
		return errNoH2
	}
	oc.m.originConns.WithLabelValues(proto).Inc()
	return nil
}

// clientCertificate answers an origin's certificate request (with the configured client
// certificate, if any) and notes the request in the dialing request's context (certAsked).
func clientCertificate(certs []tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if asked, ok := cri.Context().Value(certAskedKey{}).(*atomic.Bool); ok {
			asked.Store(true)
		}
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		return new(tls.Certificate), nil // none: the origin decides whether that is enough
	}
}

// certAskedKey marks an origin request whose connection's handshake included a certificate
// request. In TLS 1.3 the origin judges the client certificate after the client considers
// the handshake done (RFC 8446 §4.4.2.4): the refusal then arrives as the connection failing
// under its first request — over HTTP/2 as "client conn could not be established", the
// alert lost — and this mark is what lets the 502 say why.
type certAskedKey struct{}

// errClientCertRefused is a request failure on a connection whose handshake asked for a
// client certificate.
type errClientCertRefused struct{ err error }

func (e *errClientCertRefused) Error() string {
	return "origin asked for a client certificate, then closed the connection: " + e.err.Error()
}
func (e *errClientCertRefused) Unwrap() error { return e.err }

// originTransport notes the TLS failures of an origin's requests (see originConns) and
// bounds their wait for a connection (see queued).
type originTransport struct {
	*http.Transport
	oc        *originConns
	queueWait time.Duration
}

func (t *originTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.oc.s3 != nil {
		// Signed last, when every field of the request is final.
		return t.oc.s3.roundTrip(r, t.roundTrip)
	}
	return t.roundTrip(r)
}

func (t *originTransport) roundTrip(r *http.Request) (*http.Response, error) {
	var asked *atomic.Bool
	if t.oc.tls != nil {
		asked = new(atomic.Bool)
		r = r.WithContext(context.WithValue(r.Context(), certAskedKey{}, asked))
	}
	r, stop := t.queued(r)
	resp, err := t.Transport.RoundTrip(r)
	if stop() && err != nil {
		t.oc.m.limitHit(limitOriginQueue)
		err = errOriginQueue
	}
	if err != nil && asked != nil && asked.Load() && r.Context().Err() == nil && tlsFailure(err) == "" {
		err = &errClientCertRefused{err}
	}
	switch {
	case err != nil:
		t.oc.failed(err)
	case t.oc.failing.Load():
		t.oc.recovered()
	}
	return resp, err
}

// errOriginQueue is a request that waited OriginQueueWait for a connection to its origin
// while MaxConnsPerOrigin were busy. It counts as a timeout (net.Error): a parent that is
// merely busy is not marked down (parents.go unreachable).
var errOriginQueue error = originQueueTimeout{}

type originQueueTimeout struct{}

func (originQueueTimeout) Error() string   { return "origin connection queue timeout" }
func (originQueueTimeout) Timeout() bool   { return true }
func (originQueueTimeout) Temporary() bool { return true }

// queued gives r a bound on its wait for a connection: http.Transport queues a request
// without limit when MaxConnsPerHost connections are busy, and a request that got none
// after queueWait is cancelled. The wait ends when the request gets a connection, or starts
// one of its own (DNS, dial, TLS then have their own timeouts). stop ends the watch and
// reports whether the wait ran out — the request failed for want of a connection.
func (t *originTransport) queued(r *http.Request) (_ *http.Request, stop func() bool) {
	ctx, cancel := context.WithCancelCause(r.Context())
	var expired atomic.Bool
	timer := time.AfterFunc(t.queueWait, func() {
		expired.Store(true)
		cancel(errOriginQueue)
	})
	done := func() { timer.Stop() }
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { done() },
		DNSStart:     func(httptrace.DNSStartInfo) { done() },
		ConnectStart: func(string, string) { done() },
	}
	r = r.WithContext(httptrace.WithClientTrace(ctx, trace))
	return r, func() bool {
		done()
		// Not cancelled otherwise: the response body still reads under ctx.
		return expired.Load()
	}
}

func (oc *originConns) failed(err error) {
	why := tlsFailure(err)
	if why == "" {
		return
	}
	oc.m.originTLSFailures.Inc()
	oc.failing.Store(true)
	now := time.Now()
	oc.mu.Lock()
	repeat := why == oc.lastWhy && now.Sub(oc.lastTime) < time.Minute
	if !repeat {
		oc.lastWhy, oc.lastTime = why, now
	}
	oc.mu.Unlock()
	if !repeat {
		oc.log.Error("origin TLS failed: answering 502", "origin", oc.name, "reason", why, "err", err)
	}
}

func (oc *originConns) recovered() {
	oc.mu.Lock()
	was := oc.lastWhy
	oc.lastWhy = ""
	oc.failing.Store(false)
	oc.mu.Unlock()
	if was != "" {
		oc.log.Info("origin TLS working again", "origin", oc.name, "after", was)
	}
}

// tlsFailure says in a few words why an origin request failed in TLS — the reason of the
// client's 502 — or "" when the failure was not about TLS.
func tlsFailure(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		op        *net.OpError
	)
	var certRefused *errClientCertRefused
	switch {
	case errors.Is(err, errNoH2):
		return "origin did not negotiate HTTP/2"
	case errors.As(err, &unknownCA):
		return "origin certificate not trusted"
	case errors.As(err, &hostname):
		return "origin certificate does not match the origin's name"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "origin certificate expired or not yet valid"
	case errors.As(err, &invalid):
		return "origin certificate invalid"
	case errors.As(err, &verify):
		return "origin certificate not verified"
	case errors.Is(err, http.ErrSchemeMismatch):
		// What http.Client makes of a RecordHeaderError that looks like an HTTP response.
		return "origin does not speak TLS (it answered in plain HTTP)"
	case errors.As(err, &record):
		return "origin does not speak TLS"
	case errors.As(err, &op) && op.Op == "remote error":
		// An alert the origin sent (crypto/tls's alert type is not exported): a refused
		// client certificate, no common protocol version or ALPN protocol…
		return "origin refused the TLS handshake (" + strings.TrimPrefix(op.Err.Error(), "tls: ") + ")"
	case errors.As(err, &certRefused):
		return "origin refused the connection after asking for a client certificate"
	}
	return ""
}
