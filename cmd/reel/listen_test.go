package main

import (
	"net"
	"path/filepath"
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
