package edge

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestCompareH2CPU (make bench, REEL_COMPARE=1) measures what a hit over HTTP/2 with TLS costs
// the server in CPU time — reel edge against nginx proxy_cache with `listen ssl http2` (the
// setup of TestCompareProtocols) — under h2load -c64 -m10 (1 KB) and -c16 -m1 (4 MB): the
// CPU time of each server's process group (nginx's master and workers) over the run, per
// request, beside the requests per second and h2load's mean and max request time. On a
// machine shared with other work, CPU per request is the steadier figure: it does not move
// with the CPU the server was left. Alternating runs, medians. A benchmark: it asserts that
// the tools ran and every request was a hit, never timing.
func TestCompareH2CPU(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("benchmark of HTTP/2 hits against nginx: run with REEL_COMPARE=1 (make bench)")
	}
	h2load := testkit.RequireTool(t, "h2load", "/usr/sbin", "/usr/local/sbin")
	dur := cmpEnvDuration(t, "REEL_COMPARE_DURATION", 5*time.Second)
	px := cmpStartProxies(t, "reel-compare-h2cpu-", cmpH2NginxConf, true)
	reelBase, nginxBase := "https://"+px.reelAddr, "https://"+px.nginxAddr
	counts := map[string]int{}
	for _, p := range []string{cmpPath1K, cmpPath4M} {
		// h2load itself warms the caches (a miss, then hits), before the origin is counted.
		for _, base := range []string{reelBase, nginxBase} {
			out, err := exec.Command(h2load, "-n", "4", "-c", "1", base+p).CombinedOutput()
			if err != nil {
				t.Fatalf("h2load warm-up: %v\n%s", err, out)
			}
		}
		counts[p] = px.origin.count(p)
	}
	type result struct{ rps, cpuPerReq, mean, maxT float64 }
	run := func(base, path string, pgid int) result {
		args := []string{"-c64", "-t1", "-m10", "-D", strconv.Itoa(int(dur / time.Second))}
		if path == cmpPath4M {
			args = []string{"-c16", "-t1", "-m1", "-n", strconv.Itoa(16 * int(dur/time.Second))}
		}
		ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
		defer cancel()
		cpu0 := groupCPU(t, pgid)
		out, err := exec.CommandContext(ctx, h2load, append(args, base+path)...).CombinedOutput()
		cpu := groupCPU(t, pgid) - cpu0
		if err != nil {
			t.Fatalf("h2load %v: %v\n%s", args, err, out)
		}
		l, err := cmpParseH2load(string(out))
		if err != nil {
			t.Fatalf("h2load %v: %v\n%s", args, err, out)
		}
		done := h2loadDoneRe.FindStringSubmatch(string(out))
		n, _ := strconv.ParseFloat(done[1], 64)
		tr := h2loadTimeRe.FindStringSubmatch(string(out))
		if tr == nil || n == 0 {
			t.Fatalf("h2load: no request times\n%s", out)
		}
		return result{rps: l.reqPerSec, cpuPerReq: cpu.Seconds() * 1e6 / n, maxT: h2loadMs(tr[3], tr[4]), mean: h2loadMs(tr[5], tr[6])}
	}
	servers := []struct {
		name, base string
		pgid       int
	}{{"reel", reelBase, px.reelProc.cmd.Process.Pid}, {"nginx", nginxBase, px.nginxProc.cmd.Process.Pid}}
	res := map[string][]result{}
	for i := range 3 {
		for _, p := range []string{cmpPath1K, cmpPath4M} {
			for j := range servers {
				s := servers[(i+j)%2]
				res[s.name+p] = append(res[s.name+p], run(s.base, p, s.pgid))
			}
		}
	}
	for p, n := range counts {
		if got := px.origin.count(p); got != n {
			t.Fatalf("%s: the origin saw %d requests during the runs: not all hits", p, got-n)
		}
	}
	med := func(k string, f func(result) float64) float64 {
		var v []float64
		for _, r := range res[k] {
			v = append(v, f(r))
		}
		return testkit.Median(v)
	}
	var md strings.Builder
	fmt.Fprintf(&md, "| hit over HTTP/2 + TLS | server | req/s | CPU µs per request | mean / max request time (ms) |\n|---|---|---:|---:|---:|\n")
	for _, o := range []struct{ label, path string }{{"1 KB (h2load -c64 -m10)", cmpPath1K}, {"4 MB (h2load -c16 -m1)", cmpPath4M}} {
		for _, s := range servers {
			k := s.name + o.path
			cpu := med(k, func(r result) float64 { return r.cpuPerReq })
			if cpu <= 0 {
				t.Fatalf("%s: no CPU time measured", k)
			}
			fmt.Fprintf(&md, "| %s | %s | %.0f | %.1f | %.1f / %.1f |\n", o.label, s.name,
				med(k, func(r result) float64 { return r.rps }), cpu,
				med(k, func(r result) float64 { return r.mean }), med(k, func(r result) float64 { return r.maxT }))
		}
	}
	t.Logf("\n%s\nMedians of 3 alternating runs of %v (4 MB: 16 requests per second of a run); CPU: the server's process group (user+system).", md.String(), dur)
}

var (
	h2loadDoneRe = regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done`)
	h2loadTimeRe = regexp.MustCompile(`time for request:\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)\s+([0-9.]+)(us|ms|s)`)
)

// h2loadMs converts one of h2load's times to milliseconds.
func h2loadMs(v, unit string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return f / 1000
	case "s":
		return f * 1000
	}
	return f
}

// groupCPU is the CPU time (user+system) of the processes in process group pgid, from /proc.
func groupCPU(t *testing.T, pgid int) time.Duration {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var ticks int64
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp …: the fields after the command's closing parenthesis.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
