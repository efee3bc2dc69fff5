package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCaptionedMP4IsReal608: ffmpeg itself, which shares no code with Reel's detection, finds
// the sample's captions, in H.264 and in HEVC: ffprobe says the video stream has closed
// captions (H.264 only: ffmpeg 5.1's HEVC decoder exports the captions but does not set the
// stream property ffprobe reports), and ffmpeg's CEA-608 decoder (lavfi movie's subcc output,
// ccaption_dec) reads the caption's text back, shown at the time the sample says.
func TestCaptionedMP4IsReal608(t *testing.T) {
	t.Run("h264", func(t *testing.T) {
		checkReal608(t, CaptionedMP4(t, t.TempDir(), "HELLO FROM REEL, CC1.", 4, 1.5), "h264")
	})
	t.Run("hevc", func(t *testing.T) {
		checkReal608(t, CaptionedHEVCMP4(t, t.TempDir(), "AND IN HEVC TOO.", 4, 1), "hevc")
	})
}

func checkReal608(t *testing.T, s CaptionedSample, codec string) {
	ffprobe := RequireTool(t, "ffprobe")
	ffmpeg := RequireTool(t, "ffmpeg")
	dir := filepath.Dir(s.Path)

	// The stream line of ffprobe's summary, which reports what its probe decoded. (Its
	// -show_entries stream=closed_captions reads a decoder context of ffprobe's own that has
	// decoded nothing, and says 0 for any MP4.)
	out, err := exec.Command(ffprobe, "-hide_banner", s.Path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	video := regexp.MustCompile(`Stream #0:0.*: Video: .*`).Find(out)
	if !strings.Contains(string(video), "Video: "+codec) || codec == "h264" && !strings.Contains(string(video), ", Closed Captions,") {
		t.Errorf("ffprobe does not list Closed Captions on the video stream:\n%s", out)
	}

	srt := filepath.Join(dir, "cc.srt")
	// The movie source's file name is a filter argument: the temporary folder's path has no
	// character that would need escaping there (: , ; [ ] ' \).
	if out, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "movie="+s.Path+"[out0+subcc]",
		"-map", "0:s", srt).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg subcc: %v\n%s", err, out)
	}
	data, err := os.ReadFile(srt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("extracted:\n%s", data)
	if !strings.Contains(string(data), s.Text) {
		t.Fatalf("ffmpeg read no %q from the captions:\n%s", s.Text, data)
	}
	m := regexp.MustCompile(`(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("no cue times in:\n%s", data)
	}
	at := func(f []string) float64 {
		h, _ := strconv.Atoi(f[0])
		min, _ := strconv.Atoi(f[1])
		sec, _ := strconv.Atoi(f[2])
		ms, _ := strconv.Atoi(f[3])
		return float64(h*3600+min*60+sec) + float64(ms)/1000
	}
	// Within two pictures: ffmpeg shows a pop-on caption at End Of Caption.
	if start := at(m[1:5]); start < s.Start-0.07 || start > s.Start+0.07 {
		t.Errorf("caption shows at %.3fs, want %.3fs", start, s.Start)
	}
	if end := at(m[5:9]); end < s.End-0.07 || end > s.End+0.07 {
		t.Errorf("caption goes at %.3fs, want %.3fs", end, s.End)
	}
}
