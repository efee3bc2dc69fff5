package edge

import (
	"net/http"

	"github.com/reelvideo/reel/edge/cachestatus"
)

// passReason is the third phase of the request flow: why a request goes to the origin as it
// is, without the cache answering it — as a Cache-Status forward reason (RFC 9211 §2.2) — or
// "" when the cache may answer it.
func passReason(r *http.Request, rl *ruling) string {
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return cachestatus.FwdMethod
	case rl.bypass:
		return cachestatus.FwdBypass
	case rl.client.forwardPreconditions && hasOriginPreconditions(r.Header):
		// Preconditions a cache must not evaluate for the origin (RFC 9111 §4.3.2), which the
		// rules forward rather than ignore (client_preconditions, clientcc.go).
		return cachestatus.FwdRequest
	}
	return ""
}

// pass sends a request the cache must not answer to the origin and relays the answer: with its
// body for unsafe methods (reqbody.go; forwardUnsafe, forward.go, then invalidates what they
// change), else as is.
func (e *Edge) pass(w http.ResponseWriter, r *http.Request, up *upstream, fwd string) {
	if fwd == cachestatus.FwdMethod {
		e.forwardWithBody(w, r, up)
		return
	}
	e.forward(w, r, up, cachestatus.Status{Fwd: fwd})
}
