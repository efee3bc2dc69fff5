package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"
)

// TestHitHeaderSameFields: a memory hit served through edge/h1 (fields pre-serialised, see
// hitHeader) sends the same header as the same hit served through net/http's server (fields
// copied from the stored map): stored fields passed on, internal tags dropped, the upstream's
// Via lines and Cache-Status members kept before ours (RFC 9110 §7.6.3, RFC 9211 §2), Age set
// (RFC 9111 §5.1), one Content-Length.
func TestHitHeaderSameFields(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "max-age=600")
		h.Set("Content-Type", "video/mp4")
		h.Set("ETag", `"v1"`)
		h.Set("Last-Modified", "Sat, 21 Nov 2026 10:00:00 GMT")
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		h.Add("Via", "1.1 shield-a")
		h.Add("Via", "1.0 shield-b")
		h.Set("Cache-Status", "shield; hit, ")
		h.Set("Age", "7")
		h.Set("Surrogate-Key", "a b")
		h.Set("X-Custom", "kept")
		h.Add("Link", "</a>; rel=preload")
		h.Add("Link", "</b>; rel=preload")
		io.WriteString(w, "0123456789")
	})
	e, h1srv := newEdge(t, o.URL, nil)
	std := httptest.NewServer(e)
	defer std.Close()

	get2 := func(base string) http.Header {
		t.Helper()
		var last http.Header
		for range 2 {
			req, _ := http.NewRequest(http.MethodGet, base+"/obj", nil)
			req.Host = "same.example" // one cache key for both servers
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "0123456789" {
				t.Fatalf("body %q", b)
			}
			last = resp.Header
		}
		return last
	}
	viaH1 := get2(h1srv.URL)
	viaStd := get2(std.URL)
	if o.hits.Load() != 1 {
		t.Fatalf("origin asked %d times, want 1", o.hits.Load())
	}
	ttl := regexp.MustCompile(`ttl=\d+`)
	for _, hdr := range []http.Header{viaH1, viaStd} {
		hdr.Del("Age") // checked below; it may tick between the two requests
		for i, v := range hdr["Cache-Status"] {
			hdr["Cache-Status"][i] = ttl.ReplaceAllString(v, "ttl=N")
		}
	}
	for k, want := range viaStd {
		if got := viaH1[k]; !equalStrings(got, want) && !(k == "Link" && sameSet(got, want)) {
			t.Errorf("%s: h1 %q, net/http %q", k, got, want)
		}
	}
	for k := range viaH1 {
		if _, ok := viaStd[k]; !ok {
			t.Errorf("%s only through h1: %q", k, viaH1[k])
		}
	}
	if got := viaH1["Via"]; len(got) != 3 || got[2] != "1.1 reel" {
		t.Errorf("Via lines %q", got)
	}
	if got := viaH1.Get("Cache-Status"); got != "shield; hit, reel; hit; ttl=N" {
		t.Errorf("Cache-Status %q", got)
	}
	if viaH1.Get("Surrogate-Key") != "" || viaH1.Get("Content-Length") != "10" {
		t.Errorf("Surrogate-Key %q, Content-Length %q", viaH1.Get("Surrogate-Key"), viaH1.Get("Content-Length"))
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, v := range a {
		m[v]++
	}
	for _, v := range b {
		m[v]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}
