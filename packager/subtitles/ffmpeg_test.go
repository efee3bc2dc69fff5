package subtitles

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// ffmpegSRT has ffmpeg read a subtitle file and write it as SRT, and returns its cues with
// the text as ffmpeg wrote it (ParseSRT would read its markup: ffmpeg writes a literal "<"
// or "&" unescaped, as SRT has no escapes).
func ffmpegSRT(t *testing.T, ffmpeg, path string) []Cue {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-i", path, "-f", "srt", "-")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg -i %s: %v %s", filepath.Base(path), err, stderr.String())
	}
	var cues []Cue
	for _, block := range strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), "\r\n", "\n")), "\n\n") {
		lines := strings.Split(block, "\n")
		if len(lines) < 2 {
			continue
		}
		s, e, _, err := parseTiming(lines[1], parseSRTTime)
		if err != nil {
			t.Fatalf("ffmpeg's SRT for %s: %v\n%s", filepath.Base(path), err, out)
		}
		cues = append(cues, Cue{Start: s, End: e, Text: strings.Join(lines[2:], "\n")})
	}
	return cues
}

// ffmpegMarkup is what ffmpeg's SRT writer adds: the tags SRT has and ASS overrides.
var ffmpegMarkup = regexp.MustCompile(`</?(i|b|u|s)>|<font[^>]*>|</font>|\{\\[^}]*\}`)

// sameAsFFmpeg: ffmpeg saw the same cues, times and text (compared without markup; ffmpeg
// writes a no-break space as ASS's \h).
func sameAsFFmpeg(t *testing.T, what string, got, want []Cue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: ffmpeg read %d cues, we %d:\nffmpeg %+v\nours   %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		g := strings.ReplaceAll(ffmpegMarkup.ReplaceAllString(got[i].Text, ""), `\h`, "\u00a0")
		w := PlainText(want[i].Text)
		if got[i].Start != want[i].Start || got[i].End != want[i].End || g != w {
			t.Errorf("%s cue %d: ffmpeg %d–%d %q, ours %d–%d %q", what, i, got[i].Start, got[i].End, g, want[i].Start, want[i].End, w)
		}
	}
}

// TestFFmpegReadsSRT: ffmpeg reads the SRT inputs to the cues ParseSRT reads.
func TestFFmpegReadsSRT(t *testing.T) {
	ffmpeg := testkit.RequireTool(t, "ffmpeg")
	dir := t.TempDir()
	for i, in := range []string{srtSample, "1\n00:00:01,000 --> 00:00:02,500\nplain\n\n2\n00:00:03,000 --> 00:00:04,000\n<b>bold</b> & <u>under</u>"} {
		path := filepath.Join(dir, fmt.Sprintf("in%d.srt", i))
		if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		tr, err := ParseSRT(path, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		sameAsFFmpeg(t, filepath.Base(path), ffmpegSRT(t, ffmpeg, path), tr.Cues)
	}
}

// TestFFmpegReadsHLSSegments: ffmpeg reads every segment of our segmented WebVTT to the cues
// that segment holds. ffmpeg 5.1 (Debian 12) stops reading a WebVTT file at its first STYLE or
// REGION block (its demuxer predates them), so the segments are written without them here —
// with them, what follows is the same, and ParseVTT's round trip covers it.
func TestFFmpegReadsHLSSegments(t *testing.T) {
	ffmpeg := testkit.RequireTool(t, "ffmpeg")
	dir := t.TempDir()
	read := 0
	for _, s := range samples {
		tr := parseSample(t, s.name, s.in)
		starts, end := segmentation(tr)
		segs, err := Split(tr.Cues, starts, end)
		if err != nil {
			t.Fatal(err)
		}
		for i, seg := range segs {
			if len(seg) == 0 {
				continue // an empty file is not a WebVTT stream to ffmpeg; ParseVTT covers those
			}
			var buf bytes.Buffer
			if err := WriteHLSSegment(&buf, &Track{}, seg, 0); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("%s-%d.vtt", s.name, i))
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			ours, err := ParseVTT(path, buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			sameAsFFmpeg(t, filepath.Base(path), ffmpegSRT(t, ffmpeg, path), ours.Cues)
			read++
		}
	}
	if read < 10 {
		t.Errorf("only %d segments went through ffmpeg", read)
	}
}
