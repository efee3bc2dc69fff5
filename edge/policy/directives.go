package policy

import (
	"net/http"
	"strings"
	"time"

	"github.com/pquerna/cachecontrol/cacheobject"
)

// Delta-seconds values are held as int64 seconds with two sentinels, so "absent" (fall
// through to the next freshness source) and "present but unusable" (treat as stale) stay
// distinct — RFC 9111 §4.2.1 asks for the latter to be read as stale, not as absent.
const (
	unset   int64 = -1
	invalid int64 = -2
)

// maxDelta is 2^31 seconds: RFC 9111 §1.2.2 says a delta-seconds value that is too large
// (or a calculation that overflows) is to be taken as 2147483648.
const maxDelta int64 = 1 << 31

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }

// setDelta records one occurrence of a delta-seconds directive. RFC 9111 §4.2.1: with more
// than one value "either the first occurrence should be used or the response should be
// considered stale" — repeating the same value is harmless, disagreeing values make the
// directive invalid (the stale choice, the conservative one).
func setDelta(dst *int64, v int64) {
	switch *dst {
	case unset:
		*dst = v
	case v:
	default:
		*dst = invalid
	}
}

// respDirectives is the cache policy a response gives a shared cache, after choosing between
// CDN-Cache-Control and Cache-Control.
type respDirectives struct {
	// targeted: the directives came from CDN-Cache-Control, so Cache-Control and Expires are
	// ignored for this response (RFC 9213 §2.2).
	targeted bool

	noStore, noCache, private, public                   bool
	mustRevalidate, proxyRevalidate, immutable          bool
	mustUnderstand                                      bool
	maxAge, sMaxAge, staleWhileRevalidate, staleIfError int64 // seconds, unset or invalid
}

func newRespDirectives() respDirectives {
	return respDirectives{maxAge: unset, sMaxAge: unset, staleWhileRevalidate: unset, staleIfError: unset}
}

// badFreshness: an explicit freshness directive was present but unusable (malformed or
// conflicting). RFC 9111 §4.2.1 encourages treating such a response as stale; we also refuse
// to serve it stale (no max-stale, stale-while-revalidate or stale-if-error), since the
// origin's intent is unknown.
func (d respDirectives) badFreshness() bool { return d.maxAge == invalid || d.sMaxAge == invalid }

// responseDirectives returns the effective response directives: a valid, non-empty
// CDN-Cache-Control wins outright (RFC 9213 §2.2), else Cache-Control.
func responseDirectives(h http.Header) respDirectives {
	if d, ok := parseTargeted(h.Values("Cdn-Cache-Control")); ok {
		return d
	}
	return parseCacheControl(h.Values("Cache-Control"))
}

// Private reports whether a response's Cache-Control marks it private (RFC 9111 §5.2.2.7,
// qualified and malformed forms included): meant for the user who asked, whatever a
// CDN-Cache-Control lets a shared cache do with it.
func Private(h http.Header) bool { return parseCacheControl(h.Values("Cache-Control")).private }

// splitDirectives splits Cache-Control field lines into directives on commas outside
// quoted strings (RFC 9110 §5.6.1 lists, §5.6.4 quoted-string), dropping empty elements.
func splitDirectives(lines []string) []string {
	var out []string
	for _, line := range lines {
		start, inQuote := 0, false
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case inQuote && c == '\\':
				i++
			case c == '"':
				inQuote = !inQuote
			case c == ',' && !inQuote:
				if p := strings.Trim(line[start:i], " \t"); p != "" {
					out = append(out, p)
				}
				start = i + 1
			}
		}
		if p := strings.Trim(line[start:], " \t"); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// directiveName is the lower-cased name of one directive, whatever its argument looks like.
func directiveName(piece string) string {
	if i := strings.IndexByte(piece, '='); i >= 0 {
		piece = piece[:i]
	}
	return strings.ToLower(strings.Trim(piece, " \t"))
}

// The library is only handed one directive at a time; it is well behaved, but a recover keeps
// a future parser bug from ever taking a request down — a panic reads as "malformed".
func parseRespOne(piece string) (cd *cacheobject.ResponseCacheDirectives, err error) {
	defer func() {
		if recover() != nil {
			cd, err = nil, cacheobject.ErrQuoteMismatch
		}
	}()
	return cacheobject.ParseResponseCacheControl(piece)
}

func parseReqOne(piece string) (cd *cacheobject.RequestCacheDirectives, err error) {
	defer func() {
		if recover() != nil {
			cd, err = nil, cacheobject.ErrQuoteMismatch
		}
	}()
	return cacheobject.ParseRequestCacheControl(piece)
}

// parseCacheControl reads response Cache-Control lines (RFC 9111 §5.2.2, RFC 5861, RFC 8246).
func parseCacheControl(lines []string) respDirectives {
	d := newRespDirectives()
	for _, piece := range splitDirectives(lines) {
		if dst := d.deltaField(directiveName(piece)); dst != nil {
			v, ok := deltaArgument(piece)
			if !ok {
				v = invalid
			}
			setDelta(dst, v)
			continue
		}
		cd, err := parseRespOne(piece)
		if err != nil {
			d.malformed(directiveName(piece))
			continue
		}
		d.noStore = d.noStore || cd.NoStore
		// Qualified no-cache="field" and private="field" are read as their unqualified forms:
		// RFC 9111 §5.2.2.4 and §5.2.2.7 note that is how caches commonly handle them, and it
		// is the restrictive reading.
		d.noCache = d.noCache || cd.NoCachePresent
		d.private = d.private || cd.PrivatePresent
		d.public = d.public || cd.Public
		d.mustRevalidate = d.mustRevalidate || cd.MustRevalidate
		d.proxyRevalidate = d.proxyRevalidate || cd.ProxyRevalidate
		d.immutable = d.immutable || cd.Immutable
		for _, ext := range cd.Extensions {
			if ext == "must-understand" { // RFC 9111 §5.2.2.3; unknown to the library
				d.mustUnderstand = true
			}
		}
	}
	return d
}

// deltaField is where the response delta-seconds directive name goes, nil for the others.
func (d *respDirectives) deltaField(name string) *int64 {
	switch name {
	case "max-age":
		return &d.maxAge
	case "s-maxage":
		return &d.sMaxAge
	case "stale-while-revalidate":
		return &d.staleWhileRevalidate
	case "stale-if-error":
		return &d.staleIfError
	}
	return nil
}

// deltaArgument reads the argument of a delta-seconds directive, name "=" ( token /
// quoted-string ) with no whitespace around "=" (RFC 9111 §5.2): recipients ought to accept
// both forms, so max-age="60" is 60, but the whole argument must be digits — the library
// read max-age="6"0 as 6 — and a value past 2^31 is 2^31 (§1.2.2; the library stopped at
// 2^31−1). A quoted-pair is refused: no digit needs one.
func deltaArgument(piece string) (int64, bool) {
	_, arg, ok := strings.Cut(piece, "=")
	if !ok {
		return 0, false
	}
	if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		arg = arg[1 : len(arg)-1]
	}
	return parseDelta(arg)
}

// malformed applies a directive the parser rejected, restrictively: restricting directives
// still restrict whatever their argument, freshness directives become invalid (stale),
// permissive ones (public, immutable, must-understand) are dropped.
func (d *respDirectives) malformed(name string) {
	switch name {
	case "no-store":
		d.noStore = true
	case "no-cache":
		d.noCache = true
	case "private":
		d.private = true
	case "must-revalidate":
		d.mustRevalidate = true
	case "proxy-revalidate":
		d.proxyRevalidate = true
	case "max-age":
		setDelta(&d.maxAge, invalid)
	case "s-maxage":
		setDelta(&d.sMaxAge, invalid)
	case "stale-while-revalidate":
		setDelta(&d.staleWhileRevalidate, invalid)
	case "stale-if-error":
		setDelta(&d.staleIfError, invalid)
	}
}

// parseTargeted reads CDN-Cache-Control (RFC 9213). It is an RFC 8941 Dictionary; an empty or
// unparsable field is ignored (§2.1), which ok=false reports. Every cache directive may
// appear; delta-seconds must be non-negative Integers (a Decimal max-age is not coerced,
// §2.1), and as in Cache-Control an unusable restricting directive still restricts.
func parseTargeted(lines []string) (respDirectives, bool) {
	if len(lines) == 0 {
		return respDirectives{}, false
	}
	dict, ok := parseSFDictionary(strings.Join(lines, ", "))
	if !ok || len(dict) == 0 {
		return respDirectives{}, false
	}
	d := newRespDirectives()
	d.targeted = true
	delta := func(v sfValue) int64 {
		if v.kind != sfInteger || v.num < 0 {
			return invalid
		}
		return min(v.num, maxDelta)
	}
	restricts := func(v sfValue) bool { return v.kind != sfBoolean || v.b }
	allows := func(v sfValue) bool { return v.kind == sfBoolean && v.b }
	for k, v := range dict {
		switch k {
		case "max-age":
			d.maxAge = delta(v)
		case "s-maxage":
			d.sMaxAge = delta(v)
		case "stale-while-revalidate":
			d.staleWhileRevalidate = delta(v)
		case "stale-if-error":
			d.staleIfError = delta(v)
		case "no-store":
			d.noStore = restricts(v)
		case "no-cache":
			d.noCache = restricts(v)
		case "private":
			d.private = restricts(v)
		case "must-revalidate":
			d.mustRevalidate = restricts(v)
		case "proxy-revalidate":
			d.proxyRevalidate = restricts(v)
		case "public":
			d.public = allows(v)
		case "immutable":
			d.immutable = allows(v)
		case "must-understand":
			d.mustUnderstand = allows(v)
		}
	}
	return d, true
}

// reqDirectives is what a request asks of the cache (RFC 9111 §5.2.1).
type reqDirectives struct {
	noCache, noStore, onlyIfCached bool
	maxAge, minFresh               int64 // seconds or unset
	maxStale                       int64 // seconds or unset; maxStaleAny when given without a value
	maxStaleAny                    bool
}

// RequestNoStore reports whether a request says no-store (RFC 9111 §5.2.1.5): nothing of it
// or of its response may be stored.
func RequestNoStore(h http.Header) bool { return requestDirectives(h).noStore }

// requestDirectives reads request Cache-Control, or Pragma: no-cache when Cache-Control is
// absent (RFC 9111 §5.4). Repeats keep the most restrictive value. Malformed directives are
// read restrictively: a bad max-age is max-age=0 (validate), a bad max-stale or min-fresh is
// ignored (no extra staleness accepted).
func requestDirectives(h http.Header) reqDirectives {
	r := reqDirectives{maxAge: unset, minFresh: unset, maxStale: unset}
	lines := h.Values("Cache-Control")
	if len(lines) == 0 {
		for _, p := range splitDirectives(h.Values("Pragma")) {
			if strings.EqualFold(p, "no-cache") {
				r.noCache = true
			}
		}
		return r
	}
	lower := func(dst *int64, v int64) {
		if *dst == unset || v < *dst {
			*dst = v
		}
	}
	for _, piece := range splitDirectives(lines) {
		switch name := directiveName(piece); {
		case name == "max-age":
			v, ok := deltaArgument(piece)
			if !ok {
				v = 0 // restrictive: validate
			}
			lower(&r.maxAge, v)
			continue
		case name == "min-fresh":
			if v, ok := deltaArgument(piece); ok && v > r.minFresh {
				r.minFresh = v
			}
			continue
		case name == "max-stale" && strings.IndexByte(piece, '=') >= 0:
			if v, ok := deltaArgument(piece); ok {
				lower(&r.maxStale, v)
			}
			continue
		}
		cd, err := parseReqOne(piece)
		if err != nil {
			switch directiveName(piece) {
			case "no-cache":
				r.noCache = true
			case "no-store":
				r.noStore = true
			}
			continue
		}
		r.noCache = r.noCache || cd.NoCache
		r.noStore = r.noStore || cd.NoStore
		r.onlyIfCached = r.onlyIfCached || cd.OnlyIfCached
		if cd.MaxStaleSet { // max-stale without a value: any staleness
			r.maxStaleAny = true
		}
	}
	return r
}

// acceptsStale: the client's max-stale admits a response this far past its lifetime.
func (r reqDirectives) acceptsStale(staleness time.Duration) bool {
	if r.maxStale >= 0 {
		return staleness <= secs(r.maxStale)
	}
	return r.maxStaleAny
}
