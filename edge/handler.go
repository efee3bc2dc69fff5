package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/fill"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
)

// ServeHTTP runs a request through the phases described on Edge.
func (e *Edge) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &respWriter{ResponseWriter: rw, start: time.Now(), m: e.m, label: "error", source: "origin"}
	defer func() {
		w.done()
		if e.cfg.AccessLog {
			e.log.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "status", w.status,
				"cache", w.label, "bytes", w.n, "duration", time.Since(w.start), "remote", r.RemoteAddr)
		}
	}()
	up, rule := e.route(r)
	if up == nil {
		httpError(w, http.StatusMisdirectedRequest, "no origin is configured for this host")
		return
	}
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		e.forwardUnsafe(w, r, up)
	case rule != nil && rule.Bypass:
		e.forward(w, r, up, cachestatus.Status{Fwd: cachestatus.FwdBypass})
	default:
		// Range requests are served from stored objects and from fills of the whole
		// representation (respond.go); slicing large objects is rangecache's next step.
		e.serveCacheable(w, r, up, e.policyFor(rule))
	}
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

func (e *Edge) lookup(r *http.Request) lookupResult {
	res := lookupResult{key: e.keyer.Key(r), fwd: cachestatus.FwdURIMiss}
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
	e.mem.Put(res.key, res.vary, res.vk, &store.Object{Status: o.Status, Header: o.Header,
		RequestTime: o.RequestTime, ResponseTime: o.ResponseTime, Body: data})
}

// serveCacheable handles GET and HEAD: hit, stale handling, revalidation or a coalesced fill.
func (e *Edge) serveCacheable(w http.ResponseWriter, r *http.Request, up *upstream, pol policy.Options) {
	res := e.lookup(r)
	res.pol = pol
	now := e.now()
	if res.obj == nil {
		e.stats.Misses.Add(1)
		if onlyIfCached(r) {
			httpError(w, http.StatusGatewayTimeout, "not in cache (only-if-cached)")
			return
		}
		e.fillAndServe(w, r, up, res, res.fwd, nil)
		return
	}
	switch v := policy.Reuse(r, res.obj.stored(), now, res.pol); v {
	case policy.Fresh, policy.StaleAllowed:
		e.stats.Hits.Add(1)
		e.serveObject(w, r, res.obj, res.pol, cachestatus.Status{Hit: true})
	case policy.StaleWhileRevalidate:
		e.stats.Hits.Add(1)
		e.serveObject(w, r, res.obj, res.pol, cachestatus.Status{Hit: true, Detail: "stale-while-revalidate"})
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
// from plain misses so that their conditional answers are never mixed up.
func fillKey(res lookupResult, cond *cached) string {
	k := res.key + "\x00" + res.vk
	if cond != nil {
		k += "\x00revalidate"
	}
	return k
}

// fillAndServe joins (or starts) the fill for the request and serves it as it arrives. cond
// is the stored object being revalidated, if any.
func (e *Edge) fillAndServe(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult, fwd string, cond *cached) {
	outReq := r
	if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		// A HEAD miss fetches the GET it stands for, and a range miss the whole
		// representation, so that the next request is a hit.
		outReq = r.Clone(r.Context())
		outReq.Method = http.MethodGet
		outReq.Header.Del("Range")
		outReq.Header.Del("If-Range")
	}
	f, leader := e.fills.Join(r.Context(), fillKey(res, cond), func(ctx context.Context, f *fill.Fill) {
		e.inflight.Add(1)
		defer e.inflight.Done()
		e.runFill(ctx, f, up, outReq, res, cond)
	})
	defer f.Done()
	if !leader {
		e.stats.Collapsed.Add(1)
		e.m.collapsed.Inc()
	}
	head, body, err := f.Head(r.Context(), leader, e.cfg.Limits.CoalesceWait)
	if err == nil && !leader {
		if vk, ok := policy.VaryKey(head.Vary, r.Header); !ok || vk != head.VaryKey {
			err = fill.ErrNotShareable // the response negotiated something else than we asked
		}
	}
	var stale *staleError
	switch {
	case errors.Is(err, fill.ErrNotShareable), errors.Is(err, fill.ErrHeadTimeout):
		// Not ours to share, or the origin is too slow to wait for: go on our own.
		e.forward(w, r, up, cachestatus.Status{Fwd: fwd, Detail: "uncollapsed"})
		return
	case errors.As(err, &stale) || (err != nil && cond != nil):
		if cond != nil && policy.CanServeStaleOnError(cond.stored(), e.now(), res.pol) {
			e.serveObject(w, r, cond, res.pol, cachestatus.Status{Fwd: cachestatus.FwdStale, FwdStatus: stale.status(), Detail: "stale-if-error"})
			return
		}
		if stale != nil {
			// The origin answered with an error we held back hoping to serve stale; we may
			// not, so fetch again and pass its answer on.
			e.forward(w, r, up, cachestatus.Status{Fwd: fwd})
			return
		}
		originError(w, err)
		return
	case err != nil:
		originError(w, err)
		return
	}

	cs := cachestatus.Status{Fwd: fwd, FwdStatus: head.Status, Stored: head.Shareable, Collapsed: !leader}
	if head.Reason == reasonRevalidated {
		cs.FwdStatus = http.StatusNotModified
	}
	if head.Direct != nil {
		defer head.Direct.Close()
		e.writeHead(w, r, head.Status, clientHeader(head.Header), 0, cs)
		if r.Method != http.MethodHead {
			copyFlushing(w, head.Direct)
		}
		return
	}
	e.serveFill(w, r, head, body, cs)
}

// staleError is a fill's report that the origin answered a revalidation with a server error
// (RFC 5861 §4): the waiting requests decide whether their stale copy may be served.
type staleError struct{ code int }

func (s *staleError) Error() string { return fmt.Sprintf("origin answered %d", s.code) }

func (s *staleError) status() int {
	if s == nil {
		return 0
	}
	return s.code
}

// originError answers a request whose origin fetch failed: 504 for a timeout, 502 otherwise.
func originError(w http.ResponseWriter, err error) {
	var ne interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		httpError(w, http.StatusGatewayTimeout, "origin timed out")
		return
	}
	httpError(w, http.StatusBadGateway, "origin unavailable")
}

// httpError writes an error the edge generated itself: never cached downstream.
func httpError(w http.ResponseWriter, code int, reason string) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, reason+"\n")
}
