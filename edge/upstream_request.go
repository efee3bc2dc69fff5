package edge

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/reelvideo/reel/edge/cachekey"
	"github.com/reelvideo/reel/edge/live"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/rangecache"
)

// unkeyedOverrides are request fields some origins and frameworks honour to rewrite the host,
// path or method. They are not part of the cache key, so forwarding them on cacheable requests
// would let one client poison the entry every other client gets (web cache poisoning).
var unkeyedOverrides = []string{
	"X-Forwarded-Host", "X-Forwarded-Server", "X-Host", "X-Original-Url", "X-Rewrite-Url",
	"X-Original-Host", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Forwarded-Scheme", "X-Forwarded-Port", "X-Forwarded-Prefix", "Forwarded",
}

// originRequest builds the request to send upstream: same method and path, the query the key
// holds (upstreamQuery), hop-by-hop and underscored fields removed (RFC 9110
// §7.6.1), Via and X-Forwarded-For added, the rules' request_headers applied, Host kept or
// rewritten per config.
func (e *Edge) originRequest(ctx context.Context, up *upstream, r *http.Request, cacheable bool) (*http.Request, error) {
	// The path goes upstream as the key saw it, dot segments removed (RFC 3986 §5.2.4), so
	// that "/a/../b" cannot fetch one resource and store it under another's key.
	// A rule's strip_prefix takes its prefix off (route.go); parents get the client's path.
	target := up.url.Scheme + "://" + up.url.Host + strings.TrimSuffix(up.url.EscapedPath(), "/") +
		up.originPath(cachekey.NormalizePath(r.URL.EscapedPath()))
	if q := e.upstreamQuery(r, cacheable); q != "" {
		target += "?" + q
	}
	var body io.Reader
	if r.Body != nil && r.Body != http.NoBody && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body = r.Body
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		return nil, badRequestError{err}
	}
	out.ContentLength = r.ContentLength
	if body == nil {
		out.ContentLength = 0
	}
	out.Header = r.Header.Clone()
	policy.RemoveHopByHop(out.Header)
	e.dropUnderscored(out.Header)
	if cacheable {
		for _, h := range unkeyedOverrides {
			out.Header.Del(h)
		}
		// Variants are keyed by the normalised Accept-Encoding, so that is what the origin
		// must see (policy.VaryKey).
		if ae := out.Header.Values("Accept-Encoding"); len(ae) > 0 {
			out.Header.Set("Accept-Encoding", policy.NormalizeAcceptEncoding(ae))
		}
	}
	out.Header.Add("Via", e.via)
	out.Header.Add("CDN-Loop", cdnID+"; node="+e.loopID)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := out.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	out.Header.Set("X-Forwarded-Proto", proto)
	// The rules' request_headers last (headers.go): they may replace X-Forwarded-For, but
	// never touch Host, Via, CDN-Loop or the fields a revalidation or a slice adds after.
	if rs := e.rt().routes.rules; rs.reqHeaders {
		if rl := rs.forRequest(requestHost(r), routePath(r), r.Method, r.Header); rl.reqHeaders != nil {
			rl.reqHeaders.apply(out.Header, &headerVars{r: r})
		}
	}
	switch {
	case up.parent || up.hostHeader == "":
		// The host as the key saw it (case, trailing dot and default port normalised), so
		// that "EXAMPLE.com.:80" can't fill example.com's entry with what it made the origin
		// say. A parent always gets it: it routes by it to its own origins, and rewrites it
		// for them as its own configuration says.
		out.Host = canonicalHost(r.Host, r.TLS != nil)
	case up.hostHeader == "origin":
		out.Host = up.url.Host
	default:
		out.Host = up.hostHeader
	}
	return out, nil
}

// badRequestError is a client request that can't be turned into an upstream one.
type badRequestError struct{ err error }

func (b badRequestError) Error() string { return b.err.Error() }

func (b badRequestError) Unwrap() error { return b.err }

// canonicalHost lower-cases host, drops a trailing dot and the scheme's default port.
func canonicalHost(host string, tls bool) string {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, ""
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if port == "" || (port == "80" && !tls) || (port == "443" && tls) {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return net.JoinHostPort(h, port)
}

// idleBody aborts an origin body that sends nothing for too long: a stalled origin must not
// hold a fill — and every request that joined it — forever.
type idleBody struct {
	io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc
}

func newIdleBody(body io.ReadCloser, idle time.Duration, cancel context.CancelFunc) *idleBody {
	return &idleBody{ReadCloser: body, timer: time.AfterFunc(idle, cancel), idle: idle, cancel: cancel}
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.timer.Reset(b.idle)
	return n, err
}

// Pause stops the idle clock while the reader waits on its own account (a fill paced by its
// clients, rangecache.Pausable), not on the origin's; Resume restarts it.
func (b *idleBody) Pause() { b.timer.Stop() }

func (b *idleBody) Resume() { b.timer.Reset(b.idle) }

// A slice stream finds the idle clock by this interface (rangecache/stream.go).
var _ rangecache.Pausable = (*idleBody)(nil)

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// doOrigin sends out and returns the response with its body guarded by the read timeout;
// closing the body releases the request's context.
func (e *Edge) doOrigin(ctx context.Context, up *upstream, out *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	out = out.WithContext(traceInterim(ctx)) // 1xx relayed to the client (interim.go)
	start := time.Now()
	client := up.client
	if up.blocking != nil && live.BlockingReload(out.URL.RawQuery) {
		client = up.blocking
	}
	resp, err := client.Do(out)
	e.m.observeOrigin(start, resp, err)
	e.stats.OriginRequests.Add(1)
	if err != nil {
		cancel()
		return nil, err
	}
	// An upstream's Alt-Svc names where *it* can be reached (RFC 7838 §3: for the origin the
	// client talked to, which here is this edge): passed on, it would send clients to the
	// origin's or a shield's ports under this edge's name. Clients get this edge's own.
	delete(resp.Header, "Alt-Svc")
	resp.Body = newIdleBody(resp.Body, e.cfg.Limits.OriginReadTimeout, cancel)
	return resp, nil
}

// What of a client's request reaches the upstream, beyond the hop-by-hop rules: the two
// places where the cache key and the origin could read the same request differently
// (upstreamQuery, dropUnderscored).

// upstreamQuery is the query sent upstream for r. A cacheable request forwards only what its
// key holds (cachekey.Keyer.ForwardQuery): a parameter the key ignores, forwarded, could be
// reflected by the origin into the one entry every client of the key gets
// (`?utm_source=<script>`). A request that is never stored forwards its query as sent.
func (e *Edge) upstreamQuery(r *http.Request, cacheable bool) string {
	if !cacheable {
		return r.URL.RawQuery
	}
	return e.keyer.ForwardQuery(r.URL, e.rulingFor(r).key)
}

// dropUnderscored removes request fields whose names hold '_' unless
// cache.underscores_in_headers allows them (nginx's underscores_in_headers, off by default).
// CGI, PHP, WSGI and Rack origins see fields as HTTP_* variables with '-' turned into '_', so
// "X_Forwarded_Host" reaches them as X-Forwarded-Host: it would slip past the list of
// unkeyed overrides the edge removes, and past Vary matching of any keyed field. Renaming
// '_' to '-' would only protect the names the edge knows of, and a request holding both
// spellings would still let the client choose which one the origin reads; a client that is
// no proxy has no business sending such names, so they are dropped whole.
func (e *Edge) dropUnderscored(h http.Header) {
	if e.cfg.Cache.UnderscoresInHeaders {
		return
	}
	for name := range h {
		if strings.IndexByte(name, '_') >= 0 {
			delete(h, name)
		}
	}
}
