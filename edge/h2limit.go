package edge

import (
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"golang.org/x/net/http2"
)

// resetLimiter is the connection x/net's HTTP/2 server reads from: it follows the frames going
// by (RFC 9113 §4.1: a 9-byte header giving the payload's length and the frame's type) to
// count the client's RST_STREAM frames against a token bucket, and when the client runs out
// it stops the reading with a connection error of type ENHANCE_YOUR_CALM, which the server
// answers with GOAWAY (RFC 9113 §5.4.1) before closing the connection.
//
// Why here: x/net (since the 2023 fix) runs at most SETTINGS_MAX_CONCURRENT_STREAMS handlers
// per connection and sends GOAWAY when more than 4× that many streams wait for one, so a
// flood of HEADERS+RST_STREAM can't pile up goroutines. But a handler that returns quickly
// once its stream is reset — a cache hit, or a miss that leaves its origin fetch to the
// others — frees its slot at once, and a client may then go on resetting streams for as long
// as it likes, each still costing a request's work (and a miss an origin fetch that runs on).
// The rate limit closes that, for a few integer operations per frame read.
type resetLimiter struct {
	net.Conn
	log *slog.Logger

	skip   int     // bytes of the preface or of the current frame's payload still to pass
	hdr    [9]byte // the frame header being read
	hn     int     // bytes of hdr read
	tokens float64
	rate   float64 // tokens per second
	burst  float64
	last   time.Time
	err    error // set once the client ran out: every later Read returns it

	pend     []byte // a SETTINGS payload read whole and rewritten (h2settings.go), passed on next
	settings bool   // scan stopped at a SETTINGS payload that runs past the bytes read
}

// frameTypeRSTStream is RST_STREAM's type (RFC 9113 §6.4).
const frameTypeRSTStream = 0x3

// limitResets wraps c; a TLS connection keeps its ConnectionState, which the HTTP/2 server
// reads (it must refuse TLS below 1.2, RFC 9113 §9.2, and sets r.TLS from it). Nothing of c
// has been read yet: the client preface comes first.
func limitResets(c net.Conn, rate float64, burst int, log *slog.Logger) net.Conn {
	l := &resetLimiter{Conn: c, log: log, rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
	l.skip = len(http2.ClientPreface)
	if tc, ok := c.(*tls.Conn); ok {
		return &tlsResetLimiter{resetLimiter: l, tc: tc}
	}
	return l
}

type tlsResetLimiter struct {
	*resetLimiter
	tc *tls.Conn
}

func (c *tlsResetLimiter) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

func (l *resetLimiter) Read(p []byte) (int, error) {
	if len(l.pend) > 0 {
		n := copy(p, l.pend)
		l.pend = l.pend[n:]
		return n, nil
	}
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.Conn.Read(p)
	ok := l.scan(p[:n])
	if l.settings {
		// A SETTINGS payload runs past these bytes: read it whole, rewritten, next.
		l.settings = false
		l.pend, l.err = l.readSettings(p[ok:n])
		if ok == 0 && l.err == nil {
			return l.Read(p)
		}
		return ok, nil
	}
	if ok < n {
		// The bytes before the frame that ran out are the client's last: the server
		// processes them, then reads the error.
		return ok, nil
	}
	return n, err
}

// scan follows the frame boundaries in b and returns how many of its bytes may be passed on:
// all of them, unless a RST_STREAM frame finds the bucket empty (then up to that frame, with
// l.err set), or a SETTINGS payload with repeated identifiers runs past b (then up to that
// payload, l.skip its length; see h2settings.go).
func (l *resetLimiter) scan(b []byte) int {
	i := 0
	for i < len(b) {
		if l.skip > 0 {
			k := min(l.skip, len(b)-i)
			l.skip -= k
			i += k
			continue
		}
		start := i - l.hn // where this frame's header began (negative: in an earlier read)
		k := copy(l.hdr[l.hn:], b[i:])
		l.hn += k
		i += k
		if l.hn < len(l.hdr) {
			break
		}
		l.hn = 0
		l.skip = int(l.hdr[0])<<16 | int(l.hdr[1])<<8 | int(l.hdr[2])
		if l.hdr[3] == frameTypeSettings && l.hdr[4]&flagSettingsAck == 0 && l.skip <= maxSettingsRewrite {
			if len(b)-i < l.skip {
				l.settings = true
				return i
			}
			dedupeSettings(b[i : i+l.skip])
		}
		if l.hdr[3] == frameTypeRSTStream && !l.take() {
			l.err = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
			l.log.Warn("http2: client resets streams too fast (rapid reset); closing the connection with GOAWAY",
				"remote", l.RemoteAddr().String(), "rate", l.rate, "burst", l.burst)
			return max(start, 0)
		}
	}
	return len(b)
}

// take spends a token, refilling the bucket for the time gone by first.
func (l *resetLimiter) take() bool {
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
