package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// frontEdge is an edge served by a Frontend on loopback, and clients for each protocol.
type frontEdge struct {
	e    *Edge
	f    *Frontend
	addr string // host:port, TCP and (with HTTP/3) UDP
	pool *x509.CertPool
	done chan error // Serve's result
}

// startFrontend serves an edge in front of origin through a Frontend on 127.0.0.1; with TLS
// (the default here) a self-signed development certificate and HTTP/3. wrap, when set, wraps
// the edge handler (to watch handlers run).
func startFrontend(t *testing.T, origin string, change func(*Config), wrap func(http.Handler) http.Handler) *frontEdge {
	t.Helper()
	return startFrontendOn(t, origin, change, wrap, nil)
}

// startFrontendOn is startFrontend with the TCP listener handed to Serve wrapped by wrapLn
// (nil: as it is), to look at the connections the Frontend accepts.
func startFrontendOn(t *testing.T, origin string, change func(*Config), wrap func(http.Handler) http.Handler, wrapLn func(net.Listener) net.Listener) *frontEdge {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Memory = 64 << 20
	cfg.Admin = ""
	cfg.Origins = []Origin{{Host: "*", URL: origin}}
	cfg.TLS.SelfSigned = t.TempDir()
	cfg.TLS.HTTP3 = true
	if change != nil {
		change(&cfg)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = e
	if wrap != nil {
		h = wrap(e)
	}
	f, err := NewFrontend(h, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := f.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fe := &frontEdge{e: e, f: f, addr: ln.Addr().String(), done: make(chan error, 1)}
	if wrapLn != nil {
		ln = wrapLn(ln)
	}
	go func() { fe.done <- f.Serve(ln) }()
	t.Cleanup(func() { f.Close() })
	if f.CAFile() != "" {
		ca, err := os.ReadFile(f.CAFile())
		if err != nil {
			t.Fatal(err)
		}
		fe.pool = x509.NewCertPool()
		fe.pool.AppendCertsFromPEM(ca)
	}
	return fe
}

func (fe *frontEdge) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: fe.pool, ServerName: "localhost"}
}

// client returns an HTTP client speaking exactly proto ("http/1.1", "h2", "h3") to the edge.
func (fe *frontEdge) client(t *testing.T, proto string) *http.Client {
	t.Helper()
	var rt http.RoundTripper
	switch proto {
	case "http/1.1":
		// A non-nil empty TLSNextProto keeps net/http's client off HTTP/2.
		rt = &http.Transport{TLSClientConfig: fe.tlsConfig(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxIdleConnsPerHost: 64}
	case "h2":
		rt = &http2.Transport{TLSClientConfig: fe.tlsConfig()}
	case "h3":
		rt = &http3.Transport{TLSClientConfig: fe.tlsConfig()}
	default:
		t.Fatalf("no client for %s", proto)
	}
	t.Cleanup(func() {
		switch rt := rt.(type) {
		case *http.Transport:
			rt.CloseIdleConnections()
		case *http2.Transport:
			rt.CloseIdleConnections()
		case *http3.Transport:
			rt.Close()
		}
	})
	return &http.Client{Transport: rt, Timeout: 20 * time.Second}
}

// metric reads one series of the edge's /metrics.
func metric(t *testing.T, e *Edge, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer tok")
	e.AdminHandler("tok").ServeHTTP(rec, req)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// protoOrigin serves, under any prefix: /obj (small), /big (64 KiB, ranges), /slow (sent
// over ~300 ms in pieces), all cacheable, counting requests by path.
type protoOrigin struct {
	*httptest.Server
	big   []byte
	mu    sync.Mutex
	count map[string]int
}

func newProtoOrigin(t *testing.T) *protoOrigin {
	o := &protoOrigin{big: make([]byte, 64<<10), count: map[string]int{}}
	for i := range o.big {
		o.big[i] = byte(i * 7 / 3)
	}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.count[r.URL.Path]++
		o.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Content-Type", "application/octet-stream")
		switch {
		case strings.HasSuffix(r.URL.Path, "/obj"):
			io.WriteString(w, "object at "+r.URL.Path)
		case strings.HasSuffix(r.URL.Path, "/big"):
			w.Header().Set("ETag", `"big-1"`)
			http.ServeContent(w, r, "", time.Unix(1e9, 0), bytes.NewReader(o.big))
		case strings.HasSuffix(r.URL.Path, "/slow"):
			w.Header().Set("Content-Length", strconv.Itoa(len(o.big)))
			for i := 0; i < 8; i++ {
				w.Write(o.big[i*len(o.big)/8 : (i+1)*len(o.big)/8])
				w.(http.Flusher).Flush()
				time.Sleep(40 * time.Millisecond)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *protoOrigin) requests(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[path]
}

// TestProtocols: hits, misses, ranges and coalescing behave the same over HTTP/1.1, HTTP/2
// (RFC 9113, over TLS by ALPN) and HTTP/3 (RFC 9114, quic-go's client): same status, bytes,
// Cache-Status (RFC 9211) and origin requests; TCP responses — hits from edge/h1's
// pre-serialised path included — advertise HTTP/3 with Alt-Svc (RFC 7838 §3); and requests
// are counted by protocol.
func TestProtocols(t *testing.T) {
	o := newProtoOrigin(t)
	fe := startFrontend(t, o.URL, nil, nil)
	if !strings.HasPrefix(fe.f.AltSvc(), `h3=":`+fe.addr[strings.LastIndex(fe.addr, ":")+1:]+`"; ma=`) {
		t.Fatalf("Alt-Svc %q does not name the listener's port", fe.f.AltSvc())
	}
	base := "https://" + fe.addr
	tests := []struct {
		proto  string
		major  int
		altSvc bool // RFC 7838 §3: advertised on TCP responses; an h3 response needn't repeat it
	}{
		{"http/1.1", 1, true},
		{"h2", 2, true},
		{"h3", 3, false},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.proto, "/", ""), func(t *testing.T) {
			c := fe.client(t, tc.proto)
			p := "/" + strings.ReplaceAll(tc.proto, "/", "")
			before := metric(t, fe.e, `reel_edge_requests_by_protocol_total{protocol="`+tc.proto+`"}`)
			requests := 0
			fetch := func(path string, hdr ...string) (*http.Response, []byte) {
				t.Helper()
				req, _ := http.NewRequest("GET", base+path, nil)
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("GET %s: body: %v", path, err)
				}
				requests++
				if resp.ProtoMajor != tc.major {
					t.Errorf("GET %s went over %s, want %s", path, resp.Proto, tc.proto)
				}
				if got := resp.Header.Get("Alt-Svc"); tc.altSvc && got != fe.f.AltSvc() {
					t.Errorf("GET %s (%s): Alt-Svc %q, want %q", path, resp.Header.Get("Cache-Status"), got, fe.f.AltSvc())
				}
				return resp, b
			}

			// Miss, then hit: one origin request (RFC 9111 §4; RFC 9211 §2.1, §2.4).
			resp, b := fetch(p + "/obj")
			if resp.StatusCode != 200 || string(b) != "object at "+p+"/obj" || !strings.Contains(resp.Header.Get("Cache-Status"), "fwd=uri-miss") {
				t.Fatalf("miss: %d %q %q", resp.StatusCode, b, resp.Header.Get("Cache-Status"))
			}
			resp, b = fetch(p + "/obj")
			if resp.StatusCode != 200 || string(b) != "object at "+p+"/obj" || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "reel; hit") || resp.Header.Get("Age") == "" {
				t.Fatalf("hit: %d %q %q", resp.StatusCode, b, resp.Header.Get("Cache-Status"))
			}
			if n := o.requests(p + "/obj"); n != 1 {
				t.Errorf("origin saw %d requests for %s/obj, want 1", n, p)
			}

			// Ranges (RFC 9110 §14): cold, then from the stored object.
			for i, rng := range []struct{ hdr, want string }{{"bytes=1000-1999", "hit"}, {"bytes=-100", "hit"}} {
				resp, b = fetch(p+"/big", "Range", rng.hdr)
				start, end := 1000, 2000
				if i == 1 {
					start, end = len(o.big)-100, len(o.big)
				}
				want := fmt.Sprintf("bytes %d-%d/%d", start, end-1, len(o.big))
				if resp.StatusCode != 206 || !bytes.Equal(b, o.big[start:end]) || resp.Header.Get("Content-Range") != want {
					t.Fatalf("range %s: %d, %d bytes, Content-Range %q", rng.hdr, resp.StatusCode, len(b), resp.Header.Get("Content-Range"))
				}
			}
			resp, b = fetch(p+"/big", "Range", "bytes=5-9")
			if resp.StatusCode != 206 || !bytes.Equal(b, o.big[5:10]) || !strings.HasPrefix(resp.Header.Get("Cache-Status"), "reel; hit") {
				t.Fatalf("range hit: %d %q %q", resp.StatusCode, b, resp.Header.Get("Cache-Status"))
			}
			if n := o.requests(p + "/big"); n != 1 {
				t.Errorf("origin saw %d requests for %s/big, want 1", n, p)
			}

			// Coalescing: concurrent clients on a cold, slow object → one origin request,
			// every client the whole object.
			const clients = 16
			var wg sync.WaitGroup
			var ok, collapsed atomic.Int32
			for range clients {
				wg.Go(func() {
					resp, err := c.Get(base + p + "/slow")
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					if resp.StatusCode == 200 && bytes.Equal(b, o.big) {
						ok.Add(1)
					}
					if strings.Contains(resp.Header.Get("Cache-Status"), "collapsed") || strings.HasPrefix(resp.Header.Get("Cache-Status"), "reel; hit") {
						collapsed.Add(1)
					}
				})
			}
			wg.Wait()
			requests += clients
			if ok.Load() != clients || collapsed.Load() < clients-1 {
				t.Errorf("coalescing: %d of %d clients got the object, %d joined the fill or hit", ok.Load(), clients, collapsed.Load())
			}
			if n := o.requests(p + "/slow"); n != 1 {
				t.Errorf("origin saw %d requests for the cold slow object, want 1", n)
			}
			if got := metric(t, fe.e, `reel_edge_requests_by_protocol_total{protocol="`+tc.proto+`"}`) - before; int(got) != requests {
				t.Errorf("reel_edge_requests_by_protocol_total{protocol=%q} grew by %v, want %d", tc.proto, got, requests)
			}
		})
	}
}

// TestH2C: with http2.h2c, a plain listener serves HTTP/2 to a client that opens with the
// preface (prior knowledge, RFC 9113 §3.3) and HTTP/1.x to everyone else — including an
// HTTP/1.0 request shorter than the preface, which must not wait for more bytes.
func TestH2C(t *testing.T) {
	o := newProtoOrigin(t)
	fe := startFrontend(t, o.URL, func(c *Config) {
		c.TLS = TLS{}
		c.HTTP2.H2C = true
	}, nil)
	h2c := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	for i, want := range []string{"fwd=uri-miss", "reel; hit"} {
		resp, err := h2c.Get("http://" + fe.addr + "/c/obj")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "object at /c/obj" || !strings.Contains(resp.Header.Get("Cache-Status"), want) || resp.TLS != nil {
			t.Fatalf("h2c request %d: %s %q %q", i, resp.Proto, b, resp.Header.Get("Cache-Status"))
		}
	}
	// HTTP/1.1 on the same listener, hitting what h2c stored.
	r := get(t, "http://"+fe.addr+"/c/obj")
	if r.body != "object at /c/obj" || !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Fatalf("HTTP/1.1 beside h2c: %q %q", r.body, r.cacheStatus())
	}
	// "GET / HTTP/1.0" + CRLF CRLF is 18 bytes, less than the 24 of the preface.
	conn, err := net.Dial("tcp", fe.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n")
	line := make([]byte, 12)
	if _, err := io.ReadFull(conn, line); err != nil || !strings.HasPrefix(string(line), "HTTP/1.") {
		t.Fatalf("short HTTP/1.0 request: %q %v", line, err)
	}
	if n := o.requests("/c/obj"); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
	// Without http2.h2c, the preface is just a bad HTTP/1.x request.
	plain := startFrontend(t, o.URL, func(c *Config) { c.TLS = TLS{} }, nil)
	if _, err := h2c.Get("http://" + plain.addr + "/c/obj"); err == nil {
		t.Error("h2c served without http2.h2c")
	}
}

// TestHTTP2Off: http2.off leaves HTTP/2 out of ALPN; clients that ask for it get HTTP/1.1.
func TestHTTP2Off(t *testing.T) {
	o := newProtoOrigin(t)
	fe := startFrontend(t, o.URL, func(c *Config) { c.HTTP2.Off = true; c.TLS.HTTP3 = false }, nil)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: fe.tlsConfig(), ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + fe.addr + "/o/obj")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.Header.Get("Alt-Svc") != "" {
		t.Fatalf("%s, Alt-Svc %q", resp.Proto, resp.Header.Get("Alt-Svc"))
	}
}

// TestH2GracefulShutdown: Shutdown with an HTTP/2 stream in flight sends GOAWAY (RFC 9113
// §6.8, NO_ERROR, the stream's id as the last one) and lets the stream finish before the
// connection closes; the h3 and h1 sides stop too and Serve returns ErrServerClosed.
func TestH2GracefulShutdown(t *testing.T) {
	o := newProtoOrigin(t)
	fe := startFrontend(t, o.URL, nil, nil)
	h := dialH2(t, fe, true)
	h.request(t, 1, "/s/slow", nil)
	// The response head arrives, then Shutdown begins while the body is still coming.
	var gotHead bool
	for !gotHead {
		f := h.read(t)
		if hf, ok := f.(*http2.MetaHeadersFrame); ok && hf.StreamID == 1 {
			gotHead = true
			if hf.PseudoValue("status") != "200" {
				t.Fatalf("status %s", hf.PseudoValue("status"))
			}
		}
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- fe.f.Shutdown(ctx)
	}()
	var body int
	var goAway *http2.GoAwayFrame
	ended := false
	for !ended {
		switch f := h.read(t).(type) {
		case *http2.GoAwayFrame:
			goAway = f
		case *http2.DataFrame:
			body += len(f.Data())
			ended = f.StreamEnded()
			// Return the flow-control credit so the server can send the rest.
			if n := uint32(len(f.Data())); n > 0 {
				h.fr.WriteWindowUpdate(0, n)
				h.fr.WriteWindowUpdate(1, n)
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset during shutdown: %v", f.ErrCode)
		}
	}
	if goAway == nil || goAway.ErrCode != http2.ErrCodeNo || goAway.LastStreamID != 1 {
		t.Fatalf("GOAWAY before the stream ended: %+v", goAway)
	}
	if body != len(o.big) {
		t.Fatalf("stream in flight got %d of %d bytes", body, len(o.big))
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-fe.done; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := net.DialTimeout("tcp", fe.addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}
