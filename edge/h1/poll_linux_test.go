//go:build linux

package h1

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoopLeavesBeforeWaiting: with one event loop, a request that must wait — on its context,
// on a body still arriving, on a client that doesn't read, on the rest of its head — leaves the
// loop first, so another connection's request is answered meanwhile; then the waiting one is
// answered as it would have been. Without the hook of each case the quick request is never
// answered (the loop's goroutine is the one waiting).
func TestLoopLeavesBeforeWaiting(t *testing.T) {
	if perConnMode {
		t.Skip("event loops only")
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB: more than the socket buffers hold
	release := make(chan struct{}, 1)
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ctx":
			select {
			case <-r.Context().Done():
				return
			case <-release:
			}
			io.WriteString(w, "released")
		case "/body":
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("/body: %v", err)
			}
			w.Write(b)
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		default:
			io.WriteString(w, "quick "+r.URL.Path)
		}
	}, func(s *Server) { s.Loops = 1 })

	cases := []struct {
		name  string
		first string                             // what the waiting connection sends first
		then  func(c net.Conn, br *bufio.Reader) // unblocks it, reads and checks its response
	}{
		{"context", "GET /ctx HTTP/1.1\r\nHost: a\r\n\r\n", func(c net.Conn, br *bufio.Reader) {
			release <- struct{}{}
			expectBody(t, br, "released")
		}},
		{"request body", "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello", func(c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "world")
			expectBody(t, br, "helloworld")
		}},
		{"client not reading", "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", func(c net.Conn, br *bufio.Reader) {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(b, big) {
				t.Fatalf("big body: %d bytes, %v", len(b), err)
			}
		}},
		{"head in parts", "GET /parts HTTP/1.1\r\nHo", func(c net.Conn, br *bufio.Reader) {
			io.WriteString(c, "st: a\r\n\r\n")
			expectBody(t, br, "quick /parts")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTest(t, addr)
			c.(*net.TCPConn).SetReadBuffer(16 << 10)
			io.WriteString(c, tc.first)
			// The waiting request has reached the handler or the loop by the time a second
			// connection (on the same, only loop) gets its answer, which it gets at all only
			// if the first left the loop.
			for i := range 3 {
				q := dialTest(t, addr)
				fmt.Fprintf(q, "GET /q%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
				expectBody(t, bufio.NewReader(q), fmt.Sprintf("quick /q%d", i))
				q.Close()
			}
			tc.then(c, bufio.NewReader(c))
		})
	}
}

// TestLoopParkedTimeouts: a parked connection is closed when its first-request or idle timeout
// passes, and the first-request limit is reported.
func TestLoopParkedTimeouts(t *testing.T) {
	var firsts atomic.Int64
	_, addr := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
		func(s *Server) {
			s.FirstRequestTimeout, s.IdleTimeout = 150*time.Millisecond, 300*time.Millisecond
			s.OnLimit = func(l string) {
				if l == LimitFirstRequest {
					firsts.Add(1)
				}
			}
		})
	silent := dialTest(t, addr)
	begin := time.Now()
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("silent connection: %d bytes, %v; want it closed", n, err)
	}
	if d := time.Since(begin); d < 100*time.Millisecond {
		t.Fatalf("silent connection closed after %v, before its timeout", d)
	}
	if firsts.Load() != 1 {
		t.Fatalf("OnLimit(%s) called %d times, want 1", LimitFirstRequest, firsts.Load())
	}
	idle := dialTest(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(idle)
	expectBody(t, br, "ok")
	begin = time.Now()
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection: %d bytes, %v; want it closed", n, err)
	}
	if d := time.Since(begin); d < 250*time.Millisecond {
		t.Fatalf("idle connection closed after %v, before its timeout", d)
	}
	if firsts.Load() != 1 {
		t.Fatalf("an idle connection's timeout was reported as a first-request one")
	}
}

// TestLoopsEndWithServer: Close closes the parked connections, and every loop's goroutine
// ends; so does Shutdown's.
func TestLoopsEndWithServer(t *testing.T) {
	for _, shutdown := range []bool{false, true} {
		s, addr := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
		var conns []*bufio.Reader
		for range 8 {
			c := dialTest(t, addr)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			br := bufio.NewReader(c)
			expectBody(t, br, "ok")
			conns = append(conns, br)
		}
		if loopGoroutines() == 0 && !perConnMode {
			t.Fatal("no event loop running")
		}
		if shutdown {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			cancel()
		} else {
			s.Close()
		}
		for i, br := range conns {
			if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("shutdown=%v: connection %d still open after the server closed", shutdown, i)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for loopGoroutines() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("shutdown=%v: %d event loop goroutines still running 5 s after the server closed", shutdown, loopGoroutines())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// loopGoroutines counts the goroutines running an event loop.
func loopGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "h1.(*loop).run(")
}

func dialTest(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func expectBody(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	if got := bodyOf(resp); got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

// TestLoopForgetsHandedOffSocket: a connection handed to HTTP/2 (h2c prior knowledge) leaves
// its loop while its socket is still open. HTTP/2 may close the socket before returning, and
// the next connection accepted then gets the same number: forgetting the first afterwards
// took the new one's registration with it, and its next request was never read.
func TestLoopForgetsHandedOffSocket(t *testing.T) {
	if perConnMode {
		t.Skip("event loops only")
	}
	closed, proceed := make(chan struct{}), make(chan struct{})
	s, addr := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "h1 "+r.URL.Path) },
		func(s *Server) {
			s.Loops = 1
			s.NextProto = map[string]func(net.Conn){"h2c": func(nc net.Conn) {
				nc.Close()
				close(closed)
				<-proceed
			}}
		})
	a := dialTest(t, addr)
	io.WriteString(a, h2Preface)
	<-closed
	if n, err := a.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatal("the handed-off connection is still open")
	}
	b := dialTest(t, addr)
	br := bufio.NewReader(b)
	io.WriteString(b, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
	expectBody(t, br, "h1 /one")
	l := s.poller.loops[0]
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections on the loop, want the new one alone", n)
	}
	close(proceed) // the handed-off connection's end runs now, after b parked
	b.SetDeadline(time.Now().Add(3 * time.Second))
	for i := range 3 {
		fmt.Fprintf(b, "GET /again%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		expectBody(t, br, fmt.Sprintf("h1 /again%d", i))
	}
}

// TestLargeWritesShareTurns: with one turn for large bodies (one loop), a connection whose
// client stops reading mid-body holds no turn while it waits, so another connection's large
// body still goes out whole; then the first one's does too.
func TestLargeWritesShareTurns(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	s, addr := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		w.Write(big)
	}, func(s *Server) { s.Loops = 1 })
	stalled := dialTest(t, addr)
	stalled.(*net.TCPConn).SetReadBuffer(16 << 10)
	io.WriteString(stalled, "GET /stalled HTTP/1.1\r\nHost: a\r\n\r\n")
	for i := range 2 {
		c := dialTest(t, addr)
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(b, big) {
			t.Fatalf("body %d beside a stalled one: %d bytes, %v", i, len(b), err)
		}
	}
	if cap(s.turns) != 1 {
		t.Fatalf("%d turns, want one per loop", cap(s.turns))
	}
	resp, err := http.ReadResponse(bufio.NewReader(stalled), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("the stalled body, read at last: %d bytes, %v", len(b), err)
	}
}

// TestStoppedLoopPassedOver: a loop that stopped (its wait failed) takes no new connections;
// with none left a connection gets a goroutine of its own and is served all the same.
func TestStoppedLoopPassedOver(t *testing.T) {
	if perConnMode {
		t.Skip("event loops only")
	}
	s, addr := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
		func(s *Server) { s.Loops = 1 })
	c := dialTest(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	expectBody(t, bufio.NewReader(c), "ok")
	s.poller.stop() // as the loop's failed wait does
	deadline := time.Now().Add(5 * time.Second)
	for loopGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stopped loop still runs")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 3 {
		c := dialTest(t, addr)
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\nGET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i, i)
		br := bufio.NewReader(c)
		expectBody(t, br, "ok")
		expectBody(t, br, "ok")
	}
}
