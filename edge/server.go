package edge

import (
	"log/slog"
	"net/http"
	"time"
)

// NewServer wraps the edge in an http.Server with the protective limits of cfg: request
// headers larger than Limits.MaxHeaderBytes are refused with 431 before the handler runs,
// slow header senders are cut off, and idle keep-alive connections reclaimed. Go's server
// itself answers 400 to an invalid Host and to conflicting Content-Length / Transfer-Encoding
// (RFC 9112 §6.3), before anything reaches the cache.
func NewServer(h http.Handler, cfg Config, log *slog.Logger) *http.Server {
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    int(cfg.Limits.MaxHeaderBytes),
	}
	if log != nil {
		s.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return s
}
