package policy

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// Options are the operator's settings. The zero value is usable: it means "honour the origin"
// with the RFC's suggested heuristic, and 10s caps on cached server errors (MaxErrorTTL) and
// on cached 4xx (MaxNegativeTTL).
type Options struct {
	// HeuristicFraction of the Date − Last-Modified interval used as the freshness lifetime
	// of a response without explicit freshness (RFC 9111 §4.2.2 suggests 10%). 0 means 0.1;
	// a negative value disables heuristic freshness.
	HeuristicFraction float64
	// HeuristicMax caps a heuristic lifetime; 0 means 24h (a heuristic above a day would need
	// the obsolete Warning 113 in HTTP/1.1 days, and stays a sensible bound).
	HeuristicMax time.Duration

	// DefaultStaleWhileRevalidate and DefaultStaleIfError are the RFC 5861 windows applied
	// when the origin's response carries no such directive (0 = off). They act as the
	// "out-of-band contract" RFC 9111 §4.2.4 allows, and never loosen must-revalidate,
	// proxy-revalidate, no-cache or s-maxage.
	DefaultStaleWhileRevalidate, DefaultStaleIfError time.Duration

	// DefaultTTL gives lifetimes, by status, to responses whose origin is silent: no max-age,
	// s-maxage or Expires (nor CDN-Cache-Control's). An entry wins over the heuristic (the
	// operator's number beats a guess from Last-Modified) and makes its status storable without
	// explicit freshness — 302 and 307 too, which RFC 9111 §4.2.2 leaves out of heuristics but
	// §3 lets a cache store under a configured extension. 0 means "stored, revalidated every
	// time". Entries for temporary errors (5xx, 408, 429) are ignored: those must never be
	// frozen by configuration alone. It does not count as explicit freshness for a request with
	// Cookie or Authorization (see HeuristicWithCredentials).
	DefaultTTL map[int]time.Duration
	// MinTTL and MaxTTL clamp the lifetime of responses below 400 — the origin's, a heuristic
	// one, or DefaultTTL's — for this cache: a longer one is cut to MaxTTL, a shorter one
	// (max-age=0 included) raised to MinTTL (0: no clamp; MaxTTL wins where they conflict).
	// They do not touch no-cache, no-store or private, nor malformed freshness (stale), nor a
	// response with no lifetime at all (that is DefaultTTL's job).
	MinTTL, MaxTTL time.Duration
	// MaxNegativeTTL caps the lifetime of other errors (404, 410, 403…: 4xx but 408 and 429),
	// explicit or from DefaultTTL, so that an origin's max-age=3600 on a 404 can't keep a file
	// that has just appeared missing for an hour; 0 means 10s, negative means 0 (stored,
	// revalidated every time).
	MaxNegativeTTL time.Duration
	// MaxErrorTTL caps the lifetime of temporary errors (5xx, 408, 429) that carry explicit
	// freshness; 0 means 10s.
	MaxErrorTTL time.Duration

	// HeuristicWithCredentials lets a response to a request carrying Cookie or Authorization
	// be stored without explicit freshness (on a heuristic lifetime, or to be revalidated).
	// Off by default: such a response is most likely personal, and the origin that forgot
	// Cache-Control on /account/profile.css would otherwise hand one user's page to the
	// next anonymous client (web cache deception) — as a hit, or by answering a
	// revalidation 304 that doesn't look at who asks.
	HeuristicWithCredentials bool

	// StripSetCookie stores responses with Set-Cookie after removing it (HeaderToStore)
	// instead of refusing to store them.
	StripSetCookie bool

	// TTL, when positive, replaces the freshness lifetime of every non-error response (an
	// operator's per-path override, e.g. for an origin that sends no useful Cache-Control).
	// It does not make private, no-store or Set-Cookie responses storable.
	TTL time.Duration
}

const (
	defaultHeuristicFraction = 0.1
	defaultHeuristicMax      = 24 * time.Hour
	defaultMaxErrorTTL       = 10 * time.Second
	// DefaultMaxNegativeTTL: a 404 shared for 10s collapses a storm of requests for a missing
	// file into one origin request per key per 10s, yet a file that appears (a live segment
	// asked for a moment early, an upload finishing) is served within about one segment
	// duration — the same bound MaxErrorTTL puts on temporary errors.
	DefaultMaxNegativeTTL = 10 * time.Second
)

func (o Options) withDefaults() Options {
	switch {
	case o.HeuristicFraction == 0:
		o.HeuristicFraction = defaultHeuristicFraction
	case o.HeuristicFraction < 0 || math.IsNaN(o.HeuristicFraction):
		o.HeuristicFraction = 0
	}
	if o.HeuristicMax <= 0 {
		o.HeuristicMax = defaultHeuristicMax
	}
	if o.MaxErrorTTL <= 0 {
		o.MaxErrorTTL = defaultMaxErrorTTL
	}
	switch {
	case o.MaxNegativeTTL == 0:
		o.MaxNegativeTTL = DefaultMaxNegativeTTL
	case o.MaxNegativeTTL < 0:
		o.MaxNegativeTTL = 0
	}
	o.MinTTL, o.MaxTTL = max(o.MinTTL, 0), max(o.MaxTTL, 0)
	o.DefaultStaleWhileRevalidate = max(o.DefaultStaleWhileRevalidate, 0)
	o.DefaultStaleIfError = max(o.DefaultStaleIfError, 0)
	return o
}

// Lifetime is the freshness lifetime a shared cache gives a response (RFC 9111 §4.2.1), and
// where it came from, for Cache-Status and logs. One story, in order:
//
//  1. Options.TTL, the operator's override, for statuses below 400;
//  2. the origin's explicit freshness: CDN-Cache-Control (RFC 9213, which also silences
//     Cache-Control and Expires) > s-maxage > max-age > Expires − Date;
//  3. the origin silent: Options.DefaultTTL for the status, else the heuristic (§4.2.2:
//     Last-Modified, heuristically cacheable statuses below 400), else none;
//  4. clamps: below 400, MinTTL and MaxTTL; temporary errors (5xx, 408, 429) capped by
//     MaxErrorTTL; other errors by MaxNegativeTTL.
//
// responseTime is when the response was received; it stands in for a missing or invalid
// Date (RFC 9110 §6.6.1, RFC 9111 §4.2.1). The result is never negative.
//
// Sources: "override", "s-maxage", "max-age", "expires" (each prefixed "cdn-" when from
// CDN-Cache-Control), "default-ttl", "heuristic", "invalid" (malformed or conflicting
// freshness: stale), "none"; a suffix marks a clamp: ";min-ttl", ";max-ttl",
// ";max-negative-ttl", ";capped" (MaxErrorTTL).
func Lifetime(status int, h http.Header, responseTime time.Time, opt Options) (time.Duration, string) {
	return lifetime(status, responseDirectives(h), h, responseTime, opt.withDefaults())
}

// lifeKind says which step of Lifetime's story gave a lifetime.
type lifeKind int

const (
	lifeNone      lifeKind = iota // nothing: not fresh (and not storable on freshness)
	lifeExplicit                  // the origin's (including "invalid")
	lifeOverride                  // Options.TTL
	lifeDefault                   // Options.DefaultTTL
	lifeHeuristic                 // RFC 9111 §4.2.2
)

func lifetime(status int, d respDirectives, h http.Header, responseTime time.Time, opt Options) (time.Duration, string) {
	life, src, _ := lifetimeOf(status, d, h, responseTime, opt)
	return life, src
}

func lifetimeOf(status int, d respDirectives, h http.Header, responseTime time.Time, opt Options) (time.Duration, string, lifeKind) {
	if opt.TTL > 0 && status < 400 {
		return opt.TTL, "override", lifeOverride
	}
	kind := lifeExplicit
	life, src, explicit := explicitLifetime(d, h, responseTime)
	if !explicit {
		ttl, configured := opt.DefaultTTL[status]
		switch {
		case configured && !temporaryError(status) && ttl >= 0:
			life, src, kind = ttl, "default-ttl", lifeDefault
		case heuristicAllowed(status, d):
			if life, src = heuristic(h, responseTime, opt); src == "none" {
				return 0, "none", lifeNone
			}
			kind = lifeHeuristic
		default:
			return 0, "none", lifeNone
		}
	}
	life, src = clampLifetime(status, life, src, opt)
	return life, src, kind
}

// clampLifetime applies step 4 of Lifetime to a lifetime that is not an override.
func clampLifetime(status int, life time.Duration, src string, opt Options) (time.Duration, string) {
	switch {
	case src == "invalid":
		// Malformed freshness is stale, whatever the clamps say.
	case temporaryError(status):
		if life > opt.MaxErrorTTL {
			life, src = opt.MaxErrorTTL, src+";capped"
		}
	case status >= 400:
		if life > opt.MaxNegativeTTL {
			life, src = opt.MaxNegativeTTL, src+";max-negative-ttl"
		}
	default:
		if opt.MinTTL > 0 && life < opt.MinTTL {
			life, src = opt.MinTTL, src+";min-ttl"
		}
		if opt.MaxTTL > 0 && life > opt.MaxTTL {
			life, src = opt.MaxTTL, src+";max-ttl"
		}
	}
	return max(life, 0), src
}

// explicitLifetime is the lifetime from s-maxage, max-age or Expires; explicit reports whether
// any of them was present (even unusable: that is an explicit "stale"). A zero responseTime
// with no Date makes an Expires lifetime 0, the conservative answer without a clock.
func explicitLifetime(d respDirectives, h http.Header, responseTime time.Time) (life time.Duration, src string, explicit bool) {
	prefix := ""
	if d.targeted {
		prefix = "cdn-"
	}
	switch {
	case d.badFreshness():
		return 0, "invalid", true
	case d.sMaxAge >= 0: // RFC 9111 §5.2.2.10: overrides max-age and Expires in a shared cache
		return secs(d.sMaxAge), prefix + "s-maxage", true
	case d.maxAge >= 0: // §5.2.2.1, §5.3: max-age makes Expires ignored
		return secs(d.maxAge), prefix + "max-age", true
	case d.targeted: // RFC 9213 §2.2: Expires is ignored with a targeted field in force
		return 0, "", false
	}
	lines := h.Values("Expires")
	if len(lines) == 0 {
		return 0, "", false
	}
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) != strings.TrimSpace(lines[0]) {
			return 0, "invalid", true // §4.2.1: conflicting values, consider stale
		}
	}
	exp, ok := parseDate(lines[0])
	if !ok {
		return 0, "expires", true // §5.3: invalid dates, especially "0", are in the past
	}
	date, ok := headerTime(h, "Date")
	if !ok {
		if responseTime.IsZero() {
			return 0, "expires", true
		}
		date = responseTime
	}
	return max(exp.Sub(date), 0), "expires", true
}

// heuristicStatus: status codes defined as heuristically cacheable (RFC 9110 §15.1).
func heuristicStatus(status int) bool {
	switch status {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// heuristicAllowed: RFC 9111 §4.2.2 permits a heuristic for heuristically cacheable statuses
// and for responses marked public. We exclude every error status (≥400): 404/410 get
// freshness only explicitly or from Options.DefaultTTL, and a guessed lifetime must never
// freeze an error.
func heuristicAllowed(status int, d respDirectives) bool {
	return status < 400 && (heuristicStatus(status) || d.public)
}

// heuristic is HeuristicFraction of the time since Last-Modified (measured at Date, or at
// receipt), capped by HeuristicMax. No Last-Modified, or one in the future, gives nothing.
func heuristic(h http.Header, responseTime time.Time, opt Options) (time.Duration, string) {
	lm, ok := headerTime(h, "Last-Modified")
	if !ok || opt.HeuristicFraction <= 0 {
		return 0, "none"
	}
	base, ok := headerTime(h, "Date")
	if !ok {
		base = responseTime
	}
	if base.IsZero() || !lm.Before(base) {
		return 0, "heuristic"
	}
	f := float64(base.Sub(lm)) * opt.HeuristicFraction
	if f >= float64(opt.HeuristicMax) || math.IsNaN(f) {
		return opt.HeuristicMax, "heuristic"
	}
	return time.Duration(f), "heuristic"
}

// temporaryError: statuses that describe a passing condition and must not be frozen:
// server errors, 408 Request Timeout and 429 Too Many Requests.
func temporaryError(status int) bool {
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// headerTime parses the first line of a date header (RFC 9110 §5.6.7, all three formats).
func headerTime(h http.Header, name string) (time.Time, bool) {
	v := h.Values(name)
	if len(v) == 0 {
		return time.Time{}, false
	}
	return parseDate(v[0])
}

// parseDate is parseHTTPDate on a field line, surrounding whitespace removed (RFC 9110 §5.5),
// two-digit years placed against the current year.
func parseDate(line string) (time.Time, bool) {
	return parseHTTPDate(strings.Trim(line, " \t"), time.Now().UTC().Year())
}

// CurrentAge is the response's current age (RFC 9111 §4.2.3):
//
//	apparent_age        = max(0, response_time - date_value)
//	response_delay      = response_time - request_time
//	corrected_age_value = age_value + response_delay
//	corrected_initial   = max(apparent_age, corrected_age_value)
//	current_age         = corrected_initial + (now - response_time)
//
// A missing or invalid Date counts as response_time (so a Date in the future, like a missing
// one, adds nothing); age_value is an upstream cache's Age header, read as §5.1 says
// (ageValue). A zero or later
// requestTime means no measurable delay; clock steps never make any term negative, and the
// sums saturate rather than overflow.
func CurrentAge(h http.Header, requestTime, responseTime, now time.Time) time.Duration {
	date, ok := headerTime(h, "Date")
	if !ok {
		date = responseTime
	}
	apparent := max(responseTime.Sub(date), 0)
	var delay time.Duration
	if !requestTime.IsZero() {
		delay = max(responseTime.Sub(requestTime), 0)
	}
	initial := max(apparent, satAdd(ageValue(h), delay))
	return satAdd(initial, max(now.Sub(responseTime), 0))
}

// ageValue reads Age (RFC 9111 §5.1): of a list ("1, 2", or several field lines) the first
// member counts; a value that is not a non-negative integer (empty, signed, fractional,
// not a number) is ignored, as §5.1 says; too large a number is 2^31 s (§1.2.2).
func ageValue(h http.Header) time.Duration {
	v := h.Values("Age")
	if len(v) == 0 {
		return 0
	}
	first, _, _ := strings.Cut(v[0], ",")
	n, ok := parseDelta(strings.Trim(first, " \t"))
	if !ok {
		return 0
	}
	return secs(n)
}

// parseDelta reads delta-seconds (RFC 9111 §1.2.2): 1*DIGIT, saturating at 2^31.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = min(n*10+int64(s[i]-'0'), maxDelta)
	}
	return n, true
}

func satAdd(a, b time.Duration) time.Duration {
	if a > 0 && b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// EnsureDate adds a Date (the receipt time) to a response that lacks a valid one, as a cache
// must before storing or forwarding it (RFC 9110 §6.6.1: MUST for a missing Date, MAY for an
// invalid one). It reports whether it changed h.
func EnsureDate(h http.Header, responseTime time.Time) bool {
	if _, ok := headerTime(h, "Date"); ok {
		return false
	}
	h.Set("Date", responseTime.UTC().Format(http.TimeFormat))
	return true
}

// staleWindows are the RFC 5861 windows that apply to a stored response: the origin's own
// stale-while-revalidate / stale-if-error, else the configured defaults. Nothing stale is
// allowed past must-revalidate, proxy-revalidate or no-cache (RFC 9111 §4.2.4, and §4.2.1:
// conflicting directives yield to the most restrictive), nor after unusable freshness.
// s-maxage carries proxy-revalidate semantics (§5.2.2.10): it blocks the configured
// defaults, but an explicit stale-* in the same response is the origin's deliberate
// exception to it (the common "s-maxage=1, stale-while-revalidate=59") and is honoured.
func staleWindows(d respDirectives, opt Options) (swr, sie time.Duration) {
	if d.badFreshness() || d.noCache || d.mustRevalidate || d.proxyRevalidate {
		return 0, 0
	}
	window := func(v int64, def time.Duration) time.Duration {
		switch {
		case v >= 0:
			return secs(v)
		case v == invalid || d.sMaxAge >= 0:
			return 0
		}
		return def
	}
	return window(d.staleWhileRevalidate, opt.DefaultStaleWhileRevalidate),
		window(d.staleIfError, opt.DefaultStaleIfError)
}
