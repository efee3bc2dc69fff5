package edge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/rangecache/fill"
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

// lookupResult is what the store holds for a request.
type lookupResult struct {
	key  string
	vary []string       // the Vary lines stored for the URL (nil when nothing is stored)
	vk   string         // the request's secondary key under vary
	obj  *cached        // nil on a miss
	fwd  string         // uri-miss or vary-miss when obj is nil
	pol  policy.Options // the cache policy for this request's path (rule TTL applied)
}

func (e *Edge) lookup(r *http.Request, pol policy.Options) lookupResult {
	res := lookupResult{key: e.keyer.Key(r), fwd: cachestatus.FwdURIMiss, pol: pol}
	if entry, ok := e.mem.Lookup(res.key); ok {
		res.vary = entry.Vary
		if vk, ok := policy.VaryKey(entry.Vary, r.Header); ok {
			res.vk = vk
			if o := entry.Variants[vk]; o != nil {
				res.obj = fromMemory(o)
				return res
			}
		}
		res.fwd = cachestatus.FwdVaryMiss
	}
	if e.disk == nil {
		return res
	}
	vary, variant, ok := e.disk.Lookup(res.key)
	if !ok {
		return res
	}
	res.vary = vary
	vk, ok := policy.VaryKey(vary, r.Header)
	if !ok {
		res.fwd = cachestatus.FwdVaryMiss
		return res
	}
	res.vk = vk
	o := variant(vk)
	if o == nil {
		res.fwd = cachestatus.FwdVaryMiss
		return res
	}
	res.obj = fromDisk(o)
	e.promote(res, o)
	return res
}

// promote copies a small disk object into the memory tier, where the next hits are cheaper.
func (e *Edge) promote(res lookupResult, o *store.DiskObject) {
	if !e.mem.Fits(o.Size) {
		return
	}
	data, err := os.ReadFile(o.Path())
	if err != nil || int64(len(data)) != o.Size {
		return
	}
	e.mem.Put(res.key, res.vary, res.vk, withFreshness(&store.Object{Status: o.Status, Header: o.Header,
		RequestTime: o.RequestTime, ResponseTime: o.ResponseTime, Body: data, Invalidated: o.Invalidated}, res.pol))
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
		// Ranges of objects not stored whole are answered from slices (sliced.go), and so
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

// policyFor is the cache policy for requests matching rule.
func (e *Edge) policyFor(rule *Rule) policy.Options {
	p := e.pol
	if rule != nil && rule.TTL > 0 {
		p.TTL = rule.TTL
	}
	return p
}

// fillKey is what concurrent requests coalesce on: the URL key plus, when the URL's Vary is
// known, the request's secondary key; revalidations of a stored object coalesce separately
// from plain misses so that their conditional answers are never mixed up. The key's
// invalidation count is part of it: a request that comes after a purge must not join a fill
// that began before it and get the content the purge was meant to remove.
func (e *Edge) fillKey(res lookupResult, cond *cached) string {
	k := res.key + "\x00" + res.vk + "\x00" + strconv.FormatUint(e.gen(res.key).Load(), 10)
	if cond != nil {
		k += "\x00revalidate"
	}
	return k
}

// fillAndServe joins (or starts) the fill for the request and serves it as it arrives. cond
// is the stored object being revalidated, if any.
func (e *Edge) fillAndServe(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult, fwd string, cond *cached) {
	r = withInterim(r, w) // the origin's 103 Early Hints reach the leader's client (interim.go)
	outReq := fillRequest(r)
	e.inflight.Add(1) // before the fill's goroutine exists, so Close can't miss it
	f, leader := e.fills.Join(r.Context(), e.fillKey(res, cond), func(ctx context.Context, f *fill.Fill) {
		defer e.inflight.Done()
		e.runFill(ctx, f, up, outReq, res, cond)
	})
	if !leader {
		e.inflight.Done()
		e.stats.Collapsed.Add(1)
		e.m.collapsed.Inc()
		e.notePrefetchUse(res.key)
	}
	defer f.Done()
	// The leader waits as long as the origin's own timeouts allow; followers only
	// CoalesceWait, then fall back to a stale copy or their own request — at least
	// Live.BlockingWait for an LL-HLS blocking reload, which the origin may hold that long.
	wait := e.cfg.Limits.CoalesceWait
	switch {
	case leader:
		wait = 0
	case blockingReload(r.URL.RawQuery):
		wait = max(wait, e.live.BlockingWait)
	}
	head, body, err := f.Head(r.Context(), leader, wait)
	if err == nil && !leader {
		if vk, ok := policy.VaryKey(head.Vary, r.Header); !ok || vk != head.VaryKey {
			err = fill.ErrNotShareable // the response negotiated something else than we asked
		}
	}
	now := e.now()
	canStale := cond != nil && policy.CanServeStaleOnError(cond.stored(), now, res.pol)
	switch {
	case err == nil && canStale && serverError(head.Status):
		// RFC 5861 §4: the origin answered the revalidation with a server error.
		e.serveObject(w, r, now, cond, res.pol, cachestatus.Status{Fwd: cachestatus.FwdStale, FwdStatus: head.Status, Detail: "stale-if-error"})
		return
	case err != nil && canStale && !errors.Is(err, fill.ErrNotShareable) && r.Context().Err() == nil:
		// Origin down, timed out, or too slow to wait for.
		e.serveObject(w, r, now, cond, res.pol, cachestatus.Status{Fwd: cachestatus.FwdStale, Detail: "stale-if-error"})
		return
	case errors.Is(err, fill.ErrNotShareable) && head.Reason == reasonSliced && e.serveSliced(w, r, up, res):
		// The leader streams an object too large to share while it stores it as slices:
		// followers read it through coalesced slices rather than each from the origin.
		return
	case errors.Is(err, fill.ErrNotShareable), errors.Is(err, fill.ErrHeadTimeout):
		// Not ours to share, or the origin is too slow to wait for: go on our own.
		e.forward(w, r, up, cachestatus.Status{Fwd: fwd, Detail: "uncollapsed"})
		return
	case err != nil:
		if r.Context().Err() == nil {
			originError(w, err)
		}
		return
	}

	cs := cachestatus.Status{Fwd: fwd, FwdStatus: head.Status, Stored: head.Stored, Collapsed: !leader}
	if head.Reason == reasonRevalidated {
		cs.FwdStatus = http.StatusNotModified
	}
	if head.Direct != nil {
		defer head.Direct.Close()
		e.writeHead(w, r, head.Status, clientHeader(head.Header), 0, cs)
		if r.Method != http.MethodHead {
			relay(w, head.Direct)
		}
		return
	}
	e.serveFill(w, r, head, body, cs)
}

// fillRequest is the request a fill sends upstream on behalf of r: always a GET of the whole
// representation, without the client's own conditionals (RFC 9111 §4.3.2: the cache
// validates with its own validators; a client's If-Match must not decide what everyone else
// is served). A HEAD miss thus fills the GET it stands for, and a range miss the whole object.
func fillRequest(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	out.Method = http.MethodGet
	for _, h := range []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		out.Header.Del(h)
	}
	return out
}

// serverError is the set RFC 5861 §4 lets a cache answer with stale content.
func serverError(status int) bool {
	switch status {
	case 500, 502, 503, 504:
		return true
	}
	return false
}

// originError answers a request whose origin fetch failed: 504 for a timeout, 502 otherwise
// (with the TLS failure's reason when there was one: the operator's first clue).
func originError(w http.ResponseWriter, err error) {
	var body *clientBodyError
	switch {
	case errors.As(err, &body):
		// Not the origin's fault: the client's body broke off or timed out (reqbody.go).
		badBody(w, body.err)
		return
	case errors.Is(err, errOriginQueue):
		// A connection may come free any moment: worth a retry soon.
		httpError(w, http.StatusServiceUnavailable, "origin connection queue timeout", "Retry-After", "1")
		return
	}
	var ne interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		httpError(w, http.StatusGatewayTimeout, "origin timed out")
		return
	}
	if errors.Is(err, errNoParent) {
		httpError(w, http.StatusBadGateway, "no parent cache available")
		return
	}
	if why := tlsFailure(err); why != "" {
		httpError(w, http.StatusBadGateway, why)
		return
	}
	httpError(w, http.StatusBadGateway, "origin unavailable")
}

// httpError writes an error the edge generated itself: never cached downstream.
// Fields given as name, value pairs in extra are added (a challenge, say); everything
// else a handler had set is dropped.
func httpError(w http.ResponseWriter, code int, reason string, extra ...string) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, reason+"\n")
}
