package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/reelvideo/reel/internal/testkit"
)

// testServer serves h2c (prior knowledge) on a loopback port with s.
type testServer struct {
	s    *Server
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
}

func startServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{s: s, ln: ln, addr: ln.Addr().String()}
	ts.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ts.wg.Go(func() { s.ServeConn(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.Shutdown()
		done := make(chan struct{})
		go func() { ts.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("connections still open 10s after Shutdown")
		}
	})
	return ts
}

// h2cClient is Go's HTTP/2 transport over plain TCP.
func h2cClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// body is a deterministic body of n bytes.
func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// testHandler: /size/N answers N bytes; /echo returns the request body; /stream flushes
// chunks and sends a trailer; everything else "hello".
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/size/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body(n))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Trailer-Seen", r.Trailer.Get("X-Sum"))
		w.Write(b)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Done")
		for i := range 5 {
			fmt.Fprintf(w, "chunk %d\n", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Done", "yes")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// The body first: a request whose DATA don't add up to its Content-Length is reset
		// (PROTOCOL_ERROR) rather than answered. (A handler that answers without reading
		// may complete its response before the bad DATA arrive; h2spec sends them.)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		io.WriteString(w, "hello from h2 "+strings.Repeat("x", 100))
	})
	return mux
}

func TestServeBasics(t *testing.T) {
	ts := startServer(t, &Server{Handler: testHandler(), ResponseFields: [][2]string{{"alt-svc", `h3=":1"`}}})
	c := h2cClient()
	for _, n := range []int{0, 1, 1024, 16 << 10, 100 << 10, 4 << 20} {
		resp, err := c.Get(fmt.Sprintf("http://%s/size/%d", ts.addr, n))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(b, body(n)) || resp.ContentLength != int64(n) || resp.ProtoMajor != 2 {
			t.Fatalf("size %d: %d bytes, Content-Length %d, %s, %v", n, len(b), resp.ContentLength, resp.Proto, err)
		}
		if resp.Header.Get("Alt-Svc") != `h3=":1"` || resp.Header.Get("Date") == "" {
			t.Fatalf("header %v", resp.Header)
		}
	}
	// A request body, with trailers.
	pr, pw := io.Pipe()
	go func() {
		for range 100 {
			pw.Write(body(10 << 10))
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+ts.addr+"/echo", pr)
	req.Trailer = http.Header{"X-Sum": nil}
	go func() {}()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) != 100*10<<10 {
		t.Fatalf("echo: %d bytes", len(b))
	}
	// Streaming with Flush and a trailer.
	resp, err = c.Get("http://" + ts.addr + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "chunk 0\n") || !strings.HasSuffix(string(b), "chunk 4\n") || resp.Trailer.Get("X-Done") != "yes" {
		t.Fatalf("stream: %q, trailer %v", b, resp.Trailer)
	}
}

// TestConcurrentStreams: many streams of mixed sizes at once on one connection, each whole.
func TestConcurrentStreams(t *testing.T) {
	ts := startServer(t, &Server{Handler: testHandler()})
	c := h2cClient()
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range 200 {
		wg.Go(func() {
			n := []int{100, 5000, 70000, 1 << 20}[i%4]
			resp, err := c.Get(fmt.Sprintf("http://%s/size/%d", ts.addr, n))
			if err != nil {
				failed.Store(err)
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(b, body(n)) {
				failed.Store(fmt.Errorf("size %d: got %d bytes, %v", n, len(b), err))
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// rawConn drives the server frame by frame.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	fr *http2.Framer
}

func dialRaw(t *testing.T, addr string, settings ...http2.Setting) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawConn{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	io.WriteString(nc, http2.ClientPreface)
	r.fr.WriteSettings(settings...)
	return r
}

func (r *rawConn) read() http2.Frame {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := r.fr.ReadFrame()
	if err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	return f
}

func (r *rawConn) get(id uint32, path string) {
	var buf bytes.Buffer
	e := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		r.t.Fatal(err)
	}
}

// TestSmallWindow: a client with a 1-byte... 100-byte stream window and a small connection
// window still gets every byte of several large responses, in frames within the windows,
// and a small response on the same connection isn't held behind the large ones.
func TestSmallWindow(t *testing.T) {
	ts := startServer(t, &Server{Handler: testHandler()})
	r := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
	const big = 300 << 10
	r.get(1, "/size/"+strconv.Itoa(big))
	r.get(3, "/size/"+strconv.Itoa(big))
	got := map[uint32]int{}
	ended := map[uint32]bool{}
	sentSmall := false
	window := map[uint32]int{1: 100, 3: 100}
	connWindow := 65535
	for !(ended[1] && ended[3] && ended[5]) {
		switch f := r.read().(type) {
		case *http2.DataFrame:
			n := len(f.Data())
			got[f.StreamID] += n
			window[f.StreamID] -= n
			connWindow -= n
			if window[f.StreamID] < 0 || connWindow < 0 {
				t.Fatalf("stream %d: sent past the window (%d, connection %d)", f.StreamID, window[f.StreamID], connWindow)
			}
			if f.StreamEnded() {
				ended[f.StreamID] = true
			}
			if f.StreamID != 5 && n > 0 {
				// Credit back in small steps, the connection only when it runs low.
				r.fr.WriteWindowUpdate(f.StreamID, uint32(n))
				window[f.StreamID] += n
				if connWindow < 1000 {
					r.fr.WriteWindowUpdate(0, 60000)
					connWindow += 60000
				}
			}
			if !sentSmall && got[1] > 10<<10 {
				sentSmall = true
				window[5] = 100
				r.get(5, "/size/50")
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("%v", f)
		}
	}
	if got[1] != big || got[3] != big || got[5] != 50 {
		t.Fatalf("got %v", got)
	}
}

// TestResetCancels: RST_STREAM ends the handler's context.
func TestResetCancels(t *testing.T) {
	cancelled := make(chan struct{})
	started := make(chan struct{})
	ts := startServer(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	})})
	r := dialRaw(t, ts.addr)
	r.get(1, "/")
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler never started")
	}
	r.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled by RST_STREAM")
	}
}

// TestGoAwayDrain: Shutdown sends GOAWAY with the last stream; a stream in flight finishes,
// then the connection closes.
func TestGoAwayDrain(t *testing.T) {
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	})}
	ts := startServer(t, s)
	r := dialRaw(t, ts.addr)
	r.get(1, "/")
	// Wait until the stream is open on the server, then shut down.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := 0
		for c := range s.conns {
			c.mu.Lock()
			n += len(c.streams)
			c.mu.Unlock()
		}
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stream never opened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Shutdown()
	var ga *http2.GoAwayFrame
	for ga == nil {
		if f, ok := r.read().(*http2.GoAwayFrame); ok {
			ga = f
		}
	}
	if ga.ErrCode != http2.ErrCodeNo || ga.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v last %d", ga.ErrCode, ga.LastStreamID)
	}
	close(release)
	var data []byte
	for {
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		f, err := r.fr.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("connection ended with %v, not a close", err)
			}
			break
		}
		if d, ok := f.(*http2.DataFrame); ok {
			data = append(data, d.Data()...)
		}
	}
	if string(data) != "done" {
		t.Fatalf("stream in flight got %q", data)
	}
}

// TestH2Spec runs h2spec (RFC 9113 and RFC 7541 conformance) against the server alone: every
// case must pass. (TestH2spec in edge runs it against the whole edge over TLS and h2c.)
func TestH2Spec(t *testing.T) {
	bin := testkit.RequireH2spec(t)
	ts := startServer(t, &Server{Handler: testHandler(), MaxConcurrentStreams: 100})
	host, port, _ := net.SplitHostPort(ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-o", "5").CombinedOutput()
	if err != nil {
		t.Fatalf("h2spec: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " 0 failed") || !strings.Contains(string(out), " 0 skipped") {
		t.Fatalf("h2spec:\n%s", out)
	}
	t.Logf("%s", lastLines(string(out), 1))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestLargeBodiesInterleave: while a connection's large responses stream with open windows, a
// small response asked for on it meanwhile gets its turn at the connection's lock within a
// few frames of theirs (measured on the server: the DATA bytes the connection wrote while the
// small handler's Write waited), not after a whole large body, and completes before them.
func TestLargeBodiesInterleave(t *testing.T) {
	var s *Server
	var waited atomic.Int64
	inner := testHandler()
	s = &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/small" {
			inner.ServeHTTP(w, r)
			return
		}
		c := w.(*responseWriter).st.c
		before := c.dataBytes.Load()
		w.Header().Set("Content-Length", "100")
		w.Write(body(100))
		waited.Store(c.dataBytes.Load() - before - 100)
	})}
	ts := startServer(t, s)
	r := dialRaw(t, ts.addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	r.fr.WriteWindowUpdate(0, 1<<30)
	const big = 32 << 20
	for id := uint32(1); id <= 7; id += 2 {
		r.get(id, "/size/"+strconv.Itoa(big))
	}
	got := map[uint32]int{}
	ended := map[uint32]bool{}
	asked := false
	for len(ended) < 5 {
		switch f := r.read().(type) {
		case *http2.DataFrame:
			got[f.StreamID] += len(f.Data())
			if !asked {
				asked = true
				r.get(9, "/small")
			}
			if f.StreamEnded() {
				ended[f.StreamID] = true
				if f.StreamID != 9 && !ended[9] && got[f.StreamID] == big && !asked {
					t.Fatalf("stream %d ended before the small one was asked for", f.StreamID)
				}
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				r.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("%v", f)
		}
	}
	if got[9] != 100 {
		t.Fatalf("small stream: %d bytes", got[9])
	}
	for id := uint32(1); id <= 7; id += 2 {
		if got[id] != big {
			t.Fatalf("stream %d: %d bytes", id, got[id])
		}
	}
	// Four writers ahead of it, a frame each (16 KiB, the client's frame size), and what each
	// had under way: far below a body's 32 MiB.
	t.Logf("the small response waited while %d bytes of the large ones were written", waited.Load())
	if w := waited.Load(); w > 1<<20 {
		t.Fatalf("the small response waited while %d bytes of the large ones were written", w)
	}
}

// TestExpectContinue: a request with Expect: 100-continue gets 100 when its handler reads the
// body; Go's client then sends the body at once rather than after its timeout.
func TestExpectContinue(t *testing.T) {
	ts := startServer(t, &Server{Handler: testHandler()})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &protos, ExpectContinueTimeout: 20 * time.Second}}
	req, _ := http.NewRequest("POST", "http://"+ts.addr+"/echo", strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	var got100 atomic.Bool
	req = req.WithContext(httptraceWith100(req.Context(), &got100))
	began := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "payload" || !got100.Load() {
		t.Fatalf("body %q, 100 Continue seen: %v", b, got100.Load())
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("took %v: the client waited out its timeout", d)
	}
}

func httptraceWith100(ctx context.Context, seen *atomic.Bool) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{Got100Continue: func() { seen.Store(true) }})
}

// TestEarlyResponse: a response that ends while its request body is still open (a handler that
// doesn't read it) leaves the stream half-closed for the frames already on their way — a
// window overflow on it is still a FLOW_CONTROL_ERROR — and the client is then told to stop
// sending (RST_STREAM NO_ERROR, RFC 9113 §8.1) without having to send anything more.
func TestEarlyResponse(t *testing.T) {
	ts := startServer(t, &Server{Handler: testHandler()})
	r := dialRaw(t, ts.addr)
	post := func(id uint32) {
		var buf bytes.Buffer
		e := hpack.NewEncoder(&buf)
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/size/10"}} {
			e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	// next returns the next DATA with END_STREAM or RST_STREAM.
	next := func() http2.Frame {
		for {
			switch f := r.read().(type) {
			case *http2.DataFrame:
				if f.StreamEnded() {
					return f
				}
			case *http2.RSTStreamFrame, *http2.GoAwayFrame:
				return f
			}
		}
	}
	// The overflow must reach the server within its linger after the response (100 ms): on a
	// loaded machine this client may be slower than that, and the server then has closed the
	// stream with NO_ERROR first, which is right too. A few streams, then: one at least must
	// show the overflow refused, and every other must have ended with NO_ERROR.
	id, overflowSeen := uint32(1), false
	for ; id <= 9 && !overflowSeen; id += 2 {
		post(id)
		if f, ok := next().(*http2.DataFrame); !ok || f.StreamID != id {
			t.Fatalf("got %v, want the response's end", f)
		}
		r.fr.WriteWindowUpdate(id, 1<<31-1)
		r.fr.WriteWindowUpdate(id, 1<<31-1)
		f, ok := next().(*http2.RSTStreamFrame)
		switch {
		case !ok || f.StreamID != id:
			t.Fatalf("got %v, want RST_STREAM on stream %d", f, id)
		case f.ErrCode == http2.ErrCodeFlowControl:
			overflowSeen = true
		case f.ErrCode != http2.ErrCodeNo:
			t.Fatalf("got %v, want RST_STREAM FLOW_CONTROL_ERROR (or NO_ERROR, sent first) on stream %d", f, id)
		}
	}
	if !overflowSeen {
		t.Fatal("no window overflow refused with FLOW_CONTROL_ERROR in 5 streams")
	}
	post(id)
	if f, ok := next().(*http2.DataFrame); !ok || f.StreamID != id {
		t.Fatalf("got %v, want the response's end", f)
	}
	if f, ok := next().(*http2.RSTStreamFrame); !ok || f.StreamID != id || f.ErrCode != http2.ErrCodeNo {
		t.Fatalf("got %v, want RST_STREAM NO_ERROR on stream %d", f, id)
	}
}
