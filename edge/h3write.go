package edge

import (
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// h3WriteSlice is the most given to one write to an HTTP/3 stream: each slice gets its own
// deadline, so a long body to a slow but steady client goes on.
const h3WriteSlice = 256 << 10

// h3Writes gives every write to an HTTP/3 stream the client write timeout. quic-go bounds no
// write: a client that keeps a stream's flow-control window shut — it reads nothing, yet its
// connection acknowledges our packets and so is never idle — would hold the handler and its
// response for ever. As edge/h1 does on TLS, each slice of a write must be taken within a
// deadline at least half the timeout away; past it the stream is reset.
type h3Writes struct {
	h       http.Handler
	timeout time.Duration
	expired func() // counts the limit
}

// writeDeadliner is what quic-go's http3 response writer offers for it (as
// http.ResponseController uses it).
type writeDeadliner interface {
	SetWriteDeadline(time.Time) error
}

func (h h3Writes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dl, ok := w.(writeDeadliner)
	if !ok || h.timeout <= 0 {
		h.h.ServeHTTP(w, r)
		return
	}
	tw := &h3Writer{ResponseWriter: w, dl: dl, timeout: h.timeout}
	h.h.ServeHTTP(tw, r)
	if tw.timedOut {
		if h.expired != nil {
			h.expired()
		}
		// What is queued for the client stays queued behind its shut window: reset the
		// stream so that quic-go lets it go.
		if s, ok := w.(http3.HTTPStreamer); ok {
			if str, err := s.HTTPStream(); err == nil {
				str.CancelWrite(quicRequestCancelled)
				str.CancelRead(quicRequestCancelled)
			}
		}
	}
}

// quicRequestCancelled is H3_REQUEST_CANCELLED (RFC 9114 §8.1).
const quicRequestCancelled = 0x10c

// h3Writer is the response writer h3Writes gives the handler.
type h3Writer struct {
	http.ResponseWriter
	dl       writeDeadliner
	timeout  time.Duration
	until    time.Time
	timedOut bool
}

func (w *h3Writer) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		w.arm()
		m, err := w.ResponseWriter.Write(p[:min(len(p), h3WriteSlice)])
		n += m
		p = p[m:]
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				w.timedOut = true
			}
			return n, err
		}
	}
	return n, nil
}

func (w *h3Writer) Flush() {
	w.arm()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach quic-go's writer.
func (w *h3Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// arm keeps the stream's write deadline at least timeout/2 away.
func (w *h3Writer) arm() {
	now := time.Now()
	if w.until.Sub(now) >= w.timeout/2 {
		return
	}
	w.until = now.Add(w.timeout)
	w.dl.SetWriteDeadline(w.until)
}
