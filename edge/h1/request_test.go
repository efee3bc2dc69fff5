package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
)

func parse(raw string, max int) (*head, error) {
	r := &reader{br: bufio.NewReaderSize(strings.NewReader(raw), 64), last: map[string]string{}}
	h := &head{}
	return h, r.readHead(h, max)
}

// TestReadHeadRefusals: every request the server refuses before a handler runs, with its status.
func TestReadHeadRefusals(t *testing.T) {
	tests := []struct {
		name, raw string
		status    int
	}{
		// RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
		{"no target", "GET\r\n\r\n", 400},
		{"two spaces", "GET  /x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method not a token", "G(T /x HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"control in target", "GET /x\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"lowercase version", "GET /x http/1.1\r\nHost: a\r\n\r\n", 400},
		{"version junk", "GET /x HTTP/1.1x\r\nHost: a\r\n\r\n", 400},
		// RFC 9110 §15.6.6: a major version the server doesn't speak.
		{"HTTP/2.0", "GET /x HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		// RFC 9112 §3: 414 when the target is longer than the server parses.
		{"long line", "GET /" + strings.Repeat("a", 300) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		// RFC 6585 §5: 431 for a header section too large.
		{"big header", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: " + strings.Repeat("b", 300) + "\r\n\r\n", 431},
		// RFC 9112 §2.2: a bare CR is invalid.
		{"bare CR", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400},
		// RFC 9112 §5.1: no whitespace between field name and colon.
		{"space before colon", "GET /x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", 400},
		{"no colon", "GET /x HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n", 400},
		{"empty name", "GET /x HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400},
		// RFC 9112 §5.2: obsolete line folding.
		{"obs-fold", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400},
		// RFC 9110 §5.5: NUL and controls in a field value.
		{"NUL in value", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", 400},
		// RFC 9112 §3.2: exactly one valid Host in HTTP/1.1.
		{"missing Host", "GET /x HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET /x HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"bad Host", "GET /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with slash", "GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		// RFC 9112 §6.3 (3), (4), (5) and RFC 9110 §8.6: framing.
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE not chunked last", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"TE empty", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", 400},
		{"TE in 1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"two CLs differ", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"CL list differs", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n", 400},
		{"CL sign", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400},
		{"CL negative", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
		{"CL huge", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"CL empty", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400},
		// RFC 9112 §6.1: a transfer coding the server doesn't understand.
		{"gzip then chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		// RFC 9110 §10.1.1: an expectation other than 100-continue.
		{"Expect other", "GET /x HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.raw, 256)
			var pe *protoError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a %d refusal", err, tc.status)
			}
			if pe.status != tc.status {
				t.Fatalf("status %d (%s), want %d", pe.status, pe.reason, tc.status)
			}
		})
	}
}

// TestReadHeadAccepts: what a valid head turns into.
func TestReadHeadAccepts(t *testing.T) {
	tests := []struct {
		name, raw   string
		method, uri string
		host        string
		length      int64
		chunked     bool
		close       bool
		cont        bool
		header      map[string][]string
	}{
		{name: "simple", raw: "GET /a?b=c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
			method: "GET", uri: "/a?b=c", host: "example.com:8080"},
		// RFC 9112 §2.2: empty lines before the request line are ignored; a bare LF ends a line.
		{name: "leading CRLF and bare LF", raw: "\r\n\nGET / HTTP/1.1\nHost: a\n\n",
			method: "GET", uri: "/", host: "a"},
		// RFC 9112 §5.1: names are case-insensitive; OWS around the value is not part of it.
		{name: "case and OWS", raw: "GET / HTTP/1.1\r\nhost: a\r\nx-thing:  v1 \t\r\nX-THING: v2\r\n\r\n",
			method: "GET", uri: "/", host: "a", header: map[string][]string{"X-Thing": {"v1", "v2"}}},
		// RFC 9112 §9.3: HTTP/1.0 closes unless keep-alive is asked for; 1.1 closes on "close".
		{name: "1.0 default close", raw: "GET / HTTP/1.0\r\n\r\n", method: "GET", uri: "/", close: true},
		{name: "1.0 keep-alive", raw: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", method: "GET", uri: "/"},
		{name: "1.1 close", raw: "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", method: "GET", uri: "/", host: "a", close: true},
		// RFC 9110 §8.6: identical Content-Length values are one.
		{name: "CL repeated", raw: "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
			method: "PUT", uri: "/x", host: "a", length: 5, header: map[string][]string{"Content-Length": {"5"}}},
		{name: "chunked", raw: "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
			method: "POST", uri: "/x", host: "a", length: -1, chunked: true},
		// RFC 9110 §10.1.1: 100-continue only matters when there is a body.
		{name: "expect with body", raw: "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
			method: "PUT", uri: "/x", host: "a", length: 1, cont: true},
		{name: "expect without body", raw: "GET /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
			method: "GET", uri: "/x", host: "a"},
		// A method is any token (RFC 9110 §9.1).
		{name: "extension method", raw: "PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", method: "PURGE", uri: "/x", host: "a"},
		{name: "absolute form", raw: "GET http://b.example/p HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "GET", uri: "http://b.example/p", host: "a"},
		{name: "IPv6 host", raw: "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", method: "GET", uri: "/", host: "[::1]:80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parse(tc.raw, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if h.method != tc.method || h.target != tc.uri || h.host != tc.host || h.contentLength != tc.length ||
				h.chunked != tc.chunked || h.close != tc.close || h.expectContinue != tc.cont {
				t.Fatalf("got %+v", *h)
			}
			for k, want := range tc.header {
				if got := h.header[k]; strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if _, ok := h.header["Host"]; ok {
				t.Error("Host left in the header map (net/http moves it to Request.Host)")
			}
		})
	}
}

// TestRequestShape: the *http.Request a handler gets looks like net/http's.
func TestRequestShape(t *testing.T) {
	h, err := parse("GET http://b.example/p?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", 4096)
	if err != nil {
		t.Fatal(err)
	}
	r, err := h.request(context.Background(), new(url.URL))
	if err != nil {
		t.Fatal(err)
	}
	// RFC 9112 §3.2.2: the absolute-form's authority wins over Host.
	if r.Host != "b.example" || r.URL.Path != "/p" || r.URL.RawQuery != "q=1" || r.RequestURI != "http://b.example/p?q=1" ||
		r.Proto != "HTTP/1.1" || r.ProtoMinor != 1 || r.Method != http.MethodGet {
		t.Fatalf("got %+v", r)
	}
	h, _ = parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 4096)
	if r, err = h.request(context.Background(), new(url.URL)); err != nil || r.URL.Path != "*" {
		t.Fatalf("asterisk form: %v %v", r, err)
	}
	// §3.2.4: the asterisk-form is for OPTIONS only.
	for _, m := range []string{"GET", "HEAD", "POST"} {
		h, _ = parse(m+" * HTTP/1.1\r\nHost: a\r\n\r\n", 4096)
		var pe *protoError
		if _, err = h.request(context.Background(), new(url.URL)); !errors.As(err, &pe) || pe.status != http.StatusBadRequest {
			t.Fatalf("%s *: %v, want a 400 refusal", m, err)
		}
	}
	h, _ = parse("GET //x:y:z/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 4096)
	if _, err = h.request(context.Background(), new(url.URL)); err == nil {
		t.Fatal("a malformed target was accepted")
	}
}

// TestIdleClose: io.EOF before the first byte is a client closing an idle connection, not an error to answer.
func TestIdleClose(t *testing.T) {
	if _, err := parse("", 100); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

// FuzzReadHead: no input panics, and an accepted head holds what the framing rules promise.
func FuzzReadHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"PUT /x HTTP/1.1\r\nhost: a\r\nExpect: 100-continue\r\ncontent-length: 4, 4\r\n\r\nabcd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := parse(raw, 1024)
		if err != nil {
			return
		}
		if h.chunked && h.contentLength != -1 || !h.chunked && h.contentLength < 0 {
			t.Fatalf("framing: chunked %v, length %d", h.chunked, h.contentLength)
		}
		if h.chunked && len(h.header["Content-Length"]) > 0 {
			t.Fatal("chunked with a Content-Length kept")
		}
		if h.minor >= 1 && !validHost(h.host) {
			t.Fatalf("invalid Host %q accepted", h.host)
		}
		for k, vs := range h.header {
			if !isToken([]byte(k)) {
				t.Fatalf("field name %q", k)
			}
			for _, v := range vs {
				if !validFieldValue([]byte(v)) {
					t.Fatalf("field value %q", v)
				}
			}
		}
		h.request(context.Background(), new(url.URL)) // must not panic
	})
}

// TestOriginFormMatchesURL: the fast split of "/path?query" agrees with url.ParseRequestURI.
func TestOriginFormMatchesURL(t *testing.T) {
	for _, target := range []string{"/", "/a/b", "/a?b=c", "/a?", "/a?b?c", "//x/y", "/a?b=c&d=e#f", "/seg_1-2.m4s", "/a:b@c;d=e,f+g$h&i", "/;x=y", "/a/../b"} {
		fast := new(url.URL)
		ok := originForm(target, fast)
		want, err := url.ParseRequestURI(target)
		if !ok || err != nil {
			t.Fatalf("%q: fast %v, err %v", target, fast, err)
		}
		if *fast != *want {
			t.Errorf("%q: fast %#v, want %#v", target, *fast, *want)
		}
	}
	if originForm("/a%20b", new(url.URL)) || originForm("/a#f", new(url.URL)) || originForm("/a!b", new(url.URL)) ||
		originForm("http://x/", new(url.URL)) || originForm("*", new(url.URL)) {
		t.Error("fast path took a target it can't split")
	}
}

// TestCanonicalKey: field names are canonicalised as net/textproto does, common ones without
// allocating.
func TestCanonicalKey(t *testing.T) {
	for _, n := range []string{"host", "USER-AGENT", "accept-encoding", "X-Forwarded-For", "te", "sec-ch-ua-platform",
		"upgrade-insecure-requests", "x-custom-thing", "a", "x--y", "If-None-Match", "cdn-loop"} {
		if got, want := canonicalKey([]byte(n)), textproto.CanonicalMIMEHeaderKey(n); got != want {
			t.Errorf("%q: %q, want %q", n, got, want)
		}
	}
	b := []byte("accept-ENCODING")
	if n := testing.AllocsPerRun(100, func() { canonicalKey(b) }); n != 0 {
		t.Errorf("a common name allocated %v times", n)
	}
}
