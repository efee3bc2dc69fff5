package packager

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/manifest"
)

// TestCaptionScan: the packager finds CC1 in an ffmpeg-made H.264 file whose caption starts
// late, labels it from Options.Captions, signals a labelled channel it did not find (with a
// warning), and marks tracks without captions as checked: the samples' ladder and the HEVC
// sample carry none.
func TestCaptionScan(t *testing.T) {
	dir := t.TempDir()
	s := testkit.CaptionedMP4(t, dir, "LATE CAPTION", 8, 5)
	cases := []struct {
		name   string
		inputs []string
		labels []manifest.Caption
		want   []manifest.Caption
		warn   string
	}{
		{"found", []string{s.Path}, nil, []manifest.Caption{{Channel: "CC1"}}, ""},
		{"found and labelled", []string{s.Path}, []manifest.Caption{{Channel: "CC1", Language: "en-us", Name: "English"}},
			[]manifest.Caption{{Channel: "CC1", Language: "en-US", Name: "English"}}, ""},
		{"labelled but not found", []string{s.Path}, []manifest.Caption{{Channel: "SERVICE2", Language: "es"}, {Channel: "CC3", Language: "fr"}},
			[]manifest.Caption{{Channel: "CC1"}, {Channel: "CC3", Language: "fr"}, {Channel: "SERVICE2", Language: "es"}}, "channel=CC3"},
		{"none in the ladder", ladder, nil, nil, ""},
		{"none in HEVC", []string{samplePath("hevc_360p.mp4")}, nil, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			p, err := Package(context.Background(), Options{Inputs: tc.inputs, Output: filepath.Join(t.TempDir(), "out"),
				Captions: tc.labels, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if !p.CaptionsChecked {
				t.Error("CaptionsChecked is false")
			}
			for _, v := range p.Video {
				if !slices.Equal(v.Captions, tc.want) {
					t.Errorf("%s: captions %+v, want %+v", v.ID, v.Captions, tc.want)
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
	start := time.Now()
	chans, read, err := detectCaptions(v)
	scan := time.Since(start)
	if err != nil || chans != nil {
		t.Fatalf("detectCaptions = %q, %v", chans, err)
	}
	var total, samples int64
	start = time.Now()
	err = walkSamples(v, func(s sample) {
		samples++
		total += int64(s.size)
		if _, err := io.Copy(io.Discard, io.NewSectionReader(in.f, s.off, int64(s.size))); err != nil {
			t.Fatal(err)
		}
	})
	whole := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	packageTo(t, Options{Inputs: ladder[:1]})
	pack := time.Since(start)
	t.Logf("%s: %d samples, %d bytes; the scan read %d bytes (%.1f%%) in %v; reading every sample whole took %v, packaging %v",
		filepath.Base(ladder[0]), samples, total, read, 100*float64(read)/float64(total), scan, whole, pack)
	if read > samples*headRead {
		t.Errorf("the scan read %d bytes from %d samples, more than %d a sample", read, samples, headRead)
	}
}
