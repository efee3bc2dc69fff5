package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestTTLControls: each lifetime control (default_ttl, min_ttl, max_ttl, max_negative_ttl,
// browser_ttl; config_ttl.go, policy.Lifetime's story) through a real edge in front of a real
// loopback origin that sends what origins send. The edge's clock and the origin's Date are one
// fake clock moved by each step, so Age is exact: every step checks the status, whether
// Cache-Status says hit, the Cache-Control and Age the client receives, and how many requests
// the origin has had by then.
func TestTTLControls(t *testing.T) {
	type step struct {
		at     time.Duration // on the fake clock, from the first request
		hdr    []string      // request fields
		status int
		hit    bool
		cs     string // in Cache-Status too, when set
		cc     string // the Cache-Control the client receives ("" = none)
		age    string // the Age the client receives ("" = none)
		origin int64  // the origin's requests so far
	}
	const s, m, h = time.Second, time.Minute, time.Hour
	silent := func(status int, kv ...string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(kv); i += 2 {
				w.Header().Set(kv[i], kv[i+1])
			}
			w.WriteHeader(status)
			io.WriteString(w, "body")
		}
	}
	withETag := func(cc string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", cc)
			w.Header().Set("ETag", `"v1"`)
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			io.WriteString(w, "body")
		}
	}
	for _, tc := range []struct {
		name   string
		cache  func(*Policy)
		rules  []Rule
		origin func(http.ResponseWriter, *http.Request)
		steps  []step
	}{
		{
			name:   "silent origin, default_ttl 200: 1h",
			cache:  func(p *Policy) { p.DefaultTTL = map[int]time.Duration{200: h} },
			origin: silent(200),
			steps: []step{
				{at: 0, status: 200, origin: 1},
				{at: 59 * m, status: 200, hit: true, age: "3540", origin: 1},
				{at: 61 * m, status: 200, origin: 2},
			},
		},
		{
			name:   "silent origin, no default: not stored (nothing to reuse or revalidate)",
			origin: silent(200),
			steps: []step{
				{at: 0, status: 200, origin: 1},
				{at: 0, status: 200, cs: "fwd=uri-miss", origin: 2},
			},
		},
		{
			name:   "default_ttl beats the Last-Modified heuristic (10% of 100h)",
			cache:  func(p *Policy) { p.DefaultTTL = map[int]time.Duration{200: m} },
			origin: silent(200, "Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
			steps: []step{
				{at: 0, status: 200, origin: 1},
				{at: 50 * s, status: 200, hit: true, age: "50", origin: 1},
				{at: 61 * s, status: 200, cs: "fwd=stale", origin: 2},
			},
		},
		{
			name:   "max-age too long, max_ttl 1m",
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{MaxTTL: m}}},
			origin: silent(200, "Cache-Control", "max-age=86400"),
			steps: []step{
				{at: 0, status: 200, cc: "max-age=86400", origin: 1},
				{at: 30 * s, status: 200, hit: true, cc: "max-age=86400", age: "30", origin: 1},
				{at: 61 * s, status: 200, cc: "max-age=86400", origin: 2},
			},
		},
		{
			name:   "max-age too short, min_ttl 1m",
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{MinTTL: m}}},
			origin: silent(200, "Cache-Control", "max-age=5"),
			steps: []step{
				{at: 0, status: 200, cc: "max-age=5", origin: 1},
				{at: 30 * s, status: 200, hit: true, cc: "max-age=5", age: "30", origin: 1},
				{at: 61 * s, status: 200, cc: "max-age=5", origin: 2},
			},
		},
		{
			name:   "max-age too short, no min_ttl",
			origin: silent(200, "Cache-Control", "max-age=5"),
			steps: []step{
				{at: 0, status: 200, cc: "max-age=5", origin: 1},
				{at: 4 * s, status: 200, hit: true, cc: "max-age=5", age: "4", origin: 1},
				{at: 6 * s, status: 200, cc: "max-age=5", origin: 2},
			},
		},
		{
			name:   "404 with max-age=3600: max_negative_ttl (10s)",
			origin: silent(404, "Cache-Control", "max-age=3600"),
			steps: []step{
				{at: 0, status: 404, cc: "max-age=3600", origin: 1},
				{at: 9 * s, status: 404, hit: true, cc: "max-age=3600", age: "9", origin: 1},
				{at: 11 * s, status: 404, cc: "max-age=3600", origin: 2},
			},
		},
		{
			name:   "404 with max-age=3600, max_negative_ttl 0: revalidated every time",
			cache:  func(p *Policy) { p.MaxNegativeTTL = 0 },
			origin: silent(404, "Cache-Control", "max-age=3600"),
			steps: []step{
				{at: 0, status: 404, cc: "max-age=3600", origin: 1},
				{at: 0, status: 404, cs: "fwd=stale", cc: "max-age=3600", origin: 2},
			},
		},
		{
			name:   "silent 404: the cache's default_ttl entry under a rule that sets only 200's",
			cache:  func(p *Policy) { p.DefaultTTL = map[int]time.Duration{404: 5 * s} },
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{DefaultTTL: map[int]time.Duration{200: h}}}},
			origin: silent(404),
			steps: []step{
				{at: 0, status: 404, origin: 1},
				{at: 4 * s, status: 404, hit: true, age: "4", origin: 1},
				{at: 6 * s, status: 404, origin: 2},
			},
		},
		{
			name:   "silent 302, default_ttl 302: 5m",
			cache:  func(p *Policy) { p.DefaultTTL = map[int]time.Duration{302: 5 * m} },
			origin: silent(302, "Location", "/elsewhere"),
			steps: []step{
				{at: 0, status: 302, origin: 1},
				{at: 4 * m, status: 302, hit: true, age: "240", origin: 1},
				{at: 6 * m, status: 302, origin: 2},
			},
		},
		{
			name:   "silent 302, no default: not stored (RFC 9111 §4.2.2)",
			origin: silent(302, "Location", "/elsewhere"),
			steps: []step{
				{at: 0, status: 302, origin: 1},
				{at: 0, status: 302, origin: 2},
			},
		},
		{
			name:   "500 with max-age=3600: max_error_ttl (10s)",
			cache:  func(p *Policy) { p.DefaultTTL = map[int]time.Duration{200: h} },
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{MinTTL: h}}},
			origin: silent(500, "Cache-Control", "max-age=3600"),
			steps: []step{
				{at: 0, status: 500, cc: "max-age=3600", origin: 1},
				{at: 9 * s, status: 500, hit: true, cc: "max-age=3600", age: "9", origin: 1},
				{at: 11 * s, status: 500, cc: "max-age=3600", origin: 2},
			},
		},
		{
			name:   "silent 503: never stored",
			cache:  func(p *Policy) { p.DefaultTTL = map[int]time.Duration{200: h, 404: 5 * s} },
			origin: silent(503),
			steps: []step{
				{at: 0, status: 503, origin: 1},
				{at: 0, status: 503, origin: 2},
			},
		},
		{
			name:   "no-cache, min_ttl 1h: still revalidated every time",
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{MinTTL: h}}},
			origin: withETag("no-cache"),
			steps: []step{
				{at: 0, status: 200, cc: "no-cache", origin: 1},
				{at: 0, status: 200, cs: "fwd-status=304", cc: "no-cache", origin: 2},
				{at: 1 * s, status: 200, cs: "fwd-status=304", cc: "no-cache", origin: 3},
			},
		},
		{
			name:   "max-age=0 (zero-TTL caching): stored, revalidated every time",
			origin: withETag("max-age=0"),
			steps: []step{
				{at: 0, status: 200, cc: "max-age=0", origin: 1},
				{at: 0, status: 200, cs: "fwd-status=304", cc: "max-age=0", origin: 2},
				{at: 1 * s, status: 200, cs: "fwd-status=304", cc: "max-age=0", origin: 3},
			},
		},
		{
			name:   "browser_ttl 1m under a day at the edge: max-age = Age + 60",
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{BrowserTTL: ptr(m)}}},
			origin: silent(200, "Cache-Control", "public, max-age=86400", "Expires", "Thu, 01 Jan 2099 00:00:00 GMT"),
			steps: []step{
				{at: 0, status: 200, cc: "public, max-age=60", origin: 1},
				{at: 100 * s, status: 200, hit: true, cc: "public, max-age=160", age: "100", origin: 1},
				{at: 2 * h, status: 200, hit: true, cc: "public, max-age=7260", age: "7200", origin: 1},
				{at: 2 * h, hdr: []string{"If-None-Match", "*"}, status: 304, hit: true, cc: "public, max-age=7260", age: "7200", origin: 1},
			},
		},
		{
			name:   "browser_ttl 1h over a silent origin's default_ttl 1m",
			cache:  func(p *Policy) { p.DefaultTTL = map[int]time.Duration{200: m} },
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{BrowserTTL: ptr(h)}}},
			origin: silent(200),
			steps: []step{
				{at: 0, status: 200, cc: "max-age=3600", origin: 1},
				{at: 30 * s, status: 200, hit: true, cc: "max-age=3630", age: "30", origin: 1},
				{at: 61 * s, status: 200, cc: "max-age=3600", origin: 2},
			},
		},
		{
			name:   "browser_ttl leaves a 404 and no-store alone",
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{BrowserTTL: ptr(h)}}},
			origin: silent(404, "Cache-Control", "max-age=30"),
			steps: []step{
				{at: 0, status: 404, cc: "max-age=30", origin: 1},
				{at: 5 * s, status: 404, hit: true, cc: "max-age=30", age: "5", origin: 1},
			},
		},
		{
			name:   "browser_ttl leaves no-store alone",
			rules:  []Rule{{PathPrefix: "/", RuleTTLs: RuleTTLs{BrowserTTL: ptr(h)}}},
			origin: silent(200, "Cache-Control", "no-store"),
			steps: []step{
				{at: 0, status: 200, cc: "no-store", origin: 1},
				{at: 0, status: 200, cc: "no-store", origin: 2},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := time.Now().Truncate(time.Second)
			var shift atomic.Int64
			clock := func() time.Time { return base.Add(time.Duration(shift.Load())) }
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Date", clock().UTC().Format(http.TimeFormat))
				tc.origin(w, r)
			})
			e, srv := newEdge(t, o.URL, func(c *Config) {
				c.Limits.ErrorHold = 0 // a held 5xx is shared for a moment: here, is it stored?
				c.Rules = tc.rules
				if tc.cache != nil {
					tc.cache(&c.Cache)
				}
			})
			e.now = clock
			for i, st := range tc.steps {
				// The previous step's fill is over (a request arriving while it retires would
				// join it, collapsed, and not ask the origin itself).
				waitUntil(t, func() bool { return e.fills.Len() == 0 })
				shift.Store(int64(st.at))
				r := get(t, srv.URL+"/obj", st.hdr...)
				cs := r.cacheStatus()
				where := fmt.Sprintf("step %d (at %v)", i, st.at)
				if r.status != st.status {
					t.Errorf("%s: status %d, want %d", where, r.status, st.status)
				}
				if got := strings.Contains(cs, "; hit"); got != st.hit || !strings.Contains(cs, st.cs) {
					t.Errorf("%s: Cache-Status %q, want hit %v and %q", where, cs, st.hit, st.cs)
				}
				if got := strings.Join(r.header.Values("Cache-Control"), ", "); got != st.cc {
					t.Errorf("%s: Cache-Control %q, want %q", where, got, st.cc)
				}
				if got := r.header.Get("Age"); got != st.age {
					t.Errorf("%s: Age %q, want %q", where, got, st.age)
				}
				if st.cc != "" && strings.Contains(st.cc, "public") && r.header.Get("Expires") != "" {
					t.Errorf("%s: Expires %q sent beside the browser TTL", where, r.header.Get("Expires"))
				}
				if n := o.hits.Load(); n != st.origin {
					t.Errorf("%s: origin asked %d times, want %d", where, n, st.origin)
				}
			}
		})
	}
}
