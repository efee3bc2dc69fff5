package policy

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestConditionalRequestHeaders(t *testing.T) {
	lm := httpDate(t0.Add(-time.Hour))
	for _, tc := range []struct {
		name   string
		stored http.Header
		want   http.Header
	}{
		// RFC 9111 §4.3.1: both validators when both exist
		{"both", hdr("ETag", `"v1"`, "Last-Modified", lm), hdr("If-None-Match", `"v1"`, "If-Modified-Since", lm)},
		{"weak etag", hdr("ETag", `W/"v1"`), hdr("If-None-Match", `W/"v1"`)},
		{"only Last-Modified", hdr("Last-Modified", lm), hdr("If-Modified-Since", lm)},
		// RFC 9111 §4.3.1: no validator → nothing to send
		{"none", hdr("Date", lm), hdr()},
		// RFC 9110 §8.8.3, §8.8.2: malformed validators are not sent
		{"malformed", hdr("ETag", "v1", "Last-Modified", "yesterday"), hdr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ConditionalRequestHeaders(tc.stored); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ConditionalRequestHeaders = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMergeNotModified(t *testing.T) {
	lm := httpDate(t0.Add(-time.Hour))
	base := func(kv ...string) http.Header {
		return hdr(append([]string{
			"Date", httpDate(t0.Add(-time.Hour)), "Age", "30",
			"ETag", `"v1"`, "Last-Modified", lm,
			"Cache-Control", "max-age=60", "Content-Type", "video/mp4", "Content-Length", "100",
			"Content-Encoding", "gzip", "X-Old", "keep",
		}, kv...)...)
	}
	for _, tc := range []struct {
		name   string
		stored http.Header
		fresh  http.Header
		ok     bool
		check  map[string][]string // expected values (nil = absent) in the merged header
	}{
		// RFC 9111 §4.3.4, §3.2: fields of the 304 replace the stored ones
		{"update", base(), hdr("Date", httpDate(t0), "ETag", `"v1"`, "Cache-Control", "max-age=600", "X-New", "1"), true,
			map[string][]string{
				"Cache-Control": {"max-age=600"}, "X-New": {"1"}, "X-Old": {"keep"},
				"Date": {httpDate(t0)}, "Age": nil,
			}},
		// RFC 9111 §3.2: Content-Length (and the body-describing fields) stay
		{"content fields kept", base(), hdr("ETag", `"v1"`, "Content-Length", "0", "Content-Type", "text/html", "Content-Encoding", "br"), true,
			map[string][]string{"Content-Length": {"100"}, "Content-Type": {"video/mp4"}, "Content-Encoding": {"gzip"}}},
		// RFC 9111 §3.1, §3.2: hop-by-hop fields are not merged
		{"hop-by-hop", base(), hdr("ETag", `"v1"`, "Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5"), true,
			map[string][]string{"X-Hop": nil, "Keep-Alive": nil, "Connection": nil}},
		// Set-Cookie in a 304 never enters the shared entry
		{"set-cookie", base(), hdr("ETag", `"v1"`, "Set-Cookie", "id=7"), true, map[string][]string{"Set-Cookie": nil}},
		// RFC 9111 §4.2.3: age restarts at validation — Age from the 304, else none
		{"age from 304", base(), hdr("ETag", `"v1"`, "Age", "3", "Date", httpDate(t0)), true, map[string][]string{"Age": {"3"}}},
		// RFC 9111 §4.3.4: a strong ETag must match strongly
		{"strong mismatch", base(), hdr("ETag", `"v2"`), false, nil},
		{"strong vs stored weak", hdr("ETag", `W/"v1"`), hdr("ETag", `"v1"`), false, nil},
		{"stored etag malformed", hdr("ETag", "v1"), hdr("ETag", `"v1"`), false, nil},
		// RFC 9111 §4.3.4: a weak ETag matches weakly
		{"weak match", base(), hdr("ETag", `W/"v1"`), true, map[string][]string{"Etag": {`W/"v1"`}}},
		{"weak mismatch", base(), hdr("ETag", `W/"v2"`), false, nil},
		// RFC 9111 §4.3.4: Last-Modified when the 304 has no ETag
		{"Last-Modified match", base(), hdr("Last-Modified", lm), true, nil},
		{"Last-Modified mismatch", base(), hdr("Last-Modified", httpDate(t0)), false, nil},
		// RFC 9111 §4.3.4: an ETag the stored response never had
		{"etag on unvalidated", hdr("Last-Modified", lm), hdr("ETag", `"v1"`), false, nil},
		// RFC 9111 §4.3.4: no validator in the 304 → it answers our own conditional request
		{"no validator", base(), hdr("Date", httpDate(t0)), true, map[string][]string{"Etag": {`"v1"`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storedCopy, freshCopy := tc.stored.Clone(), tc.fresh.Clone()
			got, ok := MergeNotModified(tc.stored, tc.fresh)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !reflect.DeepEqual(tc.stored, storedCopy) || !reflect.DeepEqual(tc.fresh, freshCopy) {
				t.Errorf("arguments modified")
			}
			if !ok {
				if got != nil {
					t.Errorf("header returned on mismatch: %v", got)
				}
				return
			}
			for name, want := range tc.check {
				if v := got.Values(name); !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %q, want %q", name, v, want)
				}
			}
		})
	}
}

func TestNotModified(t *testing.T) {
	lm := t0.Add(-time.Hour)
	st := stored(200, "ETag", `"v1"`, "Last-Modified", httpDate(lm))
	weakSt := stored(200, "ETag", `W/"v1"`)
	get := func(kv ...string) *http.Request { return request(http.MethodGet, kv...) }
	for _, tc := range []struct {
		name string
		req  *http.Request
		st   Stored
		want bool
	}{
		// RFC 9110 §13.1.2: If-None-Match, weak comparison
		{"inm match", get("If-None-Match", `"v1"`), st, true},
		{"inm weak request", get("If-None-Match", `W/"v1"`), st, true},
		{"inm weak stored", get("If-None-Match", `"v1"`), weakSt, true},
		{"inm mismatch", get("If-None-Match", `"v2"`), st, false},
		{"inm list", get("If-None-Match", `"a", W/"v1" ,"b"`), st, true},
		{"inm list lines", get("If-None-Match", `"a"`, "If-None-Match", `"v1"`), st, true},
		{"inm comma in tag", get("If-None-Match", `"a,b"`), stored(200, "ETag", `"a,b"`), true},
		// RFC 9110 §13.1.2: "*" matches any current representation
		{"inm star", get("If-None-Match", "*"), st, true},
		{"inm star without etag", get("If-None-Match", "*"), stored(200), true},
		// RFC 9110 §8.8.3: malformed lists match nothing
		{"inm malformed", get("If-None-Match", `v1`), st, false},
		{"inm star mixed", get("If-None-Match", `*, "v1"`), st, false},
		{"inm star mixed lines", get("If-None-Match", "*", "If-None-Match", `"v2"`), st, false},
		{"inm stored etag malformed", get("If-None-Match", `"v1"`), stored(200, "ETag", "v1"), false},
		{"inm no stored etag", get("If-None-Match", `"v1"`), stored(200), false},
		// RFC 9110 §13.2.2: If-Modified-Since ignored when If-None-Match is present
		{"inm mismatch beats ims", get("If-None-Match", `"v2"`, "If-Modified-Since", httpDate(t0)), st, false},
		// RFC 9110 §13.1.3: If-Modified-Since
		{"ims not modified", get("If-Modified-Since", httpDate(lm)), st, true},
		{"ims later", get("If-Modified-Since", httpDate(t0)), st, true},
		{"ims modified", get("If-Modified-Since", httpDate(lm.Add(-time.Second))), st, false},
		{"ims invalid", get("If-Modified-Since", "yesterday"), st, false},
		{"ims two lines", get("If-Modified-Since", httpDate(t0), "If-Modified-Since", httpDate(t0)), st, false},
		// RFC 9111 §4.3.2: without Last-Modified, the stored Date
		{"ims uses Date", get("If-Modified-Since", httpDate(t0)), stored(200), true},
		{"ims Date later", get("If-Modified-Since", httpDate(t0.Add(-time.Second))), stored(200), false},
		// RFC 9110 §13.1.3: only GET and HEAD
		{"ims HEAD", request(http.MethodHead, "If-Modified-Since", httpDate(t0)), st, true},
		{"ims POST", request(http.MethodPost, "If-Modified-Since", httpDate(t0)), st, false},
		{"inm POST", request(http.MethodPost, "If-None-Match", `"v1"`), st, false},
		// RFC 9110 §13.2.1: preconditions only for a 2xx
		{"stored 404", get("If-None-Match", `"v1"`), stored(404, "ETag", `"v1"`), false},
		// RFC 9111 §4.3.2: If-Match / If-Unmodified-Since are for the origin
		{"if-match", get("If-Match", `"v1"`, "If-None-Match", `"v1"`), st, false},
		{"if-unmodified-since", get("If-Unmodified-Since", httpDate(t0), "If-None-Match", `"v1"`), st, false},
		// not conditional at all
		{"plain", get(), st, false},
		{"nil", nil, st, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NotModified(tc.req, tc.st); got != tc.want {
				t.Errorf("NotModified = %v, want %v", got, tc.want)
			}
		})
	}
}
