package policy

import (
	"net/http"
	"testing"
	"time"
)

// Conformance tables for issue 13's audit: one row per parsing or computing rule of RFC 9110
// §5.6.7 (HTTP-date) and RFC 9111 §4, §5, each citing its section. Rows marked "fixed" failed
// before the audit (net/http's ParseTime, the Cache-Control library, the old Age reading).

func TestHTTPDateForms(t *testing.T) {
	imf := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     time.Time // zero: invalid
	}{
		// RFC 9110 §5.6.7: the three forms a recipient MUST accept
		{"IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", imf},
		{"rfc850", "Sunday, 06-Nov-94 08:49:37 GMT", imf},
		{"asctime, SP DIGIT day", "Sun Nov  6 08:49:37 1994", imf},
		{"asctime, 2DIGIT day", "Sun Nov 16 08:49:37 1994", imf.AddDate(0, 0, 10)},
		// RFC 9110 §5.6.7: rfc850 years more than 50 years ahead are the past century's (fixed:
		// Go's pivot at 69 read "70" as 1970 in 2026)
		{"rfc850 yy within 50 years", "Thursday, 06-Nov-70 08:49:37 GMT", time.Date(2070, 11, 6, 8, 49, 37, 0, time.UTC)},
		{"rfc850 yy past 50 years", "Sunday, 06-Nov-77 08:49:37 GMT", time.Date(1977, 11, 6, 8, 49, 37, 0, time.UTC)},
		// RFC 9110 §5.6.7 grammar: one SP between fields (fixed: accepted before)
		{"double space", "Sun,  06 Nov 1994 08:49:37 GMT", time.Time{}},
		{"asctime single-space day", "Sun Nov 6 08:49:37 1994", time.Time{}},
		// hour = 2DIGIT (fixed: accepted before)
		{"one-digit hour", "Sun, 06 Nov 1994 8:49:37 GMT", time.Time{}},
		{"one-digit day", "Sun, 6 Nov 1994 08:49:37 GMT", time.Time{}},
		// day-name, month and "GMT" are %s"…": case-sensitive (upper case fixed: accepted before)
		{"upper case", "SUN, 06 NOV 1994 08:49:37 GMT", time.Time{}},
		{"lower case", "sun, 06 nov 1994 08:49:37 gmt", time.Time{}},
		{"rfc850 short day name", "Sun, 06-Nov-94 08:49:37 GMT", time.Time{}},
		// GMT only
		{"other zone", "Sun, 06 Nov 1994 08:49:37 UTC", time.Time{}},
		{"numeric zone", "Sun, 06 Nov 1994 08:49:37 +0000", time.Time{}},
		// ranges: hour 00–23, a day that exists, second 60 is a leap second
		{"hour 24", "Sun, 06 Nov 1994 24:00:00 GMT", time.Time{}},
		{"Feb 30", "Wed, 30 Feb 1994 08:49:37 GMT", time.Time{}},
		{"Feb 29 of a leap year", "Thu, 29 Feb 1996 00:00:00 GMT", time.Date(1996, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"leap second", "Sat, 31 Dec 2016 23:59:60 GMT", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		// the day name is not checked against the date (no rule asks for it)
		{"day name mismatch", "Mon, 06 Nov 1994 08:49:37 GMT", imf},
		// RFC 9111 §5.3: "0" and other junk are invalid
		{"zero", "0", time.Time{}},
		{"two-digit year in IMF", "Sun, 06 Nov 94 08:49:37 GMT", time.Time{}},
		{"trailing junk", "Sun, 06 Nov 1994 08:49:37 GMTx", time.Time{}},
		{"empty", "", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseHTTPDate(tc.in, 2026)
			if ok != !tc.want.IsZero() || ok && !got.Equal(tc.want) {
				t.Errorf("parseHTTPDate(%q) = %v, %v; want %v", tc.in, got, ok, tc.want)
			}
		})
	}
}

func TestFreshnessConformance(t *testing.T) {
	date := httpDate(t0)
	later := t0.Add(time.Hour)
	asctime := later.Format(time.ANSIC)
	rfc850 := later.Format("Monday, 02-Jan-06 15:04:05") + " GMT"
	for _, tc := range []struct {
		name string
		h    http.Header
		want time.Duration
		src  string
	}{
		// RFC 9111 §4.2.1: Expires − Date; RFC 9110 §5.6.7: all three forms
		{"Expires IMF-fixdate", hdr("Date", date, "Expires", httpDate(later)), time.Hour, "expires"},
		{"Expires asctime", hdr("Date", date, "Expires", asctime), time.Hour, "expires"},
		{"Expires rfc850", hdr("Date", date, "Expires", rfc850), time.Hour, "expires"},
		// RFC 9111 §5.3: an invalid Expires is already expired (explicit, stale)
		{"Expires 0", hdr("Date", date, "Expires", "0"), 0, "expires"},
		{"Expires odd spacing", hdr("Date", date, "Expires", "Sat,  01 Mar 2025 13:00:00 GMT"), 0, "expires"},
		{"Expires one-digit hour", hdr("Date", "Sat, 01 Mar 2025 08:00:00 GMT", "Expires", "Sat, 01 Mar 2025 9:00:00 GMT"), 0, "expires"},
		{"Expires wrong case", hdr("Date", date, "Expires", "SAT, 01 MAR 2025 13:00:00 GMT"), 0, "expires"},
		// RFC 9111 §4.2.1: conflicting Expires lines → stale
		{"Expires twice, different", hdr("Date", date, "Expires", httpDate(later), "Expires", httpDate(later.Add(time.Hour))), 0, "invalid"},
		// RFC 9111 §5.3: max-age makes Expires ignored
		{"max-age beats Expires", hdr("Date", date, "Expires", "0", "Cache-Control", "max-age=60"), time.Minute, "max-age"},
		// RFC 9110 §6.6.1 / RFC 9111 §4.2.1: an invalid Date is replaced by the receipt time
		{"Date one-digit hour", hdr("Date", "Sat, 01 Mar 2025 9:00:00 GMT", "Expires", httpDate(t0.Add(time.Minute))), time.Minute, "expires"},
		// RFC 9111 §4.2.2: an invalid Last-Modified gives no heuristic
		{"Last-Modified invalid", hdr("Date", date, "Last-Modified", "SAT, 01 MAR 2025 09:00:00 GMT"), 0, "none"},
		{"Last-Modified valid", hdr("Date", date, "Last-Modified", httpDate(t0.Add(-10*time.Hour))), time.Hour, "heuristic"},
		// RFC 9111 §5.2: both forms of an argument are accepted
		{"max-age quoted", hdr("Cache-Control", `max-age="60"`), time.Minute, "max-age"},
		{"s-maxage quoted", hdr("Cache-Control", `s-maxage="5", max-age=60`), 5 * time.Second, "s-maxage"},
		// RFC 9111 §5.2 grammar: the whole argument is the token or quoted-string (fixed: the
		// library read max-age="6"0 as 6)
		{"max-age quoted then junk", hdr("Cache-Control", `max-age="6"0`), 0, "invalid"},
		{"max-age junk", hdr("Cache-Control", "max-age=60abc"), 0, "invalid"},
		{"max-age spaces around =", hdr("Cache-Control", "max-age = 60"), 0, "invalid"},
		{"max-age empty", hdr("Cache-Control", "max-age="), 0, "invalid"},
		{"max-age negative", hdr("Cache-Control", "max-age=-1"), 0, "invalid"},
		{"max-age fraction", hdr("Cache-Control", "max-age=1.5"), 0, "invalid"},
		{"max-age no value", hdr("Cache-Control", "max-age"), 0, "invalid"},
		// RFC 9111 §5.2: directive names are case-insensitive
		{"MAX-AGE", hdr("Cache-Control", "MAX-AGE=60"), time.Minute, "max-age"},
		// RFC 9111 §4.2.1: duplicates — equal ones are harmless, different ones make it stale
		{"max-age twice, same", hdr("Cache-Control", "max-age=60", "Cache-Control", "max-age=60"), time.Minute, "max-age"},
		{"max-age twice, different", hdr("Cache-Control", "max-age=60, max-age=30"), 0, "invalid"},
		// RFC 9111 §1.2.2: too large → 2^31 (fixed: 2^31−1 before)
		{"max-age huge", hdr("Cache-Control", "max-age=99999999999999999999"), (1 << 31) * time.Second, "max-age"},
		{"max-age 2^31 quoted", hdr("Cache-Control", `max-age="2147483648"`), (1 << 31) * time.Second, "max-age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src := Lifetime(200, tc.h, t0, Options{})
			if got != tc.want || src != tc.src {
				t.Errorf("Lifetime = %v %q, want %v %q", got, src, tc.want, tc.src)
			}
		})
	}
}

func TestAgeConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		age  []string
		want time.Duration
	}{
		// RFC 9111 §5.1: a non-negative integer
		{"integer", []string{"30"}, 30 * time.Second},
		{"surrounding whitespace", []string{" 30\t"}, 30 * time.Second},
		// RFC 9111 §5.1: a list-based value → its first member (fixed: read as invalid before)
		{"list", []string{"1, 2"}, time.Second},
		{"list without space", []string{"7,100"}, 7 * time.Second},
		{"two field lines", []string{"5", "900"}, 5 * time.Second},
		// RFC 9111 §5.1: anything else is ignored (fixed: 2^31 before)
		{"not a number", []string{"ten"}, 0},
		{"negative", []string{"-5"}, 0},
		{"fraction", []string{"1.5"}, 0},
		{"plus sign", []string{"+5"}, 0},
		{"empty", []string{""}, 0},
		{"invalid first member", []string{"x, 5"}, 0},
		// RFC 9111 §1.2.2: too large → 2^31
		{"huge", []string{"99999999999999999999"}, (1 << 31) * time.Second},
		{"2^31", []string{"2147483648"}, (1 << 31) * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr("Date", httpDate(t0))
			h["Age"] = tc.age
			if got := CurrentAge(h, t0, t0, t0); got != tc.want {
				t.Errorf("CurrentAge with Age %q = %v, want %v", tc.age, got, tc.want)
			}
		})
	}
}

func TestRequestDirectiveConformance(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		cc                      string
		maxAge, minFresh, maxSt int64
		maxStaleAny             bool
	}{
		// RFC 9111 §5.2: both argument forms
		{"max-age quoted", `max-age="5"`, 5, unset, unset, false},
		// RFC 9111 §5.2.1.1 + §4.2.1: an unusable max-age is read restrictively (validate)
		{"max-age quoted then junk", `max-age="5"0`, 0, unset, unset, false},
		{"max-age junk", "max-age=5x", 0, unset, unset, false},
		// RFC 9111 §1.2.2: too large → 2^31
		{"max-age huge", "max-age=99999999999999999999", 1 << 31, unset, unset, false},
		// RFC 9111 §5.2.1.3: min-fresh; junk adds nothing
		{"min-fresh", "min-fresh=10", unset, 10, unset, false},
		{"min-fresh junk", "min-fresh=1.5", unset, unset, unset, false},
		// RFC 9111 §5.2.1.2: max-stale with and without a value; junk accepts no staleness
		{"max-stale value", `max-stale="30"`, unset, unset, 30, false},
		{"max-stale any", "max-stale", unset, unset, unset, true},
		{"max-stale junk", "max-stale=abc", unset, unset, unset, false},
		// duplicates keep the most restrictive value
		{"max-age twice", "max-age=50, max-age=20", 20, unset, unset, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := requestDirectives(hdr("Cache-Control", tc.cc))
			if r.maxAge != tc.maxAge || r.minFresh != tc.minFresh || r.maxStale != tc.maxSt || r.maxStaleAny != tc.maxStaleAny {
				t.Errorf("%q: %+v", tc.cc, r)
			}
		})
	}
}
