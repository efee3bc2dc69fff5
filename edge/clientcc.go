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
const (
	clientCCIgnore = "ignore"
	clientCCHonor  = "honor"
)

// checkClientCC reports a client_cache_control value that is neither (key names it).
func checkClientCC(key, v string) error {
	switch v {
	case "", clientCCIgnore, clientCCHonor:
		return nil
	}
	return fmt.Errorf("%s: %q is not ignore or honor", key, v)
}

// withoutClientCC is h without the client's caching directives but only-if-cached, and
// whether there were any to take out (h itself is not modified).
func withoutClientCC(h http.Header) (http.Header, bool) {
	_, hasCC := h["Cache-Control"]
	_, hasPragma := h["Pragma"]
	if !hasCC && !hasPragma {
		return h, false
	}
	out := h.Clone()
	delete(out, "Pragma")
	delete(out, "Cache-Control")
	if onlyIfCached(h) {
		out["Cache-Control"] = []string{"only-if-cached"}
	}
	return out, true
}
