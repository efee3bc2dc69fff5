package subtitles

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestStppFFprobe: ffprobe, another reader of the container, sees our stpp track as one
// stream with the stpp sample entry and the language, and one packet (a whole document) per
// segment at the segment's start, the empty segments too.
func TestStppFFprobe(t *testing.T) {
	ffprobe := testkit.RequireTool(t, "ffprobe")
	in, err := ParseTTML("sample.ttml", []byte(ttmlSample))
	if err != nil {
		t.Fatal(err)
	}
	init, err := StppInit("de")
	if err != nil {
		t.Fatal(err)
	}
	file := bytes.NewBuffer(init)
	starts := []int64{0, 2000, 4000, 6000, 8000, 10000, 12000}
	segs, err := Split(in.Cues, starts, 14000)
	if err != nil {
		t.Fatal(err)
	}
	var want []string // pts,size of each packet: the segment's start, its document's length
	for i, cues := range segs {
		if err := WriteStppSegment(file, in, "de", uint32(i+1), starts[i], starts[i]+2000, cues); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%d,%d", starts[i], len(IMSCDocument(in, "de", starts[i], starts[i]+2000, cues))))
	}
	want = append(want, "stpp,deu")
	path := filepath.Join(t.TempDir(), "stpp.mp4")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_tag_string:stream_tags=language:packet=pts,size",
		"-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ffprobe reads %q, want %q", got, want)
	}
}
