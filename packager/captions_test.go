package packager

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/captions"
)

// TestCaptionScan: the packager finds CC1 in an ffmpeg-made H.264 file whose caption starts
// late (progressive, fragmented, and with the output encrypted) and in an HEVC one, labels it from
// Options.Captions, signals a labelled channel it did not find (with a warning), and marks
// tracks without captions as checked: the samples' ladder and the HEVC sample carry none.
func TestCaptionScan(t *testing.T) {
	dir := t.TempDir()
	s := testkit.CaptionedMP4(t, dir, "LATE CAPTION", 8, 5)
	hevc := testkit.CaptionedHEVCMP4(t, t.TempDir(), "HEVC", 4, 1)
	frag := filepath.Join(dir, "fragmented.mp4")
	if out, err := exec.Command(requireTool(t, "ffmpeg"), "-v", "error", "-i", s.Path, "-c", "copy",
		"-movflags", "frag_keyframe+empty_moov+default_base_moof", frag).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	if in, err := openInput(frag); err != nil || !in.fragmented {
		t.Fatalf("ffmpeg's fragmented file: %v", err)
	} else {
		in.Close()
	}
	cases := []struct {
		name   string
		inputs []string
		labels []manifest.Caption
		want   []manifest.Caption
		warn   string
		enc    *Encryption
	}{
		{"found", []string{s.Path}, nil, []manifest.Caption{{Channel: "CC1"}}, "", nil},
		{"found in a fragmented file", []string{frag}, nil, []manifest.Caption{{Channel: "CC1"}}, "", nil},
		{"found in HEVC", []string{hevc.Path}, nil, []manifest.Caption{{Channel: "CC1"}}, "", nil},
		{"found, output encrypted", []string{s.Path}, nil, []manifest.Caption{{Channel: "CC1"}}, "",
			&Encryption{Scheme: "cbcs", KeyID: testKID, Key: testKey}},
		{"found and labelled", []string{s.Path}, []manifest.Caption{{Channel: "CC1", Language: "en-us", Name: "English"}},
			[]manifest.Caption{{Channel: "CC1", Language: "en-US", Name: "English"}}, "", nil},
		{"labelled but not found", []string{s.Path}, []manifest.Caption{{Channel: "SERVICE2", Language: "es"}, {Channel: "CC3", Language: "fr"}},
			[]manifest.Caption{{Channel: "CC1"}, {Channel: "CC3", Language: "fr"}, {Channel: "SERVICE2", Language: "es"}}, "channel=CC3", nil},
		{"none in the ladder", ladder, nil, nil, "", nil},
		{"none in HEVC", []string{samplePath("hevc_360p.mp4")}, nil, nil, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			out := filepath.Join(t.TempDir(), "out")
			p, err := Package(context.Background(), Options{Inputs: tc.inputs, Output: out,
				Captions: tc.labels, Encryption: tc.enc, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if !p.CaptionsChecked {
				t.Error("CaptionsChecked is false")
			}
			var inSEI []string // what players find in the published segments
			if tc.inputs[0] == s.Path || tc.inputs[0] == frag || tc.inputs[0] == hevc.Path {
				inSEI = []string{"CC1"}
			}
			for _, v := range p.Video {
				if !slices.Equal(v.Captions, tc.want) {
					t.Errorf("%s: captions %+v, want %+v", v.ID, v.Captions, tc.want)
				}
				if got := segmentCaptions(t, filepath.Join(out, v.ID)); !slices.Equal(got, inSEI) {
					t.Errorf("%s: the segments' SEI carry %q, want %q", v.ID, got, inSEI)
				}
			}
			if got := strings.Contains(logs.String(), "not found in the video's SEI"); got != (tc.warn != "") || !strings.Contains(logs.String(), tc.warn) {
				t.Errorf("warning logged: %v, want one naming %q:\n%s", got, tc.warn, logs.String())
			}
		})
	}
}

// TestCaptionLabelsRefused: a label for no channel, a channel twice, a bad language: refused
// before anything is written.
func TestCaptionLabelsRefused(t *testing.T) {
	for _, labels := range [][]manifest.Caption{
		{{Channel: "CC5"}},
		{{Channel: "SERVICE64"}},
		{{Channel: "SERVICE01"}},
		{{Channel: "cc1"}},
		{{Channel: "CC1"}, {Channel: "CC1", Language: "fr"}},
		{{Channel: "CC2", Language: "not a language"}},
	} {
		out := filepath.Join(t.TempDir(), "out")
		if _, err := Package(context.Background(), Options{Inputs: ladder[2:], Output: out, Captions: labels}); err == nil {
			t.Errorf("%+v accepted", labels)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%+v: output exists", labels)
		}
	}
}

// TestCaptionScanCost: the scan reads each sample's head, one read of headRead bytes (the
// first sample's x264 SEI fits too), not the picture; the time it takes is logged beside
// reading every sample whole and packaging the track (the figures behind scanning every
// sample rather than the first seconds).
func TestCaptionScanCost(t *testing.T) {
	in, err := openInput(ladder[0])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	videos, _, err := selectTracks([]*inputFile{in})
	if err != nil {
		t.Fatal(err)
	}
	v := videos[0]
	scan := newCaptionScan(v)
	var total, samples int64
	var whole time.Duration
	err = walkSamples(v, func(s sample) {
		samples++
		total += int64(s.size)
		start := time.Now()
		if _, err := io.Copy(io.Discard, io.NewSectionReader(in.f, s.off, int64(s.size))); err != nil {
			t.Fatal(err)
		}
		whole += time.Since(start)
		if err := scan.samples([]sample{s}); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := scan.channels(); got != nil {
		t.Errorf("captions %q in the ladder", got)
	}
	start := time.Now()
	packageTo(t, Options{Inputs: ladder[:1]})
	pack := time.Since(start)
	t.Logf("%s: %d samples, %d bytes; the scan read %d bytes (%.1f%%) in %v; reading every sample whole took %v, packaging %v",
		filepath.Base(ladder[0]), samples, total, scan.read, 100*float64(scan.read)/float64(total), scan.took, whole, pack)
	if scan.read > samples*headRead {
		t.Errorf("the scan read %d bytes from %d samples, more than %d a sample", scan.read, samples, headRead)
	}
}

// segmentCaptions runs the detection over the samples of a packaged video track's segments:
// the captions stay in the SEI, which encryption leaves clear.
func segmentCaptions(t *testing.T, dir string) []string {
	t.Helper()
	init := decodeMP4(t, filepath.Join(dir, manifest.InitSegmentName))
	codec := captions.H264
	if typ := init.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children[0].Type(); typ == "hvc1" || typ == "hev1" {
		codec = captions.HEVC
	}
	segs, err := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	d := captions.NewDetector(codec, 4)
	for _, seg := range segs {
		f := decodeMP4(t, seg)
		for _, ms := range f.Segments {
			for _, s := range fullSamples(t, ms, init.Init.Moov.Mvex.Trex) {
				d.Sample(int64(s.PresentationTime()), s.Data)
			}
		}
	}
	return d.Channels()
}
