package edge

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/fill"
	"github.com/reelvideo/reel/edge/policy"
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
	dst.Add("Via", e.via)
	if cs.Hit || cs.Detail == "stale-if-error" {
		dst.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	}
	cs.Cache = cacheName
	cachestatus.Append(dst, cs)
	setLabel(w, cs)
	w.WriteHeader(status)
}

// respWriter measures a response for the metrics: time to its head, body bytes, and how the
// cache answered (label) and where the bytes came from (source).
type respWriter struct {
	http.ResponseWriter
	start         time.Time
	m             *metrics
	wroteHead     bool
	n             int64
	label, source string
}

func (w *respWriter) WriteHeader(code int) {
	if !w.wroteHead {
		w.wroteHead = true
		w.m.ttfb.Observe(time.Since(w.start).Seconds())
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
	w.m.requests.WithLabelValues(w.label).Inc()
	if w.n > 0 {
		w.m.bytes.WithLabelValues(w.source).Add(float64(w.n))
	}
}

// setLabel classifies a response for reel_edge_requests_total.
func setLabel(w http.ResponseWriter, cs cachestatus.Status) {
	rw, ok := w.(*respWriter)
	for !ok {
		u, isWrapper := w.(interface{ Unwrap() http.ResponseWriter })
		if !isWrapper {
			return
		}
		w = u.Unwrap()
		rw, ok = w.(*respWriter)
	}
	switch {
	case cs.Hit && cs.Detail != "":
		rw.label, rw.source = "stale", "cache"
	case cs.Hit:
		rw.label, rw.source = "hit", "cache"
	case cs.Detail == "stale-if-error":
		rw.label, rw.source = "stale", "cache"
	case cs.FwdStatus == http.StatusNotModified:
		rw.label, rw.source = "revalidated", "cache"
	case cs.Fwd == cachestatus.FwdBypass:
		rw.label = "bypass"
	case cs.Fwd == cachestatus.FwdMethod:
		rw.label = "pass"
	default:
		rw.label = "miss"
	}
}

// serveObject answers from a stored object: 304 for a matching client conditional (RFC 9110
// §13.1), ranges and If-Range through http.ServeContent for complete 200s, else the whole body.
func (e *Edge) serveObject(w http.ResponseWriter, r *http.Request, obj *cached, cs cachestatus.Status) {
	now := e.now()
	age := policy.CurrentAge(obj.Header, obj.RequestTime, obj.ResponseTime, now)
	life, _ := policy.Lifetime(obj.Status, obj.Header, obj.ResponseTime, e.pol)
	ttl := int((life - age) / time.Second)
	cs.TTL = &ttl
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
		// The disk tier lost the file under us (evicted mid-request): treat as a miss next time.
		httpError(w, http.StatusServiceUnavailable, "stored object unavailable, retry")
		return
	}
	defer body.Close()
	if obj.Status == http.StatusOK {
		// ServeContent implements Range, If-Range and multipart/byteranges (RFC 9110 §14)
		// and HEAD; the conditionals it would also evaluate were settled above.
		dst := w.Header()
		for k, v := range h {
			dst[k] = v
		}
		dst.Add("Via", e.via)
		dst.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
		cs.Cache = cacheName
		cachestatus.Append(dst, cs)
		setLabel(w, cs)
		http.ServeContent(w, r, "", time.Time{}, body)
		return
	}
	h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	e.writeHead(w, r, obj.Status, h, age, cs)
	if r.Method != http.MethodHead {
		io.Copy(w, body)
	}
}

// serveFill streams a fill to the client as its bytes arrive.
func (e *Edge) serveFill(w http.ResponseWriter, r *http.Request, head fill.Head, body *fill.Body, cs cachestatus.Status) {
	stored := policy.Stored{Status: head.Status, Header: head.Header, RequestTime: e.now(), ResponseTime: e.now()}
	h := clientHeader(head.Header)
	if policy.NotModified(r, stored) {
		h.Del("Content-Length")
		e.writeHead(w, r, http.StatusNotModified, h, 0, cs)
		return
	}
	e.writeHead(w, r, head.Status, h, 0, cs)
	if r.Method == http.MethodHead {
		return
	}
	if err := copyFlushing(w, body.NewReader(r.Context(), 0)); err != nil && r.Context().Err() == nil {
		// The fill broke off: end the response abruptly so the client sees a truncated body
		// (a short Content-Length or a broken chunked stream), never a clean end.
		panic(http.ErrAbortHandler)
	}
}

// copyFlushing copies src to w, flushing after every read so that a slow fill's bytes reach
// clients as they arrive rather than when a buffer fills.
func copyFlushing(w http.ResponseWriter, src io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 128<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
