package policy

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"testing"
	"time"
)

func request(method string, kv ...string) *http.Request {
	r := httptest.NewRequest(method, "http://example.com/a/b?x=1", nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

func TestStorable(t *testing.T) {
	get := func(kv ...string) *http.Request { return request(http.MethodGet, kv...) }
	dated := func(kv ...string) http.Header { return hdr(append([]string{"Date", httpDate(t0)}, kv...)...) }
	old := httpDate(t0.Add(-100 * time.Hour))
	errTTL := Options{DefaultTTL: map[int]time.Duration{404: 10 * time.Second, 503: time.Minute}}
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		h      http.Header
		opt    Options
		ok     bool
		reason string
	}{
		// RFC 9111 §3: explicit freshness
		{"200 max-age", get(), 200, dated("Cache-Control", "max-age=60"), Options{}, true, ""},
		// RFC 9111 §3: HEAD is a method whose responses may be stored
		{"HEAD", request(http.MethodHead), 200, dated("Cache-Control", "max-age=60"), Options{}, true, ""},
		// RFC 9111 §3: only methods defined as cacheable (we implement GET and HEAD)
		{"POST", request(http.MethodPost), 200, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonMethod},
		{"nil request", nil, 200, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonMethod},
		// RFC 9111 §3: the status must be final
		{"1xx", get(), 103, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonStatus},
		{"bogus status", get(), 999, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonStatus},
		// RFC 9111 §3.4: partial content is the range layer's business
		{"206", get(), 206, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonPartial},
		// RFC 9111 §4.3.4: a 304 updates, it is not stored
		{"304", get(), 304, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonNotModified},
		// RFC 9111 §5.2.2.5
		{"response no-store", get(), 200, dated("Cache-Control", "max-age=60, no-store"), Options{}, false, ReasonNoStore},
		// RFC 9111 §5.2.2.5 + §4.2.1: a malformed no-store still forbids storing
		{"response no-store malformed", get(), 200, dated("Cache-Control", `max-age=60, no-store="x"`), Options{}, false, ReasonNoStore},
		// RFC 9111 §5.2.1.5
		{"request no-store", get("Cache-Control", "no-store"), 200, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonNoStore},
		// RFC 9111 §5.2.1.5 (request no-store is honoured even when request Cache-Control is ignored)
		// RFC 9213 §2.2: no-store in the targeted field
		{"CDN no-store", get(), 200, dated("Cache-Control", "max-age=60", "CDN-Cache-Control", "no-store"), Options{}, false, ReasonNoStore},
		// RFC 9213 §2.2: the targeted field replaces Cache-Control, so its no-store does not apply
		{"CDN overrides browser no-store", get(), 200, dated("Cache-Control", "no-store", "CDN-Cache-Control", "max-age=60"), Options{}, true, ""},
		// RFC 9111 §5.2.2.7
		{"private", get(), 200, dated("Cache-Control", "private, max-age=60"), Options{}, false, ReasonPrivate},
		// RFC 9111 §5.2.2.7: the qualified form is read as private too
		{"private field form", get(), 200, dated("Cache-Control", `private="Set-Cookie", max-age=60`), Options{}, false, ReasonPrivate},
		{"private field form unquoted", get(), 200, dated("Cache-Control", `max-age=60, private=Set-Cookie`), Options{}, false, ReasonPrivate},
		// RFC 9213 §2.1: private as a String in the targeted field
		{"CDN private", get(), 200, dated("CDN-Cache-Control", `private="x-user", max-age=60`), Options{}, false, ReasonPrivate},
		// RFC 9111 §5.2.2.3: must-understand lets a cache that understands the status ignore no-store
		{"must-understand understood", get(), 200, dated("Cache-Control", "must-understand, no-store, max-age=60"), Options{}, true, ""},
		{"must-understand not understood", get(), 299, dated("Cache-Control", "must-understand, no-store, max-age=60"), Options{}, false, ReasonMustUnderstand},
		// RFC 9111 §4.1: Vary: * never matches
		{"Vary star", get(), 200, dated("Cache-Control", "max-age=60", "Vary", "Accept-Encoding, *"), Options{}, false, ReasonVaryStar},
		{"Vary star second line", get(), 200, dated("Cache-Control", "max-age=60", "Vary", "Accept", "Vary", "*"), Options{}, false, ReasonVaryStar},
		// Set-Cookie is per-user state: never shared (issue policy)...
		{"Set-Cookie", get(), 200, dated("Cache-Control", "max-age=60", "Set-Cookie", "id=1"), Options{}, false, ReasonSetCookie},
		{"Set-Cookie public", get(), 200, dated("Cache-Control", "public, max-age=60", "Set-Cookie", "id=1"), Options{}, false, ReasonSetCookie},
		// ... unless configured to store after stripping it
		{"Set-Cookie stripped", get(), 200, dated("Cache-Control", "max-age=60", "Set-Cookie", "id=1"), Options{StripSetCookie: true}, true, ""},
		// RFC 9111 §3.5: Authorization needs public, must-revalidate or s-maxage
		{"Authorization", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "max-age=60"), Options{}, false, ReasonAuthorization},
		{"Authorization public", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "public, max-age=60"), Options{}, true, ""},
		// RFC 9213 §2.1 + RFC 8941: only a true Boolean public allows Authorization
		{"Authorization CDN public=?0", get("Authorization", "Bearer x"), 200, dated("CDN-Cache-Control", "public=?0, max-age=60"), Options{}, false, ReasonAuthorization},
		{"Authorization CDN public=1", get("Authorization", "Bearer x"), 200, dated("CDN-Cache-Control", "public=1, max-age=60"), Options{}, false, ReasonAuthorization},
		{"Authorization CDN public", get("Authorization", "Bearer x"), 200, dated("CDN-Cache-Control", "public, max-age=60"), Options{}, true, ""},
		{"Authorization must-revalidate", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "must-revalidate, max-age=60"), Options{}, true, ""},
		{"Authorization s-maxage", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "s-maxage=60"), Options{}, true, ""},
		{"Authorization malformed s-maxage", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "s-maxage=x, max-age=60"), Options{}, false, ReasonAuthorization},
		{"Authorization proxy-revalidate only", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "proxy-revalidate, max-age=60"), Options{}, false, ReasonAuthorization},
		// RFC 9111 §4.2.2 allows a heuristic; a credentialed request's response is not trusted
		// to be everyone's on a guess (web cache deception): explicit freshness or nothing.
		{"Cookie heuristic", get("Cookie", "s=1"), 200, dated("Last-Modified", old), Options{}, false, ReasonCredentials},
		{"Cookie no-cache validator", get("Cookie", "s=1"), 200, dated("Cache-Control", "no-cache", "ETag", `"e"`), Options{}, false, ReasonCredentials},
		{"Cookie max-age", get("Cookie", "s=1"), 200, dated("Cache-Control", "max-age=60"), Options{}, true, ""},
		{"Cookie Expires", get("Cookie", "s=1"), 200, dated("Expires", httpDate(t0.Add(time.Minute))), Options{}, true, ""},
		{"Cookie rule TTL", get("Cookie", "s=1"), 200, dated("Last-Modified", old), Options{TTL: time.Minute}, true, ""},
		{"Cookie heuristic allowed", get("Cookie", "s=1"), 200, dated("Last-Modified", old), Options{HeuristicWithCredentials: true}, true, ""},
		{"Authorization public heuristic", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "public", "Last-Modified", old), Options{}, false, ReasonCredentials},
		{"Authorization must-revalidate heuristic", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "must-revalidate", "Last-Modified", old), Options{}, false, ReasonCredentials},
		{"Authorization public heuristic allowed", get("Authorization", "Bearer x"), 200, dated("Cache-Control", "public", "Last-Modified", old), Options{HeuristicWithCredentials: true}, true, ""},
		// RFC 9111 §3: heuristically cacheable with a validator (so heuristic freshness)
		{"200 heuristic", get(), 200, dated("Last-Modified", old), Options{}, true, ""},
		// RFC 9111 §3: a status not heuristically cacheable needs explicit freshness
		{"302 nothing", get(), 302, dated("Location", "/x", "Last-Modified", old), Options{}, false, ReasonStatus},
		{"302 max-age", get(), 302, dated("Location", "/x", "Cache-Control", "max-age=60"), Options{}, true, ""},
		{"307 Expires", get(), 307, dated("Location", "/x", "Expires", httpDate(t0.Add(time.Hour))), Options{}, true, ""},
		// RFC 9111 §3: ... or public (§4.2.2)
		{"302 public", get(), 302, dated("Location", "/x", "Cache-Control", "public", "Last-Modified", old), Options{}, true, ""},
		// RFC 9111 §3: never reusable — no lifetime, no validator, no stale window
		{"200 nothing at all", get(), 200, dated(), Options{}, false, ReasonNoFreshness},
		{"200 Expires 0 no validator", get(), 200, dated("Expires", "0"), Options{}, false, ReasonNoFreshness},
		{"200 max-age=0 ETag", get(), 200, dated("Cache-Control", "max-age=0", "ETag", `"a"`), Options{}, true, ""},
		{"200 only ETag", get(), 200, dated("ETag", `"a"`), Options{}, true, ""},
		// RFC 5861 §3: a stale window makes a zero-lifetime response useful
		{"200 max-age=0 swr", get(), 200, dated("Cache-Control", "max-age=0, stale-while-revalidate=30"), Options{}, true, ""},
		{"200 nothing default swr", get(), 200, dated(), Options{DefaultStaleWhileRevalidate: time.Minute}, true, ""},
		// RFC 9111 §4.2.4: a window that must-revalidate cancels does not make it useful
		{"200 max-age=0 swr must-revalidate", get(), 200, dated("Cache-Control", "max-age=0, stale-while-revalidate=30, must-revalidate"), Options{}, false, ReasonNoFreshness},
		// RFC 9111 §5.2.2.4: no-cache without a validator could never be reused
		{"no-cache no validator", get(), 200, dated("Cache-Control", "no-cache, max-age=60"), Options{}, false, ReasonNoFreshness},
		{"no-cache with ETag", get(), 200, dated("Cache-Control", "no-cache", "ETag", `"a"`), Options{}, true, ""},
		// RFC 9111 §3, §4.2.2 (policy): 404 only with explicit freshness or a configured TTL
		{"404 nothing", get(), 404, dated("Last-Modified", old), Options{}, false, ReasonError},
		{"404 max-age", get(), 404, dated("Cache-Control", "max-age=30"), Options{}, true, ""},
		{"404 DefaultTTL", get(), 404, dated(), errTTL, true, ""},
		{"410 not configured", get(), 410, dated(), errTTL, false, ReasonError},
		// RFC 9111 §3 (policy): 5xx only with a positive explicit lifetime
		{"503 nothing", get(), 503, dated(), Options{}, false, ReasonError},
		{"503 DefaultTTL not enough", get(), 503, dated(), errTTL, false, ReasonError},
		{"503 max-age", get(), 503, dated("Cache-Control", "max-age=5"), Options{}, true, ""},
		{"503 max-age=0", get(), 503, dated("Cache-Control", "max-age=0"), Options{}, false, ReasonError},
		{"503 Expires 0", get(), 503, dated("Expires", "0"), Options{}, false, ReasonError},
		{"503 malformed max-age", get(), 503, dated("Cache-Control", "max-age=5s"), Options{}, false, ReasonError},
		{"502 Expires", get(), 502, dated("Expires", httpDate(t0.Add(time.Minute))), Options{}, true, ""},
		{"501 heuristic not enough", get(), 501, dated("Last-Modified", old), Options{}, false, ReasonError},
		{"429 nothing", get(), 429, dated("ETag", `"a"`), errTTL, false, ReasonError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason := Storable(tc.req, tc.status, tc.h, tc.opt)
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("Storable = %v %q, want %v %q", ok, reason, tc.ok, tc.reason)
			}
		})
	}
}

func TestRemoveHopByHop(t *testing.T) {
	// RFC 9110 §7.6.1: the fixed set plus the fields Connection names
	h := hdr(
		"Connection", "keep-alive, X-Trace", "Connection", " x-debug ,",
		"Keep-Alive", "timeout=5", "Proxy-Connection", "keep-alive", "Transfer-Encoding", "chunked",
		"Te", "trailers", "Trailer", "X-Sum", "Upgrade", "h2c",
		"Proxy-Authenticate", "Basic", "Proxy-Authorization", "Basic eA==",
		"X-Trace", "1", "X-Debug", "2",
		"Content-Type", "text/plain", "Cache-Control", "max-age=1", "ETag", `"e"`,
	)
	RemoveHopByHop(h)
	var got []string
	for k := range h {
		got = append(got, k)
	}
	sort.Strings(got)
	want := []string{"Cache-Control", "Content-Type", "Etag"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

func TestHeaderToStore(t *testing.T) {
	h := hdr("Cache-Control", "max-age=60", "Set-Cookie", "a=1", "Connection", "close", "Content-Type", "text/plain")
	// RFC 9111 §3.1: hop-by-hop fields are not stored; Set-Cookie kept unless stripping
	kept := HeaderToStore(h, Options{})
	if kept.Get("Connection") != "" || kept.Get("Set-Cookie") != "a=1" || kept.Get("Content-Type") != "text/plain" {
		t.Errorf("HeaderToStore(no strip) = %v", kept)
	}
	stripped := HeaderToStore(h, Options{StripSetCookie: true})
	if stripped.Get("Set-Cookie") != "" || stripped.Get("Cache-Control") != "max-age=60" {
		t.Errorf("HeaderToStore(strip) = %v", stripped)
	}
	if h.Get("Set-Cookie") == "" || h.Get("Connection") == "" {
		t.Errorf("HeaderToStore modified its argument: %v", h)
	}
}
