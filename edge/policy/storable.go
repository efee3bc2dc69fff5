package policy

import (
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// Reasons Storable gives for refusing a response; short tokens meant for a Cache-Status
// detail parameter and for metrics labels.
const (
	ReasonMethod         = "method"          // not GET or HEAD (RFC 9111 §3)
	ReasonStatus         = "status"          // interim, unknown, or not cacheable without explicit freshness (§3)
	ReasonPartial        = "partial"         // 206: the range layer stores slices itself
	ReasonNotModified    = "not-modified"    // 304: update a stored response (MergeNotModified), never store it
	ReasonNoStore        = "no-store"        // request or response no-store (§5.2.1.5, §5.2.2.5)
	ReasonMustUnderstand = "must-understand" // must-understand with a status we do not implement (§5.2.2.3)
	ReasonPrivate        = "private"         // private (§5.2.2.7)
	ReasonVaryStar       = "vary-star"       // Vary: * can never be matched (§4.1)
	ReasonSetCookie      = "set-cookie"      // per-user state in a shared cache
	ReasonAuthorization  = "authorization"   // §3.5
	ReasonCredentials    = "credentials"     // Cookie or Authorization without explicit freshness
	ReasonError          = "error"           // error status without explicit freshness or configured TTL
	ReasonNoFreshness    = "no-freshness"    // could never be reused: no lifetime, validator or stale window
)

// ByRequest reports whether a Storable reason lies in the request that was answered (its
// Authorization or Cookie) rather than in the response: the same URL asked for without them
// may well be storable.
func ByRequest(reason string) bool {
	return reason == ReasonAuthorization || reason == ReasonCredentials
}

// Storable decides whether a response to req may be stored by a shared cache (RFC 9111 §3).
// When ok is false, reason is one of the Reason constants.
//
// Rules, in order: GET or HEAD; a final status that is not 206 or 304; no request no-store;
// no response no-store (unless must-understand with a status we understand, §5.2.2.3), no
// private; no Vary: *; no Set-Cookie unless Options.StripSetCookie; a request with
// Authorization only when the response says public, must-revalidate or s-maxage (§3.5).
// A request with Cookie or Authorization needs explicit freshness (max-age, s-maxage, Expires
// or a rule's TTL; not a DefaultTTL entry) unless Options.HeuristicWithCredentials: §4.2.2
// allows a heuristic, not a guess that a credentialed response is the same for everyone. Then
// freshness: temporary errors (5xx, 408, 429) need a positive explicit lifetime (a temporary
// error is never frozen, and a stale one is worthless); other errors need explicit freshness or
// an Options.DefaultTTL entry; other statuses need explicit freshness, an Options.DefaultTTL
// entry (302 and 307 included: §3's "cache extension"), or to be heuristically cacheable /
// public (§4.2.2). Finally a response that could never be reused — no lifetime (after
// Options.MinTTL, which raises max-age=0), no validator, no stale window, or no-cache without a
// validator — is refused.
//
// The response directives are CDN-Cache-Control's when it is valid (RFC 9213), so e.g.
// "Cache-Control: private" with "CDN-Cache-Control: max-age=60" is stored. Call EnsureDate
// on h first (a cache must add a missing Date anyway): without Date an Expires lifetime
// cannot be measured here and is read as 0. Store the header returned by HeaderToStore, not
// h itself.
func Storable(req *http.Request, status int, h http.Header, opt Options) (ok bool, reason string) {
	opt = opt.withDefaults()
	if req == nil || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return false, ReasonMethod
	}
	switch {
	case status == http.StatusPartialContent:
		return false, ReasonPartial
	case status == http.StatusNotModified:
		return false, ReasonNotModified
	case status < 200 || status > 599:
		return false, ReasonStatus
	}
	if RequestNoStore(req.Header) {
		return false, ReasonNoStore
	}
	d := responseDirectives(h)
	if d.mustUnderstand && !understood(status) {
		return false, ReasonMustUnderstand
	}
	if d.noStore && !d.mustUnderstand {
		return false, ReasonNoStore
	}
	if d.private {
		return false, ReasonPrivate
	}
	if varyStar(h.Values("Vary")) {
		return false, ReasonVaryStar
	}
	if !opt.StripSetCookie && (len(h.Values("Set-Cookie")) > 0 || len(h.Values("Set-Cookie2")) > 0) {
		return false, ReasonSetCookie
	}
	if len(req.Header.Values("Authorization")) > 0 && !d.public && !d.mustRevalidate && d.sMaxAge < 0 {
		return false, ReasonAuthorization
	}

	life, _, kind := lifetimeOf(status, d, h, time.Time{}, opt)
	explicit := kind == lifeExplicit || kind == lifeOverride // the operator's override counts as explicit
	if !explicit && !opt.HeuristicWithCredentials && credentialed(req.Header) {
		return false, ReasonCredentials
	}
	switch {
	case temporaryError(status):
		if !explicit || life <= 0 {
			return false, ReasonError
		}
	case status >= 400:
		if !explicit && kind != lifeDefault {
			return false, ReasonError
		}
	case !explicit && kind != lifeDefault && !heuristicAllowed(status, d):
		return false, ReasonStatus
	}
	validator := h.Get("ETag") != "" || h.Get("Last-Modified") != ""
	swr, sie := staleWindows(d, opt)
	if !validator && (d.noCache || (life <= 0 && status < 400 && swr == 0 && sie == 0)) {
		return false, ReasonNoFreshness
	}
	return true, ""
}

// credentialed: the request identifies its user, by a cookie or an Authorization field.
func credentialed(h http.Header) bool {
	return len(h.Values("Cookie")) > 0 || len(h.Values("Authorization")) > 0
}

// understood: the final statuses defined by RFC 9110 §15 whose caching requirements this
// package implements (they have none beyond the generic rules), for must-understand.
func understood(status int) bool {
	switch status {
	case 200, 201, 202, 203, 204, 205,
		300, 301, 302, 303, 305, 307, 308,
		400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
		417, 421, 422, 426,
		500, 501, 502, 503, 504, 505:
		return true
	}
	return false
}

func varyStar(lines []string) bool {
	for _, l := range lines {
		for _, f := range strings.Split(l, ",") {
			if textproto.TrimString(f) == "*" {
				return true
			}
		}
	}
	return false
}

// HeaderToStore is the copy of a storable response's header to keep: hop-by-hop fields
// removed (RFC 9111 §3.1), and Set-Cookie removed when Options.StripSetCookie. The client
// whose request filled the entry may still be sent the original header.
func HeaderToStore(h http.Header, opt Options) http.Header {
	c := h.Clone()
	if c == nil {
		c = http.Header{}
	}
	RemoveHopByHop(c)
	if opt.StripSetCookie {
		c.Del("Set-Cookie")
		c.Del("Set-Cookie2")
	}
	return c
}

// hopByHop are the connection-specific fields (RFC 9110 §7.6.1, plus Proxy-Authenticate and
// Proxy-Authorization, which concern only the adjacent hop, §11.7) that a proxy never forwards
// or stores.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

var hopByHopSet = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range hopByHop {
		m[f] = true
	}
	return m
}()

// RemoveHopByHop deletes the hop-by-hop fields from h: the fixed set and every field named
// in Connection (RFC 9110 §7.6.1).
func RemoveHopByHop(h http.Header) {
	// Most headers hold none of these fields; one pass over the (canonical) names spares
	// them the deletions, which matters on every proxied request. A field listed in
	// Connection needs a Connection field.
	found := false
	for k := range h {
		if hopByHopSet[k] {
			found = true
			break
		}
	}
	if !found {
		return
	}
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, f := range hopByHop {
		h.Del(f)
	}
}
