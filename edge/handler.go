package edge

import (
	"net/http"
	"strings"
	"sync"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
)

// ServeHTTP runs a request through the phases described on Edge.
func (e *Edge) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := respWriters.Get().(*respWriter)
	*w = respWriter{ResponseWriter: rw, start: monoNow(), m: e.m, outcome: outcomeError}
	defer func() {
		w.done()
		e.m.countProtocol(r.ProtoMajor)
		if e.cfg.AccessLog {
			e.log.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "status", w.status,
				"cache", requestLabels[w.outcome], "bytes", w.n, "duration", monoNow()-w.start, "remote", r.RemoteAddr)
		}
		*w = respWriter{}
		respWriters.Put(w)
	}()
	if r.Method == http.MethodConnect || r.Method == http.MethodTrace {
		// 501 rather than 405: the edge tunnels nothing (CONNECT, RFC 9110 §9.3.6, is for
		// forward proxies) and never echoes a request (TRACE, §9.3.8: it would reflect the
		// client's Cookie and credentials to whatever script sent it), for any resource;
		// 405 would claim the method exists for the resource and owe an Allow listing the
		// methods it does take, which only the origin knows (§15.5.6, §15.6.2).
		httpError(w, http.StatusNotImplemented, r.Method+" is not supported")
		return
	}
	// Hop-by-hop fields, including those a client lists in Connection, go before anything
	// looks at the request: the key, the Vary match and the origin must all see the same
	// header (RFC 9110 §7.6.1), or "Connection: Accept-Language" could fill the "en" variant
	// with a response made without it.
	policy.RemoveHopByHop(r.Header)
	if lines := r.Header["Cdn-Loop"]; lines != nil && e.looped(lines) {
		// Refused before it could join a fill: coming back round a loop, it would wait on
		// the very fill that sent it (RFC 8586).
		httpError(w, http.StatusLoopDetected, "request loop detected (CDN-Loop)")
		return
	}
	if r.URL.Path == HealthPath {
		e.serveHealth(w)
		return
	}
	up, rule := e.route(r)
	if up == nil {
		httpError(w, http.StatusMisdirectedRequest, "no origin is configured for this host")
		return
	}
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		e.forwardWithBody(w, r, up) // reqbody.go
	case rule != nil && rule.Bypass:
		e.forward(w, r, up, cachestatus.Status{Fwd: cachestatus.FwdBypass})
	case field(r.Header, "If-Match") != "" || field(r.Header, "If-Unmodified-Since") != "":
		// Preconditions a cache must not evaluate for the origin (RFC 9111 §4.3.2).
		e.forward(w, r, up, cachestatus.Status{Fwd: cachestatus.FwdRequest})
	default:
		// Range requests are served from stored objects and from fills of the whole
		// representation (respond.go); slicing large objects is rangecache's next step.
		e.serveCacheable(w, r, up, e.policyFor(rule))
	}
}

// respWriters recycles the wrappers ServeHTTP measures responses with: nothing holds one after
// ServeHTTP returns, as nothing may use a ResponseWriter after its handler returned.
var respWriters = sync.Pool{New: func() any { return new(respWriter) }}

// field is h.Get(name) for a name already in canonical form, without canonicalising it again:
// the hot path asks for several fields per request.
func field(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// serveCacheable handles GET and HEAD: hit, stale handling, revalidation or a coalesced fill.
func (e *Edge) serveCacheable(w http.ResponseWriter, r *http.Request, up *upstream, pol policy.Options) {
	res := e.lookup(r, pol)
	e.pf.demand.note(res.key, e.now) // live prefetch follows what clients watch (livedemand.go)
	now := e.now()
	if res.obj == nil {
		e.stats.Misses.Add(1)
		if onlyIfCached(r) {
			httpError(w, http.StatusGatewayTimeout, "not in cache (only-if-cached)")
			return
		}
		// Ranges of objects not stored whole are answered from slices (slices.go), and so
		// is any request for an object already known sliced.
		if e.cfg.SliceSize > 0 {
			if (field(r.Header, "Range") != "" || e.isSliced(res.key)) && e.serveSliced(w, r, up, res) {
				return
			}
		}
		e.fillAndServe(w, r, up, res, res.fwd, nil)
		return
	}
	if age, ttl, ok := res.obj.quickFresh(r, now); ok {
		e.stats.Hits.Add(1)
		e.notePrefetchUse(res.key)
		e.serveStored(w, r, res.obj, age, ttl, cachestatus.Status{Hit: true})
		return
	}
	v := policy.Reuse(r, res.obj.stored(), now, res.pol)
	if res.obj.invalidated && v != policy.GatewayTimeout {
		v = policy.Revalidate // soft-purged
	}
	switch v {
	case policy.Fresh, policy.StaleAllowed:
		e.stats.Hits.Add(1)
		e.notePrefetchUse(res.key)
		e.serveObject(w, r, now, res.obj, res.pol, cachestatus.Status{Hit: true})
	case policy.StaleWhileRevalidate:
		e.stats.Hits.Add(1)
		e.serveObject(w, r, now, res.obj, res.pol, cachestatus.Status{Hit: true, Detail: "stale-while-revalidate"})
		e.refreshInBackground(r, up, res)
	case policy.GatewayTimeout:
		httpError(w, http.StatusGatewayTimeout, "stored response is stale (only-if-cached)")
	default: // Revalidate, RevalidateRequest
		e.stats.Misses.Add(1)
		fwd := cachestatus.FwdStale
		if v == policy.RevalidateRequest {
			fwd = cachestatus.FwdRequest
		}
		e.fillAndServe(w, r, up, res, fwd, res.obj)
	}
}

func onlyIfCached(r *http.Request) bool {
	for _, v := range r.Header.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "only-if-cached") {
				return true
			}
		}
	}
	return false
}
