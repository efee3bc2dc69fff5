package edge

import (
	"net/http"

	"github.com/reelvideo/reel/edge/policy"
)

// admit is the first phase of the request flow: it refuses what the edge never serves, with
// the status and reason to answer (0 lets the request go on), and makes the request's header
// the one every later phase must see.
func (e *Edge) admit(r *http.Request) (status int, reason string) {
	if r.Method == http.MethodConnect || r.Method == http.MethodTrace {
		// 501 rather than 405: the edge tunnels nothing (CONNECT, RFC 9110 §9.3.6, is for
		// forward proxies) and never echoes a request (TRACE, §9.3.8: it would reflect the
		// client's Cookie and credentials to whatever script sent it), for any resource;
		// 405 would claim the method exists for the resource and owe an Allow listing the
		// methods it does take, which only the origin knows (§15.5.6, §15.6.2).
		return http.StatusNotImplemented, r.Method + " is not supported"
	}
	// Hop-by-hop fields, including those a client lists in Connection, go before anything
	// looks at the request: the key, the Vary match and the origin must all see the same
	// header (RFC 9110 §7.6.1), or "Connection: Accept-Language" could fill the "en" variant
	// with a response made without it.
	policy.RemoveHopByHop(r.Header)
	if lines := r.Header["Cdn-Loop"]; lines != nil && e.looped(lines) {
		// Refused before it could join a fill: coming back round a loop, it would wait on
		// the very fill that sent it (RFC 8586).
		return http.StatusLoopDetected, "request loop detected (CDN-Loop)"
	}
	return 0, ""
}
