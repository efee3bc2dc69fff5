package policy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CapFreshness rewrites the freshness directives of a response header so that no cache —
// this one through every rule in this package, and any downstream — keeps it fresh longer
// than maxAge, nor serves it stale more than maxStale past that: not under the origin's
// stale-while-revalidate or stale-if-error (RFC 5861), not under Options' default windows,
// not under a client's max-stale (RFC 9111 §5.2.1.2). The edge applies it to live manifests,
// whose useful life is a fraction of their target duration whatever the origin says.
//
// In the field in force (CDN-Cache-Control when valid, RFC 9213 §2.2, else Cache-Control):
//
//   - s-maxage=N, N = min(lifetime under opt, maxAge) in whole seconds (opt.TTL, a per-request
//     override, is not counted). s-maxage is the shared-cache lifetime (§5.2.2.10) and,
//     carrying proxy-revalidate's meaning, it stops max-stale and the configured default
//     windows (staleWindows);
//   - stale-while-revalidate and stale-if-error replaced by the windows that applied (the
//     origin's or opt's defaults), each capped at maxStale, written only when positive: the
//     origin's explicit windows are the ones s-maxage still lets through;
//   - max-age lowered to N where larger (browsers and other private caches), never added.
//
// A Cache-Control that is not in force only has its values lowered. Should the result still
// allow more (directives hidden where the rewrite can't tell them apart), must-revalidate or
// no-cache is added. Every other directive
// (no-cache, must-revalidate, public…) and malformed ones (which only make the response
// stricter) stay as they are. Responses marked no-store or private are left alone: they are
// not stored. It reports whether it changed h; applying it again changes nothing.
//
// Call it only on a response Storable accepted: the s-maxage it adds would, by itself, let a
// shared cache store the answer to a request with Authorization (§3.5).
func CapFreshness(status int, h http.Header, responseTime time.Time, opt Options, maxAge, maxStale time.Duration) bool {
	opt = opt.withDefaults()
	opt.TTL = 0
	d := responseDirectives(h)
	if d.noStore || d.private {
		return false
	}
	life, _ := lifetime(status, d, h, responseTime, opt)
	swr, sie := staleWindows(d, opt)
	n := int64(min(life, maxAge) / time.Second)
	swrS := int64(min(swr, max(maxStale, 0)) / time.Second)
	sieS := int64(min(sie, max(maxStale, 0)) / time.Second)

	changed := false
	// Each field line is rewritten on its own, and ours is a line of its own: a quote left
	// open in an origin's line (splitDirectives reads lines separately) can't swallow it.
	rewrite := func(name string, piece func(string) (string, bool), extra string) {
		var lines []string
		for _, line := range h.Values(name) {
			var out []string
			for _, p := range splitDirectives([]string{line}) {
				if p, keep := piece(p); keep {
					out = append(out, p)
				}
			}
			if len(out) > 0 {
				lines = append(lines, strings.Join(out, ", "))
			}
		}
		if extra != "" {
			lines = append(lines, extra)
		}
		if !slices.Equal(lines, h.Values(name)) {
			h[http.CanonicalHeaderKey(name)] = lines
			changed = true
		}
	}
	lower := func(piece string, limit int64) string {
		name, val, _ := strings.Cut(piece, "=")
		v, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
		if err != nil || v < 0 || v <= limit {
			return piece // malformed pieces stay: they only make the response stricter
		}
		return strings.TrimSpace(name) + "=" + strconv.FormatInt(limit, 10)
	}
	limits := map[string]int64{"max-age": n, "s-maxage": n, "stale-while-revalidate": swrS, "stale-if-error": sieS}

	// With CDN-Cache-Control in force, Cache-Control speaks to the caches downstream: its
	// values are lowered. (An invalid CDN-Cache-Control is ignored by every cache, §2.1, and
	// left byte for byte: rewriting it could make it valid.)
	if d.targeted && len(h.Values("Cache-Control")) > 0 {
		rewrite("Cache-Control", func(p string) (string, bool) {
			if l, ok := limits[directiveName(p)]; ok {
				p = lower(p, l)
			}
			return p, true
		}, "")
	}

	// The field in force: our s-maxage and windows replace the origin's.
	field := "Cache-Control"
	if d.targeted {
		field = "Cdn-Cache-Control"
	}
	ours := "s-maxage=" + strconv.FormatInt(n, 10)
	if swrS > 0 {
		ours += ", stale-while-revalidate=" + strconv.FormatInt(swrS, 10)
	}
	if sieS > 0 {
		ours += ", stale-if-error=" + strconv.FormatInt(sieS, 10)
	}
	rewrite(field, func(p string) (string, bool) {
		switch directiveName(p) {
		case "s-maxage", "stale-while-revalidate", "stale-if-error":
			return p, !validDelta(p)
		case "max-age":
			if d.targeted && validDelta(p) {
				return p, false // s-maxage says it for this field's audience
			}
			return lower(p, n), true
		}
		return p, true
	}, ours)

	// Check the result the way every rule here will read it. The library that parses a
	// directive also finds directives inside a piece that holds spaces ("0 stale-if-error=9"),
	// which the rewrite above, going by the piece's name, leaves in place: then no stale use
	// at all (and, should the lifetime still be longer, none without validation).
	d2 := responseDirectives(h)
	swr2, sie2 := staleWindows(d2, opt)
	if swr2 > time.Duration(swrS)*time.Second || sie2 > time.Duration(sieS)*time.Second {
		h.Add(field, "must-revalidate")
		changed = true
	}
	if life2, _ := lifetime(status, d2, h, responseTime, opt); life2 > time.Duration(n)*time.Second && !d2.noCache {
		h.Add(field, "no-cache")
		changed = true
	}
	return changed
}

// validDelta: a "name=delta-seconds" piece (RFC 9111 §1.2.2), quoted or not.
func validDelta(piece string) bool {
	_, val, ok := strings.Cut(piece, "=")
	if !ok {
		return false
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
	return err == nil && v >= 0
}
