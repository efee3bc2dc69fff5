package edge

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHitPathCPU is the user-space cost of one memory hit through the HTTP/1.1 server and
// the edge, with the network taken out: a connection that replays one keep-alive request b.N
// times and discards the responses. Loopback benchmarks on a 2-core machine share the CPUs
// with their client; this one shows what the edge itself spends per request.
func BenchmarkHitPathCPU(b *testing.B) { benchHitPath(b, nil, cmpPath1K) }

// BenchmarkHitPathToken is BenchmarkHitPathCPU with signed URLs required and every request
// carrying a valid token in its query: the token check's cost is the difference.
func BenchmarkHitPathToken(b *testing.B) {
	tok := mint(b, "/*", "k1", nil)
	benchHitPath(b, withTokens, cmpPath1K+"?token="+url.QueryEscape(tok))
}

// benchHitPath measures memory hits of target (cmpPath1K, maybe with a query) through an
// edge configured by change (nil: the defaults).
func benchHitPath(b *testing.B, change func(*Config), target string) {
	origin := newCmpOrigin()
	defer origin.Close()
	cfg := DefaultConfig()
	cfg.Origins = []Origin{{Host: "*", URL: origin.URL}}
	if change != nil {
		change(&cfg)
	}
	e, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	base := serveEdge(b, e, cfg)
	defer base.Close()
	c := cmpClient(1)
	// The benchmark's requests carry Host "bench"; warm that key.
	req := "GET " + target + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
	warm, _ := httpNewRequest("GET", base.URL+target, "bench")
	for range 3 {
		resp, err := c.Do(warm)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	conn := &replayConn{req: []byte(req), left: b.N, done: make(chan struct{})}
	srv := NewServer(e, cfg, nil)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	go srv.Serve(&oneConnListener{conn: conn})
	<-conn.done
	b.StopTimer()
	// CPU time, all threads and the GC included: steadier than wall time on a shared machine.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	srv.Close()
	if want := int64(b.N) * int64(len(origin.objects[cmpPath1K])); conn.written < want {
		b.Fatalf("wrote %d bytes for %d requests", conn.written, b.N)
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func httpNewRequest(method, url, host string) (*http.Request, error) {
	r, err := http.NewRequest(method, url, nil)
	if err == nil {
		r.Host = host
	}
	return r, err
}

// replayConn reads as req repeated left times, then EOF; writes are counted and dropped.
type replayConn struct {
	req     []byte
	left    int
	pending []byte
	written int64
	once    sync.Once
	done    chan struct{}
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		if c.left == 0 {
			c.once.Do(func() { close(c.done) })
			return 0, errors.New("replay finished")
		}
		c.left--
		c.pending = c.req
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *replayConn) Write(p []byte) (int, error) { c.written += int64(len(p)); return len(p), nil }
func (c *replayConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}
func (c *replayConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *replayConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *replayConn) SetDeadline(t time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(t time.Time) error { return nil }

// oneConnListener accepts conn once, then blocks until closed.
type oneConnListener struct {
	conn   net.Conn
	given  bool
	closed chan struct{}
	mu     sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed == nil {
		l.closed = make(chan struct{})
	}
	if !l.given {
		l.given = true
		l.mu.Unlock()
		return l.conn, nil
	}
	ch := l.closed
	l.mu.Unlock()
	<-ch
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed == nil {
		l.closed = make(chan struct{})
	}
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestHitPathTokenCost (make bench, REEL_HITBENCH=1) reports what the token check costs a memory
// hit: BenchmarkHitPathToken against BenchmarkHitPathCPU in CPU time per request, the median of
// three interleaved rounds of each (the machine is shared: interleaving spreads its noise over
// both), and their ratio.
func TestHitPathTokenCost(t *testing.T) {
	if os.Getenv("REEL_HITBENCH") != "1" {
		t.Skip("a figure for make bench: set REEL_HITBENCH=1")
	}
	var plain, tokened []float64
	for range 3 {
		for _, r := range []struct {
			f   func(*testing.B)
			out *[]float64
		}{{BenchmarkHitPathCPU, &plain}, {BenchmarkHitPathToken, &tokened}} {
			res := testing.Benchmark(r.f)
			if res.N == 0 {
				t.Fatal("the benchmark failed")
			}
			*r.out = append(*r.out, res.Extra["cpu-ns/op"])
		}
	}
	slices.Sort(plain)
	slices.Sort(tokened)
	p, k := plain[1], tokened[1]
	t.Logf("memory hit, 1 KB, HTTP/1.1: %.0f cpu-ns without a token, %.0f with a query token checked: ×%.2f (+%.0f ns per request); rounds %.0f and %.0f",
		p, k, k/p, k-p, plain, tokened)
	if p <= 0 || k <= 0 {
		t.Fatalf("no CPU time measured: %v %v", plain, tokened)
	}
}
