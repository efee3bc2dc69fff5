package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestPackageAES128: --encrypt aes-128 writes HLS only: METHOD=AES-128 with the key URI (and
// the IV when given) after EXT-X-MAP in every media playlist and as EXT-X-SESSION-KEY in the
// master, segments a whole number of AES blocks, no MPD, no I-frame playlist, nothing on stderr,
// and no trace of the key.
func TestPackageAES128(t *testing.T) {
	for _, iv := range []string{"", "000102030405060708090a0b0c0d0e0f"} {
		t.Run("iv "+iv, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			args := []string{"package", sample("ladder_360p.mp4"), "-o", dir, "--quiet",
				"--encrypt", "aes-128", "--key", testKey, "--key-uri", "https://keys.example/k1"}
			want := `METHOD=AES-128,URI="https://keys.example/k1"`
			if iv != "" {
				args = append(args, "--iv", iv)
				want += ",IV=0x" + iv
			}
			code, _, stderr := runReel(t, args...)
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, f := range []string{"manifest.mpd", "video_360p/iframes.m3u8"} {
				if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s written with aes-128 (%v)", f, err)
				}
			}
			for f, tag := range map[string]string{"master.m3u8": "#EXT-X-SESSION-KEY:", "video_360p/index.m3u8": "#EXT-X-KEY:", "audio/index.m3u8": "#EXT-X-KEY:"} {
				data, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(data, []byte(tag+want+"\n")) {
					t.Errorf("%s lacks %s%s", f, tag, want)
				}
				if tag == "#EXT-X-KEY:" && bytes.Index(data, []byte("#EXT-X-MAP:")) > bytes.Index(data, []byte(tag)) {
					t.Errorf("%s: EXT-X-KEY before EXT-X-MAP", f)
				}
			}
			segs, _ := filepath.Glob(filepath.Join(dir, "*", "seg_*.m4s"))
			if len(segs) < 4 {
				t.Fatalf("%d segments", len(segs))
			}
			for _, s := range segs {
				data, err := os.ReadFile(s)
				if err != nil {
					t.Fatal(err)
				}
				if len(data)%16 != 0 || bytes.Contains(data, []byte("moof")) {
					t.Errorf("%s: %d bytes, clear moof %v", s, len(data), bytes.Contains(data, []byte("moof")))
				}
			}
			noKey(t, dir)
		})
	}
}

// TestPackageEncryptSingleFile: --single-file with --encrypt cenc or cbcs is accepted (it was
// refused before issue 15); media.mp4 is protected and its MPD signals the KID.
func TestPackageEncryptSingleFile(t *testing.T) {
	for _, scheme := range []string{"cenc", "cbcs"} {
		t.Run(scheme, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", dir, "--quiet", "--single-file",
				"--encrypt", scheme, "--key-id", testKeyID, "--key", testKey, "--key-uri", "https://keys.example/k1")
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for f, want := range map[string]string{
				"video_360p/media.mp4":  "encv",
				"audio/media.mp4":       "enca",
				"manifest.mpd":          `cenc:default_KID="01234567-89ab-cdef-0123-456789abcdef"`,
				"video_360p/index.m3u8": "#EXT-X-BYTERANGE:",
			} {
				data, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(data, []byte(want)) {
					t.Errorf("%s does not contain %q", f, want)
				}
			}
			noKey(t, dir)
		})
	}
}

// noKey: no file under dir holds testKey.
func noKey(t *testing.T, dir string) {
	t.Helper()
	key, err := hex.DecodeString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckNoSecretInDir(t, dir, 5, key)
}
