package policy

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestLifetimeControls: the operator's controls over lifetimes — DefaultTTL for a silent
// origin, MinTTL/MaxTTL clamps, MaxNegativeTTL, MaxErrorTTL — as one story (Lifetime's doc),
// with the RFC 9111 section each case leans on.
func TestLifetimeControls(t *testing.T) {
	dated := func(kv ...string) http.Header { return hdr(append([]string{"Date", httpDate(t0)}, kv...)...) }
	lm := httpDate(t0.Add(-10 * time.Hour)) // heuristic: 10% of 10h = 1h
	def := map[int]time.Duration{200: time.Hour, 301: time.Hour, 302: 5 * time.Minute, 404: 5 * time.Second, 503: time.Hour}
	const s, m = time.Second, time.Minute
	for _, tc := range []struct {
		name   string
		status int
		h      http.Header
		opt    Options
		want   time.Duration
		src    string
	}{
		// DefaultTTL: only when the origin is silent (RFC 9111 §4.2.1: explicit freshness first)
		{"silent 200 gets its default", 200, dated(), Options{DefaultTTL: def}, time.Hour, "default-ttl"},
		{"silent 200 without a default", 200, dated(), Options{}, 0, "none"},
		{"max-age beats the default", 200, dated("Cache-Control", "max-age=60"), Options{DefaultTTL: def}, 60 * s, "max-age"},
		{"Expires beats the default", 200, dated("Expires", httpDate(t0.Add(2*m))), Options{DefaultTTL: def}, 2 * m, "expires"},
		{"an invalid Expires is explicit (stale), not silence", 200, dated("Expires", "0"), Options{DefaultTTL: def}, 0, "expires"},
		// §4.2.1: a malformed max-age is explicit and stale — no default, no clamp raises it
		{"malformed max-age stays stale", 200, dated("Cache-Control", "max-age=1h"), Options{DefaultTTL: def, MinTTL: m}, 0, "invalid"},
		// RFC 9213 §2.2: a CDN-Cache-Control with lifetime speaks; one without it is silent
		{"CDN-Cache-Control beats the default", 200, dated("CDN-Cache-Control", "max-age=30"), Options{DefaultTTL: def}, 30 * s, "cdn-max-age"},
		{"CDN-Cache-Control public is silent", 200, dated("CDN-Cache-Control", "public"), Options{DefaultTTL: def}, time.Hour, "default-ttl"},
		// §4.2.2: the operator's number beats the heuristic guess…
		{"default beats the heuristic", 200, dated("Last-Modified", httpDate(t0.Add(-1000*time.Hour))), Options{DefaultTTL: def}, time.Hour, "default-ttl"},
		{"heuristic without a default entry", 203, dated("Last-Modified", lm), Options{DefaultTTL: def}, time.Hour, "heuristic"},
		// …and makes statuses storable that §4.2.2 gives no heuristic (302, 307)
		{"302 default", 302, dated("Location", "/x"), Options{DefaultTTL: def}, 5 * m, "default-ttl"},
		{"307 without entry", 307, dated("Last-Modified", lm), Options{DefaultTTL: def}, 0, "none"},
		{"301 default", 301, dated(), Options{DefaultTTL: def}, time.Hour, "default-ttl"},
		{"zero default", 200, dated(), Options{DefaultTTL: map[int]time.Duration{200: 0}}, 0, "default-ttl"},
		// the override (ttl) still comes first for < 400
		{"override beats all", 200, dated("Cache-Control", "max-age=5"), Options{TTL: m, MaxTTL: s, DefaultTTL: def}, m, "override"},

		// MinTTL / MaxTTL: clamps on the lifetime for this cache (< 400)
		{"max_ttl cuts max-age", 200, dated("Cache-Control", "max-age=86400"), Options{MaxTTL: m}, m, "max-age;max-ttl"},
		{"max_ttl cuts s-maxage", 200, dated("Cache-Control", "s-maxage=86400"), Options{MaxTTL: m}, m, "s-maxage;max-ttl"},
		{"max_ttl cuts the heuristic", 200, dated("Last-Modified", lm), Options{MaxTTL: m}, m, "heuristic;max-ttl"},
		{"max_ttl cuts the default", 200, dated(), Options{DefaultTTL: def, MaxTTL: m}, m, "default-ttl;max-ttl"},
		{"max_ttl leaves a shorter one", 200, dated("Cache-Control", "max-age=30"), Options{MaxTTL: m}, 30 * s, "max-age"},
		{"min_ttl raises max-age", 200, dated("Cache-Control", "max-age=5"), Options{MinTTL: m}, m, "max-age;min-ttl"},
		{"min_ttl raises max-age=0", 200, dated("Cache-Control", "max-age=0"), Options{MinTTL: m}, m, "max-age;min-ttl"},
		{"min_ttl raises a past Expires", 200, dated("Expires", httpDate(t0.Add(-m))), Options{MinTTL: m}, m, "expires;min-ttl"},
		{"min_ttl leaves a longer one", 200, dated("Cache-Control", "max-age=600"), Options{MinTTL: m}, 10 * m, "max-age"},
		{"min_ttl gives nothing to a silent origin", 200, dated(), Options{MinTTL: m}, 0, "none"},
		{"max wins over min", 200, dated("Cache-Control", "max-age=5"), Options{MinTTL: time.Hour, MaxTTL: m}, m, "max-age;min-ttl;max-ttl"},
		{"clamps leave 404 to max_negative_ttl", 404, dated("Cache-Control", "max-age=5"), Options{MinTTL: time.Hour}, 5 * s, "max-age"},
		{"clamps leave 503 to max_error_ttl", 503, dated("Cache-Control", "max-age=5"), Options{MinTTL: time.Hour}, 5 * s, "max-age"},

		// MaxNegativeTTL: an explicit lifetime on a 404/410 can't freeze it (default 10s)
		{"404 max-age=3600 clamped", 404, dated("Cache-Control", "max-age=3600"), Options{}, 10 * s, "max-age;max-negative-ttl"},
		{"410 s-maxage clamped", 410, dated("Cache-Control", "s-maxage=3600"), Options{}, 10 * s, "s-maxage;max-negative-ttl"},
		{"404 Expires clamped", 404, dated("Expires", httpDate(t0.Add(time.Hour))), Options{}, 10 * s, "expires;max-negative-ttl"},
		{"404 CDN-Cache-Control clamped", 404, dated("CDN-Cache-Control", "max-age=3600"), Options{}, 10 * s, "cdn-max-age;max-negative-ttl"},
		{"403 clamped", 403, dated("Cache-Control", "max-age=3600"), Options{}, 10 * s, "max-age;max-negative-ttl"},
		{"404 custom clamp", 404, dated("Cache-Control", "max-age=3600"), Options{MaxNegativeTTL: 30 * s}, 30 * s, "max-age;max-negative-ttl"},
		{"404 clamp 0 (negative value)", 404, dated("Cache-Control", "max-age=3600"), Options{MaxNegativeTTL: -1}, 0, "max-age;max-negative-ttl"},
		{"404 under the clamp", 404, dated("Cache-Control", "max-age=3"), Options{}, 3 * s, "max-age"},
		{"404 default clamped too", 404, dated(), Options{DefaultTTL: map[int]time.Duration{404: time.Hour}}, 10 * s, "default-ttl;max-negative-ttl"},
		{"404 max_ttl does not raise the clamp", 404, dated("Cache-Control", "max-age=3600"), Options{MaxTTL: time.Hour}, 10 * s, "max-age;max-negative-ttl"},

		// Temporary errors: seconds at most, whatever the origin or the operator says
		{"500 max-age=3600 capped", 500, dated("Cache-Control", "max-age=3600"), Options{}, 10 * s, "max-age;capped"},
		{"503 default ignored", 503, dated(), Options{DefaultTTL: def}, 0, "none"},
		{"502 min_ttl ignored", 502, dated("Cache-Control", "max-age=1"), Options{MinTTL: time.Hour}, s, "max-age"},
		{"429 capped", 429, dated("Cache-Control", "max-age=3600"), Options{MaxNegativeTTL: time.Hour}, 10 * s, "max-age;capped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src := Lifetime(tc.status, tc.h, t0, tc.opt)
			if got != tc.want || src != tc.src {
				t.Errorf("Lifetime = %v %q, want %v %q", got, src, tc.want, tc.src)
			}
		})
	}
}

// TestStorableControls: what the controls make storable (RFC 9111 §3), and what they don't.
func TestStorableControls(t *testing.T) {
	get := func(kv ...string) *http.Request { return request(http.MethodGet, kv...) }
	dated := func(kv ...string) http.Header { return hdr(append([]string{"Date", httpDate(t0)}, kv...)...) }
	def := Options{DefaultTTL: map[int]time.Duration{200: time.Hour, 302: time.Minute, 404: 5 * time.Second, 500: time.Hour}}
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		h      http.Header
		opt    Options
		ok     bool
		reason string
	}{
		// §3: a configured lifetime is a "cache extension that allows it to be cached"
		{"302 with default", get(), 302, dated("Location", "/a"), def, true, ""},
		{"302 without default", get(), 302, dated("Location", "/a"), Options{}, false, ReasonStatus},
		{"silent 200 with default", get(), 200, dated(), def, true, ""},
		{"silent 200 without default, no validator", get(), 200, dated(), Options{}, false, ReasonNoFreshness},
		{"404 with default", get(), 404, dated(), def, true, ""},
		{"500 default never", get(), 500, dated(), def, false, ReasonError},
		// A default is no explicit freshness for a credentialed request (web cache deception)
		{"cookie, silent, default", get("Cookie", "s=1"), 200, dated(), def, false, ReasonCredentials},
		{"cookie, silent, default, allowed", get("Cookie", "s=1"), 200, dated(), Options{DefaultTTL: def.DefaultTTL, HeuristicWithCredentials: true}, true, ""},
		// no-store, private, Set-Cookie: no control makes them storable (§5.2.2.5, §5.2.2.7)
		{"no-store with default", get(), 200, dated("Cache-Control", "no-store"), def, false, ReasonNoStore},
		{"private with min_ttl", get(), 200, dated("Cache-Control", "private, max-age=0"), Options{MinTTL: time.Hour}, false, ReasonPrivate},
		// min_ttl turns max-age=0 without a validator into a lifetime
		{"max-age=0 no validator", get(), 200, dated("Cache-Control", "max-age=0"), Options{}, false, ReasonNoFreshness},
		{"max-age=0 no validator, min_ttl", get(), 200, dated("Cache-Control", "max-age=0"), Options{MinTTL: time.Minute}, true, ""},
		// zero-TTL caching (§4.3): stored to be revalidated every time when it has a validator
		{"max-age=0 with ETag", get(), 200, dated("Cache-Control", "max-age=0", "ETag", `"v"`), Options{}, true, ""},
		{"no-cache with ETag", get(), 200, dated("Cache-Control", "no-cache", "ETag", `"v"`), Options{MinTTL: time.Hour}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason := Storable(tc.req, tc.status, tc.h, tc.opt)
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("Storable = %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
		})
	}
}

// TestReuseControls: zero-TTL caching stays "store, revalidate every time" (RFC 9111
// §5.2.2.4, §4.2.4), min_ttl never lifts no-cache, and the negative clamp ends a 404's use.
func TestReuseControls(t *testing.T) {
	const s = time.Second
	stored := func(status int, kv ...string) Stored {
		return Stored{Status: status, Header: hdr(append([]string{"Date", httpDate(t0)}, kv...)...), RequestTime: t0, ResponseTime: t0}
	}
	get := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	for _, tc := range []struct {
		name  string
		st    Stored
		after time.Duration
		opt   Options
		want  Verdict
	}{
		{"max-age=0 revalidates at once", stored(200, "Cache-Control", "max-age=0", "ETag", `"v"`), 0, Options{}, Revalidate},
		{"no-cache revalidates", stored(200, "Cache-Control", "no-cache, max-age=600", "ETag", `"v"`), s, Options{}, Revalidate},
		{"no-cache revalidates under min_ttl", stored(200, "Cache-Control", "no-cache", "ETag", `"v"`), s, Options{MinTTL: time.Hour}, Revalidate},
		{"max-age=0 fresh under min_ttl", stored(200, "Cache-Control", "max-age=0"), 59 * s, Options{MinTTL: time.Minute}, Fresh},
		{"max_ttl ends a day-long max-age", stored(200, "Cache-Control", "max-age=86400"), 61 * s, Options{MaxTTL: time.Minute}, Revalidate},
		{"404 max-age=3600 fresh for 10s", stored(404, "Cache-Control", "max-age=3600"), 9 * s, Options{}, Fresh},
		{"404 max-age=3600 stale after 10s", stored(404, "Cache-Control", "max-age=3600"), 10 * s, Options{}, Revalidate},
		{"500 max-age=3600 stale after 10s", stored(500, "Cache-Control", "max-age=3600"), 10 * s, Options{}, Revalidate},
		{"silent 302 default fresh", stored(302, "Location", "/a"), 4 * time.Minute, Options{DefaultTTL: map[int]time.Duration{302: 5 * time.Minute}}, Fresh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reuse(get, tc.st, t0.Add(tc.after), tc.opt); got != tc.want {
				t.Errorf("Reuse = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBrowserTTL: what clients are told. max-age = Age + ttl, so a client that subtracts Age
// (RFC 9111 §4.2.3) keeps it ttl; Expires goes (§5.3); shared-cache directives stay.
func TestBrowserTTL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		h       http.Header
		ttl     time.Duration
		changed bool
		cc      []string
		expires bool
	}{
		{"max-age replaced", 200, hdr("Cache-Control", "public, max-age=86400"), time.Minute, true, []string{"public", "max-age=60"}, false},
		{"Age counted", 200, hdr("Cache-Control", "max-age=86400", "Age", "100"), time.Minute, true, []string{"max-age=160"}, false},
		{"a malformed Age counts as 0 (§5.1)", 200, hdr("Cache-Control", "max-age=86400", "Age", "-3"), time.Minute, true, []string{"max-age=60"}, false},
		{"added where there was none", 200, hdr("Age", "5"), time.Hour, true, []string{"max-age=3605"}, false},
		{"raised too", 200, hdr("Cache-Control", "max-age=5"), time.Hour, true, []string{"max-age=3600"}, false},
		{"zero", 200, hdr("Cache-Control", "max-age=600", "Age", "7"), 0, true, []string{"max-age=7"}, false},
		{"s-maxage and the rest stay", 200, hdr("Cache-Control", "s-maxage=600, max-age=600, stale-while-revalidate=30, immutable"), time.Minute, true, []string{"s-maxage=600, stale-while-revalidate=30, immutable", "max-age=60"}, false},
		{"every max-age goes", 200, hdr("Cache-Control", "max-age=1", "Cache-Control", "max-age=2"), time.Minute, true, []string{"max-age=60"}, false},
		{"Expires goes", 200, hdr("Expires", "Thu, 01 Jan 2099 00:00:00 GMT"), time.Minute, true, []string{"max-age=60"}, false},
		{"301", 301, hdr("Cache-Control", "max-age=600"), time.Minute, true, []string{"max-age=60"}, false},
		{"304 renews the client's copy (§4.3.4)", 304, hdr("Cache-Control", "max-age=600"), time.Minute, true, []string{"max-age=60"}, false},
		// left alone
		{"404", 404, hdr("Cache-Control", "max-age=10"), time.Hour, false, []string{"max-age=10"}, false},
		{"503", 503, hdr("Cache-Control", "max-age=5"), time.Hour, false, []string{"max-age=5"}, false},
		{"no-store", 200, hdr("Cache-Control", "no-store"), time.Hour, false, []string{"no-store"}, false},
		{"private", 200, hdr("Cache-Control", "private, max-age=60"), time.Hour, false, []string{"private, max-age=60"}, false},
		{"no-cache", 200, hdr("Cache-Control", "no-cache", "Expires", "0"), time.Hour, false, []string{"no-cache"}, true},
		{"Set-Cookie", 200, hdr("Cache-Control", "max-age=60", "Set-Cookie", "a=b"), time.Hour, false, []string{"max-age=60"}, false},
		{"negative ttl", 200, hdr("Cache-Control", "max-age=60"), -1, false, []string{"max-age=60"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shared := slices.Clone(tc.h["Cache-Control"])
			orig := tc.h["Cache-Control"]
			if got := BrowserTTL(tc.status, tc.h, tc.ttl); got != tc.changed {
				t.Errorf("changed = %v, want %v", got, tc.changed)
			}
			if got := tc.h["Cache-Control"]; !slices.Equal(got, tc.cc) {
				t.Errorf("Cache-Control = %q, want %q", got, tc.cc)
			}
			if !slices.Equal(orig, shared) {
				t.Errorf("the original value slice was written into: %q", orig)
			}
			if got := tc.h.Get("Expires") != ""; got != tc.expires {
				t.Errorf("Expires present %v, want %v", got, tc.expires)
			}
		})
	}
}
