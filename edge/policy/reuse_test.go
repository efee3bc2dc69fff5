package policy

import (
	"net/http"
	"testing"
	"time"
)

func stored(status int, kv ...string) Stored {
	return Stored{
		Status:       status,
		Header:       hdr(append([]string{"Date", httpDate(t0)}, kv...)...),
		RequestTime:  t0,
		ResponseTime: t0,
	}
}

func TestReuse(t *testing.T) {
	get := func(kv ...string) *http.Request { return request(http.MethodGet, kv...) }
	s := time.Second
	swrDefault := Options{DefaultStaleWhileRevalidate: 30 * s}
	for _, tc := range []struct {
		name  string
		req   *http.Request
		st    Stored
		after time.Duration // now = t0 + after
		opt   Options
		want  Verdict
	}{
		// RFC 9111 §4.2: fresh while age < lifetime
		{"fresh", get(), stored(200, "Cache-Control", "max-age=60"), 59 * s, Options{}, Fresh},
		{"stale at lifetime", get(), stored(200, "Cache-Control", "max-age=60"), 60 * s, Options{}, Revalidate},
		// RFC 9111 §4.2.3: an upstream Age counts
		{"upstream Age makes stale", get(), stored(200, "Cache-Control", "max-age=60", "Age", "50"), 15 * s, Options{}, Revalidate},
		{"upstream Age still fresh", get(), stored(200, "Cache-Control", "max-age=60", "Age", "40"), 15 * s, Options{}, Fresh},
		// RFC 9111 §4.2.1: unusable freshness → stale
		{"malformed max-age", get(), stored(200, "Cache-Control", "max-age=sixty"), 0, Options{}, Revalidate},
		// RFC 9111 §4.2.1, §5.3: Expires 0
		{"Expires 0", get(), stored(200, "Expires", "0"), 0, Options{}, Revalidate},
		// RFC 9111 §4.2.2: heuristic freshness is freshness
		{"heuristic fresh", get(), stored(200, "Last-Modified", httpDate(t0.Add(-50*time.Hour))), 4 * time.Hour, Options{}, Fresh},
		// RFC 9111 §5.2.2.4: response no-cache always validates, even fresh
		{"response no-cache", get(), stored(200, "Cache-Control", "no-cache, max-age=600", "ETag", `"a"`), 0, Options{}, Revalidate},
		// RFC 9111 §5.2.2.4: the field-name form is read as plain no-cache
		{"response no-cache fields", get(), stored(200, "Cache-Control", `no-cache="Set-Cookie", max-age=600`), 0, Options{}, Revalidate},
		// RFC 9111 §5.2.1.4: request no-cache
		{"request no-cache", get("Cache-Control", "no-cache"), stored(200, "Cache-Control", "max-age=600"), 0, Options{}, RevalidateRequest},
		// RFC 9111 §5.4: Pragma: no-cache without Cache-Control
		{"Pragma no-cache", get("Pragma", "no-cache"), stored(200, "Cache-Control", "max-age=600"), 0, Options{}, RevalidateRequest},
		// RFC 9111 §5.4: Pragma is ignored when Cache-Control is present
		{"Pragma with Cache-Control", get("Pragma", "no-cache", "Cache-Control", "max-stale"), stored(200, "Cache-Control", "max-age=600"), 0, Options{}, Fresh},
		// RFC 9111 §5.2.1.1: request max-age
		{"request max-age exceeded", get("Cache-Control", "max-age=10"), stored(200, "Cache-Control", "max-age=600"), 11 * s, Options{}, RevalidateRequest},
		{"request max-age ok", get("Cache-Control", "max-age=10"), stored(200, "Cache-Control", "max-age=600"), 10 * s, Options{}, Fresh},
		{"request max-age=0 reload", get("Cache-Control", "max-age=0"), stored(200, "Cache-Control", "max-age=600"), 1 * s, Options{}, RevalidateRequest},
		// RFC 9111 §4.2.1 (request side, restrictive reading): a malformed max-age is max-age=0
		{"request max-age malformed", get("Cache-Control", "max-age=x"), stored(200, "Cache-Control", "max-age=600"), 1 * s, Options{}, RevalidateRequest},
		// RFC 9111 §5.2.1.3: min-fresh
		{"min-fresh unmet", get("Cache-Control", "min-fresh=30"), stored(200, "Cache-Control", "max-age=60"), 31 * s, Options{}, RevalidateRequest},
		{"min-fresh met", get("Cache-Control", "min-fresh=30"), stored(200, "Cache-Control", "max-age=60"), 30 * s, Options{}, Fresh},
		// RFC 8246 §2: a fresh immutable response needs no revalidation on reload...
		{"immutable reload", get("Cache-Control", "max-age=0"), stored(200, "Cache-Control", "max-age=600, immutable"), 100 * s, Options{}, Fresh},
		{"immutable min-fresh", get("Cache-Control", "min-fresh=9999"), stored(200, "Cache-Control", "max-age=600, immutable"), 100 * s, Options{}, Fresh},
		// ... but a force reload (no-cache) still validates, and a stale one is stale
		{"immutable force reload", get("Cache-Control", "no-cache"), stored(200, "Cache-Control", "max-age=600, immutable"), 100 * s, Options{}, RevalidateRequest},
		{"immutable stale", get(), stored(200, "Cache-Control", "max-age=600, immutable"), 601 * s, Options{}, Revalidate},
		{"not immutable reload", get("Cache-Control", "max-age=0"), stored(200, "Cache-Control", "max-age=600"), 100 * s, Options{}, RevalidateRequest},
		// RFC 9111 §5.2.1.2: max-stale with and without a value
		{"max-stale any", get("Cache-Control", "max-stale"), stored(200, "Cache-Control", "max-age=60"), time.Hour, Options{}, StaleAllowed},
		{"max-stale within", get("Cache-Control", "max-stale=30"), stored(200, "Cache-Control", "max-age=60"), 90 * s, Options{}, StaleAllowed},
		{"max-stale beyond", get("Cache-Control", "max-stale=30"), stored(200, "Cache-Control", "max-age=60"), 91 * s, Options{}, Revalidate},
		{"max-stale most restrictive", get("Cache-Control", "max-stale, max-stale=30"), stored(200, "Cache-Control", "max-age=60"), 91 * s, Options{}, Revalidate},
		// RFC 9111 §5.2.1.1 + §5.2.1.2: max-age bounds the age even with max-stale
		{"max-stale with max-age", get("Cache-Control", "max-age=70, max-stale"), stored(200, "Cache-Control", "max-age=60"), 71 * s, Options{}, RevalidateRequest},
		{"max-stale with max-age ok", get("Cache-Control", "max-age=70, max-stale"), stored(200, "Cache-Control", "max-age=60"), 65 * s, Options{}, StaleAllowed},
		// RFC 9111 §4.2.4, §5.2.2.2, §5.2.2.8: never stale past must-revalidate / proxy-revalidate
		{"max-stale vs must-revalidate", get("Cache-Control", "max-stale"), stored(200, "Cache-Control", "max-age=60, must-revalidate"), 61 * s, Options{}, Revalidate},
		{"max-stale vs proxy-revalidate", get("Cache-Control", "max-stale"), stored(200, "Cache-Control", "max-age=60, proxy-revalidate"), 61 * s, Options{}, Revalidate},
		// RFC 9111 §5.2.2.10: s-maxage implies proxy-revalidate
		{"max-stale vs s-maxage", get("Cache-Control", "max-stale"), stored(200, "Cache-Control", "s-maxage=60"), 61 * s, Options{}, Revalidate},
		{"s-maxage overrides max-age", get(), stored(200, "Cache-Control", "max-age=600, s-maxage=60"), 61 * s, Options{}, Revalidate},
		{"s-maxage default swr blocked", get(), stored(200, "Cache-Control", "s-maxage=60"), 61 * s, swrDefault, Revalidate},
		// RFC 5861 §3: the origin's explicit window is honoured alongside s-maxage
		{"s-maxage explicit swr", get(), stored(200, "Cache-Control", "s-maxage=60, stale-while-revalidate=30"), 61 * s, Options{}, StaleWhileRevalidate},
		// RFC 5861 §3: stale-while-revalidate window
		{"swr inside", get(), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=30"), 90 * s, Options{}, StaleWhileRevalidate},
		{"swr outside", get(), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=30"), 91 * s, Options{}, Revalidate},
		{"swr fresh is fresh", get(), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=30"), 10 * s, Options{}, Fresh},
		// RFC 5861 §3 + RFC 9111 §4.2.4: configured default only when the origin says nothing
		{"swr default", get(), stored(200, "Cache-Control", "max-age=60"), 80 * s, swrDefault, StaleWhileRevalidate},
		{"swr origin zero beats default", get(), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=0"), 61 * s, swrDefault, Revalidate},
		{"swr malformed beats default", get(), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=x"), 61 * s, swrDefault, Revalidate},
		// RFC 9111 §4.2.1: conflicting duplicates → no window
		{"swr conflicting", get(), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=30, stale-while-revalidate=40"), 61 * s, Options{}, Revalidate},
		// RFC 9111 §4.2.4: no stale past must-revalidate, even with swr
		{"swr vs must-revalidate", get(), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=30, must-revalidate"), 61 * s, Options{}, Revalidate},
		{"swr vs proxy-revalidate", get(), stored(200, "Cache-Control", "max-age=60, proxy-revalidate"), 61 * s, swrDefault, Revalidate},
		// RFC 9111 §5.2.1.1: a client asking max-age does not accept stale, even in the window
		{"swr vs request max-age", get("Cache-Control", "max-age=100"), stored(200, "Cache-Control", "max-age=60, stale-while-revalidate=30"), 70 * s, Options{}, Revalidate},
		// RFC 9213 §2.2: the window can come from CDN-Cache-Control
		{"swr from CDN-Cache-Control", get(), stored(200, "Cache-Control", "no-cache", "CDN-Cache-Control", "max-age=60, stale-while-revalidate=30"), 70 * s, Options{}, StaleWhileRevalidate},
		// RFC 9111 §4.2.1: malformed freshness disables stale serving altogether
		{"swr with malformed max-age", get(), stored(200, "Cache-Control", "max-age=, stale-while-revalidate=30"), 1 * s, Options{}, Revalidate},
		// RFC 9111 §5.2.1.7: only-if-cached
		{"only-if-cached fresh", get("Cache-Control", "only-if-cached"), stored(200, "Cache-Control", "max-age=60"), 1 * s, Options{}, Fresh},
		{"only-if-cached stale", get("Cache-Control", "only-if-cached"), stored(200, "Cache-Control", "max-age=60"), 61 * s, Options{}, GatewayTimeout},
		{"only-if-cached max-stale", get("Cache-Control", "only-if-cached, max-stale"), stored(200, "Cache-Control", "max-age=60"), 61 * s, Options{}, StaleAllowed},
		{"only-if-cached no-cache", get("Cache-Control", "only-if-cached, no-cache"), stored(200, "Cache-Control", "max-age=60"), 1 * s, Options{}, GatewayTimeout},
		// RFC 9111 §4.2.1 (policy): 5xx capped lifetime
		{"503 capped", get(), stored(503, "Cache-Control", "max-age=600"), 11 * s, Options{}, Revalidate},
		// RFC 9111 §4.2.1 (policy): 404 configured TTL
		{"404 DefaultTTL fresh", get(), stored(404), 9 * s, Options{DefaultTTL: map[int]time.Duration{404: 10 * s}}, Fresh},
		{"404 DefaultTTL stale", get(), stored(404), 10 * s, Options{DefaultTTL: map[int]time.Duration{404: 10 * s}}, Revalidate},
		// nil request: evaluate the stored response alone
		{"nil request", nil, stored(200, "Cache-Control", "max-age=60"), 1 * s, Options{}, Fresh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reuse(tc.req, tc.st, t0.Add(tc.after), tc.opt); got != tc.want {
				t.Errorf("Reuse = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCanServeStaleOnError(t *testing.T) {
	s := time.Second
	sieDefault := Options{DefaultStaleIfError: time.Hour}
	for _, tc := range []struct {
		name  string
		st    Stored
		after time.Duration
		opt   Options
		want  bool
	}{
		// RFC 9111 §4.3.3: a fresh response may stand in for a failed validation
		{"fresh", stored(200, "Cache-Control", "max-age=60"), 30 * s, Options{}, true},
		// RFC 9111 §4.2.4: stale without permission: no
		{"stale no permission", stored(200, "Cache-Control", "max-age=60"), 61 * s, Options{}, false},
		// RFC 5861 §4: stale-if-error window
		{"sie inside", stored(200, "Cache-Control", "max-age=60, stale-if-error=300"), 360 * s, Options{}, true},
		{"sie outside", stored(200, "Cache-Control", "max-age=60, stale-if-error=300"), 361 * s, Options{}, false},
		// RFC 5861 §4 + RFC 9111 §4.2.4: configured default when the origin says nothing
		{"sie default", stored(200, "Cache-Control", "max-age=60"), 30 * time.Minute, sieDefault, true},
		{"sie origin zero beats default", stored(200, "Cache-Control", "max-age=60, stale-if-error=0"), 61 * s, sieDefault, false},
		{"sie from CDN-Cache-Control", stored(200, "CDN-Cache-Control", "max-age=60, stale-if-error=100"), 150 * s, Options{}, true},
		// RFC 9111 §5.2.2.2: must-revalidate holds even when disconnected
		{"must-revalidate", stored(200, "Cache-Control", "max-age=60, stale-if-error=300, must-revalidate"), 61 * s, Options{}, false},
		{"must-revalidate fresh", stored(200, "Cache-Control", "max-age=60, must-revalidate"), 59 * s, Options{}, false},
		// RFC 9111 §5.2.2.8: proxy-revalidate likewise for a shared cache
		{"proxy-revalidate", stored(200, "Cache-Control", "max-age=60, proxy-revalidate"), 61 * s, sieDefault, false},
		// RFC 9111 §5.2.2.4: no-cache
		{"no-cache", stored(200, "Cache-Control", "no-cache, stale-if-error=300"), 1 * s, Options{}, false},
		// RFC 9111 §5.2.2.10: s-maxage blocks the default, not the origin's explicit window
		{"s-maxage default", stored(200, "Cache-Control", "s-maxage=60"), 61 * s, sieDefault, false},
		{"s-maxage explicit", stored(200, "Cache-Control", "s-maxage=60, stale-if-error=60"), 61 * s, Options{}, true},
		// RFC 9111 §4.2.1: unusable freshness information → no stale
		{"malformed max-age", stored(200, "Cache-Control", "max-age=1.5"), 0, sieDefault, false},
		// RFC 9111 §5.1: an invalid Age is ignored; past max-age plus the window, no stale
		{"malformed Age", stored(200, "Cache-Control", "max-age=60", "Age", "x"), 61 * s, Options{DefaultStaleIfError: 10 * s}, true},
		{"huge Age", stored(200, "Cache-Control", "max-age=60", "Age", "99999999999"), 0, sieDefault, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CanServeStaleOnError(tc.st, t0.Add(tc.after), tc.opt); got != tc.want {
				t.Errorf("CanServeStaleOnError = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVerdictString(t *testing.T) {
	seen := map[string]bool{}
	for v := Fresh; v <= GatewayTimeout; v++ {
		s := v.String()
		if s == "unknown" || seen[s] {
			t.Errorf("Verdict(%d).String() = %q: missing or duplicate", v, s)
		}
		seen[s] = true
	}
	if Verdict(99).String() != "unknown" {
		t.Errorf("out-of-range verdict should print unknown")
	}
}
