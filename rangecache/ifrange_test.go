package rangecache

import "testing"

func TestIfRange(t *testing.T) {
	const (
		lm      = "Sun, 06 Nov 1994 08:49:37 GMT"
		lmRFC   = "Sunday, 06-Nov-94 08:49:37 GMT" // same instant, obsolete RFC 850 form
		lmASC   = "Sun Nov  6 08:49:37 1994"       // same instant, asctime form
		lmPlus1 = "Sun, 06 Nov 1994 08:49:38 GMT"
		lmLess1 = "Sun, 06 Nov 1994 08:49:36 GMT"
		dateOK  = "Sun, 06 Nov 1994 08:49:38 GMT" // one second after Last-Modified
		dateHr  = "Sun, 06 Nov 1994 09:49:37 GMT"
	)
	tests := []struct {
		name                         string
		rfc                          string
		ifRange, etag, lastMod, date string
		want                         bool
	}{
		{"absent", "§13.1.5", "", `"abc"`, lm, dateOK, true},
		{"absent, no validators", "§13.1.5", "", "", "", "", true},

		// Entity tags: strong comparison only (§13.1.5, §8.8.3.2).
		{"strong match", "§13.1.5, §8.8.3.2", `"abc"`, `"abc"`, "", "", true},
		{"strong match with OWS", "§13.1.5, §5.5", ` "abc" `, `"abc"`, "", "", true},
		{"strong match, empty opaque-tag", "§8.8.3", `""`, `""`, "", "", true},
		{"strong match, obs-text", "§8.8.3", "\"\xe9t\xe9\"", "\"\xe9t\xe9\"", "", "", true},
		{"strong mismatch", "§13.1.5", `"abc"`, `"abd"`, lm, dateOK, false},
		{"case matters", "§8.8.3.2", `"abc"`, `"ABC"`, "", "", false},
		{"weak If-Range never matches", "§13.1.5, §8.8.3.2", `W/"abc"`, `W/"abc"`, "", "", false},
		{"weak If-Range vs strong ETag", "§13.1.5, §8.8.3.2", `W/"abc"`, `"abc"`, "", "", false},
		{"strong If-Range vs weak ETag", "§13.1.5, §8.8.3.2", `"abc"`, `W/"abc"`, "", "", false},
		{"no ETag on the representation", "§13.1.5", `"abc"`, "", lm, dateOK, false},
		{"unterminated tag", "§8.8.3", `"abc`, `"abc`, "", "", false},
		{"quote inside tag", "§8.8.3", `"a"c"`, `"a"c"`, "", "", false},
		{"space inside tag", "§8.8.3", `"a c"`, `"a c"`, "", "", false},
		{"DEL inside tag", "§8.8.3", "\"a\x7fc\"", "\"a\x7fc\"", "", "", false},
		{"unquoted tag", "§8.8.3", `abc`, `abc`, "", "", false},
		{"tag list is not an If-Range", "§13.1.5", `"abc", "def"`, `"abc", "def"`, "", "", false},
		{"tag vs Last-Modified", "§13.1.5", `"abc"`, "", `"abc"`, dateOK, false},

		// HTTP-dates: exact match with a strong Last-Modified (§13.1.5, §8.8.2.2).
		{"date exact", "§13.1.5", lm, `"abc"`, lm, dateOK, true},
		{"date exact, no ETag", "§13.1.5", lm, "", lm, dateHr, true},
		{"date exact, RFC 850 form", "§13.1.5, §5.6.7", lmRFC, "", lm, dateOK, true},
		{"date exact, asctime form", "§13.1.5, §5.6.7", lmASC, "", lm, dateOK, true},
		{"date exact, Last-Modified in asctime", "§5.6.7", lm, "", lmASC, dateOK, true},
		{"date later than Last-Modified", "§13.1.5 exact match", lmPlus1, "", lm, dateHr, false},
		{"date earlier than Last-Modified", "§13.1.5 exact match", lmLess1, "", lm, dateHr, false},
		{"Last-Modified weak: Date equal", "§8.8.2.2", lm, "", lm, lm, false},
		{"Last-Modified weak: Date earlier", "§8.8.2.2", lm, "", lm, lmLess1, false},
		{"Last-Modified weak: no Date", "§8.8.2.2", lm, "", lm, "", false},
		{"Last-Modified weak: bad Date", "§8.8.2.2", lm, "", lm, "yesterday", false},
		{"no Last-Modified", "§13.1.5", lm, `"abc"`, "", dateOK, false},
		{"bad Last-Modified", "§13.1.5", lm, "", "not a date", dateOK, false},
		{"not a date", "§13.1.5", "Sun, 06 Nov 1994", "", lm, dateOK, false},
		{"date in another zone", "§5.6.7 GMT only", "Sun, 06 Nov 1994 08:49:37 PST", "", lm, dateOK, false},
		{"garbage", "§13.1.5", "garbage", `"garbage"`, lm, dateOK, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IfRange(tc.ifRange, tc.etag, tc.lastMod, tc.date); got != tc.want {
				t.Errorf("IfRange(%q, %q, %q, %q) = %v, want %v (RFC 9110 %s)", tc.ifRange, tc.etag, tc.lastMod, tc.date, got, tc.want, tc.rfc)
			}
		})
	}
}
