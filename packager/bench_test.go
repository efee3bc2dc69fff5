package packager

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
)

// totalSize is the sum of the sizes of files: the input bytes a packaging run reads.
func totalSize(tb testing.TB, files []string) int64 {
	tb.Helper()
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			tb.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// benchPackage packages inputs into a fresh subfolder of one temp folder per iteration. The
// previous iteration's output is removed with the timer stopped so the disk does not fill up.
func benchPackage(b *testing.B, inputs []string, singleFile bool, enc *Encryption) {
	benchPackageOptions(b, Options{Inputs: inputs, SingleFile: singleFile, Encryption: enc})
}

// benchPackageOptions is benchPackage for any Options (Output is set per iteration).
func benchPackageOptions(b *testing.B, opt Options) {
	inputs := opt.Inputs
	b.SetBytes(totalSize(b, inputs))
	b.ReportAllocs()
	dir := b.TempDir()
	ctx := context.Background()
	prev := ""
	i := 0
	for b.Loop() {
		if prev != "" {
			b.StopTimer()
			if err := os.RemoveAll(prev); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		out := filepath.Join(dir, "out"+strconv.Itoa(i))
		i++
		opt.Output = out
		if _, err := Package(ctx, opt); err != nil {
			b.Fatalf("Package: %v", err)
		}
		prev = out
	}
}

// BenchmarkPackageSubtitles is BenchmarkPackage with the three sample subtitle files (WebVTT,
// SRT, TTML): what text adds (parsing, splitting, WebVTT, wvtt and stpp segments) and the
// closed-caption scan every video track gets.
func BenchmarkPackageSubtitles(b *testing.B) {
	benchPackageOptions(b, Options{Inputs: ladder, Subtitles: []Subtitle{
		{File: samplePath("subs/ladder.fr.vtt")}, {File: samplePath("subs/ladder.en.srt")}, {File: samplePath("subs/ladder.de.ttml")}}})
}

// BenchmarkPackage packages the 3-rung sample ladder (segments + HLS + DASH) in-process.
func BenchmarkPackage(b *testing.B) { benchPackage(b, ladder, false, nil) }

// BenchmarkPackageEncrypted is BenchmarkPackage with cenc encryption: the cost of reading each
// fragment into memory and AES-CTR over its protected bytes.
func BenchmarkPackageEncrypted(b *testing.B) { benchPackage(b, ladder, false, testEncryption()) }

// BenchmarkPackageEncryptedCbcs is BenchmarkPackageEncrypted with cbcs: AES-CBC on one block in
// ten of video slices, every whole block of audio.
func BenchmarkPackageEncryptedCbcs(b *testing.B) { benchPackage(b, ladder, false, testCbcs()) }

// BenchmarkPackageEncryptedAES128 is BenchmarkPackageEncrypted with HLS AES-128: every
// segment built in memory and AES-CBC over all of its bytes (no MPD, no I-frame playlists).
func BenchmarkPackageEncryptedAES128(b *testing.B) { benchPackage(b, ladder, false, testAES128("")) }

// BenchmarkPackageSingleFile is BenchmarkPackage in single-file (sidx) mode.
func BenchmarkPackageSingleFile(b *testing.B) { benchPackage(b, ladder, true, nil) }

// BenchmarkPackageSingleFileEncrypted is BenchmarkPackageSingleFile with cenc.
func BenchmarkPackageSingleFileEncrypted(b *testing.B) {
	benchPackage(b, ladder, true, testEncryption())
}

// compareRuns is the number of alternating repetitions per ladder length in TestCompareFFmpeg.
const compareRuns = 5

// launcherSource is a tiny program that runs a command and reports its wall time and peak
// RSS. It exists because on Linux a child's ru_maxrss includes the high-water RSS of the
// address space it had before exec: Go starts children with vfork (CLONE_VM), so a child
// started directly by the test would report at least the test process's own peak RSS. The
// launcher is small, so its children report their own peak (above a floor of the launcher's
// size, which the test measures with /bin/true and prints).
const launcherSource = `package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: launcher RESULT-FILE COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	res := fmt.Sprintf("%d %d %d\n", wall.Nanoseconds(), ru.Maxrss, cmd.ProcessState.ExitCode())
	if werr := os.WriteFile(os.Args[1], []byte(res), 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, werr)
		os.Exit(1)
	}
	if err != nil {
		os.Exit(1)
	}
}
`

// usage is what one child process cost.
type usage struct {
	wall   time.Duration
	maxRSS int64 // KiB (ru_maxrss on Linux)
}

// comparer runs commands through the launcher and collects their usage.
type comparer struct {
	t        *testing.T
	launcher string
	tmp      string
	seq      int
	floor    usage // what /bin/true costs through the launcher: the floor of every figure
}

// newComparer builds the launcher in tmp and measures its floor.
func newComparer(t *testing.T, goBin, tmp string) *comparer {
	t.Helper()
	ldir := filepath.Join(tmp, "launcher")
	if err := os.MkdirAll(ldir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ldir, "go.mod"), []byte("module launcher\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ldir, "main.go"), []byte(launcherSource), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &comparer{t: t, launcher: filepath.Join(tmp, "launch"), tmp: tmp}
	goBuild(t, goBin, ldir, []string{"GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local"}, "build", "-o", c.launcher, ".")
	trueBin, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	c.floor = c.run(trueBin)
	return c
}

// alternate runs a and b compareRuns times each after one untimed warm-up of each (page
// cache, output checks), swapping which goes first so neither always runs on the other's
// freshly warmed state; clean runs after every run. It returns the wall times (seconds) and
// peak RSS (MiB) of each.
func (c *comparer) alternate(a, b func() usage, clean func()) (aWall, bWall, aRSS, bRSS []float64) {
	a()
	clean()
	b()
	clean()
	for i := range compareRuns {
		var au, bu usage
		if i%2 == 0 {
			au = a()
			clean()
			bu = b()
			clean()
		} else {
			bu = b()
			clean()
			au = a()
			clean()
		}
		aWall = append(aWall, au.wall.Seconds())
		bWall = append(bWall, bu.wall.Seconds())
		aRSS = append(aRSS, float64(au.maxRSS)/1024)
		bRSS = append(bRSS, float64(bu.maxRSS)/1024)
	}
	return aWall, bWall, aRSS, bRSS
}

// loopLadder writes every rung of the sample ladder looped n times (stream copy) into dir,
// for figures on a long input, and returns their paths.
func loopLadder(t *testing.T, ffmpeg, dir string, n int) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var long []string
	for _, rung := range ladder {
		out := filepath.Join(dir, filepath.Base(rung))
		cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
			"-stream_loop", strconv.Itoa(n-1), "-i", rung, "-c", "copy", "-movflags", "+faststart", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg loop %s: %v\n%s", rung, err, b)
		}
		long = append(long, out)
	}
	return long
}

// run runs name args... to completion through the launcher and fails the test if it fails.
func (c *comparer) run(name string, args ...string) usage {
	c.t.Helper()
	c.seq++
	res := filepath.Join(c.tmp, fmt.Sprintf("usage_%d", c.seq))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.launcher, append([]string{res, name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out.String())
	}
	data, err := os.ReadFile(res)
	if err != nil {
		c.t.Fatalf("launcher result: %v", err)
	}
	var ns, rss int64
	var code int
	if _, err := fmt.Sscanf(string(data), "%d %d %d", &ns, &rss, &code); err != nil {
		c.t.Fatalf("launcher result %q: %v", data, err)
	}
	os.Remove(res)
	u := usage{wall: time.Duration(ns), maxRSS: rss}
	if code != 0 || u.wall <= 0 || u.maxRSS <= 0 {
		c.t.Fatalf("%s: exit code %d, wall %v, maxrss %d KiB", name, code, u.wall, u.maxRSS)
	}
	return u
}

// reportTable logs a comparison's markdown table and writes it to the file $REEL_BENCH_OUT
// names, if any.
func reportTable(t *testing.T, md string) {
	t.Helper()
	t.Logf("\n%s", md)
	if out := os.Getenv("REEL_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Fatalf("REEL_BENCH_OUT: %v", err)
		}
	}
}

// goBuild runs the go command in dir and fails the test on error.
func goBuild(t *testing.T, goBin, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// mustContain fails the test unless file exists and contains want at least n times.
func mustContain(t *testing.T, file, want string, n int) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("expected output missing: %v", err)
	}
	if got := strings.Count(string(data), want); got < n {
		t.Fatalf("%s: %d × %q, want at least %d", file, got, want, n)
	}
}

// ffmpegArgs returns the two ffmpeg command lines that do reel's job with -c copy: HLS fMP4
// (every video rendition plus the first input's audio, with a master playlist) and DASH from
// the same maps.
func ffmpegArgs(inputs []string, hlsDir, dashDir string) (hls, dash []string) {
	common := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}
	for _, in := range inputs {
		common = append(common, "-i", in)
	}
	var vsm []string
	for i := range inputs {
		common = append(common, "-map", fmt.Sprintf("%d:v:0", i))
		vsm = append(vsm, fmt.Sprintf("v:%d,agroup:aud", i))
	}
	common = append(common, "-map", "0:a:0", "-c", "copy")
	vsm = append(vsm, "a:0,agroup:aud")
	hls = append(slices.Clone(common),
		"-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-hls_segment_filename", filepath.Join(hlsDir, "stream_%v", "seg_%05d.m4s"),
		"-master_pl_name", "master.m3u8", "-var_stream_map", strings.Join(vsm, " "),
		filepath.Join(hlsDir, "stream_%v", "index.m3u8"))
	dash = append(slices.Clone(common),
		"-f", "dash", "-seg_duration", "2", "-use_template", "1", "-use_timeline", "1",
		"-adaptation_sets", "id=0,streams=v id=1,streams=a",
		filepath.Join(dashDir, "manifest.mpd"))
	return hls, dash
}

// TestCompareFFmpeg measures `reel package` against ffmpeg -c copy doing the same job (HLS
// fMP4 + DASH for the whole ladder) in one run on one machine: input MB/s and peak RSS, on the
// 12 s sample ladder and on the same ladder looped to 120 s (memory vs input duration). It is
// a benchmark (make bench), not a CI test: it asserts only that the outputs exist and the
// numbers are positive, never timing.
func TestCompareFFmpeg(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("benchmark against ffmpeg: run with REEL_COMPARE=1 (make bench)")
	}
	ffmpeg := requireTool(t, "ffmpeg")
	goBin := requireTool(t, "go")
	tmp := t.TempDir()
	c := newComparer(t, goBin, tmp)
	reel := filepath.Join(tmp, "reel")
	goBuild(t, goBin, ".", nil, "build", "-o", reel, "../cmd/reel")
	floor := c.floor
	long := loopLadder(t, ffmpeg, filepath.Join(tmp, "long"), 10)

	type result struct {
		name                 string
		bytes                int64
		reelWall, ffWall     float64 // seconds, median
		reelRSS, ffRSS       float64 // MiB, median
		reelMBps, ffMBps     float64
		reelRSSAll, ffRSSAll []float64
	}
	var results []result
	for _, lc := range []struct {
		name   string
		inputs []string
	}{{"12 s", ladder}, {"120 s", long}} {
		r := result{name: lc.name, bytes: totalSize(t, lc.inputs)}
		runDir := filepath.Join(tmp, "run")
		runReel := func() usage {
			out := filepath.Join(runDir, "reel")
			u := c.run(reel, append(append([]string{"package"}, lc.inputs...), "-o", out, "--quiet")...)
			mustContain(t, filepath.Join(out, "master.m3u8"), "#EXT-X-STREAM-INF:", len(lc.inputs))
			mustContain(t, filepath.Join(out, "manifest.mpd"), "<Representation", len(lc.inputs)+1)
			return u
		}
		runFFmpeg := func() usage {
			hlsDir, dashDir := filepath.Join(runDir, "hls"), filepath.Join(runDir, "dash")
			for _, d := range []string{hlsDir, dashDir} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			hlsArgs, dashArgs := ffmpegArgs(lc.inputs, hlsDir, dashDir)
			h := c.run(ffmpeg, hlsArgs...)
			mustContain(t, filepath.Join(hlsDir, "master.m3u8"), "#EXT-X-STREAM-INF:", len(lc.inputs))
			d := c.run(ffmpeg, dashArgs...)
			mustContain(t, filepath.Join(dashDir, "manifest.mpd"), "<Representation", len(lc.inputs)+1)
			return usage{wall: h.wall + d.wall, maxRSS: max(h.maxRSS, d.maxRSS)}
		}
		clean := func() {
			if err := os.RemoveAll(runDir); err != nil {
				t.Fatal(err)
			}
		}
		var rw, fw []float64
		rw, fw, r.reelRSSAll, r.ffRSSAll = c.alternate(runReel, runFFmpeg, clean)
		r.reelWall, r.ffWall = testkit.Median(rw), testkit.Median(fw)
		r.reelRSS, r.ffRSS = testkit.Median(r.reelRSSAll), testkit.Median(r.ffRSSAll)
		mb := float64(r.bytes) / 1e6
		r.reelMBps, r.ffMBps = mb/r.reelWall, mb/r.ffWall
		if r.reelMBps <= 0 || r.ffMBps <= 0 || r.reelRSS <= 0 || r.ffRSS <= 0 {
			t.Fatalf("%s: non-positive measurement: %+v", lc.name, r)
		}
		t.Logf("%s: reel wall %v s, RSS %v MiB; ffmpeg wall %v s, RSS %v MiB",
			lc.name, testkit.FmtAll(rw, 3), testkit.FmtAll(r.reelRSSAll, 3), testkit.FmtAll(fw, 3), testkit.FmtAll(r.ffRSSAll, 3))
		results = append(results, r)
	}

	var md strings.Builder
	fmt.Fprintf(&md, "| ladder | input MB | reel MB/s | ffmpeg MB/s | speed reel/ffmpeg | reel peak RSS MiB | ffmpeg peak RSS MiB | reel RSS vs 12 s | ffmpeg RSS vs 12 s |\n")
	fmt.Fprintf(&md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(&md, "| %s | %.1f | %.1f | %.1f | %.2f× | %.1f | %.1f | %.2f× | %.2f× |\n",
			r.name, float64(r.bytes)/1e6, r.reelMBps, r.ffMBps, r.reelMBps/r.ffMBps,
			r.reelRSS, r.ffRSS, r.reelRSS/results[0].reelRSS, r.ffRSS/results[0].ffRSS)
	}
	fmt.Fprintf(&md, "\nMedian of %d alternating runs; 3-rung H.264+AAC ladder, 2 s segments. reel: one process "+
		"writing CMAF segments once + HLS + DASH manifests; ffmpeg -c copy: two processes (HLS fMP4, DASH), "+
		"wall times summed, peak RSS = max of the two. Peak RSS is the child's ru_maxrss measured by a small "+
		"launcher (floor: /bin/true reports %.1f MiB).\n", compareRuns, float64(floor.maxRSS)/1024)
	reportTable(t, md.String())
}
