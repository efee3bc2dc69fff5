package edge

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/reelvideo/reel/edge/cachestatus"
)

// Warming one URL (warm.go runs the jobs): the request a client's GET would be, taken through
// the request flow's own phases from route on — route, pass, lookup, decide, upstream (the
// one fill of its key, coalesced with clients' requests), respond — into a writer that counts
// the body and keeps it only when it is a manifest to read. There is no client: the phases
// that exist for one are not run — the token check, the access rules (referer, address,
// country, rate), the metrics and the access log of client requests; an operator with the
// admin token is not a viewer. Nothing here is reachable from the client listener: a warm
// request is built here and handed to the phases, never sent through ServeHTTP, so no
// client can pass for one.

// Warm outcomes: how a URL was warmed (reel_edge_warm_urls_total{result}).
const (
	warmHit       = "hit"        // fresh in the cache already: not fetched
	warmFilled    = "filled"     // fetched (or revalidated) and now stored
	warmNotStored = "not_stored" // answered, but the cache did not keep it (no-store, private, bypass…)
	warmFailed    = "failed"     // an error status, a broken body, a timeout, a host not served
)

// warmUA is the User-Agent of warm requests, which the origin sees on their fills.
const warmUA = "reel-warm"

// errWarmHost: the URL's host is not one this edge routes.
var errWarmHost = errors.New("is not served by this edge (no origin for it)")

// warmRequest is the GET a client would send for raw (an absolute http or https URL).
func warmRequest(ctx context.Context, raw string) (*http.Request, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	u.Fragment, u.RawFragment = "", ""
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	r.RequestURI = u.RequestURI()
	r.Header.Set("User-Agent", warmUA)
	if u.Scheme == "https" {
		// The key of an https URL is the one TLS clients' requests have (cachekey: the scheme
		// comes from the connection), and the origin is told X-Forwarded-Proto: https.
		r.TLS = &tls.ConnectionState{}
	}
	return r, nil
}

// checkWarmHost reports an error naming the host when the edge routes no origin for raw.
func (e *Edge) checkWarmHost(raw string) error {
	r, err := warmRequest(context.Background(), raw)
	if err != nil {
		return err
	}
	if up, _ := e.route(r); up == nil {
		return fmt.Errorf("host %q %w", r.Host, errWarmHost)
	}
	return nil
}

// warmResult is what warming one URL did.
type warmResult struct {
	outcome string // warmHit, warmFilled or warmNotStored
	bytes   int64  // body bytes read through the edge (0 for a hit not read)
	body    []byte // the body, when it was asked for (keep > 0)
}

// warmURL warms raw: a fresh stored response is a hit and is not read (unless keep > 0: a
// manifest to read, then served from the cache as a client's hit would be); anything else
// goes through the phases as a client's GET. keep bounds the body kept (0: none).
func (e *Edge) warmURL(ctx context.Context, raw string, keep int) (warmResult, error) {
	r, err := warmRequest(ctx, raw)
	if err != nil {
		return warmResult{}, err
	}
	if status, reason := e.admit(r); status != 0 {
		return warmResult{}, fmt.Errorf("HTTP %d: %s", status, reason)
	}
	up, rl := e.route(r)
	if up == nil {
		return warmResult{}, fmt.Errorf("host %q %w", r.Host, errWarmHost)
	}
	if keep == 0 {
		if passReason(r, rl) != "" {
			return warmResult{outcome: warmNotStored}, nil // a bypass rule: nothing to store
		}
		kr := e.keyedView(r, rl) // as serveRouted looks it up (keyview.go)
		res := e.lookup(kr, rl)
		if d := decide(kr, &res, e.now()); d.verdict == verdictFresh || d.verdict == verdictHit {
			return warmResult{outcome: warmHit}, nil
		}
	}
	w := &warmWriter{header: http.Header{}, keep: keep}
	if err := serveWarm(w, func() { e.serveRouted(w, r, up, rl) }); err != nil {
		return warmResult{bytes: w.n}, err
	}
	switch {
	case ctx.Err() != nil:
		return warmResult{bytes: w.n}, context.Cause(ctx)
	case w.status >= 400:
		line, _, _ := strings.Cut(strings.TrimSpace(string(w.errBody)), "\n")
		if len(line) > 200 {
			line = line[:200]
		}
		return warmResult{bytes: w.n}, fmt.Errorf("HTTP %d %s", w.status, line)
	case w.overflow:
		return warmResult{bytes: w.n}, fmt.Errorf("manifest larger than %d bytes", keep)
	}
	out := warmResult{bytes: w.n, body: w.body}
	if keep > 0 {
		if out.body, err = decodedManifest(w.header.Get("Content-Encoding"), w.body, keep); err != nil {
			return out, err
		}
	}
	cs := w.header.Get(cachestatus.Header)
	if i := strings.LastIndex(cs, ", "); i >= 0 {
		cs = cs[i+2:] // ours is the last member (RFC 9211 §2)
	}
	switch {
	case strings.Contains(cs, "; hit") && !strings.Contains(cs, "; detail="):
		out.outcome = warmHit
	case e.warmStored(r, rl):
		out.outcome = warmFilled
	default:
		out.outcome = warmNotStored
	}
	return out, nil
}

// warmStored reports whether the cache now holds r's response, whole or as slices.
func (e *Edge) warmStored(r *http.Request, rl *ruling) bool {
	res := e.lookup(e.keyedView(r, rl), rl)
	return res.obj != nil || (e.cfg.SliceSize > 0 && e.isSliced(res.key))
}

// serveWarm runs serve, turning the abort a broken body ends a response with
// (http.ErrAbortHandler, respond.go) into an error.
func serveWarm(w *warmWriter, serve func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			err = fmt.Errorf("the response broke off after %d bytes", w.n)
		}
	}()
	serve()
	return nil
}

// decodedManifest is body decoded from the content coding an origin may have applied on its
// own (the edge's own compression needs an Accept-Encoding, which warm requests don't send).
func decodedManifest(coding string, body []byte, limit int) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(coding)) {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		if len(out) > limit {
			return nil, fmt.Errorf("manifest larger than %d bytes", limit)
		}
		return out, nil
	}
	return nil, fmt.Errorf("manifest in content coding %q, which warm-up doesn't read", coding)
}

// warmWriter is the response writer of a warm request: it counts the body, keeps up to keep
// bytes of it (a manifest to read), and the start of an error's.
type warmWriter struct {
	header   http.Header
	status   int
	n        int64
	keep     int
	body     []byte
	overflow bool
	errBody  []byte
}

func (w *warmWriter) Header() http.Header { return w.header }

func (w *warmWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *warmWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += int64(len(p))
	switch {
	case w.status >= 400:
		if room := 512 - len(w.errBody); room > 0 {
			w.errBody = append(w.errBody, p[:min(room, len(p))]...)
		}
	case w.keep > 0 && !w.overflow:
		if len(w.body)+len(p) > w.keep {
			w.overflow = true
			w.body = nil
		} else {
			w.body = append(w.body, p...)
		}
	}
	return len(p), nil
}

// Flush: nothing to flush (fill.CopyFlushing asks after every write).
func (w *warmWriter) Flush() {}
