package edge

import (
	"context"
	"errors"
	"net/http"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
)

// forward sends a request to the origin on the client's behalf without caching and relays
// the answer (bypass rules, uncollapsed waiters, ranges on uncached objects).
func (e *Edge) forward(w http.ResponseWriter, r *http.Request, up *upstream, cs cachestatus.Status) {
	r = withInterim(r, w)
	resp, err := e.send(r.Context(), up, r, r.Method == http.MethodGet || r.Method == http.MethodHead, nil)
	if err != nil {
		if errors.Is(r.Context().Err(), context.Canceled) {
			return
		}
		var bad badRequestError
		if errors.As(err, &bad) {
			httpError(w, http.StatusBadRequest, "cannot forward this request")
			return
		}
		originError(w, err)
		return
	}
	defer resp.Body.Close()
	cs.FwdStatus = resp.StatusCode
	e.writeHead(w, r, resp.StatusCode, clientHeader(resp.Header), 0, cs)
	if r.Method != http.MethodHead {
		relay(w, resp.Body)
	}
}

// forwardUnsafe forwards POST, PUT, DELETE, PATCH… and, when the origin accepted it,
// invalidates what the request changed (RFC 9111 §4.4).
func (e *Edge) forwardUnsafe(w http.ResponseWriter, r *http.Request, up *upstream) {
	iw := &statusRecorder{ResponseWriter: w}
	e.forward(iw, r, up, cachestatus.Status{Fwd: cachestatus.FwdMethod})
	if !isSafe(r.Method) && iw.status != 0 {
		for _, u := range policy.Invalidations(r, iw.status, iw.Header()) {
			e.tiers.invalidate(e.keyOfURL(u, r.Header))
		}
	}
}

func isSafe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
