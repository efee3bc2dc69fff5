package packager

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// The content key of TestCompareShakaPackager: both packagers encrypt with it.
const (
	compareKeyID = "0123456789abcdef0123456789abcdef"
	compareKey   = "00112233445566778899aabbccddeeff"
)

// shakaPackager is the path of Shaka Packager's Linux binary, as npm's shaka-packager package
// ships it (packager/peers, installed by make bench), or $REEL_SHAKA_PACKAGER.
func shakaPackager(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("REEL_SHAKA_PACKAGER"); p != "" {
		return p
	}
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	p, err := filepath.Abs(filepath.Join("peers", "node_modules", "shaka-packager", "bin", "packager-linux-"+arch))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Shaka Packager not installed (cd packager/peers && npm ci, as make bench does): %v", err)
	}
	return p
}

// shakaArgs is Shaka Packager's command line for reel's job: every rung's video plus the
// first rung's audio, 2 s CMAF segments, HLS (master + media playlists) and DASH, encrypted
// with the compare key when scheme is not "clear" (no clear lead, as reel).
func shakaArgs(inputs []string, out, scheme string) []string {
	var args []string
	stream := func(in, kind, name, extra string) {
		d := filepath.Join(out, name)
		args = append(args, fmt.Sprintf("in=%s,stream=%s,init_segment=%s/init.mp4,segment_template=%s/$Number$.m4s,playlist_name=%s.m3u8%s",
			in, kind, d, d, name, extra))
	}
	for i, in := range inputs {
		stream(in, "video", fmt.Sprintf("v%d", i), "")
	}
	stream(inputs[0], "audio", "a", ",hls_group_id=audio")
	args = append(args, "--segment_duration", "2", "--quiet",
		"--mpd_output", filepath.Join(out, "manifest.mpd"),
		"--hls_master_playlist_output", filepath.Join(out, "master.m3u8"))
	if scheme != "clear" {
		args = append(args, "--enable_raw_key_encryption", "--protection_scheme", scheme, "--clear_lead", "0",
			"--keys", "label=:key_id="+compareKeyID+":key="+compareKey)
	}
	return args
}

// TestCompareShakaPackager measures `reel package` against Shaka Packager doing the same job
// (HLS + DASH, CMAF segments, the whole ladder) clear and encrypted (cenc, cbcs) in one run:
// input MB/s, peak RSS, and what encryption costs each (encrypted time / clear time). It is a
// benchmark (make bench), not a CI test: it asserts only that the outputs exist and are
// encrypted when asked, and that the numbers are positive, never timing.
func TestCompareShakaPackager(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("benchmark against Shaka Packager: run with REEL_COMPARE=1 (make bench)")
	}
	shaka := shakaPackager(t)
	ffmpeg := requireTool(t, "ffmpeg")
	goBin := requireTool(t, "go")
	tmp := t.TempDir()
	c := newComparer(t, goBin, tmp)
	reel := filepath.Join(tmp, "reel")
	goBuild(t, goBin, ".", nil, "build", "-o", reel, "../cmd/reel")

	long := loopLadder(t, ffmpeg, filepath.Join(tmp, "long"), 10)
	type row struct {
		ladder, scheme        string
		bytes                 int64
		reelWall, shakaWall   float64
		reelRSS, shakaRSS     float64
		reelMBps, shakaMBps   float64
		reelClear, shakaClear float64 // the clear row's wall times, for the encryption cost
	}
	var rows []row
	for _, lc := range []struct {
		name   string
		inputs []string
	}{{"12 s", ladder}, {"120 s", long}} {
		var clear row
		for _, scheme := range []string{"clear", "cenc", "cbcs"} {
			r := row{ladder: lc.name, scheme: scheme, bytes: totalSize(t, lc.inputs)}
			runDir := filepath.Join(tmp, "run")
			runReel := func() usage {
				out := filepath.Join(runDir, "reel")
				args := append(append([]string{"package"}, lc.inputs...), "-o", out, "--quiet")
				if scheme != "clear" {
					args = append(args, "--encrypt", scheme, "--key-id", compareKeyID, "--key", compareKey)
				}
				u := c.run(reel, args...)
				mustContain(t, filepath.Join(out, "manifest.mpd"), "<Representation", len(lc.inputs)+1)
				checkEncrypted(t, filepath.Join(out, "manifest.mpd"), scheme)
				return u
			}
			runShaka := func() usage {
				out := filepath.Join(runDir, "shaka")
				u := c.run(shaka, shakaArgs(lc.inputs, out, scheme)...)
				mustContain(t, filepath.Join(out, "master.m3u8"), "#EXT-X-STREAM-INF:", len(lc.inputs))
				mustContain(t, filepath.Join(out, "manifest.mpd"), "<Representation", len(lc.inputs)+1)
				checkEncrypted(t, filepath.Join(out, "manifest.mpd"), scheme)
				return u
			}
			rw, sw, rr, sr := c.alternate(runReel, runShaka, func() {
				if err := os.RemoveAll(runDir); err != nil {
					t.Fatal(err)
				}
			})
			r.reelWall, r.shakaWall = testkit.Median(rw), testkit.Median(sw)
			r.reelRSS, r.shakaRSS = testkit.Median(rr), testkit.Median(sr)
			mb := float64(r.bytes) / 1e6
			r.reelMBps, r.shakaMBps = mb/r.reelWall, mb/r.shakaWall
			if r.reelMBps <= 0 || r.shakaMBps <= 0 || r.reelRSS <= 0 || r.shakaRSS <= 0 {
				t.Fatalf("%s %s: non-positive measurement: %+v", lc.name, scheme, r)
			}
			if scheme == "clear" {
				clear = r
			}
			r.reelClear, r.shakaClear = clear.reelWall, clear.shakaWall
			t.Logf("%s %s: reel wall %v s, RSS %v MiB; Shaka Packager wall %v s, RSS %v MiB", lc.name, scheme,
				testkit.FmtAll(rw, 3), testkit.FmtAll(rr, 3), testkit.FmtAll(sw, 3), testkit.FmtAll(sr, 3))
			rows = append(rows, r)
		}
	}

	var md strings.Builder
	fmt.Fprintf(&md, "| ladder | encryption | input MB | reel MB/s | Shaka MB/s | speed reel/Shaka | reel peak RSS MiB | Shaka peak RSS MiB | reel time vs clear | Shaka time vs clear |\n")
	fmt.Fprintf(&md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&md, "| %s | %s | %.1f | %.1f | %.1f | %.2f× | %.1f | %.1f | %.2f× | %.2f× |\n",
			r.ladder, r.scheme, float64(r.bytes)/1e6, r.reelMBps, r.shakaMBps, r.reelMBps/r.shakaMBps,
			r.reelRSS, r.shakaRSS, r.reelWall/r.reelClear, r.shakaWall/r.shakaClear)
	}
	fmt.Fprintf(&md, "\nMedian of %d alternating runs; 3-rung H.264+AAC ladder, 2 s segments, HLS + DASH from one "+
		"process each. Shaka Packager %s (npm shaka-packager); encrypted with one raw key, no clear lead. Peak RSS "+
		"is the child's ru_maxrss measured by a small launcher (floor: /bin/true reports %.1f MiB).\n",
		compareRuns, shakaVersion(t, shaka), float64(c.floor.maxRSS)/1024)
	reportTable(t, md.String())
}

// checkEncrypted fails the test unless the MPD signals encryption exactly when scheme is not
// "clear": a comparison of an encrypted run that silently packaged clear would flatter it.
func checkEncrypted(t *testing.T, mpd, scheme string) {
	t.Helper()
	data, err := os.ReadFile(mpd)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Contains(string(data), `value="`+scheme+`"`)
	if want := scheme != "clear"; got != want || (!want && strings.Contains(string(data), "ContentProtection")) {
		t.Fatalf("%s: encryption %q signalled: %v, want %v", mpd, scheme, got, want)
	}
}

func shakaVersion(t *testing.T, shaka string) string {
	t.Helper()
	out, err := exec.Command(shaka, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", shaka, err)
	}
	f := strings.Fields(string(out))
	return f[len(f)-1]
}
