package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/term"

	"github.com/reelvideo/reel/internal/testkit"
)

// sample is the path of a file in the repository's samples folder.
func sample(name string) string { return filepath.Join("..", "..", "samples", name) }

// runReel calls run in-process and returns its exit code, stdout and stderr.
func runReel(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// assertOneLine fails unless s is exactly one non-empty line ending in a single newline.
func assertOneLine(t *testing.T, what, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 || strings.TrimSpace(s) == "" {
		t.Errorf("%s is not exactly one line: %q", what, s)
	}
}

// dirEntries lists the names in dir, hidden ones included.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// segments counts the seg_*.m4s files in dir.
func segments(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestUsage(t *testing.T) {
	packageFlags := []string{"-o ", "-output ", "-segment-duration ", "-single-file", "-lang ", "-quiet"}
	originFlags := []string{"-dir ", "-listen ", "-manifest-max-age ", "-log-level "}
	mainText := []string{"Usage:", "Commands:", "package", "origin", "token", "version", "help", "reel package -h"}
	tests := []struct {
		name       string
		args       []string
		code       int
		stream     string   // "stdout" or "stderr": where the text must go; the other stays empty
		want       []string // substrings of the text
		oneLine    bool     // the text must be exactly one line
		wantPrefix string
	}{
		{"no args", nil, exitUsage, "stderr", mainText, false, ""},
		{"help", []string{"help"}, exitOK, "stdout", append([]string{"Examples:"}, mainText...), false, ""},
		{"-h", []string{"-h"}, exitOK, "stdout", append([]string{"Examples:"}, mainText...), false, ""},
		{"--help", []string{"--help"}, exitOK, "stdout", append([]string{"Examples:"}, mainText...), false, ""},
		{"package -h", []string{"package", "-h"}, exitOK, "stdout", append([]string{"Examples:", "reel package [flags]"}, packageFlags...), false, ""},
		{"package --help", []string{"package", "--help"}, exitOK, "stdout", append([]string{"Examples:"}, packageFlags...), false, ""},
		{"help package", []string{"help", "package"}, exitOK, "stdout", append([]string{"Examples:", "reel package [flags]"}, packageFlags...), false, ""},
		{"origin -h", []string{"origin", "-h"}, exitOK, "stdout", append([]string{"Examples:", "reel origin --dir"}, originFlags...), false, ""},
		{"help origin", []string{"help", "origin"}, exitOK, "stdout", append([]string{"Examples:", "reel origin --dir"}, originFlags...), false, ""},
		{"help unknown", []string{"help", "frobnicate"}, exitUsage, "stderr", []string{"frobnicate"}, true, ""},
		{"unknown command", []string{"frobnicate"}, exitUsage, "stderr", []string{"unknown command", "frobnicate"}, true, ""},
		{"package without inputs", []string{"package", "-o", "out"}, exitUsage, "stderr", []string{"no input files"}, true, ""},
		{"package without anything", []string{"package"}, exitUsage, "stderr", []string{"no input files"}, true, ""},
		{"package without -o", []string{"package", "a.mp4"}, exitUsage, "stderr", []string{"missing -o"}, true, ""},
		{"package unknown flag", []string{"package", "a.mp4", "-o", "out", "--bogus"}, exitUsage, "stderr", []string{"bogus", "reel package -h"}, true, ""},
		{"package bad duration", []string{"package", "a.mp4", "-o", "out", "--segment-duration", "soon"}, exitUsage, "stderr", []string{"segment-duration"}, true, ""},
		{"package tiny duration", []string{"package", "a.mp4", "-o", "out", "--segment-duration", "10ms"}, exitUsage, "stderr", []string{"at least 100ms"}, true, ""},
		{"origin unknown flag", []string{"origin", "--dir", ".", "--bogus"}, exitUsage, "stderr", []string{"bogus", "reel origin -h"}, true, ""},
		{"origin extra argument", []string{"origin", "--dir", ".", "extra"}, exitUsage, "stderr", []string{"unexpected argument", "extra"}, true, ""},
		{"origin bad log level", []string{"origin", "--dir", ".", "--log-level", "loud"}, exitUsage, "stderr", []string{"log-level", "loud"}, true, ""},
		{"token -h", []string{"token", "-h"}, exitOK, "stdout", []string{"Examples:", "reel token --key-file", "-key-id ", "-acl ", "-ttl ", "-url ", "-form "}, false, ""},
		{"help token", []string{"help", "token"}, exitOK, "stdout", []string{"Examples:", "reel token --key-file"}, false, ""},
		{"token unknown flag", []string{"token", "--bogus"}, exitUsage, "stderr", []string{"bogus", "reel token -h"}, true, ""},
		{"token extra argument", []string{"token", "--key", "00", "--acl", "/a/*", "extra"}, exitUsage, "stderr", []string{"unexpected argument", "extra"}, true, ""},
		{"version", []string{"version"}, exitOK, "stdout", nil, true, "reel "},
		{"--version", []string{"--version"}, exitOK, "stdout", nil, true, "reel "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runReel(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			text, other := stdout, stderr
			if tc.stream == "stderr" {
				text, other = stderr, stdout
			}
			if other != "" {
				t.Errorf("unexpected output on the other stream: %q", other)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("%s lacks %q:\n%s", tc.stream, w, text)
				}
			}
			if tc.oneLine {
				assertOneLine(t, tc.stream, text)
			}
			if tc.wantPrefix != "" && (!strings.HasPrefix(text, tc.wantPrefix) || strings.TrimSpace(text[len(tc.wantPrefix):]) == "") {
				t.Errorf("%s %q: want %q followed by a version", tc.stream, text, tc.wantPrefix)
			}
		})
	}
}

// TestBadInputs is the CLI side of the bad-input contract: one line on stderr naming the file
// and the problem, exit 1, and nothing left behind (no output folder, no hidden temp folder).
func TestBadInputs(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "plainfile")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := testkit.BadInputsFrom(t, sample("ladder_360p.mp4"))
	tests := []struct {
		name   string
		inputs []string
		output string // "" → a fresh folder in an empty temp dir
		file   string // the file the message must name
		want   string // the problem it must state
	}{
		{"not an MP4", []string{sample("bad/not_an_mp4.mp4")}, "", "not_an_mp4.mp4", "not an MP4 file"},
		{"truncated", []string{sample("bad/truncated.mp4")}, "", "truncated.mp4", "truncated"},
		{"no video", []string{sample("bad/audio_only.mp4")}, "", "audio_only.mp4", "no video track"},
		{"unaligned GOPs", []string{sample("ladder_720p.mp4"), sample("bad/unaligned_gop.mp4")}, "", "unaligned_gop.mp4", "no keyframe"},
		{"missing file", []string{sample("ladder_360p.mp4"), sample("nope.mp4")}, "", "nope.mp4", "no such file"},
		{"unsupported codec", []string{sample("bad/unsupported_codec.mp4")}, "", "unsupported_codec.mp4", "unsupported codec"},
		// Tests run as root, so permissions don't stop a write: use a parent that is a file.
		{"unwritable output", []string{sample("ladder_360p.mp4")}, filepath.Join(notDir, "out"), "plainfile", "not a folder"},
		{"empty video samples", []string{bad.EmptyVideo}, "", "empty_video.mp4", "samples are empty"},
		{"same file twice", []string{sample("ladder_360p.mp4"), sample("ladder_360p.mp4")}, "", "ladder_360p.mp4", "given twice"},
		{"same file by a symlink", []string{sample("ladder_360p.mp4"), bad.Symlink}, "", bad.Symlink, "the same file as"},
		{"same content", []string{sample("ladder_360p.mp4"), bad.Copy}, "", bad.Copy, "the same content as"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := tc.output
			if out == "" {
				out = filepath.Join(parent, "out")
			}
			// --quiet: the progress bar is drawn when the real stderr is a terminal.
			args := append(append([]string{"package"}, tc.inputs...), "-o", out, "--quiet")
			code, stdout, stderr := runReel(t, args...)
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			assertOneLine(t, "stderr", stderr)
			if !strings.HasPrefix(stderr, "reel package: ") || !strings.Contains(stderr, tc.file) || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want \"reel package: \", naming %q and saying %q", stderr, tc.file, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			// ENOTDIR too: under a plain file nothing can exist.
			if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
				t.Errorf("output %s exists after a failed run (%v)", out, err)
			}
			if left := dirEntries(t, parent); len(left) > 0 {
				t.Errorf("left behind in %s: %v", parent, left)
			}
			if tc.output != "" {
				if left := dirEntries(t, filepath.Dir(notDir)); !reflect.DeepEqual(left, []string{"plainfile"}) {
					t.Errorf("left behind beside %s: %v", notDir, left)
				}
			}
		})
	}
}

// TestLiveLoopBadInputs: `reel live --loop` reads its files as `reel package` does and
// refuses the same bad media, with one line naming the file and the problem, exit 1.
func TestLiveLoopBadInputs(t *testing.T) {
	bad := testkit.BadInputsFrom(t, sample("ladder_360p.mp4"))
	tests := []struct {
		name  string
		files []string
		file  string
		want  string
	}{
		{"empty video samples", []string{bad.EmptyVideo}, "empty_video.mp4", "samples are empty"},
		{"same file twice", []string{sample("ladder_360p.mp4"), sample("ladder_360p.mp4")}, "ladder_360p.mp4", "given twice"},
		{"same content", []string{sample("ladder_360p.mp4"), bad.Copy}, bad.Copy, "the same content as"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				code   int
				stderr string
			}
			done := make(chan result, 1)
			dir := t.TempDir()
			go func() {
				code, _, stderr := runReel(t, "live", "--loop", "d="+strings.Join(tc.files, ","),
					"--listen", "127.0.0.1:0", "--dir", dir, "--admin", "", "--log-level", "warn")
				done <- result{code, stderr}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatal("reel live still running a minute after being given bad media")
			}
			code, stderr := r.code, r.stderr
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			assertOneLine(t, "stderr", stderr)
			if !strings.HasPrefix(stderr, "reel live: ") || !strings.Contains(stderr, tc.file) || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q: want \"reel live: \", naming %q and saying %q", stderr, tc.file, tc.want)
			}
		})
	}
}

func TestPackage(t *testing.T) {
	in := sample("ladder_360p.mp4")
	tests := []struct {
		name      string
		args      []string // between "package" and "-o DIR"
		after     []string // after "-o DIR"
		stdout    string   // substring; "" → stdout must be empty
		files     []string // must exist under DIR
		absent    []string // must not exist under DIR
		videoSegs int      // seg_*.m4s in DIR/video_360p
	}{
		{"quiet", []string{in}, []string{"--quiet"}, "",
			[]string{"master.m3u8", "manifest.mpd", "video_360p/init.mp4", "video_360p/index.m3u8", "audio/init.mp4"},
			[]string{"video_360p/media.mp4"}, 6},
		{"progress line", []string{in}, nil, "packaged 1 video + 1 audio renditions",
			[]string{"master.m3u8", "manifest.mpd"}, nil, 6},
		{"flags after positionals", []string{in}, []string{"--segment-duration", "4s", "--quiet"}, "",
			[]string{"master.m3u8", "manifest.mpd"}, nil, 3},
		{"flags before positionals", []string{"--segment-duration=4s", "--quiet", in}, nil, "",
			[]string{"master.m3u8", "manifest.mpd"}, nil, 3},
		{"single file", []string{in, "--single-file"}, []string{"--quiet"}, "",
			[]string{"master.m3u8", "manifest.mpd", "video_360p/media.mp4", "audio/media.mp4"},
			[]string{"video_360p/init.mp4", "audio/seg_00001.m4s"}, 0},
		{"lang", []string{in, "--lang", "fr"}, []string{"--quiet"}, "",
			[]string{"master.m3u8", "audio_fr/init.mp4"}, []string{"audio"}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			args := append(append(append([]string{"package"}, tc.args...), "-o", dir), tc.after...)
			code, stdout, stderr := runReel(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d, want 0; stderr %q", code, stderr)
			}
			// Without --quiet a progress bar is drawn on stderr when the real stderr is a
			// terminal (e.g. `go test` in a folder, run by hand).
			if stderr != "" && !(tc.stdout != "" && term.IsTerminal(int(os.Stderr.Fd()))) {
				t.Errorf("stderr %q, want nothing", stderr)
			}
			if tc.stdout == "" && stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if tc.stdout != "" {
				assertOneLine(t, "stdout", stdout)
				if !strings.Contains(stdout, tc.stdout) || !strings.Contains(stdout, dir) {
					t.Errorf("stdout %q lacks %q or %q", stdout, tc.stdout, dir)
				}
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("missing %s: %v", f, err)
				}
			}
			for _, f := range tc.absent {
				if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
					t.Errorf("%s should not exist (%v)", f, err)
				}
			}
			if n := segments(t, filepath.Join(dir, "video_360p")); n != tc.videoSegs {
				t.Errorf("%d video segments, want %d", n, tc.videoSegs)
			}
			if left := dirEntries(t, parent); !reflect.DeepEqual(left, []string{"out"}) {
				t.Errorf("parent holds %v, want only [out]", left)
			}
		})
	}
}

func TestPackageSingleFileHasNoSegments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", dir, "--single-file", "--quiet"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasSuffix(d.Name(), ".m4s") {
			t.Errorf("segment file %s in single-file mode", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPackageBadLanguage(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	code, stdout, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", dir, "--lang", "!!", "--quiet")
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	assertOneLine(t, "stderr", stderr)
	if !strings.Contains(stderr, `"!!"`) || !strings.Contains(stderr, "BCP 47") {
		t.Errorf("stderr %q: want the bad tag and the problem", stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	if left := dirEntries(t, parent); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestOriginErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plainfile")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badKey, []byte("dri: out\n"), 0o644)
	negative := filepath.Join(t.TempDir(), "neg.yaml")
	os.WriteFile(negative, []byte("dir: out\nmanifest_max_age: -5s\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no --dir", []string{"origin"}, exitUsage, []string{"missing --dir"}},
		{"config with an unknown key", []string{"origin", "--config", badKey}, exitFailure, []string{"bad.yaml", "dri"}},
		{"config with a negative max age", []string{"origin", "--config", negative}, exitFailure, []string{"neg.yaml", "negative"}},
		{"missing config", []string{"origin", "--config", "/nonexistent.yaml"}, exitFailure, []string{"/nonexistent.yaml"}},
		// The file's dir is used when --dir isn't given: here it doesn't exist.
		{"config's dir", []string{"origin", "--config", sample("origin.yaml"), "--listen", "127.0.0.1:0"}, exitFailure, []string{"out", "no such file"}},
		{"missing dir", []string{"origin", "--dir", "/nonexistent"}, exitFailure, []string{"/nonexistent", "no such file"}},
		{"dir is a file", []string{"origin", "--dir", file}, exitFailure, []string{"plainfile", "not a directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runReel(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			assertOneLine(t, "stderr", stderr)
			if !strings.HasPrefix(stderr, "reel origin: ") {
				t.Errorf("stderr %q lacks the \"reel origin: \" prefix", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestPresentationURLs(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		"master.m3u8", "manifest.mpd", // a presentation at the root
		"show/master.m3u8", "show/manifest.mpd", // one a level down
		"hls-only/master.m3u8",                           // HLS only
		".out.reel-tmp-123/master.m3u8",                  // an unfinished run: not advertised
		"deep/er/master.m3u8",                            // two levels down: not listed
		"show/video_360p/index.m3u8", "notes/readme.txt", // not manifests
	} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = "http://127.0.0.1:8080"
	got := presentationURLs(dir, base)
	want := []string{
		base + "/master.m3u8",
		base + "/manifest.mpd",
		base + "/hls-only/master.m3u8",
		base + "/show/master.m3u8",
		base + "/show/manifest.mpd",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("presentationURLs:\n got %q\nwant %q", got, want)
	}

	if got := presentationURLs(t.TempDir(), base); len(got) != 0 {
		t.Errorf("empty folder: got %q, want none", got)
	}
}

// TestDoubleDashEndsFlags: every argument after "--" is an input, even one that looks like a
// flag (POSIX utility syntax guideline 10).
func TestDoubleDashEndsFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	out := filepath.Join(t.TempDir(), "out")
	code := run([]string{"package", "-o", out, "--quiet", "--", "../../samples/ladder_360p.mp4", "-b.mp4"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "-b.mp4: no such file") {
		t.Fatalf("exit %d, stderr %q: want -b.mp4 treated as a missing input", code, stderr.String())
	}
}
