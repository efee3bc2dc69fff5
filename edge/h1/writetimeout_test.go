package h1

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/tlscert"
)

// The bodies of the write-timeout tests: from memory in one Write (the raw writev path), from
// a file (sendfile), and in 16 KiB writes without a length (chunked, through the buffer).
var writeTimeoutBodies = []string{"memory", "file", "chunked"}

// writeTimeoutData is n bytes of a 4093-byte pattern (a prime length: a slice out of place
// shows), cheap to make under the race detector.
func writeTimeoutData(n int) []byte {
	pattern := make([]byte, 4093)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>5)
	}
	data := make([]byte, n)
	for i := 0; i < n; i += copy(data[i:], pattern) {
	}
	return data
}

// startWriteTimeout serves body kind ?b=… of size n with the given write timeout, over TLS
// when withTLS, and reports each handler's write error on errs.
// OnLimit's LimitWrite calls are counted in expired.
func startWriteTimeout(t *testing.T, n int, timeout time.Duration, withTLS bool) (addr string, cfg *tls.Config, errs chan error, expired *atomic.Int64) {
	t.Helper()
	data := writeTimeoutData(n)
	path := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	errs = make(chan error, 8)
	h := func(w http.ResponseWriter, r *http.Request) {
		var err error
		switch r.URL.Query().Get("b") {
		case "memory":
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, err = w.Write(data)
		case "file":
			f, ferr := os.Open(path)
			if ferr != nil {
				t.Error(ferr)
				return
			}
			defer f.Close()
			w.Header().Set("Content-Length", strconv.Itoa(n))
			_, err = w.(io.ReaderFrom).ReadFrom(f)
		case "chunked":
			for p := data; len(p) > 0 && err == nil; p = p[min(len(p), 16<<10):] {
				_, err = w.Write(p[:min(len(p), 16<<10)])
			}
		}
		errs <- err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if withTLS {
		pair, ca, err := tlscert.SelfSigned(t.TempDir(), []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
		if err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		cfg = &tls.Config{RootCAs: x509Pool(t, pem), ServerName: "127.0.0.1"}
	}
	expired = new(atomic.Int64)
	s := &Server{Handler: http.HandlerFunc(h), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: timeout, GoroutinePerConn: perConnMode,
		OnLimit: func(limit string) {
			if limit == LimitWrite {
				expired.Add(1)
			}
		}}
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return ln.Addr().String(), cfg, errs, expired
}

// handlerErr is what the handler's write returned, once it has returned (at most 20 s).
func handlerErr(t *testing.T, errs chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the handler's write still blocked after 20 s")
		return nil
	}
}

// dialSmallWindow connects with a 64 KiB receive buffer, so that a client that doesn't read
// fills its window after a few hundred KiB, wherever the kernel's autotuning would go.
func dialSmallWindow(t *testing.T, addr string, cfg *tls.Config) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) })
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if cfg == nil {
		return c
	}
	tc := tls.Client(c, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

// TestWriteTimeoutStalledClient: a client that asks for a large body and stops reading loses
// its connection once the server has waited WriteTimeout without progress — the handler's
// write fails with a deadline error instead of holding the connection, its goroutine and the
// response for as long as the client likes (before WriteTimeout the write never returned).
// For each body path (writev from memory, sendfile, chunked writes through the buffer), over
// TCP and TLS.
func TestWriteTimeoutStalledClient(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, withTLS := range []bool{false, true} {
		addr, cfg, errs, expired := startWriteTimeout(t, 8<<20, timeout, withTLS)
		for i, b := range writeTimeoutBodies {
			name := fmt.Sprintf("%s tls=%v", b, withTLS)
			c := dialSmallWindow(t, addr, cfg)
			fmt.Fprintf(c, "GET /?b=%s HTTP/1.1\r\nHost: a\r\n\r\n", b)
			if err := handlerErr(t, errs); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: the handler's write returned %v, want a deadline error", name, err)
			}
			if got := expired.Load(); got != int64(i+1) {
				t.Errorf("%s: OnLimit(%q) called %d times in all, want %d", name, LimitWrite, got, i+1)
			}
			// The connection is closed: what the client reads now ends.
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s: the connection stayed open after the write timeout", name)
			}
		}
	}
}

// TestWriteTimeoutSlowReader: a client that reads steadily but slowly — every pause far
// shorter than WriteTimeout, the whole body far longer — gets the whole body intact: the
// timeout bounds a write's lack of progress, not the response (net/http's WriteTimeout
// would have cut it off).
func TestWriteTimeoutSlowReader(t *testing.T) {
	const timeout = time.Second
	const n = 12 << 20
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", withTLS), func(t *testing.T) {
			t.Parallel()
			slowReads(t, n, timeout, withTLS)
		})
	}
}

func slowReads(t *testing.T, n int, timeout time.Duration, withTLS bool) {
	addr, cfg, errs, expired := startWriteTimeout(t, n, timeout, withTLS)
	want := writeTimeoutData(n)
	for _, b := range writeTimeoutBodies {
		name := fmt.Sprintf("%s tls=%v", b, withTLS)
		c := dialSmallWindow(t, addr, cfg)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		begin := time.Now()
		fmt.Fprintf(c, "GET /?b=%s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", b)
		resp, err := http.ReadResponse(bufio.NewReaderSize(&pacedReader{r: c}, 64<<10), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes (%v), want the %d sent; the handler: %v", name, len(got), err, n, handlerErr(t, errs))
		}
		if err := handlerErr(t, errs); err != nil {
			t.Errorf("%s: the handler's write failed: %v", name, err)
		}
		if got := expired.Load(); got != 0 {
			t.Errorf("%s: OnLimit(%q) called %d times", name, LimitWrite, got)
		}
		// The point of the test: the response took longer than the timeout.
		if el := time.Since(begin); el < timeout+timeout/2 {
			t.Fatalf("%s: the body took %v, not enough longer than the %v timeout to tell", name, el, timeout)
		}
	}
}

// pacedReader takes 64 KiB at a time, 10 ms apart: about 6.5 MB/s, far slower than the
// server can send, so that its writes wait on the client again and again.
type pacedReader struct{ r io.Reader }

func (p *pacedReader) Read(b []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	n, err := io.ReadFull(p.r, b[:min(len(b), 64<<10)])
	if err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}

func x509Pool(t *testing.T, pem []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the CA file")
	}
	return p
}
