package policy

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// BrowserTTL rewrites the Cache-Control of a header about to go to a client so that the client
// keeps the response ttl from now, whatever the edge keeps it for: max-age becomes Age + ttl
// (whole seconds, Age read from h), because a client subtracts the Age it is sent from max-age
// (RFC 9111 §4.2.3) — the Age stays the response's true age, as §5.1 wants, and the two agree.
// Expires goes: max-age makes it ignored anyway (§5.3), and left it would tell HTTP/1.0 caches
// something else. s-maxage, CDN-Cache-Control (RFC 9213) and every other directive stay: they
// speak to shared caches downstream, and the edge's own lifetime is read from what it stored,
// never from this copy.
//
// Left alone: statuses outside 200–399 (an error is no content for a browser to keep), and
// responses whose Cache-Control says no-store, private or no-cache, or that carry Set-Cookie:
// those are the origin's word about who may keep what. A negative ttl changes nothing.
//
// h must be the client's copy: the rewrite assigns new value slices and never writes into the
// ones h holds (they may be shared with a stored header). It reports whether it changed h.
func BrowserTTL(status int, h http.Header, ttl time.Duration) bool {
	if ttl < 0 || status < 200 || status >= 400 || len(h.Values("Set-Cookie")) > 0 {
		return false
	}
	cc := h.Values("Cache-Control")
	if d := parseCacheControl(cc); d.noStore || d.private || d.noCache {
		return false
	}
	n := int64((ageValue(h) + ttl) / time.Second)
	var lines []string
	// Line by line, as CapFreshness does: a quote left open in one line can't swallow ours.
	for _, line := range cc {
		var out []string
		for _, p := range splitDirectives([]string{line}) {
			if directiveName(p) != "max-age" {
				out = append(out, p)
			}
		}
		if len(out) > 0 {
			lines = append(lines, strings.Join(out, ", "))
		}
	}
	h["Cache-Control"] = append(lines, "max-age="+strconv.FormatInt(n, 10))
	h.Del("Expires")
	return true
}
