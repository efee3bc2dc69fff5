package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLiveEncryptFlags: reel live's encryption flags, wrong: one line naming the flag, exit 2
// for a flag missing or out of place, 1 for a bad value (as 'reel package'), and nothing
// published — the channel's folder is not even made.
func TestLiveEncryptFlags(t *testing.T) {
	const (
		id   = "0123456789abcdef0123456789abcdef"
		key  = "00112233445566778899aabbccddeeff"
		seed = "000102030405060708090a0b0c0d0e0f"
	)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"key without --encrypt", []string{"--key-id", id, "--key", key}, exitUsage, "need --encrypt"},
		{"seed without --encrypt", []string{"--key-seed", seed, "--key-rotation", "2"}, exitUsage, "need --encrypt"},
		{"key URI without --encrypt", []string{"--key-uri", "https://k/"}, exitUsage, "need --encrypt"},
		{"no key", []string{"--encrypt", "cbcs"}, exitUsage, "--encrypt needs --key-id and --key, or --key-seed and --key-rotation"},
		{"both kinds", []string{"--encrypt", "cbcs", "--key-id", id, "--key", key, "--key-seed", seed, "--key-rotation", "2"}, exitUsage, "not both"},
		{"key ID alone", []string{"--encrypt", "cenc", "--key-id", id}, exitUsage, "both --key-id and --key"},
		{"seed without rotation", []string{"--encrypt", "cenc", "--key-seed", seed}, exitUsage, "--key-seed needs --key-rotation"},
		{"rotation without seed", []string{"--encrypt", "cenc", "--key-rotation", "2"}, exitUsage, "--key-rotation needs --key-seed"},
		{"rotation not a number", []string{"--encrypt", "cenc", "--key-seed", seed, "--key-rotation", "x"}, exitUsage, "key-rotation"},
		{"unknown scheme", []string{"--encrypt", "aes", "--key-id", id, "--key", key}, exitFailure, `--encrypt "aes": unknown scheme`},
		{"short key", []string{"--encrypt", "cenc", "--key-id", id, "--key", key[:30]}, exitFailure, "--key: 30 hex digits, want 32"},
		{"key ID not hex", []string{"--encrypt", "cenc", "--key-id", "zz" + id[2:], "--key", key}, exitFailure, "--key-id: not hex"},
		{"short seed", []string{"--encrypt", "cbcs", "--key-seed", seed[:30], "--key-rotation", "2"}, exitFailure, "--key-seed: 30 hex digits, want 32 to 128"},
		{"seed not hex", []string{"--encrypt", "cbcs", "--key-seed", "x" + seed[1:], "--key-rotation", "2"}, exitFailure, "--key-seed: not hex"},
		{"quote in key URI", []string{"--encrypt", "cbcs", "--key-seed", seed, "--key-rotation", "2", "--key-uri", `https://k/"x`}, exitFailure, "--key-uri"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			liveRefused(t, tc.args, tc.code, tc.want)
		})
	}
}

// liveRefused runs reel live on the looped sample with args and checks that it is refused:
// exit code, one line on stderr saying want, nothing on stdout, and no channel folder made
// (nothing published). It returns stderr.
func liveRefused(t *testing.T, args []string, code int, want string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "live")
	args = append([]string{"live", "--loop", "c=" + sample("ladder_360p.mp4"), "--dir", dir, "--listen", "127.0.0.1:0", "--admin", ""}, args...)
	got, stdout, stderr := runReel(t, args...)
	if got != code {
		t.Fatalf("exit %d, want %d; stderr %q", got, code, stderr)
	}
	assertOneLine(t, "stderr", stderr)
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not say %q", stderr, want)
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was made (%v): something was published", dir, err)
	}
	return stderr
}
