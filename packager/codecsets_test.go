package packager

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/reelvideo/reel/manifest"
)

// TestPackageCodecFamilySets packages an AVC rung beside the HEVC sample and reads the MPD
// back with dash-mpd: one video AdaptationSet per codec family (the MPD declares the CMAF
// profile, whose switching sets hold one codec), while the HLS master keeps both rungs.
func TestPackageCodecFamilySets(t *testing.T) {
	// The HEVC sample lasts 4 s: cut the AVC rung to its first two GOPs (120 frames).
	avc := filepath.Join(t.TempDir(), "avc_4s.mp4")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, requireTool(t, "ffmpeg"), "-v", "error", "-y", "-i", ladder[2],
		"-map", "0", "-t", "4", "-frames:v", "120", "-c", "copy", avc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	dir, _ := packageTo(t, Options{Inputs: []string{avc, samplePath("hevc_360p.mp4")}})
	m, err := mpd.ReadFromFile(filepath.Join(dir, manifest.DASHManifest))
	if err != nil {
		t.Fatal(err)
	}
	var sets []string
	for _, as := range m.Periods[0].AdaptationSets {
		if as.ContentType != "video" {
			continue
		}
		var codecs []string
		for _, r := range as.Representations {
			fourCC, _, _ := strings.Cut(r.Codecs, ".")
			codecs = append(codecs, fourCC)
		}
		sets = append(sets, strings.Join(codecs, ","))
	}
	if strings.Join(sets, " ") != "avc1 hvc1" {
		t.Errorf("video AdaptationSets by codec: %q, want one AVC and one HEVC set", sets)
	}
	master, err := os.ReadFile(filepath.Join(dir, manifest.MasterPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(master), "avc1.") || !strings.Contains(string(master), "hvc1.") {
		t.Errorf("HLS master lost a rung:\n%s", master)
	}
}
