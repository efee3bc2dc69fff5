package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestTakenAddressBeforeServing: every server command binds all its listeners before it
// prints that it serves, so an address that is taken — here the last one each binds — stops
// it with exit 1 and one line naming the address, and nothing on stdout claims an address
// that would not answer. (reel edge used to print "serving" and then fail on its admin
// address; reel demo used to package the samples first.)
func TestTakenAddressBeforeServing(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := held.Addr().String()
	free := "127.0.0.1:0"
	tests := []struct {
		name string
		args []string
	}{
		{"edge admin", []string{"edge", "--origin", "http://127.0.0.1:1", "--listen", free, "--admin", taken}},
		{"edge", []string{"edge", "--origin", "http://127.0.0.1:1", "--listen", taken, "--admin", free}},
		{"origin", []string{"origin", "--dir", sample(""), "--listen", taken}},
		{"live admin", []string{"live", "--loop", "a=" + sample("ladder_360p.mp4"), "--ingest", "b", "--dir", t.TempDir(),
			"--listen", free, "--ingest-listen", free, "--admin", taken}},
		{"live ingest", []string{"live", "--ingest", "b", "--dir", t.TempDir(), "--listen", free, "--ingest-listen", taken, "--admin", free}},
		{"demo admin", []string{"demo", "--samples", sample(""), "--dir", filepath.Join(t.TempDir(), "demo"),
			"--listen", free, "--origin-listen", free, "--admin", taken}},
		{"demo edge", []string{"demo", "--samples", sample(""), "--dir", filepath.Join(t.TempDir(), "demo"),
			"--listen", taken, "--origin-listen", free, "--admin", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runReel(t, tc.args...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			assertOneLine(t, "stderr", stderr)
			if !strings.Contains(stderr, taken) {
				t.Errorf("stderr %q does not name the taken address %s", stderr, taken)
			}
			if stdout != "" {
				t.Errorf("printed before failing to bind %s:\n%s", taken, stdout)
			}
		})
	}
}

// addrRe finds the addresses a server command prints: http(s)://HOST:PORT, and "tcp HOST:PORT"
// or "udp HOST:PORT" (HTTP/3) in the edge's list of listeners.
var addrRe = regexp.MustCompile(`(https?://|udp |tcp )(127\.0\.0\.1:\d+)`)

// TestPrintedAddressesListen: every address a server command prints is listening the moment
// the line is read — checked line by line as the output arrives, TCP by connecting, HTTP/3's
// UDP socket by failing to bind it again.
func TestPrintedAddressesListen(t *testing.T) {
	bin := buildReel(t)
	origin := httptest.NewServer(http.NotFoundHandler()) // the edge prints its origin's address too
	defer origin.Close()
	tests := []struct {
		name string
		args []string
		want int // addresses printed, at least (the edge's origin included)
		last string
	}{
		{"edge", []string{"edge", "--origin", origin.URL, "--listen", freeAddr(t), "--admin", freeAddr(t),
			"--tls-self-signed", t.TempDir(), "--http3"}, 5, "admin token"},
		{"live", []string{"live", "--loop", "a=" + sample("ladder_360p.mp4"), "--ingest", "b", "--dir", t.TempDir(),
			"--listen", freeAddr(t), "--ingest-listen", freeAddr(t), "--admin", freeAddr(t)}, 3, "admin token"},
		{"origin", []string{"origin", "--dir", sample(""), "--listen", freeAddr(t)}, 1, "serving"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "REEL_ADMIN_TOKEN=") })
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			out := bufio.NewReader(stdout)
			seen := 0
			for range 20 {
				line, err := out.ReadString('\n')
				for _, m := range addrRe.FindAllStringSubmatch(line, -1) {
					seen++
					checkListening(t, m[1] == "udp ", m[2], line)
				}
				if err != nil || strings.Contains(line, tc.last) {
					break
				}
			}
			go io.Copy(io.Discard, out)
			if seen < tc.want {
				t.Errorf("%d addresses printed, want at least %d", seen, tc.want)
			}
		})
	}
}

// checkListening fails the test unless something listens at addr (over UDP when udp).
func checkListening(t *testing.T, udp bool, addr, line string) {
	t.Helper()
	if udp {
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			pc.Close()
			t.Errorf("udp %s printed (%q) but not bound", addr, strings.TrimSpace(line))
		}
		return
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("%s printed (%q) but not listening: %v", addr, strings.TrimSpace(line), err)
		return
	}
	c.Close()
}
