package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// logLines collects a process's stderr lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, sc.Text())
		l.mu.Unlock()
	}
}

// matching are the lines holding every one of subs.
func (l *logLines) matching(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// waitFor polls cond every 20ms for up to 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestEdgeReload: a real `reel edge` under a steady stream of requests reloads its config file
// on SIGHUP. A good file's new origin and rule TTL take effect, and its changed restart-only
// key (memory) is one warning naming it; a bad file is one error line naming the file and the
// key, and the running configuration keeps serving. No request fails throughout.
func TestEdgeReload(t *testing.T) {
	t.Parallel()
	origin := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/ttl/") {
				w.Header().Set("Cache-Control", "max-age=5")
			} else {
				w.Header().Set("Cache-Control", "no-store")
			}
			fmt.Fprintf(w, "%s:%s", name, r.URL.Path)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := origin("A"), origin("B")
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	write := func(body string) {
		t.Helper()
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`memory: 64MiB
origins:
  - host: "*"
    url: %s
rules:
  - path_prefix: /ttl/
    ttl: 30s
`, a.URL))
	good := fmt.Sprintf(`memory: 96MiB
origins:
  - host: "*"
    url: %s
  - name: b
    url: %s
rules:
  - path_prefix: /ttl/
    ttl: 2h
  - path_prefix: /b/
    origin: b
`, a.URL, b.URL)

	bin := buildReel(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "edge", "--listen", addr, "--admin", "", "--config", file)
	stderr, _ := cmd.StderrPipe()
	var logs logLines
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go logs.read(stderr)
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "serving") {
		t.Fatalf("edge did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	base := "http://" + addr

	client := &http.Client{Timeout: 10 * time.Second}
	fetch := func(path string) (string, http.Header, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return "", nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", path, resp.Status)
		}
		return string(body), resp.Header, err
	}
	// ttlOf is the ttl= of the edge's Cache-Status on a hit of a fresh object under /ttl/.
	var seq atomic.Int64
	ttlOf := func() int {
		t.Helper()
		path := fmt.Sprintf("/ttl/%d", seq.Add(1))
		fetch(path) // the miss that stores it; the hit below says its ttl
		_, h, err := fetch(path)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`ttl=(-?\d+)`).FindStringSubmatch(h.Get("Cache-Status"))
		if m == nil {
			t.Fatalf("no ttl in Cache-Status %q", h.Get("Cache-Status"))
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if body, _, err := fetch("/b/x"); err != nil || body != "A:/b/x" {
		t.Fatalf("before the reload: %q %v", body, err)
	}
	if ttl := ttlOf(); ttl > 30 {
		t.Fatalf("before the reload: ttl %d, want ≤ 30", ttl)
	}

	// Traffic: 4 clients, each a bounded loop, until told to stop.
	var stop atomic.Bool
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000 && !stop.Load(); i++ {
				path := fmt.Sprintf("/b/%d-%d", c, i%50)
				if i%2 == 0 {
					path = fmt.Sprintf("/a/%d", i%50)
				}
				sent.Add(1)
				if _, _, err := fetch(path); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	waitFor(t, "traffic", func() bool { return sent.Load() > 200 })

	// A good file.
	write(good)
	syscall.Kill(cmd.Process.Pid, syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return len(logs.matching("config reloaded")) == 1 })
	if body, _, err := fetch("/b/x"); err != nil || body != "B:/b/x" {
		t.Errorf("after the reload: /b/x = %q %v, want B's", body, err)
	}
	if ttl := ttlOf(); ttl <= 30 || ttl > 7200 {
		t.Errorf("after the reload: ttl %d, want the new rule's 2h", ttl)
	}
	if w := logs.matching("needs a restart"); len(w) != 1 || !strings.Contains(w[0], "key=memory") {
		t.Errorf("restart-only warnings: %q, want one naming memory", w)
	}
	atGood := sent.Load()
	waitFor(t, "traffic after the good reload", func() bool { return sent.Load() > atGood+200 })

	// A bad file: a misspelt key.
	write(strings.Replace(good, "ttl: 2h", "ttll: 1h", 1))
	syscall.Kill(cmd.Process.Pid, syscall.SIGHUP)
	waitFor(t, "the failed reload", func() bool { return len(logs.matching("config reload failed")) > 0 })
	if e := logs.matching("config reload failed"); len(e) != 1 || !strings.Contains(e[0], file) || !strings.Contains(e[0], "ttll") {
		t.Errorf("failed reload lines: %q, want one naming %s and ttll", e, file)
	}
	t.Logf("bad file: %s", logs.matching("config reload failed"))
	atBad := sent.Load()
	waitFor(t, "traffic after the bad reload", func() bool { return sent.Load() > atBad+200 })
	if body, _, err := fetch("/b/x"); err != nil || body != "B:/b/x" {
		t.Errorf("after the bad file: /b/x = %q %v, want the running config's (B)", body, err)
	}
	if ttl := ttlOf(); ttl <= 30 {
		t.Errorf("after the bad file: ttl %d, want the running 2h", ttl)
	}
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during the reloads; first: %v", n, sent.Load(), firstErr.Load())
	}
	t.Logf("%d requests, %d failed", sent.Load(), failed.Load())
}
