package packager

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/manifest"
)

const testKeyURI = "https://keys.example/reel/k1"

func testAES128(iv string) *Encryption {
	e := &Encryption{Scheme: SchemeAES128, Key: testKey, KeyURI: testKeyURI}
	e.IV, _ = hex.DecodeString(iv)
	return e
}

// decryptSegment undoes aes-128 with Go's crypto: AES-128-CBC, then PKCS7 padding checked and
// removed.
func decryptSegment(t *testing.T, name string, enc, key, iv []byte) []byte {
	t.Helper()
	if len(enc) == 0 || len(enc)%aes.BlockSize != 0 {
		t.Fatalf("%s: %d bytes, not a whole number of AES blocks", name, len(enc))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(enc))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, enc)
	pad := int(out[len(out)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("%s: bad PKCS7 padding (last byte %d)", name, pad)
	}
	return out[:len(out)-pad]
}

// TestAES128RoundTrip: every media segment of an aes-128 presentation, decrypted with Go's
// crypto and the IV a player derives (the media sequence number, or the fixed IV), is the clear
// twin's segment byte for byte; the init segments are the clear ones; segment sizes in the
// model, and so BANDWIDTH, are the encrypted (padded) sizes; the playlists parse back with
// hls-m3u8 and carry METHOD=AES-128 after EXT-X-MAP; there is no MPD, no I-frame playlist and
// no trace of the key.
func TestAES128RoundTrip(t *testing.T) {
	t.Run("sequence iv", func(t *testing.T) { testAES128RoundTrip(t, "") })
	t.Run("fixed iv", func(t *testing.T) { testAES128RoundTrip(t, "000102030405060708090a0b0c0d0e0f") })
}

func testAES128RoundTrip(t *testing.T, fixedIV string) {
	e := testAES128(fixedIV)
	clearDir, clearP, encDir, encP := packagedTwiceWith(t, ladder, e)
	if len(encP.Tracks()) != 4 || len(clearP.Tracks()) != 4 {
		t.Fatalf("%d tracks, clear %d, want 4", len(encP.Tracks()), len(clearP.Tracks()))
	}
	for _, name := range []string{manifest.DASHManifest} {
		if _, err := os.Stat(filepath.Join(encDir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s written with aes-128 (%v)", name, err)
		}
	}
	wantKey := m3u8.Key{Method: "AES-128", URI: testKeyURI}
	if fixedIV != "" {
		wantKey.IV = "0x" + fixedIV
	}
	master := decodeMaster(t, filepath.Join(encDir, manifest.MasterPlaylist))
	if len(master.SessionKeys) != 1 || *master.SessionKeys[0] != wantKey {
		t.Errorf("master: session keys %+v, want %+v", master.SessionKeys, wantKey)
	}
	segments := 0
	for i, et := range encP.Tracks() {
		ct := clearP.Tracks()[i]
		if et.ID != ct.ID || len(et.Segments) != len(ct.Segments) || len(et.Segments) < 2 {
			t.Fatalf("%s: %d segments, clear %s %d", et.ID, len(et.Segments), ct.ID, len(ct.Segments))
		}
		if len(et.IFrames) != 0 {
			t.Errorf("%s: %d I-frames listed with aes-128", et.ID, len(et.IFrames))
		}
		if _, err := os.Stat(filepath.Join(encDir, et.ID, manifest.IFramePlaylist)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: I-frame playlist written with aes-128 (%v)", et.ID, err)
		}
		ci, _ := os.ReadFile(filepath.Join(clearDir, ct.ID, manifest.InitSegmentName))
		ei, _ := os.ReadFile(filepath.Join(encDir, et.ID, manifest.InitSegmentName))
		if len(ci) == 0 || !bytes.Equal(ci, ei) {
			t.Errorf("%s: init segment is not the clear one", et.ID)
		}

		raw, err := os.ReadFile(filepath.Join(encDir, et.ID, manifest.MediaPlaylist))
		if err != nil {
			t.Fatal(err)
		}
		if m, k := bytes.Index(raw, []byte("#EXT-X-MAP:")), bytes.Index(raw, []byte("#EXT-X-KEY:")); m < 0 || k < m {
			t.Errorf("%s: EXT-X-KEY at %d, EXT-X-MAP at %d: the key must follow the map (clear init)", et.ID, k, m)
		}
		pl := decodeMedia(t, filepath.Join(encDir, et.ID, manifest.MediaPlaylist))
		if len(pl.Keys) != 1 || pl.Keys[0] != wantKey || pl.SeqNo != 0 {
			t.Errorf("%s: keys %+v, media sequence %d; want one %+v from 0", et.ID, pl.Keys, pl.SeqNo, wantKey)
		}
		segs := segmentsOf(pl)
		if len(segs) != len(et.Segments) {
			t.Fatalf("%s: playlist lists %d segments, model %d", et.ID, len(segs), len(et.Segments))
		}
		var encBytes int64
		var dur uint64
		for n, s := range et.Segments {
			c := ct.Segments[n]
			if s.Start != c.Start || s.Duration != c.Duration || s.URI != c.URI || segs[n].URI != s.URI {
				t.Errorf("%s segment %d: %d+%d %s, clear %d+%d %s", et.ID, n, s.Start, s.Duration, s.URI, c.Start, c.Duration, c.URI)
			}
			clear, err := os.ReadFile(filepath.Join(clearDir, ct.ID, c.URI))
			if err != nil {
				t.Fatal(err)
			}
			enc, err := os.ReadFile(filepath.Join(encDir, et.ID, s.URI))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(enc)) != s.Size || s.Size != encryptedSize(c.Size) || s.Size <= c.Size {
				t.Errorf("%s segment %d: %d bytes on disk, model %d, clear %d", et.ID, n, len(enc), s.Size, c.Size)
			}
			if bytes.Contains(enc, []byte("moof")) {
				t.Errorf("%s segment %d: a clear moof in the encrypted segment", et.ID, n)
			}
			iv := make([]byte, 16)
			if fixedIV != "" {
				iv, _ = hex.DecodeString(fixedIV)
			} else {
				binary.BigEndian.PutUint64(iv[8:], pl.SeqNo+uint64(n)) // RFC 8216 §5.2
			}
			if got := decryptSegment(t, et.ID+"/"+s.URI, enc, testKey, iv); !bytes.Equal(got, clear) {
				t.Errorf("%s segment %d: decrypted bytes differ from the clear segment", et.ID, n)
			}
			encBytes += int64(len(enc))
			dur += s.Duration
			segments++
		}
		// The average bandwidth is computed from the encrypted bytes on disk.
		avg := int(float64(encBytes*8)*float64(et.Timescale)/float64(dur) + 0.5)
		if et.AverageBandwidth != avg || et.AverageBandwidth <= ct.AverageBandwidth {
			t.Errorf("%s: AVERAGE-BANDWIDTH part %d, from the files %d, clear %d", et.ID, et.AverageBandwidth, avg, ct.AverageBandwidth)
		}
	}
	for _, v := range master.Variants {
		for _, tr := range encP.Video {
			if v.URI == tr.ID+"/"+manifest.MediaPlaylist && v.Bandwidth != uint32(tr.PeakBandwidth+encP.Audio[0].PeakBandwidth) {
				t.Errorf("%s: BANDWIDTH %d, want %d", v.URI, v.Bandwidth, tr.PeakBandwidth+encP.Audio[0].PeakBandwidth)
			}
		}
	}
	if segments < 8 {
		t.Errorf("%d segments decrypted", segments)
	}
	checkKeyNotIn(t, encDir)
}

// checkKeyNotIn: no file under dir holds testKey.
func checkKeyNotIn(t *testing.T, dir string) { testkit.CheckNoSecretInDir(t, dir, 10, testKey) }

// TestAES128BadInput: aes-128 without a key URI, with a key ID, with a short IV or with
// single-file output is refused before anything is written.
func TestAES128BadInput(t *testing.T) {
	cases := []struct {
		name   string
		e      *Encryption
		single bool
		want   string
	}{
		{"no key uri", &Encryption{Scheme: SchemeAES128, Key: testKey}, false, "needs a key URI"},
		{"key id", &Encryption{Scheme: SchemeAES128, Key: testKey, KeyID: testKID, KeyURI: testKeyURI}, false, "key id does not apply"},
		{"short iv", &Encryption{Scheme: SchemeAES128, Key: testKey, KeyURI: testKeyURI, IV: testKey[:8]}, false, "want 16 for aes-128"},
		{"short key", &Encryption{Scheme: SchemeAES128, Key: testKey[:15], KeyURI: testKeyURI}, false, "key is 15 bytes"},
		{"single file", testAES128(""), true, "not supported with single-file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := Package(context.Background(), Options{Inputs: ladder[2:], Output: filepath.Join(parent, "out"), Encryption: tc.e, SingleFile: tc.single})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

// keyServer serves key at /key on a loopback port with CORS, as a publisher's key server would,
// and returns the key's URL.
func keyServer(t *testing.T, key []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.URL.Path != "/key" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(key)))
		_, _ = w.Write(key)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/key"
}

// TestAES128FFmpegPlays checks the output with an independent player: ffmpeg's HLS demuxer
// reads each encrypted media playlist, fetches the key from a loopback key server, derives the
// IVs itself and decodes the same frames (per-frame MD5) as from the clear twin's playlist. With
// a key server handing out a wrong key the frames differ; and a segment fed to ffmpeg without
// the key does not decode at all.
func TestAES128FFmpegPlays(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	for _, iv := range []string{"", "000102030405060708090a0b0c0d0e0f"} {
		t.Run("iv "+iv, func(t *testing.T) {
			e := testAES128(iv)
			e.KeyURI = keyServer(t, testKey)
			clearDir, clearP, encDir, _ := packagedTwiceWith(t, ladder[2:], e)
			wrong := testAES128(iv)
			wrong.KeyURI = keyServer(t, bytes.Repeat([]byte{0xab}, 16))
			wrongDir := filepath.Join(t.TempDir(), "wrong")
			if _, err := Package(context.Background(), Options{Inputs: ladder[2:], Output: wrongDir, Encryption: wrong}); err != nil {
				t.Fatal(err)
			}
			hls := []string{"-allowed_extensions", "ALL", "-protocol_whitelist", "file,http,tcp,crypto"}
			for _, tr := range clearP.Tracks() {
				pl := filepath.Join(tr.ID, manifest.MediaPlaylist)
				want := frameMD5(t, ffmpeg, filepath.Join(clearDir, pl), hls...)
				got := frameMD5(t, ffmpeg, filepath.Join(encDir, pl), hls...)
				if want == "" || got != want {
					t.Errorf("%s: ffmpeg's frames of the aes-128 playlist (%d lines) differ from the clear ones (%d)", tr.ID, lines(got), lines(want))
				}
				if bad := frameMD5(t, ffmpeg, filepath.Join(wrongDir, pl), hls...); bad == want {
					t.Errorf("%s: a wrong key from the key server decodes the same frames", tr.ID)
				}
			}
			// One segment, init + encrypted media, without the key: nothing decodes.
			tr := clearP.Video[0]
			var b []byte
			for _, f := range []string{manifest.InitSegmentName, tr.Segments[0].URI} {
				d, err := os.ReadFile(filepath.Join(encDir, tr.ID, f))
				if err != nil {
					t.Fatal(err)
				}
				b = append(b, d...)
			}
			file := filepath.Join(t.TempDir(), "seg1.mp4")
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if got := frameMD5(t, ffmpeg, file); got != "" {
				t.Errorf("an encrypted segment without the key decoded %d frames", lines(got))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, _ := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-i", file, "-f", "null", "-").CombinedOutput()
			if len(bytes.TrimSpace(out)) == 0 {
				t.Error("ffmpeg reports no error on an encrypted segment without the key")
			}
		})
	}
}

func lines(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n") + 1
}
