package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/reelvideo/reel/internal/testkit"
)

// TestPackageCaptions: CEA-608 captions on CC1 in an ffmpeg-made H.264 file (testkit checks
// them with ffmpeg's own decoder) are signalled in both formats with the language and name
// --cc gives: HLS a CLOSED-CAPTIONS rendition with INSTREAM-ID="CC1" named by every variant,
// DASH the CEA-608 Accessibility descriptor on the video set. The samples' ladder, which has
// none, says CLOSED-CAPTIONS=NONE and has no descriptor. Both parse back with hls-m3u8 and
// dash-mpd.
func TestPackageCaptions(t *testing.T) {
	dir := t.TempDir()
	s := testkit.CaptionedMP4(t, dir, "CAPTIONS FROM FFMPEG", 6, 3)

	out := filepath.Join(dir, "out")
	code, stdout, stderr := runReel(t, "package", s.Path, "--cc", "cc1:lang=en:name=English: live", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "packaged 1 video") || strings.Contains(stderr, "not found") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	master := readMaster(t, out)
	variants := 0
	for _, v := range master.Variants {
		if v.Iframe {
			continue
		}
		variants++
		if v.Captions != "cc" {
			t.Errorf("variant %s: CLOSED-CAPTIONS=%q, want \"cc\"", v.URI, v.Captions)
		}
		var ccs []*m3u8.Alternative
		for _, a := range v.Alternatives {
			if a.Type == "CLOSED-CAPTIONS" {
				ccs = append(ccs, a)
			}
		}
		if len(ccs) != 1 || ccs[0].InstreamId != "CC1" || ccs[0].Language != "en" || ccs[0].Name != "English: live" || ccs[0].URI != "" {
			t.Errorf("variant %s: closed captions %+v", v.URI, ccs)
		}
	}
	if variants == 0 {
		t.Fatal("no variant in the master")
	}
	raw, _ := os.ReadFile(filepath.Join(out, "master.m3u8"))
	if want := `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="English: live",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID="CC1"`; !strings.Contains(string(raw), want) {
		t.Errorf("master lacks %s:\n%s", want, raw)
	}
	if got := videoAccessibility(t, out); len(got) != 1 || got[0] != "urn:scte:dash:cc:cea-608:2015 CC1=en" {
		t.Errorf("video Accessibility %q, want CEA-608 CC1=en", got)
	}

	// Without --cc: found all the same, named by its channel (with no language, a player
	// has nothing to select it by: AUTOSELECT=NO).
	plain := filepath.Join(dir, "plain")
	if code, _, stderr := runReel(t, "package", s.Path, "--quiet", "-o", plain); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw, _ = os.ReadFile(filepath.Join(plain, "master.m3u8"))
	if want := `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",DEFAULT=NO,AUTOSELECT=NO,INSTREAM-ID="CC1"`; !strings.Contains(string(raw), want) {
		t.Errorf("master lacks %s:\n%s", want, raw)
	}
	if got := videoAccessibility(t, plain); len(got) != 1 || got[0] != "urn:scte:dash:cc:cea-608:2015 CC1=und" {
		t.Errorf("video Accessibility %q, want CEA-608 CC1=und", got)
	}

	// The ladder has no captions: every variant says so, and the MPD has no descriptor.
	none := filepath.Join(dir, "none")
	if code, _, stderr := runReel(t, "package", sample("ladder_720p.mp4"), sample("ladder_360p.mp4"), "--quiet", "-o", none); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, v := range readMaster(t, none).Variants {
		if !v.Iframe && v.Captions != "NONE" {
			t.Errorf("ladder variant %s: CLOSED-CAPTIONS=%q, want NONE", v.URI, v.Captions)
		}
	}
	if got := videoAccessibility(t, none); len(got) != 0 {
		t.Errorf("ladder video Accessibility %q", got)
	}
}

// TestPackageCCFlag: --cc values people type, and the ones refused (exit 2 for a malformed
// flag, 1 for a language that is no BCP 47 tag, as --sub's), with nothing published.
func TestPackageCCFlag(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		code int
		msg  string
	}{
		{"CC5", exitUsage, "no channel"},
		{"SERVICE0:lang=en", exitUsage, "no channel"},
		{"english", exitUsage, "no channel"},
		{"CC1:lang", exitUsage, "lang= needs"},
		{"CC1:forced", exitUsage, `unknown option "forced"`},
		{"CC1:lang=not a tag", exitFailure, "BCP 47"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "--quiet", "--cc", tc.arg, "-o", out)
		if code != tc.code || !strings.Contains(stderr, tc.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--cc %s: exit %d, stderr %q; want exit %d and one line with %q", tc.arg, code, stderr, tc.code, tc.msg)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("--cc %s: output published", tc.arg)
		}
	}
	got, err := parseCCs([]string{"service12:name=Director: commentary:lang=en", "CC3"})
	if err != nil || len(got) != 2 || got[0].Channel != "SERVICE12" || got[0].Name != "Director: commentary" || got[0].Language != "en" || got[1].Channel != "CC3" {
		t.Errorf("parseCCs = %+v, %v", got, err)
	}
}

func readMaster(t *testing.T, out string) *m3u8.MasterPlaylist {
	t.Helper()
	f, err := os.Open(filepath.Join(out, "master.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pl, typ, err := m3u8.DecodeFrom(f, true)
	if err != nil || typ != m3u8.MASTER {
		t.Fatalf("master.m3u8: %v (type %v)", err, typ)
	}
	return pl.(*m3u8.MasterPlaylist)
}

// videoAccessibility is "scheme value" of each Accessibility descriptor of the MPD's video sets.
func videoAccessibility(t *testing.T, out string) []string {
	t.Helper()
	m, err := mpd.ReadFromFile(filepath.Join(out, "manifest.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, as := range m.Periods[0].AdaptationSets {
		if as.ContentType != "video" {
			continue
		}
		for _, d := range as.Accessibilities {
			got = append(got, string(d.SchemeIdUri)+" "+d.Value)
		}
	}
	return got
}
