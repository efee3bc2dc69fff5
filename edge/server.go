package edge

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/reelvideo/reel/edge/h1"
)

// NewServer serves the edge over HTTP/1.1 with the protective limits of cfg: a request line or
// header section larger than Limits.MaxHeaderBytes is refused (414, 431) before the handler
// runs, slow header senders are cut off, silent new connections and idle keep-alive connections
// reclaimed, client connections bounded, request bodies read under timeouts, and request
// smuggling shapes (RFC 9112 §6.3: Content-Length with Transfer-Encoding, conflicting lengths,
// obsolete line folding) and an invalid or missing Host get 400 without touching the cache.
func NewServer(h http.Handler, cfg Config, log *slog.Logger) *h1.Server {
	l := cfg.Limits.ClientLimits
	s := &h1.Server{
		Handler:             h,
		ReadHeaderTimeout:   10 * time.Second,
		IdleTimeout:         l.ClientIdleTimeout,
		FirstRequestTimeout: l.FirstRequestTimeout,
		WriteTimeout:        l.ClientWriteTimeout,
		BodyIdleTimeout:     l.RequestBodyIdleTimeout,
		BodyTimeout:         l.RequestBodyTimeout,
		MaxConns:            l.MaxClientConns,
		MaxHeaderBytes:      int(cfg.Limits.MaxHeaderBytes),
		Log:                 log,
		GoroutinePerConn:    cfg.HTTP1.GoroutinePerConnection,
		Loops:               int(eventLoops.Load()),
	}
	if e, ok := h.(*Edge); ok {
		s.OnLimit = e.m.limitHit
	}
	return s
}
