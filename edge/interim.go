package edge

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"

	"github.com/reelvideo/reel/edge/policy"
)

// Interim responses (RFC 9110 §15.2): a proxy must forward the 1xx it did not ask for itself,
// such as 103 Early Hints, ahead of the final response. net/http's client reads them and, with
// a ClientTrace, reports them (Got1xxResponse) from its connection's goroutine while the
// request's handler is still waiting for the final response; they are relayed to that one
// client, never stored (a fill publishes only the final response) and never shared with the
// requests coalesced onto the fill (an early hint is an optimisation, not content).
//
// The relay writes to the client from that other goroutine, so it runs only while the
// handler has not touched its response: respWriter closes the sink, under its lock, before
// the handler's first Header, WriteHeader or Write, and when the request ends (after which
// the writer may serve another request).

// interimSink relays interim responses to one client until it is closed.
type interimSink struct {
	mu     sync.Mutex
	w      http.ResponseWriter // the server's own writer, below respWriter
	closed bool
}

type interimKey struct{}

// withInterim returns r with a sink relaying interim responses to w's client, when w is (or
// wraps) the respWriter of this request and the client speaks HTTP/1.1 or later (a 1xx must
// not be sent to an HTTP/1.0 client, §15.2). Only requests that go upstream need one.
func withInterim(r *http.Request, w http.ResponseWriter) *http.Request {
	if !r.ProtoAtLeast(1, 1) {
		return r
	}
	for {
		switch x := w.(type) {
		case *respWriter:
			if x.interim != nil || x.wroteHead {
				return r
			}
			x.interim = &interimSink{w: x.ResponseWriter}
			return r.WithContext(context.WithValue(r.Context(), interimKey{}, x.interim))
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return r
		}
	}
}

// traceInterim makes an upstream request made with ctx report its interim responses to the
// sink ctx carries, if any.
func traceInterim(ctx context.Context) context.Context {
	s, _ := ctx.Value(interimKey{}).(*interimSink)
	if s == nil {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got1xxResponse: s.relay})
}

// relay writes one interim response to the client, with hop-by-hop fields removed. 100
// Continue is the proxy's own business (the client's Expect is answered by the front server,
// and a 100 from upstream answers the edge's own request); 101 never comes this way.
func (s *interimSink) relay(code int, fields textproto.MIMEHeader) error {
	if code == http.StatusContinue || code == http.StatusSwitchingProtocols {
		return nil
	}
	h := http.Header(fields).Clone()
	policy.RemoveHopByHop(h)
	delete(h, "Alt-Svc") // the upstream's, as for final responses (doOrigin)
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := s.w.Header()
	if s.closed || len(dst) > 0 {
		return nil
	}
	for k, v := range h {
		dst[k] = v
	}
	s.w.WriteHeader(code)
	clear(dst) // the interim fields are not the final response's
	return nil
}

// close stops the relay; the handler may use its writer from then on.
func (s *interimSink) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
