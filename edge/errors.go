package edge

import (
	"context"
	"errors"
	"io"
	"net/http"
)

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
// else a handler had set is dropped. A request the rules routed gets their response_headers
// (errors before routing — 400, 405, 431… — have no ruling, and get none).
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
	if rw := measuring(w); rw != nil && rw.headers != nil {
		// A routed request's response_headers (headers.go): CORS lets a page read why.
		rw.headers.apply(h, &headerVars{r: rw.req, cs: "none"})
	}
	w.WriteHeader(code)
	io.WriteString(w, reason+"\n")
}

// serverError is the set RFC 5861 §4 lets a cache answer with stale content.
func serverError(status int) bool {
	switch status {
	case 500, 502, 503, 504:
		return true
	}
	return false
}
