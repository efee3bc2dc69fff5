package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// The access log: one line per request, after its response is done (flow.go: measured).
//
// access_log: true (or --access-log) turns it on; access_log_format chooses the line:
//
//   - text (default): a log/slog line on the edge's log ("msg=request method=… status=…")
//   - json: one JSON object per line, for log shippers (Vector, Fluent Bit, Filebeat, Loki's
//     promtail), with the fields of accessEntry below
//
// access_log_path sends the lines to a file (appended to, created 0644) instead of the
// edge's log (stderr) — "stdout" for standard output.
//
// The logged path and query are the request's after the edge took a signed-URL token out of
// them (tokencheck.go), so tokens never reach the log; cookies are never logged.

// Access log formats.
const (
	accessText = "text"
	accessJSON = "json"
)

// accessEntry is one JSON access log line. The names follow what log shippers map without
// configuration (nginx's JSON log conventions, ECS-like flat names); durations are
// milliseconds.
type accessEntry struct {
	Time       string  `json:"time"`        // RFC 3339 with nanoseconds, UTC: when the request came
	ClientIP   string  `json:"client_ip"`   // the connection's peer address
	Method     string  `json:"method"`      //
	Host       string  `json:"host"`        // the Host header as sent
	Path       string  `json:"path"`        // without a path-form token
	Query      string  `json:"query"`       // raw, without a token parameter; "" for none
	Protocol   string  `json:"protocol"`    // HTTP/1.1, HTTP/2.0, HTTP/3.0
	Status     int     `json:"status"`      //
	BytesSent  int64   `json:"bytes_sent"`  // body bytes written to the client
	DurationMS float64 `json:"duration_ms"` // until the response was done
	TTFBMS     float64 `json:"ttfb_ms"`     // until the response head was written (-1: none)
	Cache      string  `json:"cache"`       // hit, stale, revalidated, miss, bypass, pass, error
	Origin     string  `json:"origin"`      // host:port of the origin the request routed to ("" for none)
	UserAgent  string  `json:"user_agent"`  //
	Referer    string  `json:"referer"`     //
	RequestID  string  `json:"request_id"`  // the X-Request-Id header, if any
}

// accessLog writes access log lines; nil when the access log is off.
type accessLog struct {
	format string
	log    *slog.Logger // text lines
	mu     sync.Mutex   // json lines: one Write each
	w      io.Writer
	closer io.Closer // the file, if the log has one of its own
	buf    []byte
}

// newAccessLog opens cfg's access log, falling back to log for text lines.
func newAccessLog(cfg Config, log *slog.Logger) (*accessLog, error) {
	if !cfg.AccessLog {
		return nil, nil
	}
	a := &accessLog{format: cfg.AccessLogFormat, log: log}
	if a.format == "" {
		a.format = accessText
	}
	switch cfg.AccessLogPath {
	case "":
		a.w = os.Stderr
	case "stdout":
		a.w = os.Stdout
	default:
		f, err := os.OpenFile(cfg.AccessLogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access_log_path: %w", err)
		}
		a.w, a.closer = f, f
	}
	if a.format == accessText && cfg.AccessLogPath != "" {
		a.log = slog.New(slog.NewTextHandler(a.w, nil))
	}
	return a, nil
}

// checkAccessLog validates the access log keys.
func (c *Config) checkAccessLog() error {
	switch c.AccessLogFormat {
	case "", accessText, accessJSON:
	default:
		return fmt.Errorf("access_log_format %q: want text or json", c.AccessLogFormat)
	}
	return nil
}

func (a *accessLog) close() error {
	if a == nil || a.closer == nil {
		return nil
	}
	return a.closer.Close()
}

// write logs the request r answered through w.
func (a *accessLog) write(w *respWriter, r *http.Request, now time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	duration := monoNow() - w.start
	origin := ""
	if w.up != nil && w.up.url != nil {
		origin = w.up.url.Host
	}
	if a.format == accessText {
		a.log.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "status", status,
			"cache", requestLabels[w.outcome], "bytes", w.n, "duration", duration, "remote", r.RemoteAddr)
		return
	}
	ip := r.RemoteAddr
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	ttfb := -1.0
	if w.wroteHead {
		ttfb = ms(w.head - w.start)
	}
	b, err := json.Marshal(accessEntry{
		Time: now.Add(-duration).UTC().Format(time.RFC3339Nano), ClientIP: ip, Method: r.Method, Host: r.Host,
		Path: r.URL.Path, Query: r.URL.RawQuery, Protocol: r.Proto, Status: status, BytesSent: w.n,
		DurationMS: ms(duration), TTFBMS: ttfb, Cache: requestLabels[w.outcome], Origin: origin,
		UserAgent: field(r.Header, "User-Agent"), Referer: field(r.Header, "Referer"), RequestID: field(r.Header, "X-Request-Id"),
	})
	if err != nil {
		return
	}
	a.mu.Lock()
	a.buf = append(append(a.buf[:0], b...), '\n')
	a.w.Write(a.buf)
	a.mu.Unlock()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
