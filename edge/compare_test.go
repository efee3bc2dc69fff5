package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
)

// The hit-path objects of the comparison and of BenchmarkHit1K / BenchmarkHit4M.
const (
	cmpPath1K = "/1k"
	cmpPath4M = "/4m"
	// cmpSlowPrefix paths are sent slowly (cmpSlowSize bytes over about cmpSlowTime), for the
	// coalescing fan-in figure; each proxy gets its own cold path.
	cmpSlowPrefix = "/slow/"
	cmpSlowSize   = 1 << 20
	cmpSlowChunks = 20
	cmpSlowTime   = time.Second
)

// cmpOrigin is the origin behind both proxies: fixed objects with an ETag and one hour of
// shared freshness, counting requests per path.
//
// It runs in the test process rather than as a separate program: during the measured runs it
// is idle (every request is a hit, which the test checks from these counters), so it takes
// no CPU from either proxy, and in-process counters make the per-path fan-in figure exact.
type cmpOrigin struct {
	*httptest.Server
	objects map[string][]byte
	etags   map[string]string
	slow    []byte

	mu       sync.Mutex
	hits     map[string]int
	slowDone map[string]time.Time // when the origin finished sending a slow path
}

func newCmpOrigin() *cmpOrigin {
	o := &cmpOrigin{
		objects:  map[string][]byte{cmpPath1K: cmpRandom(1 << 10), cmpPath4M: cmpRandom(4 << 20)},
		etags:    map[string]string{},
		slow:     cmpRandom(cmpSlowSize),
		hits:     map[string]int{},
		slowDone: map[string]time.Time{},
	}
	for p, b := range o.objects {
		sum := sha256.Sum256(b)
		o.etags[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
	}
	modTime := time.Now().Add(-time.Hour).Truncate(time.Second)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.hits[r.URL.Path]++
		o.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Cache-Control", "public, max-age=3600")
		if body, ok := o.objects[r.URL.Path]; ok {
			h.Set("ETag", o.etags[r.URL.Path])
			http.ServeContent(w, r, "", modTime, bytes.NewReader(body)) // conditionals, ranges
			return
		}
		if !strings.HasPrefix(r.URL.Path, cmpSlowPrefix) {
			http.NotFound(w, r)
			return
		}
		h.Set("ETag", `"slow-`+strings.TrimPrefix(r.URL.Path, cmpSlowPrefix)+`"`)
		h.Set("Content-Length", strconv.Itoa(len(o.slow)))
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		chunk := len(o.slow) / cmpSlowChunks
		for i := 0; i < len(o.slow); i += chunk {
			if i > 0 {
				time.Sleep(cmpSlowTime / cmpSlowChunks)
			}
			if _, err := w.Write(o.slow[i:min(i+chunk, len(o.slow))]); err != nil {
				return
			}
			rc.Flush()
		}
		o.mu.Lock()
		o.slowDone[r.URL.Path] = time.Now()
		o.mu.Unlock()
	}))
	return o
}

func (o *cmpOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

func (o *cmpOrigin) doneAt(path string) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.slowDone[path]
}

func cmpRandom(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// cmpClient is a keep-alive client that asks for no compression (wrk doesn't either).
func cmpClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
	}
}

// cmpWarm requests base+path until header hdr says it was a hit, checking the body, and fails
// the test if that doesn't happen within a few tries.
func cmpWarm(tb testing.TB, c *http.Client, base, path, hdr string, want []byte) {
	tb.Helper()
	for try := 0; try < 10; try++ {
		resp, err := c.Get(base + path)
		if err != nil {
			tb.Fatalf("warm %s%s: %v", base, path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			tb.Fatalf("warm %s%s: status %d, %d bytes (want %d), err %v", base, path, resp.StatusCode, len(body), len(want), err)
		}
		if strings.Contains(strings.ToLower(resp.Header.Get(hdr)), "hit") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("warm %s%s: never a hit (%s)", base, path, hdr)
}

// cmpEdge is an in-process edge in front of origin, served by NewServer on a loopback port.
func cmpEdge(tb testing.TB, origin string) string {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Origins = []Origin{{Host: "*", URL: origin}}
	e, err := New(cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(e, cfg, nil)
	go srv.Serve(ln)
	tb.Cleanup(func() {
		srv.Close()
		e.Close()
	})
	return "http://" + ln.Addr().String()
}

// cmpBenchHit measures hits on one stored object through an in-process edge on loopback, with
// 32 keep-alive clients per CPU (the client side shares the CPUs with the edge).
func cmpBenchHit(b *testing.B, path string) {
	origin := newCmpOrigin()
	defer origin.Close()
	base := cmpEdge(b, origin.URL)
	const perCPU = 32
	client := cmpClient(perCPU * runtime.GOMAXPROCS(0))
	defer client.CloseIdleConnections()
	want := origin.objects[path]
	cmpWarm(b, client, base, path, "Cache-Status", want)
	fetched := origin.count(path)
	url := base + path

	b.SetBytes(int64(len(want)))
	b.SetParallelism(perCPU)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || n != int64(len(want)) {
				b.Errorf("status %d, %d bytes, err %v", resp.StatusCode, n, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if got := origin.count(path); got != fetched {
		b.Fatalf("origin saw %d more requests for %s: not all hits", got-fetched, path)
	}
}

// BenchmarkHit1K is the hit path for a 1 KB object: requests per second via ns/op.
func BenchmarkHit1K(b *testing.B) { cmpBenchHit(b, cmpPath1K) }

// BenchmarkHit4M is the hit path for a 4 MB object: bytes per second via MB/s.
func BenchmarkHit4M(b *testing.B) { cmpBenchHit(b, cmpPath4M) }

// cmpFreePort returns a loopback port that was free a moment ago.
func cmpFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// cmpProc is a server process started for the comparison: stopped at cleanup, and its output
// kept in a file for failure messages.
type cmpProc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func cmpStart(t *testing.T, name, logFile string, env []string, bin string, args ...string) *cmpProc {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that nginx's workers are stopped with their master; the
	// kernel kills the process if the test dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &cmpProc{name: name, cmd: cmd, log: logFile, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		pid := cmd.Process.Pid
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-pid, syscall.SIGKILL)
			<-p.exited
		}
		// Any worker left behind in the group (nginx's, normally gone with the master).
		syscall.Kill(-pid, syscall.SIGKILL)
	})
	return p
}

func (p *cmpProc) output() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitListening waits until addr accepts connections, failing if the process exits first.
func (p *cmpProc) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited at start:\n%s", p.name, p.output())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not listening on %s after 20 s:\n%s", p.name, addr, p.output())
}

// cmpPeakRSS is the process's high-water resident set (VmHWM) in KiB, 0 if unknown.
func cmpPeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cmpGroupPeakRSS sums cmpPeakRSS over the processes of a process group (nginx: master and
// workers).
func cmpGroupPeakRSS(pgid int) int64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			sum += cmpPeakRSS(pid)
		}
	}
	return sum
}

// cmpGroupCPU is the CPU time (user + system) the processes of a process group have used so
// far, from /proc/PID/stat (clock ticks of 10 ms).
func cmpGroupCPU(pgid int) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: state is the first, utime the 12th.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + s
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// cmpWrk is what one wrk run measured.
type cmpWrk struct {
	reqPerSec   float64
	bytesPerSec float64
	p99         time.Duration // from wrk --latency's distribution
	requests    int64
	errors      string // wrk's socket-error line, if any
}

// load is the run as a cmpLoad.
func (r cmpWrk) load() cmpLoad {
	return cmpLoad{reqPerSec: r.reqPerSec, bytesPerSec: r.bytesPerSec, p99: r.p99, requests: r.requests}
}

var (
	cmpWrkReqRe      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	cmpWrkXferRe     = regexp.MustCompile(`Transfer/sec:\s+([0-9.]+)([KMGT]?B)`)
	cmpWrkTotalRe    = regexp.MustCompile(`(\d+) requests in`)
	cmpWrkNon2xxRe   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	cmpWrkSockErrsRe = regexp.MustCompile(`Socket errors:[^\n]*`)
	cmpWrkP99Re      = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// cmpParseWrk reads wrk's summary. wrk's units are binary: 1 MB there is 2^20 bytes.
func cmpParseWrk(out string) (cmpWrk, error) {
	var r cmpWrk
	m := cmpWrkReqRe.FindStringSubmatch(out)
	x := cmpWrkXferRe.FindStringSubmatch(out)
	n := cmpWrkTotalRe.FindStringSubmatch(out)
	if m == nil || x == nil || n == nil {
		return r, errors.New("no summary in wrk's output")
	}
	r.reqPerSec, _ = strconv.ParseFloat(m[1], 64)
	v, _ := strconv.ParseFloat(x[1], 64)
	r.bytesPerSec = v * float64(int64(1)<<(10*strings.Index("BKMGT", x[2][:1])))
	r.requests, _ = strconv.ParseInt(n[1], 10, 64)
	if bad := cmpWrkNon2xxRe.FindStringSubmatch(out); bad != nil && bad[1] != "0" {
		return r, fmt.Errorf("%s responses were not 2xx/3xx", bad[1])
	}
	r.errors = cmpWrkSockErrsRe.FindString(out)
	p := cmpWrkP99Re.FindStringSubmatch(out)
	if p == nil {
		return r, errors.New("no 99% latency in wrk's output (--latency)")
	}
	v, _ = strconv.ParseFloat(p[1], 64)
	r.p99 = time.Duration(v * float64(map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[2]]))
	return r, nil
}

// cmpGoFloor starts the Go floor of the 1 KB HTTP/1.1 row and returns its address: a server
// that answers every request with the same canned 1 KB response — one goroutine per
// connection reading each request head to its empty line, nothing parsed, cached or allocated
// per request. What it measures is what the Go runtime alone (netpoller, scheduler, one
// goroutine per connection) costs beside wrk on these CPUs: the floor under any such Go
// server's latency here, reel's included. It runs in the test's process, idle otherwise.
func cmpGoFloor(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nCache-Control: max-age=3600\r\nContent-Length: 1024\r\n\r\n")
	resp = append(resp, bytes.Repeat([]byte{'x'}, 1024)...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 4<<10)
				for {
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 { // the empty line that ends the head
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// cmpRunWrk runs wrk against url for d and returns what it measured.
func cmpRunWrk(t *testing.T, wrk, url string, d time.Duration) cmpWrk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	out, err := exec.CommandContext(ctx, wrk, "-t2", "-c64", "-d"+secs+"s", "--latency", url).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	r, err := cmpParseWrk(string(out))
	if err != nil {
		t.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	if r.reqPerSec <= 0 || r.bytesPerSec <= 0 || r.requests <= 0 {
		t.Fatalf("wrk %s: non-positive measurement %+v\n%s", url, r, out)
	}
	return r
}

// cmpFanIn is the coalescing figure for one proxy.
type cmpFanIn struct {
	originRequests int
	earlyFirstByte int           // clients whose first body byte came before the origin finished
	medianTTFB     time.Duration // from the common start to the first body byte
}

// cmpRunFanIn sends clients concurrent requests for a cold slow path through base and counts what
// reached the origin.
func cmpRunFanIn(t *testing.T, o *cmpOrigin, base, path string, clients int) cmpFanIn {
	t.Helper()
	c := cmpClient(clients)
	defer c.CloseIdleConnections()
	start := make(chan struct{})
	firstByte := make([]time.Time, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			<-start
			resp, err := c.Get(base + path)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			var one [1]byte
			if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
				errs[i] = err
				return
			}
			firstByte[i] = time.Now()
			rest, err := io.ReadAll(resp.Body)
			switch {
			case err != nil:
				errs[i] = err
			case resp.StatusCode != http.StatusOK:
				errs[i] = fmt.Errorf("status %d", resp.StatusCode)
			case one[0] != o.slow[0] || !bytes.Equal(rest, o.slow[1:]):
				errs[i] = fmt.Errorf("body differs (%d bytes)", len(rest)+1)
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("fan-in through %s: %v", base, err)
	}
	done := o.doneAt(path)
	if done.IsZero() {
		t.Fatalf("fan-in through %s: the origin never finished sending %s", base, path)
	}
	r := cmpFanIn{originRequests: o.count(path)}
	ttfb := make([]float64, clients)
	for i, fb := range firstByte {
		if fb.Before(done) {
			r.earlyFirstByte++
		}
		ttfb[i] = float64(fb.Sub(t0))
	}
	r.medianTTFB = time.Duration(testkit.Median(ttfb))
	return r
}

func cmpEnvDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second {
		t.Fatalf("%s=%q: want a duration of at least 1s", name, v)
	}
	return d
}

// cmpNginxConf is the nginx configuration template, relative to this package.
const cmpNginxConf = "../samples/bench/nginx-proxy-cache.conf"

// cmpVarnishVCL is Varnish's configuration template, relative to this package.
const cmpVarnishVCL = "../samples/bench/varnish.vcl"

// cmpFmtLatency formats a latency for the tables: 0.84 ms, 12.3 ms, 1.42 s.
func cmpFmtLatency(d time.Duration) string {
	ms := d.Seconds() * 1e3
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

// cmpFmtRate formats a rate with its spread across the runs: "71,234 ±1.2%" (half the range
// between the lowest and the highest run, relative to the median).
func cmpFmtRate(all []float64) string {
	med := testkit.Median(all)
	lo, hi := slices.Min(all), slices.Max(all)
	n := strconv.FormatFloat(med, 'f', 0, 64)
	for i := len(n) - 3; i > 0; i -= 3 {
		n = n[:i] + "," + n[i:]
	}
	if med <= 0 {
		return n
	}
	return fmt.Sprintf("%s ±%.1f%%", n, (hi-lo)/2/med*100)
}

// cmpVarnish is Debian's varnishd started for a comparison, in front of the cmpOrigin at
// originPort, from samples/bench/varnish.vcl, with 512 MB of malloc storage.
type cmpVarnish struct {
	addr    string
	proc    *cmpProc
	version string
}

func cmpStartVarnish(t *testing.T, originPort int) *cmpVarnish {
	t.Helper()
	varnishd := testkit.RequireTool(t, "varnishd", "/usr/sbin", "/usr/local/sbin")
	// The working folder's parent must be enterable by the varnish users (varnishd drops its
	// child to vcache when run as root).
	tmp, err := os.MkdirTemp("", "reel-compare-varnish-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(cmpVarnishVCL)
	if err != nil {
		t.Fatal(err)
	}
	vcl := strings.ReplaceAll(string(tmpl), "{{ORIGIN_PORT}}", strconv.Itoa(originPort))
	for _, line := range strings.Split(vcl, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "{{") {
			t.Fatalf("%s: unknown placeholder in %q", cmpVarnishVCL, line)
		}
	}
	vclFile := filepath.Join(tmp, "bench.vcl")
	if err := os.WriteFile(vclFile, []byte(vcl), 0o644); err != nil {
		t.Fatal(err)
	}
	v, _ := exec.Command(varnishd, "-V").CombinedOutput()
	vs := &cmpVarnish{addr: fmt.Sprintf("127.0.0.1:%d", cmpFreePort(t)), version: strings.SplitN(string(v), "\n", 2)[0]}
	vs.proc = cmpStart(t, "varnishd", filepath.Join(tmp, "varnish.log"), nil, varnishd,
		"-F", "-n", filepath.Join(tmp, "work"), "-a", vs.addr, "-f", vclFile, "-s", "malloc,512m")
	vs.proc.waitListening(t, vs.addr)
	return vs
}

// TestCompareNginx measures `reel edge` against its peers on the hit path, side by side in
// one run on one machine (issue 19's table): nginx proxy_cache and Varnish over HTTP/1.1
// (`wrk -t2 -c64 --latency`), nginx with `listen ssl http2` over HTTP/2 on TLS (h2load: -c64
// -m10 for 1 KB, -c16 -m1 -n800 for 4 MB; Varnish has no TLS). Per row: requests per second
// of each server, reel against the best peer, and the 99th-percentile latency beside every
// figure; medians of interleaved runs (the order rotated each time) with their spread. Then
// 4 MB over HTTP/1.1 in MB/s, the coalescing fan-in (origin requests for 200 concurrent
// clients on a cold, slowly sent object) and peak RSS. It is a benchmark (make bench), not a
// CI test: it asserts only that the tools ran, every measured request was a hit and the
// numbers are positive, never timing.
//
// REEL_COMPARE=1 runs it; REEL_COMPARE_DURATION sets each timed run (default 8s) and
// REEL_COMPARE_RUNS the number of interleaved runs (default 3); REEL_BENCH_OUT names a file
// the markdown tables are appended to.
func TestCompareNginx(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("benchmark against nginx and Varnish: run with REEL_COMPARE=1 (make bench)")
	}
	wrk := testkit.RequireTool(t, "wrk", "/usr/sbin", "/usr/local/sbin", filepath.Join(runtime.GOROOT(), "bin"))
	h2load := testkit.RequireTool(t, "h2load", "/usr/sbin", "/usr/local/sbin")
	dur := cmpEnvDuration(t, "REEL_COMPARE_DURATION", 8*time.Second)
	runs := 3
	if v := os.Getenv("REEL_COMPARE_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("REEL_COMPARE_RUNS=%q: want a positive count", v)
		}
		runs = n
	}
	const fanClients = 200

	// Plain HTTP/1.1: reel, nginx, Varnish in front of one origin; over TLS: another reel and
	// nginx (HTTP/2 by ALPN) in front of their own origin.
	px := cmpStartProxies(t, "reel-compare-nginx-", cmpNginxConf, false)
	origin := px.origin
	vs := cmpStartVarnish(t, origin.Listener.Addr().(*net.TCPAddr).Port)
	tx := cmpStartProxies(t, "reel-compare-nginx-tls-", cmpH2NginxConf, true)

	type target struct {
		name string // reel, nginx, Varnish
		base string
		hdr  string // response header that says hit
		pgid int
		o    *cmpOrigin
		tls  bool
	}
	plain := []target{
		{name: "nginx", base: "http://" + px.nginxAddr, hdr: "X-Cache-Status", pgid: px.nginxProc.cmd.Process.Pid, o: origin},
		{name: "Varnish", base: "http://" + vs.addr, hdr: "X-Cache", pgid: vs.proc.cmd.Process.Pid, o: origin},
		{name: "reel", base: "http://" + px.reelAddr, hdr: "Cache-Status", pgid: px.reelProc.cmd.Process.Pid, o: origin},
	}
	secure := []target{
		{name: "nginx", base: "https://" + tx.nginxAddr, hdr: "X-Cache-Status", pgid: tx.nginxProc.cmd.Process.Pid, o: tx.origin, tls: true},
		{name: "reel", base: "https://" + tx.reelAddr, hdr: "Cache-Status", pgid: tx.reelProc.cmd.Process.Pid, o: tx.origin, tls: true},
	}
	ca, err := os.ReadFile(filepath.Join(tx.tlsDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
		ForceAttemptHTTP2: true, DisableCompression: true}, Timeout: 30 * time.Second}
	defer tlsClient.CloseIdleConnections()
	client := cmpClient(4)
	defer client.CloseIdleConnections()
	objects := []string{cmpPath1K, cmpPath4M}
	warm := func() {
		for _, tg := range append(slices.Clone(plain), secure...) {
			c := client
			if tg.tls {
				c = tlsClient
			}
			for _, p := range objects {
				cmpWarm(t, c, tg.base, p, tg.hdr, tg.o.objects[p])
			}
		}
	}
	warm()
	type key struct {
		o    *cmpOrigin
		path string
	}
	warmCounts := map[key]int{}
	for _, o := range []*cmpOrigin{origin, tx.origin} {
		for _, p := range objects {
			warmCounts[key{o, p}] = o.count(p)
		}
	}

	// The rows: what each server runs for it.
	type row struct {
		label   string
		path    string
		targets []target
		run     func(tg target, d time.Duration) cmpLoad
		tool    string
	}
	h2args := func(p string) cmpH2loadArgs {
		if p == cmpPath4M {
			return cmpH2loadArgs{conns: 16, streams: 1, count: 800}
		}
		return cmpH2loadArgs{conns: 64, streams: 10}
	}
	var rows []row
	for _, p := range objects {
		rows = append(rows, row{path: p, targets: plain, tool: "wrk -t2 -c64",
			run: func(tg target, d time.Duration) cmpLoad { return cmpRunWrk(t, wrk, tg.base+p, d).load() }})
	}
	for _, p := range objects {
		a := h2args(p)
		tool := fmt.Sprintf("h2load -c%d -m%d", a.conns, a.streams)
		if a.count > 0 {
			tool += fmt.Sprintf(" -n%d", a.count)
		}
		rows = append(rows, row{path: p, targets: secure, tool: tool,
			run: func(tg target, d time.Duration) cmpLoad { return cmpRunH2load(t, h2load, tg.base+p, a, d) }})
	}
	rows[0].label, rows[1].label = "1 KB, HTTP/1.1, req/s", "4 MB, HTTP/1.1, req/s"
	rows[2].label, rows[3].label = "1 KB, HTTP/2 over TLS, req/s", "4 MB, HTTP/2 over TLS, req/s"

	// One short untimed run of each, then the measured runs, the servers' order rotated by
	// run and row so that none always goes first.
	for _, r := range rows {
		for _, tg := range r.targets {
			r.run(tg, time.Second)
		}
	}
	results := make([]map[string][]cmpLoad, len(rows)) // row → server → runs
	for i := range results {
		results[i] = map[string][]cmpLoad{}
	}
	floorAddr := cmpGoFloor(t)
	var floor []cmpLoad // the Go floor, measured after the first row's servers in every run
	for i := range runs {
		for j, r := range rows {
			k := (i + j) % len(r.targets)
			for _, tg := range append(slices.Clone(r.targets[k:]), r.targets[:k]...) {
				cpu0 := cmpGroupCPU(tg.pgid)
				m := r.run(tg, dur)
				if cpu := cmpGroupCPU(tg.pgid) - cpu0; m.requests > 0 {
					m.cpu = cpu / time.Duration(m.requests)
				}
				results[j][tg.name] = append(results[j][tg.name], m)
			}
			if j == 0 {
				floor = append(floor, cmpRunWrk(t, wrk, "http://"+floorAddr+cmpPath1K, dur).load())
			}
		}
	}
	for k, n := range warmCounts {
		if got := k.o.count(k.path); got != n {
			t.Fatalf("%s: the origin saw %d requests during the measured runs: not all hits", k.path, got-n)
		}
	}
	warm() // still hits

	// Coalescing fan-in: a distinct cold path per proxy.
	fan := map[string]cmpFanIn{}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, tg := range plain {
		f := cmpRunFanIn(t, origin, tg.base, cmpSlowPrefix+tg.name+"-"+nonce, fanClients)
		if f.originRequests < 1 {
			t.Fatalf("%s fan-in: no origin request counted", tg.name)
		}
		fan[tg.name] = f
	}
	rss := map[string]int64{}
	for _, tg := range plain {
		rss[tg.name] = cmpGroupPeakRSS(tg.pgid)
	}

	// Report.
	peers := []string{"nginx", "Varnish"}
	var md strings.Builder
	fmt.Fprintf(&md, "| hit | nginx | Varnish | reel | reel / best peer | p99 nginx | p99 Varnish | p99 reel |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for j, r := range rows {
		rate := map[string]float64{}
		cells := map[string]string{}
		lat := map[string]string{}
		for _, name := range append(slices.Clone(peers), "reel") {
			runsOf := results[j][name]
			if runsOf == nil {
				cells[name], lat[name] = "–", "–"
				continue
			}
			var v, p99 []float64
			for _, x := range runsOf {
				v = append(v, x.reqPerSec)
				p99 = append(p99, float64(x.p99))
			}
			rate[name] = testkit.Median(v)
			if rate[name] <= 0 {
				t.Fatalf("%s %s: non-positive median", r.label, name)
			}
			cells[name], lat[name] = cmpFmtRate(v), cmpFmtLatency(time.Duration(testkit.Median(p99)))
			ms := make([]float64, len(p99))
			for i, d := range p99 {
				ms[i] = d / 1e6
			}
			t.Logf("%s (%s) %s: req/s %s, p99 ms %s", r.label, r.tool, name, testkit.FmtAll(v, 0), testkit.FmtAll(ms, 2))
		}
		best, bestName := 0.0, ""
		for _, name := range peers {
			if rate[name] > best {
				best, bestName = rate[name], name
			}
		}
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %.2f× (%s) | %s | %s | %s |\n", r.label, cells["nginx"], cells["Varnish"], cells["reel"],
			rate["reel"]/best, bestName, lat["nginx"], lat["Varnish"], lat["reel"])
	}
	var floorRate, floorP99, floorMs []float64
	for _, x := range floor {
		floorRate = append(floorRate, x.reqPerSec)
		floorP99 = append(floorP99, float64(x.p99))
		floorMs = append(floorMs, float64(x.p99)/1e6)
	}
	t.Logf("Go floor (1 KB, HTTP/1.1): req/s %s, p99 ms %s", testkit.FmtAll(floorRate, 0), testkit.FmtAll(floorMs, 2))
	fmt.Fprintf(&md, "\nGo floor of the 1 KB HTTP/1.1 row, in the same runs: a server answering every request with a canned 1 KB "+
		"response (a goroutine per connection, nothing parsed, cached or allocated per request) serves %s req/s with a p99 of %s: "+
		"what the Go runtime alone costs beside wrk here.\n", cmpFmtRate(floorRate), cmpFmtLatency(time.Duration(testkit.Median(floorP99))))
	// CPU time per hit: what each server spent (its process group's user + system time over
	// the run, per request) — steadier than the rates when other work shares the machine.
	fmt.Fprintf(&md, "\n| hit | CPU per hit: nginx | Varnish | reel | reel / best peer |\n|---|---:|---:|---:|---:|\n")
	for j, r := range rows {
		per := map[string]float64{}
		cells := map[string]string{}
		for _, name := range append(slices.Clone(peers), "reel") {
			if results[j][name] == nil {
				cells[name] = "–"
				continue
			}
			var v []float64
			for _, x := range results[j][name] {
				v = append(v, float64(x.cpu)/1e3)
			}
			per[name] = testkit.Median(v)
			cells[name] = fmt.Sprintf("%.1f µs", per[name])
			t.Logf("%s %s: CPU µs per hit %s", r.label, name, testkit.FmtAll(v, 1))
		}
		best, bestName := 0.0, ""
		for _, name := range peers {
			if v, ok := per[name]; ok && (best == 0 || v < best) {
				best, bestName = v, name
			}
		}
		ratio := "–"
		if per["reel"] > 0 && best > 0 {
			// Higher is better for reel, as in the rates: the peer's CPU over reel's.
			ratio = fmt.Sprintf("%.2f× (%s)", best/per["reel"], bestName)
		}
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %s |\n", strings.TrimSuffix(r.label, ", req/s"), cells["nginx"], cells["Varnish"], cells["reel"], ratio)
	}
	mb := func(name string) float64 {
		var v []float64
		for _, x := range results[1][name] {
			v = append(v, x.bytesPerSec/1e6)
		}
		return testkit.Median(v)
	}
	fmt.Fprintf(&md, "\n4 MB over HTTP/1.1 in MB/s (wrk's Transfer/sec, 10^6 bytes): nginx %.0f, Varnish %.0f, reel %.0f.\n",
		mb("nginx"), mb("Varnish"), mb("reel"))
	fmt.Fprintf(&md, "\nCoalescing fan-in: %d concurrent clients on a cold %d KiB object the origin sends over ~%v → origin requests: ",
		fanClients, cmpSlowSize>>10, cmpSlowTime)
	for i, tg := range plain {
		f := fan[tg.name]
		if i > 0 {
			md.WriteString("; ")
		}
		fmt.Fprintf(&md, "%s %d (first byte before the origin finished: %d/%d, median time to first byte %v)",
			tg.name, f.originRequests, f.earlyFirstByte, fanClients, f.medianTTFB.Round(time.Millisecond))
	}
	md.WriteString(".\n")
	fmt.Fprintf(&md, "\nMedians of %d interleaved runs per figure (± half the range across them) after a 1 s warm-up, "+
		"every request a verified hit; p99: the 99th percentile of request latency (wrk --latency; h2load's per-request log), "+
		"median over the runs; CPU per hit: the server's process group's user + system time over a run / its requests "+
		"(/proc, 10 ms ticks), median over the runs, reel / best peer as the peer's CPU over reel's. HTTP/1.1: `wrk -t2 -c64 -d%v --latency`; HTTP/2 over TLS (ALPN h2, TLS 1.3): `h2load -c64 -m10 -D %v` "+
		"for 1 KB, `h2load -c16 -m1 -n800` for 4 MB. One Go origin on loopback; %d CPUs shared by the client and the servers. "+
		"reel: `reel edge --memory 512MiB` (memory tier; `--tls-self-signed DIR --http3` for HTTP/2). nginx: %s, "+
		"samples/bench/nginx-proxy-cache.conf and nginx-h2-proxy-cache.conf. Varnish: %s, samples/bench/varnish.vcl, "+
		"`-s malloc,512m` (no TLS: no HTTP/2 row). Peak RSS at the end: reel %.0f MiB, nginx master + workers %.0f MiB, "+
		"Varnish manager + child %.0f MiB.\n",
		runs, dur, dur, runtime.NumCPU(), strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(px.nginxVersion), "nginx version: ")),
		vs.version, float64(rss["reel"])/1024, float64(rss["nginx"])/1024, float64(rss["Varnish"])/1024)
	t.Logf("\n%s", md.String())
	if out := os.Getenv("REEL_BENCH_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatalf("REEL_BENCH_OUT: %v", err)
		}
		_, werr := fmt.Fprintf(f, "\n%s", md.String())
		if cerr := f.Close(); werr != nil || cerr != nil {
			t.Fatalf("REEL_BENCH_OUT: %v", errors.Join(werr, cerr))
		}
	}
}

// cmpProxies are the two proxies a comparison measures, both in front of one cmpOrigin on
// loopback: reel edge built from this tree, and Debian's nginx from a configuration template
// in samples/bench. With TLS, reel makes a self-signed certificate (--tls-self-signed, and
// --http3) that nginx serves too ({{CERT}}, {{KEY}}).
type cmpProxies struct {
	origin              *cmpOrigin
	reelAddr, nginxAddr string
	reelProc, nginxProc *cmpProc
	nginxVersion        string
	tlsDir              string // reel's certificate folder (ca.pem for clients)
}

func cmpStartProxies(t *testing.T, tmpPrefix, nginxConf string, withTLS bool) *cmpProxies {
	t.Helper()
	nginx := testkit.RequireTool(t, "nginx", "/usr/sbin", "/usr/local/sbin")
	goBin := testkit.RequireTool(t, "go", filepath.Join(runtime.GOROOT(), "bin"))
	// A private folder nginx's workers can enter when the test runs as root (they drop to
	// nobody); t.TempDir's folders are 0700.
	tmp, err := os.MkdirTemp("", tmpPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	px := &cmpProxies{origin: newCmpOrigin(), tlsDir: filepath.Join(tmp, "tls")}
	t.Cleanup(px.origin.Close)
	originPort := px.origin.Listener.Addr().(*net.TCPAddr).Port

	reel := filepath.Join(tmp, "reel")
	if out, err := exec.Command(goBin, "build", "-o", reel, "../cmd/reel").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	reelPort, adminPort := cmpFreePort(t), cmpFreePort(t)
	for adminPort == reelPort {
		adminPort = cmpFreePort(t)
	}
	px.reelAddr = fmt.Sprintf("127.0.0.1:%d", reelPort)
	args := []string{"edge", "--origin", px.origin.URL, "--listen", px.reelAddr, "--admin", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--memory", "512MiB", "--log-level", "warn"}
	if withTLS {
		args = append(args, "--tls-self-signed", px.tlsDir, "--http3")
	}
	px.reelProc = cmpStart(t, "reel edge", filepath.Join(tmp, "reel.log"),
		[]string{"REEL_ADMIN_TOKEN=" + hex.EncodeToString(cmpRandom(16))}, reel, args...)
	px.reelProc.waitListening(t, px.reelAddr)

	tmpl, err := os.ReadFile(nginxConf)
	if err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(tmp, "nginx")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	workerUser := "nobody nogroup"
	if u, err := user.Current(); err == nil && os.Geteuid() != 0 {
		workerUser = u.Username
	} else if u, err := user.Lookup("nobody"); err == nil {
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			workerUser = "nobody " + g.Name
		}
	}
	nginxPort := cmpFreePort(t)
	for nginxPort == reelPort || nginxPort == adminPort {
		nginxPort = cmpFreePort(t)
	}
	conf := strings.NewReplacer(
		"{{USER}}", workerUser,
		"{{RUN_DIR}}", runDir,
		"{{CACHE_DIR}}", filepath.Join(runDir, "cache"),
		"{{LISTEN_PORT}}", strconv.Itoa(nginxPort),
		"{{ORIGIN_PORT}}", strconv.Itoa(originPort),
		"{{CERT}}", filepath.Join(px.tlsDir, "cert.pem"),
		"{{KEY}}", filepath.Join(px.tlsDir, "key.pem"),
	).Replace(string(tmpl))
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "{{") {
			t.Fatalf("%s: unknown placeholder in %q", nginxConf, line)
		}
	}
	confFile := filepath.Join(runDir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-q", "-p", runDir, "-c", confFile).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	v, _ := exec.Command(nginx, "-v").CombinedOutput()
	px.nginxVersion = string(v)
	px.nginxAddr = fmt.Sprintf("127.0.0.1:%d", nginxPort)
	px.nginxProc = cmpStart(t, "nginx", filepath.Join(tmp, "nginx.log"), nil,
		nginx, "-p", runDir, "-c", confFile, "-g", "daemon off;")
	px.nginxProc.waitListening(t, px.nginxAddr)
	return px
}
