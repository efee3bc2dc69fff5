package policy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestInvalidations(t *testing.T) {
	req := func(method, target string) *http.Request { return httptest.NewRequest(method, target, nil) }
	tlsReq := req(http.MethodPost, "/cart")
	tlsReq.TLS = &tls.ConnectionState{}
	tlsReq.Host = "Shop.Example:443"
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		h      http.Header
		want   []string
	}{
		// RFC 9111 §4.4: unsafe method, non-error status → the target URI
		{"POST 200", req(http.MethodPost, "http://example.com/a?x=1"), 200, hdr(), []string{"http://example.com/a?x=1"}},
		{"PUT 204", req(http.MethodPut, "http://example.com/a"), 204, hdr(), []string{"http://example.com/a"}},
		{"DELETE 302", req(http.MethodDelete, "http://example.com/a"), 302, hdr(), []string{"http://example.com/a"}},
		// RFC 9111 §4.4: methods of unknown safety count as unsafe
		{"unknown method", req("PURGEX", "http://example.com/a"), 200, hdr(), []string{"http://example.com/a"}},
		// RFC 9111 §4.4: safe methods invalidate nothing
		{"GET", req(http.MethodGet, "http://example.com/a"), 200, hdr(), nil},
		{"OPTIONS", req(http.MethodOptions, "http://example.com/a"), 200, hdr(), nil},
		// RFC 9111 §4.4: error statuses invalidate nothing
		{"POST 500", req(http.MethodPost, "http://example.com/a"), 500, hdr(), nil},
		{"POST 404", req(http.MethodPost, "http://example.com/a"), 404, hdr(), nil},
		// RFC 9111 §4.4: Location and Content-Location of the same origin, resolved
		{"Location relative", req(http.MethodPost, "http://example.com/list/"), 201,
			hdr("Location", "item/7#frag", "Content-Location", "/list/index"),
			[]string{"http://example.com/list/", "http://example.com/list/item/7", "http://example.com/list/index"}},
		{"same origin default port", req(http.MethodPatch, "http://example.com/a"), 200,
			hdr("Location", "http://EXAMPLE.com:80/b"), []string{"http://example.com/a", "http://EXAMPLE.com:80/b"}},
		// RFC 9111 §4.4: never another origin's URIs (host, scheme or port differ)
		{"other host", req(http.MethodPost, "http://example.com/a"), 200,
			hdr("Location", "http://evil.example/a", "Content-Location", "//evil.example/b"), []string{"http://example.com/a"}},
		{"other scheme", req(http.MethodPost, "http://example.com/a"), 200,
			hdr("Location", "https://example.com/a"), []string{"http://example.com/a"}},
		{"other port", req(http.MethodPost, "http://example.com/a"), 200,
			hdr("Location", "http://example.com:8080/a"), []string{"http://example.com/a"}},
		// duplicates collapse
		{"Location is target", req(http.MethodPost, "http://example.com/a"), 200,
			hdr("Location", "/a", "Content-Location", "http://example.com/a"), []string{"http://example.com/a"}},
		// RFC 9110 §7.1: a server-side request rebuilt from Host and TLS
		{"server request", tlsReq, 200, hdr("Location", "https://shop.example/cart/1"),
			[]string{"https://shop.example:443/cart", "https://shop.example/cart/1"}},
		{"nil request", nil, 200, hdr(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, u := range Invalidations(tc.req, tc.status, tc.h) {
				got = append(got, u.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Invalidations = %q, want %q", got, tc.want)
			}
		})
	}
}
