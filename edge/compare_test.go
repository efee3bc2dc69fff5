package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
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

// cmpWrk is what one wrk run measured.
type cmpWrk struct {
	reqPerSec   float64
	bytesPerSec float64
	requests    int64
	errors      string // wrk's socket-error line, if any
}

var (
	cmpWrkReqRe      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	cmpWrkXferRe     = regexp.MustCompile(`Transfer/sec:\s+([0-9.]+)([KMGT]?B)`)
	cmpWrkTotalRe    = regexp.MustCompile(`(\d+) requests in`)
	cmpWrkNon2xxRe   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	cmpWrkSockErrsRe = regexp.MustCompile(`Socket errors:[^\n]*`)
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
	return r, nil
}

// cmpTarget is one proxy under test.
type cmpTarget struct {
	name string
	base string // http://127.0.0.1:port
	hdr  string // response header that says hit
	pgid int
}

// cmpRunWrk runs wrk against url for d and returns what it measured.
func cmpRunWrk(t *testing.T, wrk, url string, d time.Duration) cmpWrk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	out, err := exec.CommandContext(ctx, wrk, "-t2", "-c64", "-d"+secs+"s", url).CombinedOutput()
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

// TestCompareNginx measures `reel edge` against nginx proxy_cache (same origin, same machine,
// one run): hit-path requests per second for a 1 KB object and throughput for a 4 MB object
// with `wrk -t2 -c64`, median of alternating runs, reported as ratios; and the coalescing
// fan-in figure (origin requests for 200 concurrent clients on a cold, slowly sent object).
// It is a benchmark (make bench), not a CI test: it asserts only that the tools ran, every
// measured request was a hit and the numbers are positive, never timing.
//
// REEL_COMPARE=1 runs it; REEL_COMPARE_DURATION sets each wrk run (default 8s) and
// REEL_COMPARE_RUNS the number of alternating runs (default 3); REEL_BENCH_OUT names a file
// the markdown table is appended to.
func TestCompareNginx(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("benchmark against nginx: run with REEL_COMPARE=1 (make bench)")
	}
	wrk := testkit.RequireTool(t, "wrk", "/usr/sbin", "/usr/local/sbin", filepath.Join(runtime.GOROOT(), "bin"))
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

	px := cmpStartProxies(t, "reel-compare-nginx-", cmpNginxConf, false)
	origin, reelAddr, nginxAddr, reelProc, nginxProc := px.origin, px.reelAddr, px.nginxAddr, px.reelProc, px.nginxProc
	nginxVersion := px.nginxVersion

	targets := []cmpTarget{
		{name: "reel", base: "http://" + reelAddr, hdr: "Cache-Status", pgid: reelProc.cmd.Process.Pid},
		{name: "nginx", base: "http://" + nginxAddr, hdr: "X-Cache-Status", pgid: nginxProc.cmd.Process.Pid},
	}

	// Warm both: each object fetched until the proxy reports a hit.
	client := cmpClient(4)
	defer client.CloseIdleConnections()
	objects := []string{cmpPath1K, cmpPath4M}
	for _, tg := range targets {
		for _, p := range objects {
			cmpWarm(t, client, tg.base, p, tg.hdr, origin.objects[p])
		}
	}
	warmCounts := map[string]int{}
	for _, p := range objects {
		warmCounts[p] = origin.count(p)
	}

	// One short untimed run of each, then alternate which proxy goes first.
	for _, tg := range targets {
		for _, p := range objects {
			cmpRunWrk(t, wrk, tg.base+p, time.Second)
		}
	}
	results := map[string]map[string][]cmpWrk{} // object → proxy → runs
	for _, p := range objects {
		results[p] = map[string][]cmpWrk{}
	}
	for i := range runs {
		for j, p := range objects {
			order := targets
			if (i+j)%2 == 1 {
				order = []cmpTarget{targets[1], targets[0]}
			}
			for _, tg := range order {
				r := cmpRunWrk(t, wrk, tg.base+p, dur)
				if r.errors != "" {
					t.Logf("%s %s run %d: %s", tg.name, p, i+1, r.errors)
				}
				results[p][tg.name] = append(results[p][tg.name], r)
			}
		}
	}
	for _, p := range objects {
		if got := origin.count(p); got != warmCounts[p] {
			t.Fatalf("%s: the origin saw %d requests during the measured runs: not all hits", p, got-warmCounts[p])
		}
	}
	// Still hits after the runs.
	for _, tg := range targets {
		for _, p := range objects {
			cmpWarm(t, client, tg.base, p, tg.hdr, origin.objects[p])
		}
	}

	// Coalescing fan-in: a distinct cold path per proxy.
	fan := map[string]cmpFanIn{}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, tg := range targets {
		f := cmpRunFanIn(t, origin, tg.base, cmpSlowPrefix+tg.name+"-"+nonce, fanClients)
		if f.originRequests < 1 {
			t.Fatalf("%s fan-in: no origin request counted", tg.name)
		}
		fan[tg.name] = f
	}

	rss := map[string]int64{}
	for _, tg := range targets {
		rss[tg.name] = cmpGroupPeakRSS(tg.pgid)
	}

	// Report.
	pick := func(p, proxy string, f func(cmpWrk) float64) (med float64, all []float64) {
		for _, r := range results[p][proxy] {
			all = append(all, f(r))
		}
		return testkit.Median(all), all
	}
	reqs := func(r cmpWrk) float64 { return r.reqPerSec }
	mbps := func(r cmpWrk) float64 { return r.bytesPerSec / 1e6 }
	rows := []struct {
		label, path string
		f           func(cmpWrk) float64
		format      string
	}{
		{"1 KB hit, req/s", cmpPath1K, reqs, "%.0f"},
		{"4 MB hit, MB/s", cmpPath4M, mbps, "%.0f"},
	}
	var md strings.Builder
	fmt.Fprintf(&md, "| object | reel | nginx | reel/nginx |\n|---|---:|---:|---:|\n")
	for _, row := range rows {
		reelMed, reelAll := pick(row.path, "reel", row.f)
		ngxMed, ngxAll := pick(row.path, "nginx", row.f)
		if reelMed <= 0 || ngxMed <= 0 {
			t.Fatalf("%s: non-positive medians reel %v nginx %v", row.label, reelMed, ngxMed)
		}
		t.Logf("%s: reel %v, nginx %v", row.label, testkit.FmtAll(reelAll, 0), testkit.FmtAll(ngxAll, 0))
		fmt.Fprintf(&md, "| %s | "+row.format+" | "+row.format+" | %.2f× |\n", row.label, reelMed, ngxMed, reelMed/ngxMed)
	}
	r4, _ := pick(cmpPath4M, "reel", reqs)
	n4, _ := pick(cmpPath4M, "nginx", reqs)
	fmt.Fprintf(&md, "| 4 MB hit, req/s | %.0f | %.0f | %.2f× |\n", r4, n4, r4/n4)
	fr, fn := fan["reel"], fan["nginx"]
	fmt.Fprintf(&md, "\nCoalescing fan-in: %d concurrent clients on a cold %d KiB object the origin sends over ~%v → "+
		"origin requests: reel %d, nginx %d (proxy_cache_lock on). Clients whose first byte arrived before the origin "+
		"finished sending: reel %d/%d, nginx %d/%d; median time to first byte: reel %v, nginx %v.\n",
		fanClients, cmpSlowSize>>10, cmpSlowTime, fr.originRequests, fn.originRequests,
		fr.earlyFirstByte, fanClients, fn.earlyFirstByte, fanClients,
		fr.medianTTFB.Round(time.Millisecond), fn.medianTTFB.Round(time.Millisecond))
	fmt.Fprintf(&md, "\nMedian of %d alternating `wrk -t2 -c64 -d%v` runs per figure after a 1 s warm-up, every request a "+
		"verified hit; one Go origin on loopback; %d CPUs shared by wrk and the proxy. reel: `reel edge --memory 512MiB` "+
		"(memory tier). nginx: %s, samples/bench/nginx-proxy-cache.conf (worker_processes auto, sendfile, open_file_cache, cache files "+
		"in the page cache). MB = 10^6 bytes, from wrk's Transfer/sec. Peak RSS at the end: reel %.0f MiB, nginx "+
		"master + workers %.0f MiB.\n",
		runs, dur, runtime.NumCPU(), strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(nginxVersion), "nginx version: ")),
		float64(rss["reel"])/1024, float64(rss["nginx"])/1024)
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
