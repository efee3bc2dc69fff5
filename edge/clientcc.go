package edge

import (
	"fmt"
	"net/http"
)

// A client's own caching directives — request Cache-Control (no-cache, max-age, min-fresh,
// max-stale, no-store) and Pragma: no-cache — are ignored by default (client_cache_control:
// ignore), as nginx proxy_cache, Varnish, Traffic Server and the big CDNs do: honoured, every
// client could send its requests past the cache (a reload, or a script sending no-cache,
// makes the edge revalidate with the origin each time — and fetch the whole object each time
// when it has no validator), and a no-store on the first request for a new object (the
// newest live segment) kept it from being stored, sending every request that had joined its
// fill to the origin on its own. What is stored and when it is fresh is the origin's and the
// operator's to say; purges are how an operator forces a refresh.
//
// Ignoring them is one step of the request's keyed view (keyedView): the fields are taken
// out before lookup, so decide, storability and the fill's origin request all see a request
// without them — the origin, or a parent cache, is not told a client's no-cache either.
// only-if-cached stays: it can only spare the origin (RFC 9111 §5.2.1.7).
//
// client_cache_control: honor (per rule, or cache-wide) follows RFC 9111 §5.2.1 instead, for
// paths whose clients are trusted to know better (an internal API, a tier below other
// caches). A no-store request is then never part of a fill (serveRouted): when the cache
// can't answer it, it goes to the origin on its own and nothing of it is stored (§5.2.1.5).
//
// A GET's or HEAD's If-Match and If-Unmodified-Since are preconditions only an origin
// evaluates (RFC 9111 §4.3.2): a cache must not answer them from what it stores, and RFC 9110
// §13.1.1 and §13.1.4 let it ignore them. Forwarded, as they were until now, they were the other
// way past the cache — any request carrying one went to the origin, uncached and uncoalesced,
// every time. They are ignored by default too (client_preconditions: ignore), as Varnish does:
// taken out in the same view, the request is answered as if it had none. (A client resuming a
// download conditions its Range with If-Range, which the cache evaluates itself; an unsafe
// method's preconditions always reach the origin, with the method.) client_preconditions:
// forward sends such a request to the origin as it is (passReason), for paths whose clients
// rely on them.
const (
	clientCCIgnore = "ignore"
	clientCCHonor  = "honor"

	clientPreIgnore  = "ignore"
	clientPreForward = "forward"
)

// clientDirectives is what a request's own caching directives and origin-only preconditions
// do under its rules (the zero value: both ignored, the defaults).
type clientDirectives struct {
	honorCC              bool // client_cache_control: honor
	forwardPreconditions bool // client_preconditions: forward
}

// clientDefaults are the rules' defaults, from the cache-wide settings.
func clientDefaults(c Policy) clientDirectives {
	return clientDirectives{honorCC: c.ClientCacheControl == clientCCHonor, forwardPreconditions: c.ClientPreconditions == clientPreForward}
}

// checkClientCC reports a client_cache_control value that is neither ignore nor honor (key
// names it).
func checkClientCC(key, v string) error { return checkChoice(key, v, clientCCIgnore, clientCCHonor) }

// checkClientPreconditions reports a client_preconditions value that is neither.
func checkClientPreconditions(key, v string) error {
	return checkChoice(key, v, clientPreIgnore, clientPreForward)
}

// checkChoice reports a value that is neither a nor b ("": the default, allowed).
func checkChoice(key, v, a, b string) error {
	if v == "" || v == a || v == b {
		return nil
	}
	return fmt.Errorf("%s: %q is not %s or %s", key, v, a, b)
}

// hasOriginPreconditions: h has If-Match or If-Unmodified-Since.
func hasOriginPreconditions(h http.Header) bool {
	_, m := h["If-Match"]
	_, u := h["If-Unmodified-Since"]
	return m || u
}

// withoutClientDirectives is r's header without the client directives that c ignores — the
// caching directives but only-if-cached, a GET's or HEAD's origin-only preconditions — and
// whether there were any to take out (r's header itself is not modified).
func withoutClientDirectives(r *http.Request, c clientDirectives) (http.Header, bool) {
	h := r.Header
	_, hasCC := h["Cache-Control"]
	_, hasPragma := h["Pragma"]
	dropCC := !c.honorCC && (hasCC || hasPragma)
	// Other methods are passed before this view (passReason), preconditions and all.
	dropPre := !c.forwardPreconditions && (r.Method == http.MethodGet || r.Method == http.MethodHead) && hasOriginPreconditions(h)
	if !dropCC && !dropPre {
		return h, false
	}
	out := h.Clone()
	if dropCC {
		delete(out, "Pragma")
		delete(out, "Cache-Control")
		if onlyIfCached(h) {
			out["Cache-Control"] = []string{"only-if-cached"}
		}
	}
	if dropPre {
		delete(out, "If-Match")
		delete(out, "If-Unmodified-Since")
	}
	return out, true
}
