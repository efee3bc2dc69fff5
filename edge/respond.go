package edge

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/rangecache"
	"github.com/reelvideo/reel/rangecache/fill"
)

// clientHeader is the copy of an origin or stored header sent to a client: hop-by-hop fields
// removed. (Set-Cookie reaches only the client whose request fetched it: shared responses
// never carry it, policy.Storable sees to that.)
func clientHeader(h http.Header) http.Header {
	c := h.Clone()
	if c == nil {
		c = http.Header{}
	}
	policy.RemoveHopByHop(c)
	for _, h := range surrogateHeaders {
		c.Del(h)
	}
	return c
}

// writeHead writes status and header with our Via, Age (when served from storage) and
// Cache-Status member.
func (e *Edge) writeHead(w http.ResponseWriter, r *http.Request, status int, h http.Header, age time.Duration, cs cachestatus.Status) {
	dst := w.Header()
	for k, v := range h {
		dst[k] = v
	}
	// Clip: the slice may be shared with a stored header, which append must never write into.
	dst["Via"] = append(slices.Clip(dst["Via"]), e.via)
	if cs.Hit || cs.Detail == "stale-if-error" {
		dst.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	}
	rw := measuring(w)
	if rw != nil && rw.browserSet {
		policy.BrowserTTL(status, dst, rw.browserTTL) // after Age: max-age counts it
	}
	cs.Cache = e.name
	cachestatus.Append(dst, cs)
	if rw != nil && rw.headers != nil {
		// The rules' response_headers last (headers.go): none of the fields above is theirs.
		rw.headers.apply(dst, &headerVars{r: r, cs: cacheStatusToken(&cs)})
	}
	setLabel(rw, cs)
	w.WriteHeader(status)
}

// writeHitHead is writeHead for a full-body hit through a wireWriter: the same fields, none
// of them through the header map: the stored ones and our Via taken pre-serialised from
// obj.hit, Age and Cache-Status appended to them, Content-Length declared to the server.
func (e *Edge) writeHitHead(w http.ResponseWriter, r *http.Request, ww wireWriter, obj *cached, age time.Duration, cs cachestatus.Status) {
	hh := obj.hit
	ww.SetContentLength(obj.Size)
	if hh.hasDate {
		ww.OmitDate()
	}
	wire := ww.WireFields()
	b := *wire
	rw := measuring(w)
	hr := (*headerRules)(nil)
	if rw != nil {
		hr = rw.headers
	}
	if hr == nil {
		b = append(b, hh.wire...)
	} else {
		// The rules' response_headers (headers.go): the stored fields they don't replace, and
		// their constant fields, serialised once per ruling; their variables below.
		b = hr.appendStored(b, hh.wire, obj.Header)
		b = append(b, hr.constWire...)
	}
	b = append(b, e.viaWire...)
	b = append(b, "Age: "...)
	b = strconv.AppendInt(b, int64(age/time.Second), 10)
	b = append(b, "\r\n"+cachestatus.Header+": "...)
	cs.Cache = e.name
	b = cs.AppendTo(append(b, hh.csPrefix...))
	b = append(b, "\r\n"...)
	if hr != nil && len(hr.varOps) > 0 {
		b = hr.appendVarFields(b, &headerVars{r: r, cs: cacheStatusToken(&cs)})
	}
	*wire = b
	setLabel(rw, cs)
	w.WriteHeader(obj.Status)
}

// respWriter measures a response for the metrics: time to its head, body bytes, how the cache
// answered and where the bytes came from.
type respWriter struct {
	http.ResponseWriter
	start     time.Duration // monoNow when the request came
	m         *metrics
	wroteHead bool
	status    int
	n         int64
	outcome   outcome
	fromCache bool // the body came from the cache (else from the origin)
	// interim relays the origin's 1xx while the handler waits (interim.go); closed before
	// the handler first uses the writer.
	interim *interimSink
	// browserTTL is what clients are told when browserSet (a rule's browser_ttl, set by
	// setBrowserTTL): writeHead rewrites the Cache-Control it sends (policy.BrowserTTL).
	browserTTL time.Duration
	browserSet bool
	// compress: heads written to w may be compressed (setCompress, compress.go).
	compress bool
	// head is monoNow when the head was written; up the origin the request routed to (the
	// access log's ttfb and origin).
	head time.Duration
	up   *upstream
	// headers are the response header rules of the request's ruling (setResponseHeaders,
	// headers.go), applied to every head written to w, the edge's own errors included; req
	// the request, for their variables.
	headers *headerRules
	req     *http.Request
}

// setResponseHeaders makes the heads written to w follow the response header rules of rl.
func setResponseHeaders(w *respWriter, r *http.Request, rl *ruling) {
	w.headers, w.req = rl.respHeaders, r
}

// setBrowserTTL makes the heads written to w tell clients ttl (policy.BrowserTTL); a negative
// ttl leaves them as they are.
func setBrowserTTL(w http.ResponseWriter, ttl time.Duration) {
	if rw := measuring(w); rw != nil && ttl >= 0 {
		rw.browserTTL, rw.browserSet = ttl, true
	}
}

// rewritesCacheControl: heads written to w get a browser TTL (and so not the pre-serialised
// hit head, whose Cache-Control is the stored one).
func rewritesCacheControl(w http.ResponseWriter) bool {
	rw := measuring(w)
	return rw != nil && rw.browserSet
}

// endInterim closes the interim relay, if any, before the handler uses the writer.
func (w *respWriter) endInterim() {
	if w.interim != nil {
		w.interim.close()
		w.interim = nil
	}
}

func (w *respWriter) Header() http.Header {
	w.endInterim()
	return w.ResponseWriter.Header()
}

func (w *respWriter) WriteHeader(code int) {
	w.endInterim()
	if !w.wroteHead {
		w.wroteHead, w.status, w.head = true, code, monoNow()
		w.m.ttfb.Observe((w.head - w.start).Seconds())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wroteHead {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps the server's sendfile path for file bodies.
func (w *respWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHead {
		w.WriteHeader(http.StatusOK)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		n, err := io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
		w.n += n
		return n, err
	}
	n, err := rf.ReadFrom(src)
	w.n += n
	return n, err
}

func (w *respWriter) done() {
	w.endInterim()
	w.m.requestsBy[w.outcome].Inc()
	if w.n > 0 {
		c := w.m.bytesFromOrigin
		if w.fromCache {
			c = w.m.bytesFromCache
		}
		c.Add(float64(w.n))
	}
}

// measuring is the respWriter under w's wrappers, or nil.
func measuring(w http.ResponseWriter) *respWriter {
	rw, ok := w.(*respWriter)
	for !ok {
		u, isWrapper := w.(interface{ Unwrap() http.ResponseWriter })
		if !isWrapper {
			return nil
		}
		w = u.Unwrap()
		rw, ok = w.(*respWriter)
	}
	return rw
}

// setLabel classifies a response for reel_edge_requests_total, measured by rw (nil: not).
func setLabel(rw *respWriter, cs cachestatus.Status) {
	if rw == nil {
		return
	}
	switch {
	case cs.Hit && cs.Detail != "":
		rw.outcome, rw.fromCache = outcomeStale, true
	case cs.Hit:
		rw.outcome, rw.fromCache = outcomeHit, true
	case cs.Detail == "stale-if-error":
		rw.outcome, rw.fromCache = outcomeStale, true
	case cs.FwdStatus == http.StatusNotModified:
		rw.outcome, rw.fromCache = outcomeRevalidated, true
	case cs.Fwd == cachestatus.FwdBypass:
		rw.outcome = outcomeBypass
	case cs.Fwd == cachestatus.FwdMethod:
		rw.outcome = outcomePass
	default:
		rw.outcome = outcomeMiss
	}
}

var acceptRanges = []string{"bytes"}

// serveObject answers from a stored object: 304 for a matching client conditional (RFC 9110
// §13.1), ranges and If-Range through http.ServeContent for complete 200s, else the whole body.
func (e *Edge) serveObject(w http.ResponseWriter, r *http.Request, now time.Time, obj *cached, pol policy.Options, cs cachestatus.Status) {
	age, remaining, quick := obj.quickFresh(r, now)
	if !quick {
		age = policy.CurrentAge(obj.Header, obj.RequestTime, obj.ResponseTime, now)
		life, _ := policy.Lifetime(obj.Status, obj.Header, obj.ResponseTime, pol)
		remaining = life - age
	}
	e.serveStored(w, r, obj, age, remaining, cs)
}

// serveStored is serveObject for an object whose current age and remaining freshness lifetime
// (negative when stale) are known.
func (e *Edge) serveStored(w http.ResponseWriter, r *http.Request, obj *cached, age, remaining time.Duration, cs cachestatus.Status) {
	ttl := int(remaining / time.Second)
	cs.TTL = &ttl
	if obj.mem != nil && field(r.Header, "Range") == "" && field(r.Header, "If-None-Match") == "" && field(r.Header, "If-Modified-Since") == "" {
		// The hot path: a whole body from memory. Over HTTP/1.1 the stored fields go out
		// pre-serialised; otherwise stored header values are shared, not cloned (nothing below
		// modifies a stored slice). The body goes out in one write.
		if hw := h2HitWriter(w, r, obj.hit); hw != nil && obj.hit != nil && obj.hit.h2 != nil && cs.Hit && !rewritesCacheControl(w) {
			e.writeHitH2(w, hw, obj, age, cs) // HTTP/2 through edge/h2 (hith2.go)
			if r.Method != http.MethodHead {
				w.Write(obj.mem)
			}
			return
		}
		if ww := asWireWriter(w, obj.hit); ww != nil && obj.hit != nil && cs.Hit && !rewritesCacheControl(w) {
			e.writeHitHead(w, r, ww, obj, age, cs)
			if r.Method != http.MethodHead {
				w.Write(obj.mem)
			}
			return
		}
		dst := w.Header()
		for k, v := range obj.Header {
			if k != "Surrogate-Key" && k != "Cache-Tag" {
				dst[k] = v
			}
		}
		dst["Content-Length"] = []string{strconv.FormatInt(obj.Size, 10)}
		if obj.Status == http.StatusOK {
			dst["Accept-Ranges"] = acceptRanges
		}
		e.writeHead(w, r, obj.Status, nil, age, cs)
		if r.Method != http.MethodHead {
			w.Write(obj.mem)
		}
		return
	}
	h := clientHeader(obj.Header)
	if policy.NotModified(r, obj.stored()) {
		for _, k := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Content-Range"} {
			h.Del(k) // RFC 9110 §15.4.5: a 304 describes, it does not carry, the content
		}
		e.writeHead(w, r, http.StatusNotModified, h, age, cs)
		return
	}
	body, err := obj.open()
	if err != nil {
		// The disk tier lost the file under us: forget the entry, so the next request is a
		// miss rather than another failure.
		if obj.disk != nil && e.tiers.disk != nil {
			e.tiers.disk.Invalidate(obj.disk.Primary)
		}
		httpError(w, http.StatusServiceUnavailable, "stored object unavailable, retry")
		return
	}
	defer body.Close()
	h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	status := obj.Status
	var ranges []rangecache.Range
	if status == http.StatusOK {
		h.Set("Accept-Ranges", "bytes")
		switch kind, rs := rangecache.Evaluate(r, obj.Header, obj.Size); kind {
		case rangecache.Unsatisfiable:
			h = http.Header{"Content-Range": {rangecache.UnsatisfiedContentRange(obj.Size)}}
			e.writeHead(w, r, http.StatusRequestedRangeNotSatisfiable, h, age, cs)
			return
		case rangecache.Satisfiable:
			status, ranges = http.StatusPartialContent, rs
		}
	}
	switch {
	case len(ranges) == 1:
		h.Set("Content-Range", ranges[0].ContentRange(obj.Size))
		h.Set("Content-Length", strconv.FormatInt(ranges[0].Length, 10))
	case len(ranges) > 1:
		boundary := rangecache.RandomBoundary()
		n, err := rangecache.MultipartLength(boundary, h.Get("Content-Type"), obj.Size, ranges)
		if err != nil {
			status, ranges = obj.Status, nil // serve the whole representation instead
			break
		}
		defer func() {
			if r.Method != http.MethodHead {
				rangecache.WriteMultipart(w, boundary, obj.Header.Get("Content-Type"), obj.Size, ranges, body)
			}
		}()
		h.Set("Content-Type", rangecache.MultipartContentType(boundary))
		h.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	e.writeHead(w, r, status, h, age, cs)
	if r.Method == http.MethodHead || len(ranges) > 1 {
		return
	}
	if len(ranges) == 1 {
		io.Copy(w, io.NewSectionReader(body, ranges[0].Start, ranges[0].Length))
		return
	}
	if obj.mem != nil {
		w.Write(obj.mem) // one write: ReadFrom would split a small body into two
		return
	}
	// Straight to ReadFrom: with an *os.File body the server can use sendfile.
	if rf, ok := w.(io.ReaderFrom); ok {
		rf.ReadFrom(body)
		return
	}
	io.Copy(w, body)
}

// serveFill streams a fill to the client as its bytes arrive. A single Range is answered
// with a 206 from the fill itself (its bytes are served as soon as they arrive); other range
// requests get the whole representation, as RFC 9110 §14.2 allows.
func (e *Edge) serveFill(w http.ResponseWriter, r *http.Request, head fill.Head, body *fill.Body, cs cachestatus.Status) {
	stored := policy.Stored{Status: head.Status, Header: head.Header, RequestTime: e.now(), ResponseTime: e.now()}
	h := clientHeader(head.Header)
	if policy.NotModified(r, stored) {
		h.Del("Content-Length")
		e.writeHead(w, r, http.StatusNotModified, h, 0, cs)
		return
	}
	if cs.Stored {
		// Cache-Status says "stored" (RFC 9211 §2.6) only of a body stored already: the last
		// bytes of a stored body are held back until it is, so a body that is still arriving
		// once the client can read some of it may yet break off — and then nothing is stored.
		done, err := body.Started(r.Context())
		switch {
		case r.Context().Err() != nil:
			return
		case done && err != nil:
			cs.Stored, cs.Detail = false, "body-interrupted" // and the response breaks off below
		case !done:
			cs.Stored = false
		}
	}
	status, start, length := head.Status, int64(0), int64(-1)
	if size, err := strconv.ParseInt(head.Header.Get("Content-Length"), 10, 64); err == nil && head.Status == http.StatusOK {
		switch kind, rs := rangecache.Evaluate(r, head.Header, size); {
		case kind == rangecache.Unsatisfiable:
			h = http.Header{"Content-Range": {rangecache.UnsatisfiedContentRange(size)}}
			e.writeHead(w, r, http.StatusRequestedRangeNotSatisfiable, h, 0, cs)
			return
		case kind == rangecache.Satisfiable && len(rs) == 1:
			status, start, length = http.StatusPartialContent, rs[0].Start, rs[0].Length
			h.Set("Content-Range", rs[0].ContentRange(size))
			h.Set("Content-Length", strconv.FormatInt(rs[0].Length, 10))
		}
	}
	e.writeHead(w, r, status, h, 0, cs)
	if r.Method == http.MethodHead {
		return
	}
	var src io.Reader = body.NewReader(r.Context(), start)
	if length >= 0 {
		src = io.LimitReader(src, length)
	}
	if err := fill.CopyFlushing(w, src); err != nil && r.Context().Err() == nil {
		// The fill broke off: end the response abruptly so the client sees a truncated body
		// (a short Content-Length or a broken chunked stream), never a clean end.
		panic(http.ErrAbortHandler)
	}
}

// relay copies an origin body to the client. If the origin breaks off, the client's response
// is aborted too, so it can't end cleanly and pass for complete (a chunked stream would
// otherwise get its terminator, and a cache behind us would store the truncated body).
func relay(w http.ResponseWriter, src io.Reader) {
	var readErr error
	fill.CopyFlushing(w, readerFunc(func(p []byte) (int, error) {
		n, err := src.Read(p)
		if err != nil && err != io.EOF {
			readErr = err
		}
		return n, err
	}))
	if readErr != nil {
		panic(http.ErrAbortHandler)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
