package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// reelBinary is the reel binary the tests run: built once per test binary (linking it takes
// seconds, and some twenty tests run it), removed by TestMain.
var reelBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildReel returns the path of the reel binary, building it on first use. Tests only run it.
func buildReel(t *testing.T) string {
	t.Helper()
	reelBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "reel-test-bin-")
		if err != nil {
			reelBinary.err = err
			return
		}
		reelBinary.dir = dir
		bin := filepath.Join(dir, "reel")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			reelBinary.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		reelBinary.path = bin
	})
	if reelBinary.err != nil {
		t.Fatal(reelBinary.err)
	}
	return reelBinary.path
}

// TestMain removes the binary buildReel made once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if reelBinary.dir != "" {
		os.RemoveAll(reelBinary.dir)
	}
	os.Exit(code)
}

// freeAddr is a loopback address with a port free right now, never one it returned before
// in this test binary: the kernel may hand the same free port out twice in a row, and two
// listeners of one test (an edge and its admin API: "admin must listen on its own address")
// must not get it both.
func freeAddr(t *testing.T) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
	t.Fatal("no new free port in 100 tries")
	return ""
}

var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// startEdge runs `reel edge` and waits until it serves.
func startEdge(t *testing.T, bin string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"edge", "--listen", addr, "--admin", freeAddr(t)}, args...)...)
	cmd.Env = append(os.Environ(), "REEL_ADMIN_TOKEN=test")
	runUntilServing(t, "edge", cmd)
	return cmd, "http://" + addr
}

// writeConfig writes body as a config file named name in a new temporary folder and returns
// its path.
func writeConfig(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runUntilServing starts a reel subcommand and waits for its first line to say it serves; it
// is killed when the test ends.
func runUntilServing(t *testing.T, what string, cmd *exec.Cmd) {
	t.Helper()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "serving") {
		t.Fatalf("%s did not start: %q %v", what, line, err)
	}
	go io.Copy(io.Discard, stdout)
}

// TestEdgeKilledMidFill: fill some objects, kill -9 the edge in the middle of another fill,
// restart it on the same cache folder → the complete objects are hits, the partial one is a
// miss and is fetched again whole.
func TestEdgeKilledMidFill(t *testing.T) {
	bin := buildReel(t)
	big := make([]byte, 4<<20)
	rand.Read(big)
	var slowHits atomic.Int64
	firstHalfSent := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path != "/slow" {
			fmt.Fprintf(w, "object %s", r.URL.Path)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		if slowHits.Add(1) == 1 {
			w.Write(big[:len(big)/2])
			w.(http.Flusher).Flush()
			firstHalfSent <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Write(big)
	}))
	defer origin.Close()

	dir := t.TempDir()
	args := []string{"--origin", origin.URL, "--cache-dir", dir, "--memory", "8MiB"}
	edge1, url1 := startEdge(t, bin, args...)
	get := func(base, path string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = "cdn.test" // keys include the host: keep it across restarts
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for _, p := range []string{"/a", "/b"} {
		if resp, _ := get(url1, p); !strings.Contains(resp.Header.Get("Cache-Status"), "stored") {
			t.Fatalf("%s not stored: %q", p, resp.Header.Get("Cache-Status"))
		}
	}
	go func() {
		req, _ := http.NewRequest("GET", url1+"/slow", nil)
		req.Host = "cdn.test"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-firstHalfSent:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow fill never started")
	}
	time.Sleep(100 * time.Millisecond) // let the edge write what it received
	if err := edge1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	edge1.Wait()

	_, url2 := startEdge(t, bin, args...)
	for _, p := range []string{"/a", "/b"} {
		resp, body := get(url2, p)
		if !strings.Contains(resp.Header.Get("Cache-Status"), "hit") || string(body) != "object "+p {
			t.Errorf("%s after kill -9: %q %q", p, resp.Header.Get("Cache-Status"), body)
		}
	}
	resp, body := get(url2, "/slow")
	if strings.Contains(resp.Header.Get("Cache-Status"), "hit") || !bytes.Equal(body, big) {
		t.Fatalf("partial fill after kill -9: Cache-Status %q, %d of %d bytes", resp.Header.Get("Cache-Status"), len(body), len(big))
	}
	if slowHits.Load() != 2 {
		t.Fatalf("origin saw %d requests for the partial object, want 2", slowHits.Load())
	}
	if resp, _ := get(url2, "/slow"); !strings.Contains(resp.Header.Get("Cache-Status"), "hit") {
		t.Fatalf("refetched object not stored: %q", resp.Header.Get("Cache-Status"))
	}
}
