package edge

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/rangecache/fill"
)

// A failing origin must not be multiplied by the audience. An error response a fill gets is
// not stored (no-store, or no freshness), but it is shared: every request that joined the fill
// gets it (collapsed forwarding of one in-flight answer, not reuse of a stored one), and a
// server error is held for Limits.ErrorHold after it arrived, so that the next wave of
// requests for the key joins it instead of going to the origin one by one. Responses meant
// for one user — Set-Cookie, Cache-Control: private, answers to requests with Authorization —
// are never shared: the leader alone gets them, the others ask the origin themselves.

// maxRelayed is the largest response a fill hands to its collapsed requests without storing
// it (a short server error, say), so that N waiters don't make N more origin requests.
const maxRelayed = 64 << 10

// shareableError reports whether resp, an answer to r that is not stored, may be given to the
// other requests of its fill: an error status, with nothing in it meant for one user.
func shareableError(r *http.Request, resp *http.Response) bool {
	return resp.StatusCode >= 400 && !perUser(r, resp.Header)
}

// perUser reports whether a response carries something meant for the client that asked alone.
func perUser(r *http.Request, h http.Header) bool {
	return len(h.Values("Set-Cookie")) > 0 || r.Header.Get("Authorization") != "" || policy.Private(h)
}

// holdsErrors reports whether a fill that got status is kept joinable for Limits.ErrorHold:
// the origin is failing or shedding load, and the next requests should not all go and see.
func holdsErrors(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests
}

// relayError shares resp, an unstored error response of at most maxRelayed bytes, with the
// fill's collapsed requests, and holds a server error for the next ones. It reports false,
// having published nothing, when resp is longer than that (then resp.Body still reads the
// whole body).
func (e *Edge) relayError(f *fill.Fill, r *http.Request, resp *http.Response) bool {
	vary := resp.Header.Values("Vary")
	vk, ok := policy.VaryKey(vary, r.Header)
	if !ok || resp.ContentLength > maxRelayed {
		return false
	}
	size := resp.ContentLength
	if size < 0 {
		// Unknown length: read what a relay may hold before deciding.
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxRelayed+1))
		if err != nil {
			resp.Body.Close()
			f.Fail(fmt.Errorf("reading the origin's error body: %w", err))
			return true
		}
		if len(data) > maxRelayed {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
			return false
		}
		resp.Body.Close()
		resp.Body, size = io.NopCloser(bytes.NewReader(data)), int64(len(data))
	}
	body := fill.NewMemoryBodySize(size)
	f.SetHead(fill.Head{Status: resp.StatusCode, Header: clientHeader(resp.Header), Shareable: true, Reason: "relayed", Vary: vary, VaryKey: vk}, body)
	n, err := io.Copy(body, resp.Body)
	resp.Body.Close()
	e.m.originBytes.Add(float64(n))
	if err == nil && n != size {
		err = fmt.Errorf("origin sent %d of %d bytes", n, size)
	}
	body.Finish(err)
	if err == nil && holdsErrors(resp.StatusCode) {
		f.HoldFor(e.cfg.Limits.ErrorHold)
	}
	return true
}
