package edge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Request bodies (POST, PUT… forwarded to the origin): a client that trickles its body must
// not hold an origin connection while it does. Small bodies (Limits.MaxBufferedBody) are read
// whole before the origin is contacted; larger ones stream, but only MaxUploadsPerOrigin at a
// time per origin, the others waiting in a bounded queue. The body's read timeouts are the
// HTTP/1.1 server's (h1.Server.BodyIdleTimeout, BodyTimeout), and the stream's read deadline
// over HTTP/2 and HTTP/3 (bodyDeadlines); a read that fails is the client's fault and is
// answered as such (408, 400), never as the origin's 502.

// forwardWithBody admits r's body, then forwards r (forwardUnsafe).
func (e *Edge) forwardWithBody(w http.ResponseWriter, r *http.Request, up *upstream) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		e.forwardUnsafe(w, r, up)
		return
	}
	e.bodyDeadlines(w, r)
	limit := int64(e.cfg.Limits.MaxBufferedBody)
	var head []byte
	if r.ContentLength <= limit { // -1: unknown length (chunked), read up to the limit
		buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			e.bodyFailed(w, err)
			return
		}
		if int64(len(buf)) <= limit {
			// Forwarded with a Content-Length: the chunked framing was hop-by-hop.
			r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(bytes.NewReader(buf)), int64(len(buf)), nil
			e.forwardUnsafe(w, r, up)
			return
		}
		head = buf
	}
	release, err := up.uploads.acquire(r.Context(), e.cfg.Limits.UploadQueueWait)
	if err != nil {
		if r.Context().Err() == nil {
			e.m.limitHit(limitUploadQueue)
			httpError(w, http.StatusServiceUnavailable, "too many uploads to this origin", "Retry-After", retryAfter(e.cfg.Limits.UploadQueueWait))
		}
		return
	}
	defer release()
	r.Body = &clientBody{r: io.MultiReader(bytes.NewReader(head), r.Body), c: r.Body, m: e.m}
	e.forwardUnsafe(w, r, up)
}

// bodyDeadlines applies the body timeouts to an HTTP/2 or HTTP/3 request, whose servers
// have none of their own for a stream (edge/h1 arms its socket itself).
func (e *Edge) bodyDeadlines(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor < 2 {
		return
	}
	l := e.cfg.Limits
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: http.NewResponseController(w),
		idle: l.RequestBodyIdleTimeout, expires: time.Now().Add(l.RequestBodyTimeout)}
}

// deadlineBody moves the stream's read deadline before each read: the idle timeout from
// now, or the body's end if sooner. A read past it fails with a timeout (net.Error).
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	idle    time.Duration
	expires time.Time
	off     bool // the server can't set read deadlines
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.off {
		d := time.Now().Add(b.idle)
		if b.expires.Before(d) {
			d = b.expires
		}
		b.off = b.rc.SetReadDeadline(d) != nil
	}
	return b.ReadCloser.Read(p)
}

// retryAfter is a Retry-After value (RFC 9110 §10.2.3) of about d, at least a second.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
}

// bodyFailed answers a request whose body could not be read: 408 when the client was too slow
// (RFC 9110 §15.5.9), 400 when it sent a body that is malformed (broken chunked framing) or cut
// short. The HTTP/1.1 server closes the connection after either.
func (e *Edge) bodyFailed(w http.ResponseWriter, err error) {
	if isTimeout(err) {
		e.m.limitHit(limitRequestBodyTimeout)
	}
	badBody(w, err)
}

// badBody is bodyFailed's answer, for a body that failed while it streamed to the origin
// (originError; clientBody counted the timeout).
func badBody(w http.ResponseWriter, err error) {
	if isTimeout(err) {
		httpError(w, http.StatusRequestTimeout, "request body timeout")
		return
	}
	httpError(w, http.StatusBadRequest, "malformed or incomplete request body")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clientBody is a streamed request body whose read errors are told apart from the origin's:
// the transport returns them as the request's error (see clientBodyError).
type clientBody struct {
	r io.Reader
	c io.Closer
	m *metrics
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		if isTimeout(err) {
			b.m.limitHit(limitRequestBodyTimeout)
		}
		err = &clientBodyError{err}
	}
	return n, err
}

func (b *clientBody) Close() error { return b.c.Close() }

// clientBodyError is a failed read of the client's request body.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// uploadSlots bounds the request bodies streamed to one origin at once, with a queue of at
// most as many waiters again.
type uploadSlots struct {
	free    chan struct{}
	waiting atomic.Int32
}

func newUploadSlots(n int) *uploadSlots {
	s := &uploadSlots{free: make(chan struct{}, n)}
	for range n {
		s.free <- struct{}{}
	}
	return s
}

var errUploadQueue = errors.New("upload queue full or wait over")

// acquire takes a slot, waiting at most wait (and only if the queue has room); release gives
// it back.
func (s *uploadSlots) acquire(ctx context.Context, wait time.Duration) (release func(), err error) {
	release = func() { s.free <- struct{}{} }
	select {
	case <-s.free:
		return release, nil
	default:
	}
	if wait <= 0 || int(s.waiting.Add(1)) > cap(s.free) {
		if wait > 0 {
			s.waiting.Add(-1)
		}
		return nil, errUploadQueue
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.free:
		return release, nil
	case <-t.C:
		return nil, errUploadQueue
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
