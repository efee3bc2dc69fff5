package policy

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// hdr builds a header from name/value pairs; repeated names add field lines.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestLifetime(t *testing.T) {
	dated := func(kv ...string) http.Header { return hdr(append([]string{"Date", httpDate(t0)}, kv...)...) }
	for _, tc := range []struct {
		name   string
		status int
		h      http.Header
		opt    Options
		want   time.Duration
		src    string
	}{
		// RFC 9111 §5.2.2.1
		{"max-age", 200, dated("Cache-Control", "max-age=60"), Options{}, 60 * time.Second, "max-age"},
		// RFC 9111 §5.2 (names are case-insensitive)
		{"upper-case name", 200, dated("Cache-Control", "Public, MAX-AGE=60"), Options{}, 60 * time.Second, "max-age"},
		// RFC 9111 §5.2 (recipients accept the quoted form)
		{"quoted max-age", 200, dated("Cache-Control", `max-age="60"`), Options{}, 60 * time.Second, "max-age"},
		// RFC 9111 §5.2.2.10: s-maxage overrides max-age in a shared cache
		{"s-maxage over max-age", 200, dated("Cache-Control", "max-age=60, s-maxage=120"), Options{}, 120 * time.Second, "s-maxage"},
		// RFC 9111 §5.3: max-age makes Expires ignored
		{"max-age over Expires", 200, dated("Cache-Control", "max-age=60", "Expires", httpDate(t0.Add(time.Hour))), Options{}, 60 * time.Second, "max-age"},
		// RFC 9111 §5.3: s-maxage makes Expires ignored in a shared cache
		{"s-maxage over Expires", 200, dated("Cache-Control", "s-maxage=5", "Expires", httpDate(t0.Add(time.Hour))), Options{}, 5 * time.Second, "s-maxage"},
		// RFC 9213 §2.2: a valid CDN-Cache-Control wins over Cache-Control
		{"CDN-Cache-Control over s-maxage", 200, dated("Cache-Control", "s-maxage=10, max-age=5", "CDN-Cache-Control", "max-age=300"), Options{}, 300 * time.Second, "cdn-max-age"},
		// RFC 9213 §2.2: ... and Expires is ignored with it
		{"CDN-Cache-Control silences Expires", 200, dated("CDN-Cache-Control", "public", "Expires", httpDate(t0.Add(time.Hour))), Options{}, 0, "none"},
		// RFC 9213 §2.1, §3.1: an unknown-only targeted field is still valid and non-empty
		{"CDN-Cache-Control none", 200, dated("CDN-Cache-Control", "none", "Cache-Control", "max-age=60"), Options{}, 0, "none"},
		// RFC 9213 §2.1: a targeted field that fails to parse is ignored
		{"CDN-Cache-Control unparsable", 200, dated("CDN-Cache-Control", "max-age=60,", "Cache-Control", "max-age=10"), Options{}, 10 * time.Second, "max-age"},
		// RFC 9213 §2.2: an empty targeted field is ignored
		{"CDN-Cache-Control empty", 200, dated("CDN-Cache-Control", " ", "Cache-Control", "max-age=10"), Options{}, 10 * time.Second, "max-age"},
		// RFC 9213 §2.1: a Decimal max-age is not coerced: unusable, so stale
		{"CDN-Cache-Control decimal", 200, dated("CDN-Cache-Control", "max-age=1.5", "Cache-Control", "max-age=10"), Options{}, 0, "invalid"},
		// RFC 9213 §2.1: s-maxage applies in the targeted field too
		{"CDN-Cache-Control s-maxage", 200, dated("CDN-Cache-Control", "max-age=30, s-maxage=90"), Options{}, 90 * time.Second, "cdn-s-maxage"},
		// RFC 9111 §1.2.2 via RFC 9213 §2.1: a large Integer is taken as 2^31
		{"CDN-Cache-Control huge", 200, dated("CDN-Cache-Control", "max-age=999999999999999"), Options{}, (1 << 31) * time.Second, "cdn-max-age"},
		// RFC 9111 §4.2.1: Expires − Date
		{"Expires minus Date", 200, dated("Expires", httpDate(t0.Add(time.Hour))), Options{}, time.Hour, "expires"},
		// RFC 9111 §4.2.1: Date missing → time of receipt
		{"Expires without Date", 200, hdr("Expires", httpDate(t0.Add(30*time.Minute))), Options{}, 30 * time.Minute, "expires"},
		// RFC 9111 §4.2.1 + RFC 9110 §6.6.1: invalid Date treated as missing
		{"Expires with invalid Date", 200, hdr("Date", "yesterday", "Expires", httpDate(t0.Add(30*time.Minute))), Options{}, 30 * time.Minute, "expires"},
		// RFC 9111 §5.3: "0" means already expired
		{"Expires 0", 200, dated("Expires", "0", "Last-Modified", httpDate(t0.Add(-100*time.Hour))), Options{}, 0, "expires"},
		// RFC 9111 §5.3: a date in the past
		{"Expires past", 200, dated("Expires", httpDate(t0.Add(-time.Hour))), Options{}, 0, "expires"},
		// RFC 9111 §4.2.1: two different Expires → stale
		{"Expires twice", 200, dated("Expires", httpDate(t0.Add(time.Hour)), "Expires", httpDate(t0.Add(2*time.Hour))), Options{}, 0, "invalid"},
		// RFC 9111 §4.2.1: repeating the same value is harmless
		{"Expires twice same", 200, dated("Expires", httpDate(t0.Add(time.Hour)), "Expires", httpDate(t0.Add(time.Hour))), Options{}, time.Hour, "expires"},
		// RFC 9111 §4.2.1: non-integer max-age → stale, and Expires is not a fallback
		{"max-age not a number", 200, dated("Cache-Control", "max-age=abc", "Expires", httpDate(t0.Add(time.Hour))), Options{}, 0, "invalid"},
		// RFC 9111 §1.2.2: delta-seconds is a non-negative integer
		{"max-age negative", 200, dated("Cache-Control", "max-age=-1"), Options{}, 0, "invalid"},
		{"max-age empty", 200, dated("Cache-Control", "max-age="), Options{}, 0, "invalid"},
		{"max-age without value", 200, dated("Cache-Control", "max-age"), Options{}, 0, "invalid"},
		// RFC 9111 §4.2.1: conflicting duplicates → stale (across field lines too)
		{"max-age conflicting duplicates", 200, dated("Cache-Control", "max-age=60", "Cache-Control", "max-age=120"), Options{}, 0, "invalid"},
		{"max-age equal duplicates", 200, dated("Cache-Control", "max-age=60, max-age=60"), Options{}, 60 * time.Second, "max-age"},
		// RFC 9111 §4.2.1: a malformed s-maxage poisons the lifetime even with a good max-age
		{"s-maxage malformed", 200, dated("Cache-Control", "s-maxage=1x, max-age=60"), Options{}, 0, "invalid"},
		// RFC 9111 §5.2: a malformed unrelated directive does not hide a good max-age
		{"unrelated malformed directive", 200, dated("Cache-Control", `max-age=60, no-transform="x`), Options{}, 60 * time.Second, "max-age"},
		// RFC 9110 §5.6.4: a comma inside a quoted-string (with an escaped quote) does not split
		{"quoted comma", 200, dated("Cache-Control", `no-cache="a\", max-age=60"`), Options{}, 0, "none"},
		// RFC 9111 §1.2.2: too large → 2^31
		{"max-age huge", 200, dated("Cache-Control", "max-age=99999999999999"), Options{}, (math.MaxInt32 + 1) * time.Second, "max-age"},
		// RFC 9111 §4.2.2: 10% of Date − Last-Modified
		{"heuristic 10%", 200, dated("Last-Modified", httpDate(t0.Add(-50*time.Hour))), Options{}, 5 * time.Hour, "heuristic"},
		// RFC 9111 §4.2.2: capped
		{"heuristic capped", 200, dated("Last-Modified", httpDate(t0.Add(-1000*time.Hour))), Options{}, 24 * time.Hour, "heuristic"},
		{"heuristic custom cap", 200, dated("Last-Modified", httpDate(t0.Add(-1000*time.Hour))), Options{HeuristicMax: time.Hour}, time.Hour, "heuristic"},
		{"heuristic custom fraction", 200, dated("Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{HeuristicFraction: 0.5}, 5 * time.Hour, "heuristic"},
		{"heuristic disabled", 200, dated("Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{HeuristicFraction: -1}, 0, "none"},
		// RFC 9111 §4.2.2: measured from receipt when Date is missing
		{"heuristic without Date", 200, hdr("Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{}, time.Hour, "heuristic"},
		// RFC 9111 §4.2.2: nothing to base it on without Last-Modified
		{"heuristic needs Last-Modified", 200, dated(), Options{}, 0, "none"},
		// RFC 9111 §4.2.2: a Last-Modified in the future gives nothing
		{"heuristic Last-Modified future", 200, dated("Last-Modified", httpDate(t0.Add(time.Hour))), Options{}, 0, "heuristic"},
		// RFC 9111 §4.2.2: not when an explicit expiry is present
		{"no heuristic with Expires", 200, dated("Expires", httpDate(t0.Add(time.Minute)), "Last-Modified", httpDate(t0.Add(-1000*time.Hour))), Options{}, time.Minute, "expires"},
		// RFC 9111 §4.2.2, RFC 9110 §15.1: 302 is not heuristically cacheable...
		{"302 no heuristic", 302, dated("Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{}, 0, "none"},
		// ... unless marked public
		{"302 public heuristic", 302, dated("Cache-Control", "public", "Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{}, time.Hour, "heuristic"},
		// RFC 9111 §4.2.2 (our policy): no heuristic for errors; 404 gets the configured TTL
		{"404 no heuristic", 404, dated("Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{}, 0, "none"},
		{"404 DefaultTTL", 404, dated("Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{DefaultTTL: map[int]time.Duration{404: 10 * time.Second}}, 10 * time.Second, "default-ttl"},
		// RFC 9111 §4.2.1: explicit freshness beats the configured TTL
		{"404 explicit over DefaultTTL", 404, dated("Cache-Control", "max-age=8"), Options{DefaultTTL: map[int]time.Duration{404: 5 * time.Second}}, 8 * time.Second, "max-age"},
		{"410 not configured", 410, dated(), Options{DefaultTTL: map[int]time.Duration{404: 10 * time.Second}}, 0, "none"},
		// RFC 9111 §4.2.1 (our policy): DefaultTTL never applies to temporary errors
		{"503 DefaultTTL ignored", 503, dated(), Options{DefaultTTL: map[int]time.Duration{503: 10 * time.Second}}, 0, "none"},
		{"429 DefaultTTL ignored", 429, dated(), Options{DefaultTTL: map[int]time.Duration{429: 10 * time.Second}}, 0, "none"},
		// RFC 9111 §4.2.1 (our policy): 5xx with explicit freshness, capped
		{"503 capped", 503, dated("Cache-Control", "max-age=600"), Options{}, 10 * time.Second, "max-age;capped"},
		{"503 custom cap", 503, dated("Cache-Control", "max-age=600"), Options{MaxErrorTTL: 30 * time.Second}, 30 * time.Second, "max-age;capped"},
		{"503 under cap", 503, dated("Cache-Control", "max-age=5"), Options{}, 5 * time.Second, "max-age"},
		{"500 Expires capped", 500, dated("Expires", httpDate(t0.Add(time.Hour))), Options{}, 10 * time.Second, "expires;capped"},
		{"429 capped", 429, dated("Cache-Control", "max-age=600"), Options{}, 10 * time.Second, "max-age;capped"},
		// RFC 9110 §15.1: 501 is heuristically cacheable, but not as an error here
		{"501 no heuristic", 501, dated("Last-Modified", httpDate(t0.Add(-10*time.Hour))), Options{}, 0, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src := Lifetime(tc.status, tc.h, t0, tc.opt)
			if got != tc.want || src != tc.src {
				t.Errorf("Lifetime = %v %q, want %v %q", got, src, tc.want, tc.src)
			}
		})
	}
}

func TestCurrentAge(t *testing.T) {
	for _, tc := range []struct {
		name           string
		h              http.Header
		req, resp, now time.Time
		want           time.Duration
	}{
		// RFC 9111 §4.2.3: resident time only
		{"resident", hdr("Date", httpDate(t0)), t0, t0, t0.Add(10 * time.Second), 10 * time.Second},
		// RFC 9111 §4.2.3: age_value from an upstream cache's Age
		{"upstream Age", hdr("Date", httpDate(t0), "Age", "100"), t0, t0, t0.Add(5 * time.Second), 105 * time.Second},
		// RFC 9111 §4.2.3: corrected_age_value adds response_delay
		{"response delay", hdr("Date", httpDate(t0), "Age", "10"), t0.Add(-2 * time.Second), t0, t0.Add(5 * time.Second), 17 * time.Second},
		// RFC 9111 §4.2.3: apparent_age from Date
		{"apparent age", hdr("Date", httpDate(t0.Add(-30*time.Second))), t0, t0, t0.Add(5 * time.Second), 35 * time.Second},
		// RFC 9111 §4.2.3: the larger of apparent and corrected age
		{"max of both", hdr("Date", httpDate(t0.Add(-30*time.Second)), "Age", "10"), t0, t0, t0, 30 * time.Second},
		{"max of both, Age larger", hdr("Date", httpDate(t0.Add(-30*time.Second)), "Age", "50"), t0, t0, t0, 50 * time.Second},
		// RFC 9111 §4.2.3: apparent_age is never negative (Date in the future)
		{"Date in future", hdr("Date", httpDate(t0.Add(time.Hour))), t0, t0, t0.Add(7 * time.Second), 7 * time.Second},
		// RFC 9110 §6.6.1: Date missing → time of receipt
		{"Date missing", hdr(), t0, t0, t0.Add(3 * time.Second), 3 * time.Second},
		{"Date invalid", hdr("Date", "not a date"), t0, t0, t0.Add(3 * time.Second), 3 * time.Second},
		// RFC 9111 §5.1: surrounding whitespace
		{"Age with spaces", hdr("Date", httpDate(t0), "Age", " 20 "), t0, t0, t0, 20 * time.Second},
		// RFC 9111 §5.1, §1.2.2: too large → 2^31
		{"Age huge", hdr("Date", httpDate(t0), "Age", "99999999999999999999"), t0, t0, t0, (1 << 31) * time.Second},
		// RFC 9111 §5.1: an invalid Age is ignored (age from Date and resident time only)
		{"Age not a number", hdr("Date", httpDate(t0), "Age", "ten"), t0, t0, t0, 0},
		{"Age negative", hdr("Date", httpDate(t0), "Age", "-5"), t0, t0, t0.Add(time.Second), time.Second},
		// RFC 9111 §4.2.3: the first Age line is the one used
		{"Age two lines", hdr("Date", httpDate(t0), "Age", "5", "Age", "900"), t0, t0, t0, 5 * time.Second},
		// RFC 9111 §4.2.3: a clock stepping back never gives a negative resident time
		{"now before response", hdr("Date", httpDate(t0)), t0, t0, t0.Add(-time.Minute), 0},
		// RFC 9111 §4.2.3: request time unknown → no response delay
		{"request time unknown", hdr("Date", httpDate(t0), "Age", "4"), time.Time{}, t0, t0, 4 * time.Second},
		{"request after response", hdr("Date", httpDate(t0), "Age", "4"), t0.Add(time.Second), t0, t0, 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CurrentAge(tc.h, tc.req, tc.resp, tc.now); got != tc.want {
				t.Errorf("CurrentAge = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEnsureDate(t *testing.T) {
	// RFC 9110 §6.6.1: add a missing Date, may replace an invalid one, keep a valid one
	for _, tc := range []struct {
		name    string
		h       http.Header
		changed bool
		want    string
	}{
		{"missing", hdr(), true, httpDate(t0)},
		{"invalid", hdr("Date", "soon"), true, httpDate(t0)},
		{"valid", hdr("Date", httpDate(t0.Add(-time.Hour))), false, httpDate(t0.Add(-time.Hour))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changed := EnsureDate(tc.h, t0.In(time.FixedZone("X", 3600)))
			if changed != tc.changed || tc.h.Get("Date") != tc.want {
				t.Errorf("EnsureDate = %v, Date %q; want %v, %q", changed, tc.h.Get("Date"), tc.changed, tc.want)
			}
		})
	}
}

func TestParseSFDictionary(t *testing.T) {
	// RFC 8941 §4.2.2 (RFC 9213 §2.1 targeted fields are Dictionaries)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"max-age=60", true},
		{"max-age=60, no-store", true},
		{`private="set-cookie", max-age=0`, true},
		{"no-cache=(a b);p=1, x;y=?0", true},
		{"a=:aGVsbG8=:, b=tok/en, c=-12, d=1.125, e=?1", true},
		{"  max-age=60  ", true},
		{"max-age=60,", false},
		{"Max-Age=60", false},
		{"max-age=", false},
		{"max-age=1.2345", false},
		{"max-age=1234567890123456", false},
		{`a="unterminated`, false},
		{"a=(1 2", false},
		{"a=?2", false},
		{"a b", false},
	} {
		_, ok := parseSFDictionary(tc.in)
		if ok != tc.ok {
			t.Errorf("parseSFDictionary(%q) ok = %v, want %v", tc.in, ok, tc.ok)
		}
	}
	d, _ := parseSFDictionary("max-age=10, max-age=20, no-store=?0")
	if d["max-age"].num != 20 || d["no-store"].kind != sfBoolean || d["no-store"].b {
		t.Errorf("duplicate keys: last must win, got %+v", d)
	}
}

// TestTTLOverride: an operator's TTL replaces the origin's lifetime for non-errors only.
func TestTTLOverride(t *testing.T) {
	now := time.Now()
	h := http.Header{"Cache-Control": {"max-age=5"}, "Date": {now.UTC().Format(http.TimeFormat)}}
	if d, src := Lifetime(200, h, now, Options{TTL: time.Hour}); d != time.Hour || src != "override" {
		t.Errorf("200: %v %s", d, src)
	}
	if d, _ := Lifetime(503, http.Header{}, now, Options{TTL: time.Hour}); d != 0 {
		t.Errorf("503 got an override lifetime %v", d)
	}
	req := httptest.NewRequest("GET", "/", nil)
	if ok, _ := Storable(req, 200, http.Header{"Cache-Control": {"private"}}, Options{TTL: time.Hour}); ok {
		t.Error("TTL made a private response storable")
	}
	if ok, why := Storable(req, 200, http.Header{}, Options{TTL: time.Hour}); !ok {
		t.Errorf("TTL did not make a response without freshness storable: %s", why)
	}
}
