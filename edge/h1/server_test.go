package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// perConnMode is set while TestMain runs the tests a second time, with a goroutine per
// connection instead of event loops.
var perConnMode bool

// TestMain runs the tests with the event loops (the default) and again with a goroutine per
// connection (Server.GoroutinePerConn): both modes serve the same protocol.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		perConnMode = true
		code = m.Run()
	}
	os.Exit(code)
}

// start serves h on a loopback port and returns its address.
func start(t *testing.T, h http.HandlerFunc, change ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, GoroutinePerConn: perConnMode}
	for _, c := range change {
		c(s)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// exchange writes raw on one connection and reads n responses back with net/http's parser.
func exchange(t *testing.T, addr, raw string, methods ...string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

func bodyOf(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }

// TestPipelining: RFC 9112 §9.3.2 — responses to pipelined requests come back in order on one connection.
func TestPipelining(t *testing.T) {
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Host)
	})
	rs := exchange(t, addr,
		"GET /one HTTP/1.1\r\nHost: a\r\n\r\nHEAD /two HTTP/1.1\r\nHost: b\r\n\r\nGET /three HTTP/1.1\r\nHost: c\r\n\r\n",
		"GET", "HEAD", "GET")
	want := []string{"GET /one a", "", "GET /three c"}
	for i, r := range rs {
		if got := bodyOf(r); got != want[i] {
			t.Errorf("response %d: %q, want %q", i+1, got, want[i])
		}
	}
	// RFC 9110 §9.3.2: HEAD gets the header GET would, without the body.
	if rs[1].ContentLength != int64(len("HEAD /two b")) {
		t.Errorf("HEAD Content-Length %d", rs[1].ContentLength)
	}
}

// TestFraming: how the body is delimited (RFC 9112 §6.3) for each kind of handler.
func TestFraming(t *testing.T) {
	big := strings.Repeat("x", 3*bufferBeforeChunking)
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small": // no length, finishes within the held-back buffer → Content-Length
			io.WriteString(w, "hello")
		case "/big": // no length, larger → chunked in 1.1, close-delimited in 1.0
			io.WriteString(w, big)
		case "/declared":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/short": // declares more than it sends → the connection must close
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hello")
		case "/304":
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(http.StatusNotModified)
		case "/flush": // a flush before the end commits to chunked
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		}
	})
	tests := []struct {
		path, proto string
		te          []string
		length      int64
		body        string
		close       bool
	}{
		{"/small", "1.1", nil, 5, "hello", false},
		{"/big", "1.1", []string{"chunked"}, -1, big, false},
		{"/big", "1.0", nil, -1, big, true},
		{"/declared", "1.1", nil, 5, "hello", false},
		{"/flush", "1.1", []string{"chunked"}, -1, "ab", false},
		// RFC 9110 §15.4.5: a 304 has no body; the length field is not sent.
		{"/304", "1.1", nil, 0, "", false},
	}
	for _, tc := range tests {
		host := "Host: a\r\n"
		if tc.proto == "1.0" {
			host = ""
		}
		r := exchange(t, addr, "GET "+tc.path+" HTTP/"+tc.proto+"\r\n"+host+"\r\n", "GET")[0]
		if strings.Join(r.TransferEncoding, ",") != strings.Join(tc.te, ",") || r.ContentLength != tc.length ||
			bodyOf(r) != tc.body || r.Close != tc.close {
			t.Errorf("%s over %s: TE %v, length %d, close %v", tc.path, tc.proto, r.TransferEncoding, r.ContentLength, r.Close)
		}
		if r.Header.Get("Date") == "" {
			t.Errorf("%s: no Date (RFC 9110 §6.6.1)", tc.path)
		}
	}

	// A response shorter than its Content-Length ends with the connection, not with a next response.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !strings.HasSuffix(string(got), "\r\n\r\nhello") {
		t.Fatalf("short response: %q", got)
	}
}

// TestRequestBodies: Content-Length and chunked bodies reach the handler; an unread body is
// drained so the next request on the connection still parses; 100-continue is sent only when
// the handler reads (RFC 9110 §10.1.1).
func TestRequestBodies(t *testing.T) {
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ignore" {
			io.WriteString(w, "ignored")
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, string(b))
	})
	rs := exchange(t, addr,
		"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"+
			"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"+
			"POST /ignore HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nwxyz"+
			"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST", "POST", "POST", "GET")
	for i, want := range []string{"hello", "abcde", "ignored", ""} {
		if got := bodyOf(rs[i]); got != want {
			t.Errorf("request %d: %q, want %q", i+1, got, want)
		}
	}

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "PUT /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim response %q", line)
	}
	br.ReadString('\n')
	io.WriteString(c, "abc")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || bodyOf(resp) != "abc" {
		t.Fatalf("after 100-continue: %v", err)
	}
}

// TestContextCancelledOnDisconnect: a handler waiting on its context learns the client left,
// and the context ends when the handler returns.
func TestContextCancelledOnDisconnect(t *testing.T) {
	waiting := make(chan struct{})
	gotCancel := make(chan error, 1)
	var afterReturn context.Context
	returned := make(chan struct{})
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quick" {
			afterReturn = r.Context()
			close(returned)
			return
		}
		close(waiting)
		select {
		case <-r.Context().Done():
			gotCancel <- r.Context().Err()
		case <-time.After(5 * time.Second):
			gotCancel <- nil
		}
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	<-waiting
	c.Close()
	if err := <-gotCancel; !errors.Is(err, context.Canceled) {
		t.Fatalf("context after the client left: %v", err)
	}
	exchange(t, addr, "GET /quick HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	<-returned
	if afterReturn.Err() == nil {
		t.Fatal("context still live after the handler returned")
	}
}

// TestPeerWatchKeepsPipelinedBytes: the background read that watches for a disconnect may take
// the first byte of the next request; that byte must not be lost.
func TestPeerWatchKeepsPipelinedBytes(t *testing.T) {
	release := make(chan struct{})
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
		io.WriteString(w, r.URL.Path)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the handler is waiting on Done, the watch reading
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	close(release)
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/next"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := bodyOf(resp); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestPanics: a panicking handler closes its connection and the server keeps serving; a
// handler aborting with http.ErrAbortHandler is not logged as a crash.
func TestPanics(t *testing.T) {
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "hel")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "/boom":
			panic("boom")
		}
		io.WriteString(w, "fine")
	}, func(s *Server) { s.Log = discardLog() })
	for _, p := range []string{"/abort", "/boom"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n")
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if p == "/boom" && len(got) != 0 {
			t.Fatalf("%s: a response was sent: %q", p, got)
		}
	}
	if r := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")[0]; bodyOf(r) != "fine" {
		t.Fatal("server stopped serving after a panic")
	}
}

// TestShutdown: in-flight requests finish (with Connection: close), idle connections close,
// new connections are refused, and Shutdown returns when all are gone.
func TestShutdown(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	s, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		io.WriteString(w, "done")
	})
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if r, err := http.ReadResponse(ibr, nil); err != nil || bodyOf(r) != "done" {
		t.Fatal(err)
	}

	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inHandler

	var shutDown atomic.Bool
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errc <- s.Shutdown(ctx)
		shutDown.Store(true)
	}()
	// The idle connection is closed without a response.
	if n, _ := ibr.Read(make([]byte, 1)); n != 0 {
		t.Fatal("idle connection got bytes after shutdown began")
	}
	if shutDown.Load() {
		t.Fatal("Shutdown returned with a request in flight")
	}
	close(release)
	r, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || bodyOf(r) != "done" || !r.Close {
		t.Fatalf("in-flight request: %v, close %v", err, r != nil && r.Close)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepting after Shutdown")
	}
}

// TestTimeouts: a slow header sender is cut off; an idle keep-alive connection is reclaimed.
func TestTimeouts(t *testing.T) {
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
		func(s *Server) { s.ReadHeaderTimeout, s.IdleTimeout = 200*time.Millisecond, 200*time.Millisecond })
	for _, raw := range []string{"GET / HTTP/1.1\r\nHost:", ""} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, raw)
		begin := time.Now()
		_, err = io.ReadAll(c)
		c.Close()
		if err != nil || time.Since(begin) > 3*time.Second {
			t.Fatalf("%q: connection not closed by the server (%v, %v)", raw, err, time.Since(begin))
		}
	}
}

// TestSendfile: a file body with a declared length goes out whole through ReadFrom.
func TestSendfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := strings.Repeat("0123456789", 100_000)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Length", "1000000")
		io.Copy(w, f)
	})
	rs := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "GET")
	for _, r := range rs {
		if bodyOf(r) != data {
			t.Fatal("file body differs")
		}
	}
}

// TestHeaderInjection: a CR or LF in a handler's header value can't split the response.
func TestHeaderInjection(t *testing.T) {
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", "a\r\nSet-Cookie: evil=1")
		io.WriteString(w, "ok")
	})
	r := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")[0]
	if r.Header.Get("Set-Cookie") != "" || !strings.Contains(r.Header.Get("X-Echo"), "Set-Cookie") {
		t.Fatalf("header split: %v", r.Header)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestWireFields: fields a handler appends in wire form go out with those of Header(), a
// length declared with SetContentLength frames the body as a Content-Length field would (and
// is left out where the status has no content, RFC 9110 §15.4.5, §15.3.5), OmitDate leaves the
// server's Date out, and nothing carries over to the connection's next response.
func TestWireFields(t *testing.T) {
	const date = "Sat, 01 Jan 2000 00:00:00 GMT"
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wire":
			wire := w.(interface{ WireFields() *[]byte }).WireFields()
			*wire = append(*wire, "Date: "+date+"\r\nX-Wire: 1\r\n"...)
			w.(interface{ SetContentLength(int64) }).SetContentLength(5)
			w.(interface{ OmitDate() }).OmitDate()
			w.Header().Set("X-Map", "m")
			io.WriteString(w, "hello")
		case "/304":
			w.(interface{ SetContentLength(int64) }).SetContentLength(5)
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "plain")
		}
	})
	rs := exchange(t, addr, "GET /wire HTTP/1.1\r\nHost: a\r\n\r\nHEAD /wire HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET /plain HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "HEAD", "GET", "GET")
	for i, r := range rs[:2] {
		if got := r.Header["Date"]; len(got) != 1 || got[0] != date {
			t.Errorf("response %d: Date %q, want only %q", i+1, got, date)
		}
		if r.Header.Get("X-Wire") != "1" || r.Header.Get("X-Map") != "m" || r.ContentLength != 5 || len(r.Header["Content-Length"]) != 1 {
			t.Errorf("response %d: header %v", i+1, r.Header)
		}
	}
	if b := bodyOf(rs[0]); b != "hello" {
		t.Errorf("GET body %q", b)
	}
	if b := bodyOf(rs[1]); b != "" {
		t.Errorf("HEAD body %q", b)
	}
	if rs[2].StatusCode != http.StatusNotModified || rs[2].Header["Content-Length"] != nil {
		t.Errorf("304: %d, Content-Length %q", rs[2].StatusCode, rs[2].Header["Content-Length"])
	}
	if r := rs[3]; r.Header.Get("X-Wire") != "" || r.Header.Get("Date") == "" || r.Header.Get("Date") == date || bodyOf(r) != "plain" {
		t.Errorf("next response: header %v", r.Header)
	}
}
