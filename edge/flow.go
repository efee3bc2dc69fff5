package edge

import (
	"net/http"
	"sync"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
)

// The request flow. Every request the edge serves goes through these phases, in this order,
// and ServeHTTP below is the whole of it; each phase is a function whose signature says what
// it takes and what it gives:
//
//  1. admit    (admit.go)    refuse what the edge never serves, strip hop-by-hop fields,
//     break request loops
//  2. route    (route.go)    the rule and cache policy for the path, and the origin its rules
//     name (else the Host's); then token (tokencheck.go): a signed-URL token is taken out of
//     the request (path form, query, cookie) and checked where the rules require one — 403
//     otherwise, hits included (a path-form token out, the path is routed again); then
//     access (access.go): the rules' referer, address, country and rate checks — 403 or 429,
//     hits included
//  3. pass     (pass.go)     what no cache may answer (unsafe methods, bypass rules, the
//     client's own preconditions) goes to the origin as it is (forward.go, reqbody.go)
//  4. lookup   (lookup.go)   the cache key; memory then disk, matching the stored Vary
//  5. decide   (decide.go)   hit, stale hit, stale-while-revalidate, revalidate, fill, refuse
//     (RFC 9111 §4, RFC 5861) — a pure function of the request, the stored object and the time
//  6. upstream (fill.go, sliced.go, forward.go) a miss joins the one fill of its key (whole
//     object, or slices for ranges of large objects); the fill streams the origin's answer into
//     storage and to every request that joined it; live manifests are classified and capped
//     when a fill publishes them (edge/live)
//  7. respond  (respond.go)  Age, Via and Cache-Status on every head; bodies from storage or
//     from fills as they arrive — a compressible one as the stored copy in the coding the
//     request prefers (compress.go); for a request whose token came in the query, phases 3–7 write
//     into a manifestWriter (tokenrespond.go) that adds the token to a manifest's URIs
//
// Where a change goes: a check on every request (signed URLs, access rules) is a step of
// admit, or of route when it depends on the rule; a per-path origin is route; a new storage
// tier is lookup (and storage.go for writes); a new reason to go uncached is pass or decide.

// ServeHTTP runs a request through the phases above.
func (e *Edge) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := e.measure(rw)
	defer e.measured(w, r)

	// 1. Admit.
	if status, reason := e.admit(r); status != 0 {
		httpError(w, status, reason)
		return
	}
	if r.URL.Path == HealthPath {
		e.serveHealth(w)
		return
	}
	// 2. Route.
	up, rl := e.route(r)
	setResponseHeaders(w, r, rl) // the rules' response_headers on every head from now on (headers.go)
	// 2b. Token: a signed-URL token taken out of the request, checked where the rules ask.
	var carry string
	if e.tokens != nil {
		var refused string
		path := r.URL.Path
		if rl, refused, carry = e.checkToken(r, rl); refused != "" {
			httpError(w, http.StatusForbidden, refused)
			return
		}
		if r.URL.Path != path {
			// The path form's token was taken out: the rules may send the rest elsewhere.
			up, _ = e.route(r)
		}
		setResponseHeaders(w, r, rl)
	}
	w.up = up // the access log's origin
	// 2c. Access: referer, address, country and rate checks where the rules set them
	// (access.go), hits included.
	if rl.access != nil && e.refuseAccess(w, r, rl.access) {
		return
	}
	if up == nil {
		httpError(w, http.StatusMisdirectedRequest, "no origin is configured for this host")
		return
	}
	if carry != "" {
		// A query token goes on into the manifest's URIs (tokenrespond.go).
		e.serveCarryingToken(w, r, up, rl, carry)
		return
	}
	e.serveRouted(w, r, up, rl)
}

// serveRouted runs a routed request through phases 3 to 7.
func (e *Edge) serveRouted(w http.ResponseWriter, r *http.Request, up *upstream, rl *ruling) {
	// 3. Pass.
	if fwd := passReason(r, rl); fwd != "" {
		e.pass(w, r, up, fwd)
		return
	}
	// From here on, the request as its key settings leave it: cookies outside a key_cookies
	// allow-list gone, the User-Agent down to its device class (keyview.go).
	r = e.keyedView(r, rl)
	setBrowserTTL(w, rl.browserTTL) // what clients are told of what the cache answers (respond.go)
	e.setCompress(w, rl)            // and in which content coding (compress.go)
	// 4. Lookup.
	res := e.lookup(r, rl)
	e.manifests.Watched(res.key) // live prefetch follows what clients watch (edge/live)
	// 5. Decide.
	now := e.now()
	d := decide(r, &res, now)
	if (d.verdict == verdictRevalidate || d.verdict == verdictFill) && policy.RequestNoStore(r.Header) {
		// A no-store the rules honour (clientcc.go): nothing of this request may be stored,
		// so it goes to the origin alone rather than lead a fill that the requests joining it
		// would then have to leave, each for the origin.
		e.stats.Misses.Add(1)
		e.forward(w, r, up, cachestatus.Status{Fwd: cachestatus.FwdRequest, Detail: "no-store"})
		return
	}
	// 6 and 7. Upstream, respond.
	switch d.verdict {
	case verdictFresh:
		e.stats.Hits.Add(1)
		e.manifests.Used(res.key)
		e.serveStored(w, r, e.coded(w, r, res.key, res.vk, res.obj), d.age, d.ttl, cachestatus.Status{Hit: true})
	case verdictHit:
		e.stats.Hits.Add(1)
		e.manifests.Used(res.key)
		e.serveObject(w, r, now, e.coded(w, r, res.key, res.vk, res.obj), res.pol, cachestatus.Status{Hit: true})
	case verdictStaleRefresh:
		e.stats.Hits.Add(1)
		e.serveObject(w, r, now, e.coded(w, r, res.key, res.vk, res.obj), res.pol, cachestatus.Status{Hit: true, Detail: "stale-while-revalidate"})
		e.refreshInBackground(r, up, res)
	case verdictRefuse:
		if res.obj == nil {
			e.stats.Misses.Add(1)
		}
		httpError(w, http.StatusGatewayTimeout, d.reason)
	case verdictRevalidate:
		e.stats.Misses.Add(1)
		e.fillAndServe(w, r, up, res, d.fwd, res.obj)
	case verdictFill:
		e.stats.Misses.Add(1)
		// Ranges of objects not stored whole are answered from slices (sliced.go, rangecache),
		// and so is any request for an object already known sliced.
		sliced := e.cfg.SliceSize > 0 && (field(r.Header, "Range") != "" || e.isSliced(res.key))
		if sliced && e.serveSliced(w, r, up, res) {
			return
		}
		e.fillAndServe(w, r, up, res, d.fwd, nil)
	}
}

// measure wraps the response writer of a request in the (recycled) respWriter that measures
// it for the metrics and the access log.
func (e *Edge) measure(rw http.ResponseWriter) *respWriter {
	w := respWriters.Get().(*respWriter)
	*w = respWriter{ResponseWriter: rw, start: monoNow(), m: e.m, outcome: outcomeError}
	return w
}

// measured records a request once ServeHTTP is done with it, and recycles its respWriter.
func (e *Edge) measured(w *respWriter, r *http.Request) {
	w.done()
	e.m.countProtocol(r.ProtoMajor)
	e.m.ops.countResponse(r.Host, w.status, w.outcome) // metrics_ops.go
	if a := e.rt().accessLog; a != nil {
		a.write(w, r, time.Now()) // accesslog.go
	}
	*w = respWriter{}
	respWriters.Put(w)
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
