package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge"
)

// memoryOrigin serves count distinct objects of size bytes, /obj/0 … /obj/count-1, each
// cacheable for an hour with a strong ETag (a typical media segment). The bodies share one
// random block, their first 8 bytes being the object's number, so that serving them costs
// the test almost nothing.
func memoryOrigin(t *testing.T, size int) *httptest.Server {
	t.Helper()
	block := make([]byte, size)
	rand.Read(block)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/obj/"), 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		var head [8]byte
		binary.BigEndian.PutUint64(head[:], n)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("ETag", fmt.Sprintf(`"o%d"`, n))
		w.Write(head[:min(8, size)])
		if size > 8 {
			w.Write(block[8:])
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rssFigures are a process's resident memory: the largest VmRSS sampled while it worked, the
// kernel's own peak (VmHWM), which catches what falls between samples, and at the end how
// much of it was anonymous memory (the Go runtime's) and mapped files (the binary).
type rssFigures struct{ sampled, peak, anon, file int64 }

// procMemory reads VmRSS and VmHWM (bytes) of a process from /proc/PID/status.
func procMemory(pid int) (rss, hwm int64, err error) {
	v, err := procStatus(pid, "VmRSS", "VmHWM")
	return v[0], v[1], err
}

// procStatus reads fields given in kB from /proc/PID/status, in bytes.
func procStatus(pid int, fields ...string) ([]int64, error) {
	out := make([]int64, len(fields))
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, _ := strings.Cut(sc.Text(), ":")
		i := slices.Index(fields, name)
		if i < 0 {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return out, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		out[i] = kb << 10
	}
	if slices.Contains(out, 0) {
		return out, fmt.Errorf("/proc/%d/status: not all of %v", pid, fields)
	}
	return out, sc.Err()
}

// churnEdge fetches count distinct objects through the edge at base with a few clients at
// once, checking every body's length, and samples the edge process's RSS every sampleEvery
// responses.
func churnEdge(t *testing.T, base string, pid, count, size int) rssFigures {
	t.Helper()
	const clients, sampleEvery = 4, 25
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer c.CloseIdleConnections()
	var next, done atomic.Int64
	var mu sync.Mutex
	var fig rssFigures
	var firstErr error
	sample := func() {
		rss, _, err := procMemory(pid)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		fig.sampled = max(fig.sampled, rss)
	}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(count) && ctx.Err() == nil; i = next.Add(1) - 1 {
				err := getObject(ctx, c, fmt.Sprintf("%s/obj/%d", base, i), size)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
				if done.Add(1)%sampleEvery == 0 {
					sample()
				}
			}
		}()
	}
	wg.Wait()
	sample()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	v, err := procStatus(pid, "VmHWM", "RssAnon", "RssFile")
	if err != nil {
		t.Fatal(err)
	}
	fig.peak, fig.anon, fig.file = v[0], v[1], v[2]
	return fig
}

func getObject(ctx context.Context, c *http.Client, url string, size int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || n != int64(size) {
		return fmt.Errorf("%s: status %d, %d of %d bytes", url, resp.StatusCode, n, size)
	}
	return nil
}

// measureEdgeMemory runs a real `reel edge --memory memory` in front of a loopback origin
// and fetches count distinct objects of size bytes through it.
func measureEdgeMemory(t *testing.T, bin string, memory int64, count, size int, args ...string) rssFigures {
	t.Helper()
	origin := memoryOrigin(t, size)
	args = append([]string{"--origin", origin.URL, "--memory", strconv.FormatInt(memory, 10), "--log-level", "warn"}, args...)
	cmd, base := startEdge(t, bin, args...)
	return churnEdge(t, base, cmd.Process.Pid, count, size)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// TestEdgeMemoryBound: a real edge with an 80 MiB memory tier, filled three times over with
// distinct 100 KB objects, stays within 1.5× its tier in resident memory — sampled while it
// works and by the kernel's own peak. (RSS has less noise than time, but when the GC runs
// varies with load: the Go memory limit set from the tiers, not GC luck, is what holds the
// line, and the bound leaves no margin for a GC that merely runs late.) 80 MiB is the smallest
// tier the promise is made for (edge/memlimit.go): at 64 MiB the binary's own resident pages,
// 22–25 MiB, leave no margin (1.45–1.47× alone, 1.50× once in CI beside the race suite).
func TestEdgeMemoryBound(t *testing.T) {
	const memory = 80 << 20
	bin := buildReel(t)
	fig := measureEdgeMemory(t, bin, memory, 2500, 100<<10)
	t.Logf("--memory %.0f MiB: RSS sampled max %.1f MiB (%.2f×), VmHWM %.1f MiB (%.2f×); at the end %.1f MiB anonymous, %.1f MiB files",
		mib(memory), mib(fig.sampled), float64(fig.sampled)/memory, mib(fig.peak), float64(fig.peak)/memory, mib(fig.anon), mib(fig.file))
	if limit := int64(memory * 3 / 2); fig.peak > limit {
		t.Errorf("edge peak RSS %.1f MiB > 1.5 × --memory (%.1f MiB)", mib(fig.peak), mib(limit))
	}
}

// TestEdgeMemoryBench (make bench, REEL_MEMBENCH=1) reports RSS / --memory for a real edge
// with --memory 64MiB over 10,000 distinct objects of 100 KB, then of 1 MB
// (REEL_MEMBENCH_SIZE, in bytes, keeps one row).
func TestEdgeMemoryBench(t *testing.T) {
	if os.Getenv("REEL_MEMBENCH") == "" {
		t.Skip("a benchmark: REEL_MEMBENCH=1 (make bench)")
	}
	const memory = 64 << 20
	bin := buildReel(t)
	t.Log("| objects | --memory | VmRSS max sampled | VmHWM | RssAnon at end | RssFile at end | VmHWM / --memory |")
	t.Log("|---|---|---|---|---|---|---|")
	for _, size := range []int{100 << 10, 1 << 20} {
		if only := os.Getenv("REEL_MEMBENCH_SIZE"); only != "" && only != strconv.Itoa(size) {
			continue // REEL_MEMBENCH_SIZE=1048576 runs one row
		}
		fig := measureEdgeMemory(t, bin, memory, 10000, size)
		over := ""
		if fig.peak > memory*3/2 {
			over = " (over the 1.5× target)" // reported, not failed: TestEdgeMemoryBound asserts
		}
		t.Logf("| 10,000 × %s | %.0f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.2f×%s |",
			sizeLabel(size), mib(memory), mib(fig.sampled), mib(fig.peak), mib(fig.anon), mib(fig.file), float64(fig.peak)/memory, over)
	}
}

func sizeLabel(size int) string {
	if size >= 1<<20 {
		return fmt.Sprintf("%d MB", size>>20)
	}
	return fmt.Sprintf("%d KB", size>>10)
}

// TestEdgeGoMemoryLimit: `reel edge` sets the Go memory limit from its tiers and GOGC to
// edge.GCPercent, and leaves what an operator gave in GOMEMLIMIT or GOGC alone.
func TestEdgeGoMemoryLimit(t *testing.T) {
	bin := buildReel(t)
	cfg := edge.DefaultConfig()
	cfg.Memory = 64 << 20
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"", fmt.Sprintf("bytes=%d from_gomemlimit=false gogc=%d from_gogc=false", edge.GoMemoryLimit(cfg), edge.GCPercent)},
		{"GOMEMLIMIT=300MiB", fmt.Sprintf("bytes=%d from_gomemlimit=true gogc=%d", 300<<20, edge.GCPercent)},
		{"GOGC=150", fmt.Sprintf("bytes=%d from_gomemlimit=false gogc=150 from_gogc=true", edge.GoMemoryLimit(cfg))},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // ends stderr if the line never comes
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "edge", "--origin", "http://127.0.0.1:1", "--listen", freeAddr(t), "--admin", "", "--memory", "64MiB")
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GOGC=")
		})
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := ""
		sc := bufio.NewScanner(stderr)
		for !strings.Contains(line, "go memory limit") && sc.Scan() {
			line = sc.Text()
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !strings.Contains(line, tc.want) {
			t.Errorf("%q: the edge logged %q, want %q", tc.env, line, tc.want)
		}
	}
	if limit := edge.GoMemoryLimit(cfg); limit < int64(cfg.Memory)+12<<20 || limit > int64(cfg.Memory)*3/2 {
		t.Errorf("limit %d for a 64 MiB tier: want the tier plus a budget, within 1.5× the tier", limit)
	}
}
