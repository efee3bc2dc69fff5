package policy

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCapFreshness: the rewritten header, and what every rule of this package then makes of
// it — the edge relies on the latter (live manifests: a lifetime of at most half a target
// duration, stale at most one target duration, whatever the origin or the defaults say).
func TestCapFreshness(t *testing.T) {
	s := time.Second
	defaults := Options{DefaultStaleWhileRevalidate: time.Hour, DefaultStaleIfError: time.Hour}
	for _, tc := range []struct {
		name     string
		kv       []string // response fields (Date is t0)
		opt      Options
		maxAge   time.Duration
		maxStale time.Duration
		wantCC   string // Cache-Control after
		wantCDN  string // CDN-Cache-Control after ("" = absent)
		life     time.Duration
		swr, sie time.Duration // the windows Reuse / CanServeStaleOnError then allow
	}{
		// RFC 9111 §5.2.2.1 max-age: lowered; §5.2.2.10 s-maxage takes over for shared caches.
		{name: "max-age above the cap", kv: []string{"Cache-Control", "max-age=60"}, maxAge: s, maxStale: 2 * s,
			wantCC: "max-age=1, s-maxage=1", life: s},
		{name: "max-age below the cap kept", kv: []string{"Cache-Control", "public, max-age=1"}, maxAge: 3 * s, maxStale: 6 * s,
			wantCC: "public, max-age=1, s-maxage=1", life: s},
		// §5.2.2.10: the origin's own s-maxage is replaced (capped).
		{name: "s-maxage above the cap", kv: []string{"Cache-Control", "max-age=0, s-maxage=30"}, maxAge: 2 * s, maxStale: 4 * s,
			wantCC: "max-age=0, s-maxage=2", life: 2 * s},
		// RFC 5861 §3, §4: the origin's windows capped at one target duration.
		{name: "origin windows capped", kv: []string{"Cache-Control", "max-age=10, stale-while-revalidate=60, stale-if-error=86400"},
			maxAge: 3 * s, maxStale: 6 * s,
			wantCC: "max-age=3, s-maxage=3, stale-while-revalidate=6, stale-if-error=6", life: 3 * s, swr: 6 * s, sie: 6 * s},
		{name: "origin windows below the cap kept", kv: []string{"Cache-Control", "max-age=10, stale-if-error=2"},
			maxAge: 3 * s, maxStale: 6 * s, wantCC: "max-age=3, s-maxage=3, stale-if-error=2", life: 3 * s, sie: 2 * s},
		// §4.2.4 (the "out-of-band" defaults): made explicit, capped — s-maxage would stop them.
		{name: "default windows made explicit and capped", kv: []string{"Cache-Control", "max-age=60"}, opt: defaults,
			maxAge: s, maxStale: 2 * s, wantCC: "max-age=1, s-maxage=1, stale-while-revalidate=2, stale-if-error=2", life: s, swr: 2 * s, sie: 2 * s},
		// §4.2.4, §5.2.2.2: must-revalidate allows no stale at all; it stays.
		{name: "must-revalidate", kv: []string{"Cache-Control", "max-age=60, must-revalidate, stale-if-error=60"}, opt: defaults,
			maxAge: s, maxStale: 2 * s, wantCC: "max-age=1, must-revalidate, s-maxage=1", life: s},
		// §5.3 Expires (no max-age): s-maxage caps it, Expires stays for old caches.
		{name: "Expires", kv: []string{"Expires", httpDate(t0.Add(time.Hour))}, maxAge: 2 * s, maxStale: 4 * s,
			wantCC: "s-maxage=2", life: 2 * s},
		// §4.2.2: a heuristic lifetime is capped too.
		{name: "heuristic", kv: []string{"Last-Modified", httpDate(t0.Add(-100 * time.Hour))}, maxAge: 2 * s, maxStale: 4 * s,
			wantCC: "s-maxage=2", life: 2 * s},
		// §4.2.1: malformed freshness stays (it only makes the response stricter): stale.
		{name: "malformed max-age", kv: []string{"Cache-Control", "max-age=soon, stale-if-error=60"}, opt: defaults,
			maxAge: 2 * s, maxStale: 4 * s, wantCC: "max-age=soon, s-maxage=0"},
		// RFC 9213 §2.2: CDN-Cache-Control in force is rewritten; Cache-Control only lowered.
		{name: "CDN-Cache-Control", kv: []string{"Cdn-Cache-Control", "max-age=60, stale-while-revalidate=600", "Cache-Control", "max-age=5, stale-if-error=9"},
			opt: defaults, maxAge: 2 * s, maxStale: 4 * s,
			wantCDN: "s-maxage=2, stale-while-revalidate=4, stale-if-error=4", wantCC: "max-age=2, stale-if-error=4", life: 2 * s, swr: 4 * s, sie: 4 * s},
		// Sub-second caps: HTTP lifetimes are whole seconds, rounded down.
		{name: "sub-second cap", kv: []string{"Cache-Control", "max-age=60"}, maxAge: 1500 * time.Millisecond, maxStale: 900 * time.Millisecond,
			wantCC: "max-age=1, s-maxage=1", life: s},
		// Not stored at all: left alone.
		{name: "no-store", kv: []string{"Cache-Control", "no-store, max-age=60"}, maxAge: s, maxStale: s, wantCC: "no-store, max-age=60"},
		{name: "private", kv: []string{"Cache-Control", "private, max-age=60"}, maxAge: s, maxStale: s, wantCC: "private, max-age=60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr(append([]string{"Date", httpDate(t0)}, tc.kv...)...)
			CapFreshness(200, h, t0, tc.opt, tc.maxAge, tc.maxStale)
			if got := strings.Join(h.Values("Cache-Control"), ", "); got != tc.wantCC {
				t.Errorf("Cache-Control %q, want %q", got, tc.wantCC)
			}
			if got := strings.Join(h.Values("Cdn-Cache-Control"), ", "); got != tc.wantCDN {
				t.Errorf("CDN-Cache-Control %q, want %q", got, tc.wantCDN)
			}
			if tc.name == "no-store" || tc.name == "private" {
				return
			}
			if life, _ := Lifetime(200, h, t0, tc.opt); life != tc.life {
				t.Errorf("lifetime %v, want %v", life, tc.life)
			}
			st := Stored{Status: 200, Header: h, RequestTime: t0, ResponseTime: t0}
			get := &http.Request{Method: http.MethodGet, Header: http.Header{}}
			// The last instant each stale use is allowed, and the first it is not.
			if tc.swr > 0 && Reuse(get, st, t0.Add(tc.life+tc.swr), tc.opt) != StaleWhileRevalidate {
				t.Errorf("stale-while-revalidate refused within %v", tc.swr)
			}
			if v := Reuse(get, st, t0.Add(tc.life+tc.swr+s), tc.opt); v == StaleWhileRevalidate || v == Fresh {
				t.Errorf("served (%v) %v past the lifetime", v, tc.swr+s)
			}
			if tc.sie > 0 && !CanServeStaleOnError(st, t0.Add(tc.life+tc.sie), tc.opt) {
				t.Errorf("stale-if-error refused within %v", tc.sie)
			}
			if CanServeStaleOnError(st, t0.Add(tc.life+tc.sie+s), tc.opt) {
				t.Errorf("stale-if-error allowed %v past the lifetime", tc.sie+s)
			}
			// §5.2.1.2: a client's max-stale gets nothing more (s-maxage, §5.2.2.10).
			anyStale := &http.Request{Method: http.MethodGet, Header: http.Header{"Cache-Control": {"max-stale"}}}
			if v := Reuse(anyStale, st, t0.Add(tc.life+tc.swr+s), tc.opt); v == StaleAllowed {
				t.Error("max-stale honoured past the cap")
			}
			// Idempotent: capping again changes nothing.
			before := h.Clone()
			if CapFreshness(200, h, t0, tc.opt, tc.maxAge, tc.maxStale) {
				t.Errorf("second application changed %v into %v", before, h)
			}
		})
	}
}

func FuzzCapFreshness(f *testing.F) {
	f.Add("max-age=60, stale-while-revalidate=30", "", int64(2), int64(4))
	f.Add(`no-cache="a,b", max-age="5"`, "max-age=9, s-maxage=\"x\"", int64(0), int64(1))
	f.Fuzz(func(t *testing.T, cc, cdn string, maxAge, maxStale int64) {
		maxAge, maxStale = maxAge%100, maxStale%100
		h := http.Header{"Date": {httpDate(t0)}}
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		if cdn != "" {
			h.Set("Cdn-Cache-Control", cdn)
		}
		opt := Options{DefaultStaleWhileRevalidate: time.Hour, DefaultStaleIfError: time.Hour}
		if ok, _ := Storable(&http.Request{Method: http.MethodGet, Header: http.Header{}}, 200, h, opt); !ok {
			return
		}
		capAge, capStale := time.Duration(max(maxAge, 0))*time.Second, time.Duration(max(maxStale, 0))*time.Second
		CapFreshness(200, h, t0, opt, capAge, capStale)
		check := func() {
			life, _ := Lifetime(200, h, t0, opt)
			if life > capAge {
				t.Fatalf("lifetime %v > %v: %v", life, capAge, h)
			}
			st := Stored{Status: 200, Header: h, RequestTime: t0, ResponseTime: t0}
			after := t0.Add(life + capStale + time.Second)
			req := &http.Request{Method: http.MethodGet, Header: http.Header{"Cache-Control": {"max-stale"}}}
			if v := Reuse(req, st, after, opt); v == Fresh || v == StaleAllowed || v == StaleWhileRevalidate {
				t.Fatalf("%v after the stale bound: %v", v, h)
			}
			if CanServeStaleOnError(st, after, opt) {
				t.Fatalf("stale-if-error after the bound: %v", h)
			}
		}
		check()
		// Applied again (the edge does after a 304), it stays within the bounds. (It is
		// idempotent on sane fields, TestCapFreshness; a directive the parser finds inside a
		// piece with spaces, "0 stale-if-error=9", is not removed, and ours then conflicts
		// with it — which makes the window invalid, 0: only stricter.)
		CapFreshness(200, h, t0, opt, capAge, capStale)
		check()
	})
}
