package edge

import (
	"net/http"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
)

// TestDecide checks the decide phase against the RFC rules it applies: what a request may be
// answered with, given what is stored for it and its age.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	stored := func(cc string, age time.Duration, softPurged ...bool) *cached {
		at := now.Add(-age)
		h := http.Header{"Date": {at.Format(http.TimeFormat)}, "Cache-Control": {cc}}
		o := withFreshness(&store.Object{Status: http.StatusOK, Header: h, RequestTime: at, ResponseTime: at,
			Body: []byte("body"), Invalidated: len(softPurged) > 0 && softPurged[0]}, policy.Options{})
		return fromMemory(o)
	}
	for _, c := range []struct {
		name    string
		rfc     string
		reqCC   string
		obj     *cached
		want    verdict
		fwd     string
		age     time.Duration // verdictFresh
		refused string        // verdictRefuse
	}{
		{name: "nothing stored", rfc: "RFC 9111 §4", want: verdictFill, fwd: cachestatus.FwdURIMiss},
		{name: "nothing stored, only-if-cached", rfc: "RFC 9111 §5.2.1.7", reqCC: "only-if-cached",
			want: verdictRefuse, refused: "not in cache (only-if-cached)"},
		{name: "fresh", rfc: "RFC 9111 §4.2", obj: stored("max-age=60", 10*time.Second),
			want: verdictFresh, age: 10 * time.Second},
		{name: "fresh, request max-stale", rfc: "RFC 9111 §4.2 (the request's directives are evaluated)",
			reqCC: "max-stale=5", obj: stored("max-age=60", 10*time.Second), want: verdictHit},
		{name: "fresh, request no-cache", rfc: "RFC 9111 §5.2.1.4", reqCC: "no-cache",
			obj: stored("max-age=60", 10*time.Second), want: verdictRevalidate, fwd: cachestatus.FwdRequest},
		{name: "fresh but older than the request's max-age", rfc: "RFC 9111 §5.2.1.1", reqCC: "max-age=5",
			obj: stored("max-age=60", 10*time.Second), want: verdictRevalidate, fwd: cachestatus.FwdRequest},
		{name: "stale", rfc: "RFC 9111 §4.2, §4.3", obj: stored("max-age=60", 100*time.Second),
			want: verdictRevalidate, fwd: cachestatus.FwdStale},
		{name: "stale within the request's max-stale", rfc: "RFC 9111 §5.2.1.2", reqCC: "max-stale=60",
			obj: stored("max-age=60", 100*time.Second), want: verdictHit},
		{name: "stale within stale-while-revalidate", rfc: "RFC 5861 §3",
			obj: stored("max-age=60, stale-while-revalidate=60", 100*time.Second), want: verdictStaleRefresh},
		{name: "stale beyond stale-while-revalidate", rfc: "RFC 5861 §3",
			obj: stored("max-age=60, stale-while-revalidate=10", 100*time.Second), want: verdictRevalidate, fwd: cachestatus.FwdStale},
		{name: "stale, only-if-cached", rfc: "RFC 9111 §5.2.1.7", reqCC: "only-if-cached",
			obj: stored("max-age=60", 100*time.Second), want: verdictRefuse, refused: "stored response is stale (only-if-cached)"},
		{name: "fresh but soft-purged", rfc: "soft purge: revalidate before reuse",
			obj: stored("max-age=60", 10*time.Second, true), want: verdictRevalidate, fwd: cachestatus.FwdStale},
		{name: "no-cache response", rfc: "RFC 9111 §5.2.2.4", obj: stored("no-cache", time.Second),
			want: verdictRevalidate, fwd: cachestatus.FwdStale},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://example.com/a", nil)
			if c.reqCC != "" {
				r.Header.Set("Cache-Control", c.reqCC)
			}
			res := lookupResult{key: "example.com/a", obj: c.obj, fwd: cachestatus.FwdURIMiss}
			d := decide(r, &res, now)
			if d.verdict != c.want || d.fwd != c.fwd || d.reason != c.refused {
				t.Fatalf("%s: verdict %d fwd %q reason %q, want %d %q %q", c.rfc, d.verdict, d.fwd, d.reason, c.want, c.fwd, c.refused)
			}
			if c.want == verdictFresh && (d.age != c.age || d.ttl != 60*time.Second-c.age) {
				t.Fatalf("%s: age %v ttl %v, want %v and %v", c.rfc, d.age, d.ttl, c.age, 60*time.Second-c.age)
			}
		})
	}
}

// TestPassReason checks the pass phase: what goes to the origin without the cache answering.
func TestPassReason(t *testing.T) {
	bypass, none, forward := &ruling{bypass: true}, &ruling{}, &ruling{client: clientDirectives{forwardPreconditions: true}}
	for _, c := range []struct {
		name, method, header, value string
		rule                        *ruling
		want                        string
	}{
		{"GET", http.MethodGet, "", "", nil, ""},
		{"HEAD", http.MethodHead, "", "", nil, ""},
		{"POST: unsafe (RFC 9111 §4.4)", http.MethodPost, "", "", nil, cachestatus.FwdMethod},
		{"OPTIONS: not cacheable here", http.MethodOptions, "", "", nil, cachestatus.FwdMethod},
		{"bypass rule", http.MethodGet, "", "", bypass, cachestatus.FwdBypass},
		// RFC 9110 §13.1.1, §13.1.4: a cache may ignore them (keyedView takes them out)...
		{"If-Match, ignored", http.MethodGet, "If-Match", `"a"`, nil, ""},
		{"If-Unmodified-Since, ignored", http.MethodHead, "If-Unmodified-Since", "Sun, 06 Dec 2026 12:00:00 GMT", nil, ""},
		// ... or forward them: the origin's to evaluate (RFC 9111 §4.3.2).
		{"If-Match, forwarded", http.MethodGet, "If-Match", `"a"`, forward, cachestatus.FwdRequest},
		{"If-Unmodified-Since, forwarded", http.MethodGet, "If-Unmodified-Since", "Sun, 06 Dec 2026 12:00:00 GMT", forward, cachestatus.FwdRequest},
		{"If-None-Match: the cache answers it (RFC 9111 §4.3.2)", http.MethodGet, "If-None-Match", `"a"`, nil, ""},
	} {
		r, _ := http.NewRequest(c.method, "http://example.com/api/x", nil)
		if c.header != "" {
			r.Header.Set(c.header, c.value)
		}
		if c.rule == nil {
			c.rule = none
		}
		if got := passReason(r, c.rule); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
