package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	testKeyID = "0123456789abcdef0123456789abcdef"
	testKey   = "00112233445566778899aabbccddeeff"
)

// TestPackageEncrypt: --encrypt cenc or cbcs with a key gives encrypted init segments (encv/enca), an
// MPD that signals the KID, and no trace of the key in the presentation.
func TestPackageEncrypt(t *testing.T) {
	t.Run("cenc", func(t *testing.T) { testPackageEncrypt(t, "cenc", "0011223344556677", "") })
	t.Run("cbcs", func(t *testing.T) { testPackageEncrypt(t, "cbcs", "00112233445566778899aabbccddeeff", "") })
	t.Run("cbcs key uri", func(t *testing.T) {
		testPackageEncrypt(t, "cbcs", "00112233445566778899aabbccddeeff", "https://keys.example/k1")
	})
}

// testPackageEncrypt: without a key URI the playlists signal ClearKey alone; with one, the
// identity key first; either way nothing is said on stderr.
func testPackageEncrypt(t *testing.T, scheme, iv, keyURI string) {
	dir := filepath.Join(t.TempDir(), "out")
	args := []string{"package", sample("ladder_360p.mp4"), "-o", dir, "--quiet",
		"--encrypt", scheme, "--key-id", testKeyID, "--key", testKey, "--iv", iv}
	if keyURI != "" {
		args = append(args, "--key-uri", keyURI)
	}
	code, _, stderr := runReel(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	checks := [][2]string{
		{"video_360p/init.mp4", "encv"},
		{"audio/init.mp4", "enca"},
		{"manifest.mpd", `cenc:default_KID="01234567-89ab-cdef-0123-456789abcdef"`},
		{"manifest.mpd", `value="` + scheme + `"`},
	}
	if stderr != "" {
		t.Errorf("stderr %q, want nothing", stderr)
	}
	method := map[string]string{"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}[scheme]
	key := "METHOD=" + method + `,URI="data:text/plain;base64,ASNFZ4mrze8BI0VniavN7w==",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`
	if keyURI != "" {
		key = "METHOD=" + method + `,URI="` + keyURI + `",KEYFORMAT="identity"` + "\n#EXT-X-KEY:" + key
	}
	checks = append(checks,
		[2]string{"master.m3u8", "#EXT-X-SESSION-KEY:" + strings.ReplaceAll(key, "EXT-X-KEY", "EXT-X-SESSION-KEY")},
		[2]string{"video_360p/index.m3u8", "#EXT-X-KEY:" + key + "\n#EXT-X-MAP:"},
		[2]string{"video_360p/iframes.m3u8", "#EXT-X-KEY:" + key + "\n#EXT-X-MAP:"},
		[2]string{"audio/index.m3u8", "#EXT-X-KEY:" + key + "\n#EXT-X-MAP:"})
	for _, c := range checks {
		file, want := c[0], c[1]
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("%s does not contain %q", file, want)
		}
	}
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(bytes.ToLower(data), []byte(testKey)) {
			t.Errorf("%s holds the key in hex", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPackageEncryptBadFlags: bad key material or an unknown scheme is bad input (exit 1), a
// missing or stray flag a usage error (exit 2); either way one line naming the flag, and
// nothing published.
func TestPackageEncryptBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"short key", []string{"--encrypt", "cenc", "--key-id", testKeyID, "--key", testKey[:30]}, exitFailure, []string{"--key:", "30 hex digits, want 32"}},
		{"key not hex", []string{"--encrypt", "cenc", "--key-id", testKeyID, "--key", strings.Repeat("zz", 16)}, exitFailure, []string{"--key:", "not hex"}},
		{"long key id", []string{"--encrypt", "cenc", "--key-id", testKeyID + "00", "--key", testKey}, exitFailure, []string{"--key-id:", "34 hex digits"}},
		{"bad iv", []string{"--encrypt", "cenc", "--key-id", testKeyID, "--key", testKey, "--iv", "0011"}, exitFailure, []string{"--iv:", "16 or 32"}},
		{"cbcs short iv", []string{"--encrypt", "cbcs", "--key-id", testKeyID, "--key", testKey, "--iv", "0011223344556677"}, exitFailure, []string{"--iv:", "16 hex digits, want 32"}},
		{"key uri without encrypt", []string{"--key-uri", "https://k/1"}, exitUsage, []string{"need --encrypt"}},
		{"quote in key uri", []string{"--encrypt", "cbcs", "--key-id", testKeyID, "--key", testKey, "--key-uri", `https://k/"1"`}, exitFailure, []string{"--key-uri:", "double quote"}},
		{"unknown scheme", []string{"--encrypt", "cbc1", "--key-id", testKeyID, "--key", testKey}, exitFailure, []string{"--encrypt", `"cbc1"`, "unknown scheme"}},
		{"missing key", []string{"--encrypt", "cenc", "--key-id", testKeyID}, exitUsage, []string{"needs --key"}},
		{"key without encrypt", []string{"--key-id", testKeyID, "--key", testKey}, exitUsage, []string{"need --encrypt"}},
		{"aes-128 single file", []string{"--single-file", "--encrypt", "aes-128", "--key", testKey, "--key-uri", "https://k/1"}, exitUsage, []string{"aes-128", "--single-file"}},
		{"aes-128 without key uri", []string{"--encrypt", "aes-128", "--key", testKey}, exitUsage, []string{"needs --key-uri"}},
		{"aes-128 with key id", []string{"--encrypt", "aes-128", "--key-id", testKeyID, "--key", testKey, "--key-uri", "https://k/1"}, exitUsage, []string{"--key-id does not apply"}},
		{"aes-128 short iv", []string{"--encrypt", "aes-128", "--key", testKey, "--key-uri", "https://k/1", "--iv", "0011223344556677"}, exitFailure, []string{"--iv:", "16 hex digits, want 32"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			args := append([]string{"package", sample("ladder_360p.mp4"), "-o", filepath.Join(parent, "out"), "--quiet"}, tc.args...)
			code, stdout, stderr := runReel(t, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			assertOneLine(t, "stderr", stderr)
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q: want %q", stderr, w)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if left := dirEntries(t, parent); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
