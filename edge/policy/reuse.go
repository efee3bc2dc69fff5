package policy

import (
	"net/http"
	"time"
)

// Stored is what the cache kept of a response: its status, its header (as returned by
// HeaderToStore, updated by MergeNotModified) and when the request that produced it was sent
// and its response received — RFC 9111 §4.2.3's request_time and response_time. After a
// successful revalidation both times become those of the revalidation exchange.
type Stored struct {
	Status       int
	Header       http.Header
	RequestTime  time.Time
	ResponseTime time.Time
}

// Verdict is how a stored response may be used for a request.
type Verdict int

const (
	// Fresh: serve the stored response.
	Fresh Verdict = iota
	// StaleWhileRevalidate: serve the stale response now and refresh it in the background,
	// once per key (RFC 5861 §3).
	StaleWhileRevalidate
	// StaleAllowed: stale, but the client's max-stale accepts it (RFC 9111 §5.2.1.2); serve it
	// (a background refresh is optional).
	StaleAllowed
	// Revalidate: the stored response may not be used before a successful validation with
	// the origin (send ConditionalRequestHeaders) — it is stale, or marked no-cache. In
	// Cache-Status: fwd=stale.
	Revalidate
	// RevalidateRequest: as Revalidate, but because the request's own directives (no-cache,
	// max-age, min-fresh) rule the stored response out. In Cache-Status: fwd=request.
	RevalidateRequest
	// GatewayTimeout: the request said only-if-cached and nothing stored can satisfy it;
	// answer 504 without contacting the origin (RFC 9111 §5.2.1.7).
	GatewayTimeout
)

func (v Verdict) String() string {
	switch v {
	case Fresh:
		return "fresh"
	case StaleWhileRevalidate:
		return "stale-while-revalidate"
	case StaleAllowed:
		return "stale-allowed"
	case Revalidate:
		return "revalidate"
	case RevalidateRequest:
		return "revalidate-request"
	case GatewayTimeout:
		return "gateway-timeout"
	}
	return "unknown"
}

// Reuse evaluates a stored response (already matched by key and Vary) for a new request at
// time now (RFC 9111 §4, §4.2.4, §5.2; RFC 5861 §3; RFC 8246):
//
//   - response no-cache: always validate (§5.2.2.4);
//   - request no-cache, or Pragma: no-cache without Cache-Control: validate (§5.2.1.4, §5.4);
//   - request max-age: the age must not exceed it (§5.2.1.1); min-fresh: the remaining
//     freshness must cover it (§5.2.1.3) — except that a fresh immutable response ignores
//     both, since a reload has nothing to learn from it (RFC 8246 §2; only an explicit
//     no-cache, a force reload, still validates);
//   - fresh: Fresh;
//   - stale: never served past must-revalidate or proxy-revalidate (§4.2.4); otherwise the
//     client's max-stale (not with s-maxage, which implies proxy-revalidate, §5.2.2.10), then
//     the stale-while-revalidate window (origin's or default) if the client did not ask for
//     a fresh response with max-age or min-fresh;
//   - only-if-cached turns every "go to the origin" verdict into GatewayTimeout (§5.2.1.7).
//
// Every request directive is read: an edge that ignores its clients' (edge/clientcc.go) takes
// them out of the request before it asks.
func Reuse(req *http.Request, stored Stored, now time.Time, opt Options) Verdict {
	opt = opt.withDefaults()
	d := responseDirectives(stored.Header)
	r := reqDirectives{maxAge: unset, minFresh: unset, maxStale: unset}
	if req != nil {
		r = requestDirectives(req.Header)
	}
	forward := func(v Verdict) Verdict {
		if r.onlyIfCached {
			return GatewayTimeout
		}
		return v
	}

	life, _ := lifetime(stored.Status, d, stored.Header, stored.ResponseTime, opt)
	age := CurrentAge(stored.Header, stored.RequestTime, stored.ResponseTime, now)
	fresh := age < life

	if d.noCache {
		return forward(Revalidate)
	}
	if r.noCache {
		return forward(RevalidateRequest)
	}
	skipClientLimits := fresh && d.immutable
	if r.maxAge >= 0 && age > secs(r.maxAge) && !skipClientLimits {
		return forward(RevalidateRequest)
	}
	if fresh {
		if r.minFresh >= 0 && life-age < secs(r.minFresh) && !skipClientLimits {
			return forward(RevalidateRequest)
		}
		return Fresh
	}

	staleness := age - life
	if d.badFreshness() || d.mustRevalidate || d.proxyRevalidate {
		return forward(Revalidate)
	}
	if d.sMaxAge < 0 && r.acceptsStale(staleness) {
		return StaleAllowed
	}
	if swr, _ := staleWindows(d, opt); swr > 0 && staleness <= swr && r.maxAge < 0 && r.minFresh < 0 {
		return StaleWhileRevalidate
	}
	return forward(Revalidate)
}

// CanServeStaleOnError reports whether the stored response may answer a request when the
// origin failed — RFC 5861 §4 counts 500, 502, 503, 504 and no answer at all (refused,
// reset, timed out) as errors. A response that is still fresh always may (RFC 9111 §4.3.3);
// a stale one only within its stale-if-error window (the origin's, or
// Options.DefaultStaleIfError), and never past must-revalidate, proxy-revalidate or no-cache,
// which RFC 9111 §4.2.4 and §5.2.2.2 say hold even when the origin is unreachable ("MUST
// generate an error response rather than reuse the stale response").
func CanServeStaleOnError(stored Stored, now time.Time, opt Options) bool {
	opt = opt.withDefaults()
	d := responseDirectives(stored.Header)
	if d.noCache || d.mustRevalidate || d.proxyRevalidate || d.badFreshness() {
		return false
	}
	life, _ := lifetime(stored.Status, d, stored.Header, stored.ResponseTime, opt)
	age := CurrentAge(stored.Header, stored.RequestTime, stored.ResponseTime, now)
	if age < life {
		return true
	}
	_, sie := staleWindows(d, opt)
	return sie > 0 && age-life <= sie
}
