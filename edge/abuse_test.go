package edge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// rawRequest writes req byte for byte (Go's client would refuse or repair these) and returns
// the status line.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, req)
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestMalformedRequests: protocol abuse gets the right 4xx from the server, and neither the
// origin nor the cache is touched.
func TestMalformedRequests(t *testing.T) {
	o := newOrigin(t, cacheable("ok", "max-age=60"))
	cfg := DefaultConfig()
	cfg.Origins = []Origin{{Host: "*", URL: o.URL}}
	cfg.Limits.MaxHeaderBytes = 8 << 10
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(e, cfg, nil)
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	tests := []struct {
		name, req, want string
	}{
		// RFC 6585 §5: header fields too large.
		{"oversize headers", "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", "431"},
		// RFC 9112 §3.2: Host must be a valid authority.
		{"invalid host", "GET /x HTTP/1.1\r\nHost: bad host\r\n\r\n", "400"},
		{"missing host", "GET /x HTTP/1.1\r\n\r\n", "400"},
		{"two hosts", "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		// RFC 9112 §6.3: request smuggling shapes.
		{"conflicting CL", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd", "400"},
		{"TE not ending in chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, identity\r\n\r\n", "400"},
		// RFC 9112 §6.1: a transfer coding the server doesn't understand.
		{"unknown TE", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501"},
		// RFC 9112 §6.3 (3): Content-Length with Transfer-Encoding may be a smuggling attempt; a
		// shared cache refuses it rather than guess which framing the next hop will believe.
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		{"TE in HTTP/1.0", "POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400"},
		// RFC 9112 §5.1, §5.2: whitespace before the colon, obsolete line folding.
		{"space before colon", "GET /x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", "400"},
		{"obs-fold", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", "400"},
		// RFC 9112 §2.2: a bare CR.
		{"bare CR", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", "400"},
		// RFC 9112 §3: a request target longer than the server parses.
		{"long target", "GET /" + strings.Repeat("a", 16<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", "414"},
		// RFC 9110 §15.6.6, §10.1.1.
		{"HTTP/2.0 line", "GET /x HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
		{"unknown expectation", "GET /x HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n", "417"},
	}
	for _, tc := range tests {
		if line := rawRequest(t, addr, tc.req); !strings.Contains(line, " "+tc.want+" ") {
			t.Errorf("%s: got %q, want %s", tc.name, line, tc.want)
		}
	}
	if o.hits.Load() != 0 || e.tiers.mem.Weight() != 0 {
		t.Fatalf("abusive requests reached the origin (%d) or the cache (%d bytes)", o.hits.Load(), e.tiers.mem.Weight())
	}

	// A malformed Cache-Control on a response is read strictly: not fresh, not stored as such.
	o.set(cacheable("odd", "max-age=abc"))
	req, _ := http.NewRequest("GET", "http://"+addr+"/cc", nil)
	for range 2 {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
			t.Fatal("a response with max-age=abc was served as fresh")
		}
	}
}
