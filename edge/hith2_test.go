package edge

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/reelvideo/reel/edge/h2"
)

// TestHitHeaderSameFieldsH2: a memory hit served through edge/h2 (the stored fields from the
// object's pre-encoded HPACK block, writeHitH2) sends the same header as the same hit served
// through net/http's server from the stored map — and HEAD the same head without a body.
func TestHitHeaderSameFieldsH2(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "max-age=600")
		h.Set("Content-Type", "video/mp4")
		h.Set("ETag", `"v1"`)
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		h.Add("Via", "1.1 shield-a")
		h.Add("Via", "1.0 shield-b")
		h.Set("Cache-Status", "shield; hit, ")
		h.Set("Surrogate-Key", "a b")
		h.Set("X-Custom", "kept")
		h.Add("Link", "</a>; rel=preload")
		h.Add("Link", "</b>; rel=preload")
		io.WriteString(w, "0123456789")
	})
	e, _ := newEdge(t, o.URL, nil)
	std := httptest.NewServer(e)
	defer std.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h2.Server{Handler: e}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(c)
		}
	}()
	defer ln.Close()
	defer srv.Shutdown()
	h2c := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}

	get := func(c *http.Client, method, base string) http.Header {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/obj", nil)
		req.Host = "same.example" // one cache key for both servers
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := map[string]string{"GET": "0123456789", "HEAD": ""}[method]; string(b) != want {
			t.Fatalf("%s body %q", method, b)
		}
		if resp.ContentLength != 10 {
			t.Fatalf("%s Content-Length %d", method, resp.ContentLength)
		}
		return resp.Header
	}
	get(http.DefaultClient, "GET", std.URL) // stored
	viaStd := get(http.DefaultClient, "GET", std.URL)
	viaH2 := get(h2c, "GET", "http://"+ln.Addr().String())
	headH2 := get(h2c, "HEAD", "http://"+ln.Addr().String())
	if o.hits.Load() != 1 {
		t.Fatalf("origin asked %d times, want 1", o.hits.Load())
	}
	ttl := regexp.MustCompile(`ttl=\d+`)
	for _, hdr := range []http.Header{viaH2, viaStd, headH2} {
		hdr.Del("Age") // it may tick between the requests
		for i, v := range hdr["Cache-Status"] {
			hdr["Cache-Status"][i] = ttl.ReplaceAllString(v, "ttl=N")
		}
	}
	for _, got := range []http.Header{viaH2, headH2} {
		for k, want := range viaStd {
			if g := got[k]; !equalStrings(g, want) && !(k == "Link" && sameSet(g, want)) {
				t.Errorf("%s: h2 %q, net/http %q", k, g, want)
			}
		}
		for k := range got {
			if _, ok := viaStd[k]; !ok {
				t.Errorf("%s only through h2: %q", k, got[k])
			}
		}
	}
	if got := viaH2["Via"]; len(got) != 3 || got[2] != "1.1 reel" {
		t.Errorf("Via lines %q", got)
	}
	if got := viaH2.Get("Cache-Status"); got != "shield; hit, reel; hit; ttl=N" {
		t.Errorf("Cache-Status %q", got)
	}
}
