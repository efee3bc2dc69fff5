package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/reelvideo/reel/internal/testkit"
)

// cmpH2NginxConf is the template of nginx over TLS with HTTP/2, relative to this package.
const cmpH2NginxConf = "../samples/bench/nginx-h2-proxy-cache.conf"

// cmpLoad is one measured run: requests and body bytes per second, and the 99th percentile of
// the requests' latency (first byte sent to last byte received, as the client saw it).
type cmpLoad struct {
	reqPerSec, bytesPerSec float64
	p99                    time.Duration
	requests               int64         // completed
	cpu                    time.Duration // the server's CPU time per request, when measured
}

// cmpP99 is the 99th percentile (nearest rank) of latencies in microseconds.
func cmpP99(us []float64) time.Duration {
	if len(us) == 0 {
		return 0
	}
	s := slices.Clone(us)
	slices.Sort(s)
	return time.Duration(s[(len(s)*99+99)/100-1] * float64(time.Microsecond))
}

var (
	cmpH2loadFinishedRe = regexp.MustCompile(`finished in ([0-9.]+)(m?s), ([0-9.]+) req/s`)
	cmpH2loadReqsRe     = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	cmpH2loadStatusRe   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	cmpH2loadDataRe     = regexp.MustCompile(`traffic: .*\((\d+)\) data`)
)

// cmpParseH2load reads h2load's summary.
func cmpParseH2load(out string) (cmpLoad, error) {
	f := cmpH2loadFinishedRe.FindStringSubmatch(out)
	r := cmpH2loadReqsRe.FindStringSubmatch(out)
	s := cmpH2loadStatusRe.FindStringSubmatch(out)
	d := cmpH2loadDataRe.FindStringSubmatch(out)
	if f == nil || r == nil || s == nil || d == nil {
		return cmpLoad{}, errors.New("no summary in h2load's output")
	}
	secs, _ := strconv.ParseFloat(f[1], 64)
	if f[2] == "ms" {
		secs /= 1000
	}
	rps, _ := strconv.ParseFloat(f[3], 64)
	data, _ := strconv.ParseFloat(d[1], 64)
	if r[1] == "0" || s[3] != "0" || s[4] != "0" || s[2] != "0" {
		return cmpLoad{}, fmt.Errorf("h2load: %s succeeded, status codes %s", r[1], s[0])
	}
	n, _ := strconv.ParseInt(r[1], 10, 64)
	return cmpLoad{reqPerSec: rps, bytesPerSec: data / secs, requests: n}, nil
}

// cmpH2loadArgs are one h2load load: conns connections (over 2 threads), streams concurrent
// requests on each (HTTP/2; with h1, HTTP/1.1 over TLS, one at a time), for the run's duration
// or, with count > 0, for count requests.
type cmpH2loadArgs struct {
	conns, streams, count int
	h1                    bool
}

// cmpH2loadDefault is TestCompareProtocols' load: 64 connections, 10 streams for 1 KB, 1 for
// 4 MB, whose bytes 64 connections already saturate — counted rather than timed: h2load
// stopping 64 large transfers at the end of a timed run now and then never finishes (seen
// against both proxies); 128 requests a second of d is about what 64 connections move here.
func cmpH2loadDefault(path string, h1 bool, d time.Duration) cmpH2loadArgs {
	a := cmpH2loadArgs{conns: 64, streams: 10, h1: h1}
	if h1 {
		a.streams = 1
	}
	if path == cmpPath4M {
		a.streams, a.count = 1, 128*max(1, int(d.Round(time.Second)/time.Second))
	}
	return a
}

// cmpRunH2load runs h2load against url with a's load for d (or a.count requests), and takes
// the p99 from its per-request log.
func cmpRunH2load(t *testing.T, h2load, url string, a cmpH2loadArgs, d time.Duration) cmpLoad {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	secs := max(1, int(d.Round(time.Second)/time.Second))
	logFile := filepath.Join(t.TempDir(), "h2load.log")
	args := []string{"-c" + strconv.Itoa(a.conns), "-t2", "--log-file=" + logFile}
	if a.count > 0 {
		args = append(args, "-n", strconv.Itoa(a.count))
	} else {
		args = append(args, "-D", strconv.Itoa(secs))
	}
	if a.h1 {
		args = append(args, "--h1", "-m1")
	} else {
		args = append(args, "-m"+strconv.Itoa(a.streams))
	}
	out, err := exec.CommandContext(ctx, h2load, append(args, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("h2load %s: %v\n%s", url, err, out)
	}
	r, err := cmpParseH2load(string(out))
	if err != nil {
		t.Fatalf("h2load %v %s: %v\n%s", args, url, err, out)
	}
	lat, err := cmpH2loadLatencies(logFile)
	if err != nil || len(lat) == 0 {
		t.Fatalf("h2load %v %s: per-request log: %d lines, %v", args, url, len(lat), err)
	}
	r.p99 = cmpP99(lat)
	return r
}

// cmpH2loadLatencies reads h2load's --log-file: per request, tab-separated, its start
// (µs since the epoch), status and µs until the end of the response.
func cmpH2loadLatencies(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var lat []float64
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) != 3 {
			continue
		}
		v, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			return nil, fmt.Errorf("h2load log line %q: %w", line, err)
		}
		lat = append(lat, v)
	}
	return lat, nil
}

// cmpRunGoLoad is the Go client's load loop: conns connections (a transport each: one HTTP/2
// or QUIC connection), perConn goroutines on each sending GETs back to back for d, every
// response checked for its length. Bounded by d.
func cmpRunGoLoad(t *testing.T, newTransport func() http.RoundTripper, url string, size int, conns, perConn int, d time.Duration) cmpLoad {
	t.Helper()
	var reqs, bytes atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	var latMu sync.Mutex
	var lat []float64 // µs per request, every goroutine's
	start := time.Now()
	deadline := start.Add(d)
	var closers []func()
	for range conns {
		rt := newTransport()
		c := &http.Client{Transport: rt, Timeout: 30 * time.Second}
		closers = append(closers, func() {
			if cl, ok := rt.(io.Closer); ok {
				cl.Close()
			} else if ci, ok := rt.(interface{ CloseIdleConnections() }); ok {
				ci.CloseIdleConnections()
			}
		})
		for range perConn {
			wg.Go(func() {
				var mine []float64
				defer func() {
					latMu.Lock()
					lat = append(lat, mine...)
					latMu.Unlock()
				}()
				for time.Now().Before(deadline) {
					t0 := time.Now()
					resp, err := c.Get(url)
					if err != nil {
						failed.Store(err)
						return
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != http.StatusOK || n != int64(size) {
						failed.Store(fmt.Errorf("status %d, %d bytes, %v", resp.StatusCode, n, err))
						return
					}
					mine = append(mine, float64(time.Since(t0).Microseconds()))
					reqs.Add(1)
					bytes.Add(n)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	for _, c := range closers {
		c()
	}
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("Go load on %s: %v", url, err)
	}
	return cmpLoad{reqPerSec: float64(reqs.Load()) / elapsed, bytesPerSec: float64(bytes.Load()) / elapsed, p99: cmpP99(lat)}
}

// TestCompareProtocols measures the hit path over HTTP/1.1, HTTP/2 and HTTP/3, in one run on
// one machine, reported as ratios: `reel edge --tls-self-signed --http3` against nginx
// proxy_cache with `listen ssl http2` on the same certificate, with h2load (HTTP/1.1 over TLS
// with --h1, and HTTP/2 with -c64 -m10); and HTTP/3 against HTTP/2 through the same Go client
// (quic-go's http3.Transport, net/http's HTTP/2), since Debian's nginx has no HTTP/3. 1 KB
// hits in requests per second, 4 MB hits in MB/s; medians of alternating runs. A benchmark
// (make bench), not a CI test: it asserts that the tools ran, every measured request was a
// hit and the numbers are positive, never timing.
//
// REEL_COMPARE=1 runs it; REEL_COMPARE_DURATION sets each run (default 5s), REEL_COMPARE_RUNS
// the number of alternating runs (default 3); REEL_BENCH_OUT names a file the markdown table
// is appended to.
func TestCompareProtocols(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("benchmark of HTTP/1.1, HTTP/2 and HTTP/3 against nginx: run with REEL_COMPARE=1 (make bench)")
	}
	h2load := testkit.RequireTool(t, "h2load", "/usr/sbin", "/usr/local/sbin")
	dur := cmpEnvDuration(t, "REEL_COMPARE_DURATION", 5*time.Second)
	runs := 3
	if v := os.Getenv("REEL_COMPARE_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("REEL_COMPARE_RUNS=%q: want a positive count", v)
		}
		runs = n
	}

	px := cmpStartProxies(t, "reel-compare-protocols-", cmpH2NginxConf, true)
	origin, reelAddr, nginxAddr, tlsDir, nginxVersion := px.origin, px.reelAddr, px.nginxAddr, px.tlsDir, px.nginxVersion

	ca, err := os.ReadFile(filepath.Join(tlsDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tlsConf := func() *tls.Config { return &tls.Config{RootCAs: pool, ServerName: "localhost"} }
	newH2 := func() http.RoundTripper {
		return &http.Transport{TLSClientConfig: tlsConf(), ForceAttemptHTTP2: true, DisableCompression: true, MaxIdleConnsPerHost: 64}
	}
	newH3 := func() http.RoundTripper {
		return &http3.Transport{TLSClientConfig: tlsConf(), DisableCompression: true}
	}

	reelBase, nginxBase := "https://"+reelAddr, "https://"+nginxAddr
	objects := []string{cmpPath1K, cmpPath4M}
	warm := func() {
		for _, p := range objects {
			h2 := &http.Client{Transport: newH2()}
			cmpWarm(t, h2, reelBase, p, "Cache-Status", origin.objects[p])
			cmpWarm(t, h2, nginxBase, p, "X-Cache-Status", origin.objects[p])
			h3t := newH3()
			cmpWarm(t, &http.Client{Transport: h3t}, reelBase, p, "Cache-Status", origin.objects[p])
			h3t.(io.Closer).Close()
			h2.CloseIdleConnections()
		}
	}
	warm()
	// The Alt-Svc the edge's TCP responses carry, for the report.
	resp, err := (&http.Client{Transport: newH2()}).Get(reelBase + cmpPath1K)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	altSvc := resp.Header.Get("Alt-Svc")
	if altSvc == "" {
		t.Fatal("no Alt-Svc on the edge's HTTP/2 responses")
	}
	counts := map[string]int{}
	for _, p := range objects {
		counts[p] = origin.count(p)
	}

	// The measured runs: each a (target, protocol, tool) for each object, alternating order.
	type series struct {
		name   string // "reel h2 (h2load)"
		target string // reel, nginx
		proto  string // HTTP/1.1, HTTP/2, HTTP/3
		tool   string
		run    func(path string, d time.Duration) cmpLoad
	}
	// HTTP/2 streams per connection: 10 for small objects; one for 4 MB ones, whose bytes
	// per second 64 connections already saturate (and h2load, stopping 640 streams of 4 MB
	// at the end of a timed run, now and then never finishes).
	h2loadRun := func(base string, h1 bool) func(string, time.Duration) cmpLoad {
		return func(p string, d time.Duration) cmpLoad {
			return cmpRunH2load(t, h2load, base+p, cmpH2loadDefault(p, h1, d), d)
		}
	}
	goRun := func(newRT func() http.RoundTripper) func(string, time.Duration) cmpLoad {
		return func(p string, d time.Duration) cmpLoad {
			return cmpRunGoLoad(t, newRT, reelBase+p, len(origin.objects[p]), 4, 16, d)
		}
	}
	all := []series{
		{"reel HTTP/1.1", "reel", "HTTP/1.1", "h2load --h1", h2loadRun(reelBase, true)},
		{"nginx HTTP/1.1", "nginx", "HTTP/1.1", "h2load --h1", h2loadRun(nginxBase, true)},
		{"reel HTTP/2", "reel", "HTTP/2", "h2load", h2loadRun(reelBase, false)},
		{"nginx HTTP/2", "nginx", "HTTP/2", "h2load", h2loadRun(nginxBase, false)},
		{"reel HTTP/2 Go", "reel", "HTTP/2", "Go", goRun(newH2)},
		{"reel HTTP/3 Go", "reel", "HTTP/3", "Go", goRun(newH3)},
	}
	for _, s := range all { // a short untimed run each
		for _, p := range objects {
			s.run(p, time.Second)
		}
	}
	results := map[string]map[string][]cmpLoad{} // object → series → runs
	for _, p := range objects {
		results[p] = map[string][]cmpLoad{}
	}
	for i := range runs {
		for j, p := range objects {
			order := all
			if (i+j)%2 == 1 {
				order = nil
				for k := len(all) - 1; k >= 0; k-- {
					order = append(order, all[k])
				}
			}
			for _, s := range order {
				results[p][s.name] = append(results[p][s.name], s.run(p, dur))
			}
		}
	}
	for _, p := range objects {
		if got := origin.count(p); got != counts[p] {
			t.Fatalf("%s: the origin saw %d requests during the measured runs: not all hits", p, got-counts[p])
		}
	}
	warm() // still hits

	med := func(p, name string, mb bool) float64 {
		var v, p99 []float64
		for _, r := range results[p][name] {
			if mb {
				v = append(v, r.bytesPerSec/1e6)
			} else {
				v = append(v, r.reqPerSec)
			}
			p99 = append(p99, r.p99.Seconds()*1e3)
		}
		t.Logf("%s %s: %s, p99 ms %s", name, p, testkit.FmtAll(v, 0), testkit.FmtAll(p99, 1))
		m := testkit.Median(v)
		if m <= 0 {
			t.Fatalf("%s %s: non-positive median", name, p)
		}
		return m
	}
	p99 := func(p, name string) string {
		var v []float64
		for _, r := range results[p][name] {
			v = append(v, float64(r.p99))
		}
		return cmpFmtLatency(time.Duration(testkit.Median(v)))
	}
	var md strings.Builder
	fmt.Fprintf(&md, "| hit | protocol (client) | reel | nginx | reel/nginx | p99 reel | p99 nginx |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, o := range []struct {
		label, path string
		mb          bool
	}{{"1 KB, req/s", cmpPath1K, false}, {"4 MB, MB/s", cmpPath4M, true}} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
			r, n := med(o.path, "reel "+proto, o.mb), med(o.path, "nginx "+proto, o.mb)
			tool := "h2load --h1 -c64"
			if proto == "HTTP/2" {
				tool = "h2load -c64 -m10"
				if o.mb {
					tool = "h2load -c64 -m1"
				}
			}
			fmt.Fprintf(&md, "| %s | %s (%s) | %.0f | %.0f | %.2f× | %s | %s |\n", o.label, proto, tool, r, n, r/n,
				p99(o.path, "reel "+proto), p99(o.path, "nginx "+proto))
		}
	}
	fmt.Fprintf(&md, "\n| hit | reel HTTP/2 (Go) | reel HTTP/3 (Go, quic-go) | HTTP/3 / HTTP/2 | p99 HTTP/2 | p99 HTTP/3 |\n|---|---:|---:|---:|---:|---:|\n")
	for _, o := range []struct {
		label, path string
		mb          bool
	}{{"1 KB, req/s", cmpPath1K, false}, {"4 MB, MB/s", cmpPath4M, true}} {
		h2, h3 := med(o.path, "reel HTTP/2 Go", o.mb), med(o.path, "reel HTTP/3 Go", o.mb)
		fmt.Fprintf(&md, "| %s | %.0f | %.0f | %.2f× | %s | %s |\n", o.label, h2, h3, h3/h2,
			p99(o.path, "reel HTTP/2 Go"), p99(o.path, "reel HTTP/3 Go"))
	}
	fmt.Fprintf(&md, "\nMedian of %d alternating %v runs per figure (h2load on 4 MB: 128 requests per second of a run, counted rather than timed) after a 1 s warm-up, every request a verified hit; one Go "+
		"origin on loopback; %d CPUs shared by the client and the proxy. reel: `reel edge --tls-self-signed DIR --http3 "+
		"--memory 512MiB` (memory tier; Alt-Svc: %s). nginx: %s, samples/bench/nginx-h2-proxy-cache.conf (the HTTP/1.1 "+
		"comparison's setup with `listen ssl http2` on reel's certificate). TLS 1.3 on both. The Go client: 4 connections × "+
		"16 goroutines sending GETs back to back, net/http's HTTP/2 or quic-go's http3.Transport. MB = 10^6 bytes of body. "+
		"p99: the 99th percentile of request latency (h2load's per-request log; the Go client's own clock), median over the runs.\n",
		runs, dur, runtime.NumCPU(), altSvc, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(nginxVersion), "nginx version: ")))
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
