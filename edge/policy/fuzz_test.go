package policy

import (
	"net/http"
	"testing"
	"time"
)

// FuzzLifetime feeds arbitrary header strings to every function that reads response or
// request headers: none may panic, and lifetimes and ages are never negative.
func FuzzLifetime(f *testing.F) {
	f.Add(200, "max-age=60", "", "", "", "", "")
	f.Add(200, "max-age=abc, s-maxage=\"1", "max-age=1.5", "0", "garbage", "x", "-1")
	f.Add(503, "s-maxage=99999999999999999999, stale-if-error=9", "no-store, private=(a b)", "Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 02 Jan 2006 15:04:05 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "4294967296")
	f.Add(404, `private="Set-Cookie, X", no-cache="a,b`, "", "", "", "", "")
	f.Add(301, "public, immutable, must-understand", "max-age=-5, no-cache=?1", "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "  7 ")
	f.Fuzz(func(t *testing.T, status int, cc, cdn, expires, date, lastMod, age string) {
		h := http.Header{}
		set := func(k, v string) {
			if v != "" {
				h.Add(k, v)
			}
		}
		set("Cache-Control", cc)
		set("CDN-Cache-Control", cdn)
		set("Expires", expires)
		set("Date", date)
		set("Last-Modified", lastMod)
		set("Age", age)
		set("ETag", age)
		set("Vary", cc)
		opt := Options{DefaultTTL: map[int]time.Duration{status: time.Second}, DefaultStaleIfError: time.Minute}

		d, _ := Lifetime(status, h, t0, opt)
		if d < 0 {
			t.Fatalf("negative lifetime %v", d)
		}
		if a := CurrentAge(h, t0.Add(-time.Second), t0, t0.Add(time.Minute)); a < 0 {
			t.Fatalf("negative age %v", a)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
		req.Header.Set("Cache-Control", cdn)
		req.Header.Set("If-None-Match", cc)
		req.Header.Set("If-Modified-Since", date)
		req.Header.Set("Accept-Encoding", cc)
		st := Stored{Status: status, Header: h, RequestTime: t0, ResponseTime: t0}
		Storable(req, status, h, opt)
		Reuse(req, st, t0.Add(time.Hour), opt)
		CanServeStaleOnError(st, t0.Add(time.Hour), opt)
		NotModified(req, st)
		ConditionalRequestHeaders(h)
		MergeNotModified(h, h)
		VaryKey(h.Values("Vary"), req.Header)
		NormalizeAcceptEncoding([]string{cc, cdn})
		post, _ := http.NewRequest(http.MethodPost, "http://example.com/a/b", nil)
		Invalidations(post, status, hdr("Location", cc, "Content-Location", cdn))
		RemoveHopByHop(hdr("Connection", cc))
	})
}

// FuzzHTTPDate: whatever it is given, parseHTTPDate does not panic, and a date it accepts
// reads back the same from its IMF-fixdate form (RFC 9110 §5.6.7: the form senders use).
func FuzzHTTPDate(f *testing.F) {
	for _, s := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 8:49:37 GMT", "Thu, 31 Dec 1998 23:59:60 GMT", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseHTTPDate(s, 2026)
		if !ok {
			return
		}
		imf := d.UTC().Format(http.TimeFormat)
		if back, ok := parseHTTPDate(imf, 2026); !ok || !back.Equal(d) {
			t.Fatalf("%q read as %v; its IMF-fixdate %q reads as %v, %v", s, d, imf, back, ok)
		}
	})
}
