package packager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// leftovers lists what a run left in dir besides the given names.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
outer:
	for _, e := range entries {
		for _, k := range keep {
			if e.Name() == k {
				continue outer
			}
		}
		out = append(out, e.Name())
	}
	return out
}

// TestBadInputs: every bad input gives one error naming the file and the problem, and leaves
// nothing behind (no output folder, no temporary folder).
func TestBadInputs(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "plainfile")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := testkit.BadInputsFrom(t, ladder[2])
	tests := []struct {
		name   string
		inputs []string
		output string // "" → a fresh folder in a temp dir
		file   string // the file the message must name
		want   string // the problem it must state
	}{
		{"not an MP4", []string{samplePath("bad/not_an_mp4.mp4")}, "", "not_an_mp4.mp4", "not an MP4 file"},
		{"truncated", []string{samplePath("bad/truncated.mp4")}, "", "truncated.mp4", "truncated"},
		{"no video", []string{samplePath("bad/audio_only.mp4")}, "", "audio_only.mp4", "no video track"},
		{"unaligned GOPs", []string{ladder[0], samplePath("bad/unaligned_gop.mp4")}, "", "unaligned_gop.mp4", "no keyframe at 2.000s"},
		{"missing file", []string{ladder[0], samplePath("nope.mp4")}, "", "nope.mp4", "no such file"},
		{"unsupported codec", []string{samplePath("bad/unsupported_codec.mp4")}, "", "unsupported_codec.mp4", "unsupported codec mp4v"},
		{"unwritable output", []string{ladder[2]}, filepath.Join(notDir, "out"), "plainfile", "not a folder"},
		{"empty video samples", []string{bad.EmptyVideo}, "", "empty_video.mp4", "all its 360 samples are empty"},
		{"same file twice", []string{ladder[2], ladder[1], ladder[2]}, "", "ladder_360p.mp4", "the same file as " + ladder[2]},
		{"same file by a symlink", []string{ladder[2], bad.Symlink}, "", bad.Symlink, "the same file as " + ladder[2]},
		{"same content", []string{ladder[2], bad.Copy}, "", bad.Copy, "the same content as " + ladder[2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			out := tc.output
			if out == "" {
				out = filepath.Join(parent, "out")
			}
			_, err := Package(context.Background(), Options{Inputs: tc.inputs, Output: out})
			if err == nil {
				t.Fatal("Package succeeded on bad input")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.file) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q: want one line naming %q and saying %q", msg, tc.file, tc.want)
			}
			var ie *InputError
			var oe *OutputError
			if !errors.As(err, &ie) && !errors.As(err, &oe) {
				t.Errorf("error %T is neither an InputError nor an OutputError", err)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output %s exists after a failed run", out)
			}
			if left := leftovers(t, parent); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestInterruptedRunPublishesNothing cancels packaging after the first segment: nothing is
// published and the temporary folder is gone.
func TestInterruptedRunPublishesNothing(t *testing.T) {
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	_, err := Package(ctx, Options{Inputs: ladder, Output: filepath.Join(parent, "out"), Progress: func(done, total int64) {
		calls++
		if done <= 0 || done > total {
			t.Errorf("progress %d/%d out of range", done, total)
		}
		cancel()
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if calls != 1 {
		t.Errorf("progress called %d times after cancel, want 1", calls)
	}
	if left := leftovers(t, parent); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestReplaceOutput: a second run replaces a presentation atomically; a folder that is not a
// presentation is never touched.
func TestReplaceOutput(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	if _, err := Package(context.Background(), Options{Inputs: ladder[:1], Output: out}); err != nil {
		t.Fatal(err)
	}
	if _, err := Package(context.Background(), Options{Inputs: ladder[2:], Output: out}); err != nil {
		t.Fatalf("replacing a presentation: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "video_720p")); !os.IsNotExist(err) {
		t.Errorf("old rendition survived the replacement")
	}
	if _, err := os.Stat(filepath.Join(out, "video_360p", "init.mp4")); err != nil {
		t.Errorf("new rendition missing: %v", err)
	}
	if left := leftovers(t, parent, "out"); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}

	precious := filepath.Join(parent, "precious")
	if err := os.MkdirAll(precious, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(precious, "notes.txt"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Package(context.Background(), Options{Inputs: ladder[2:], Output: precious})
	if err == nil || !strings.Contains(err.Error(), "not a Reel presentation") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(precious, "notes.txt")); err != nil || string(b) != "keep me" {
		t.Errorf("unrelated folder was modified")
	}
}
