package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// TestPackageIMSC: a TTML --sub comes out as WebVTT for HLS and as a CMAF stpp track of IMSC1
// documents for DASH (codecs stpp.ttml.im1t), with no wvtt beside it; its styles and regions
// are in the documents; a WebVTT --sub of the same run keeps wvtt.
func TestPackageIMSC(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := runReel(t, "package", "--quiet", sample("ladder_360p.mp4"), "-o", out,
		"--sub", sample("subs/ladder.de.ttml"), "--sub", sample("subs/ladder.fr.vtt"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	m, err := mpd.ReadFromFile(filepath.Join(out, "manifest.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, as := range m.Periods[0].AdaptationSets {
		if as.ContentType == "text" {
			for _, r := range as.Representations {
				texts = append(texts, as.Lang+":"+r.Id+":"+r.Codecs+":"+as.MimeType)
			}
		}
	}
	slices.Sort(texts)
	if want := []string{"de:text_de_stpp:stpp.ttml.im1t:application/mp4", "fr:text_fr_wvtt:wvtt:application/mp4"}; !slices.Equal(texts, want) {
		t.Errorf("DASH text representations %q, want %q", texts, want)
	}
	if _, err := os.Stat(filepath.Join(out, "text_de_wvtt")); err == nil {
		t.Errorf("a TTML input got a wvtt track too")
	}
	master, _ := os.ReadFile(filepath.Join(out, "master.m3u8"))
	if !bytes.Contains(master, []byte(`LANGUAGE="de",NAME="Deutsch"`)) || !bytes.Contains(master, []byte(`URI="text_de/index.m3u8"`)) {
		t.Errorf("HLS lacks the German WebVTT rendition:\n%s", master)
	}
	// 6–8 s: the cue in the top region, in the yellow italic style, with both defined.
	seg, err := os.ReadFile(filepath.Join(out, "text_de_stpp", "seg_00004.m4s"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<div region="oben"><p begin="00:00:06.000" end="00:00:08.000" xml:id="schnitt" style="gelb">Reel schneidet Text wie Video.</p></div>`,
		`<style xml:id="gelb" style="normal" tts:color="yellow" tts:fontStyle="italic"/>`,
		`<region xml:id="oben" tts:origin="10% 5%" tts:extent="80% 20%" tts:displayAlign="before"/>`,
		`ttp:cellResolution="32 15"`,
	} {
		if !bytes.Contains(seg, []byte(want)) {
			t.Errorf("stpp segment 4 lacks %s:\n%s", want, seg)
		}
	}
	if vtt, _ := os.ReadFile(filepath.Join(out, "text_de", "seg_00004.vtt")); !strings.Contains(string(vtt), "Reel schneidet Text wie Video.") {
		t.Errorf("WebVTT segment 4 lacks the cue:\n%s", vtt)
	}
}

// TestPackageIMSCBadFile: a styled TTML file with a mistake deep inside is one line naming the
// file and the line, exit 1, and nothing is published.
func TestPackageIMSCBadFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	good, err := os.ReadFile(sample("subs/ladder.de.ttml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string][2]string{
		"span.ttml": {`<span tts:fontWeight="bold">Ende</span>`, `<span tts:fontWeight="bold">Ende</p>`},
		"time.ttml": {`begin="6s" end="8s"`, `begin="6s" end="8x"`},
	} {
		t.Run(name, func(t *testing.T) {
			at := strings.Index(string(good), edit[0])
			if at < 0 {
				t.Fatal("the sample changed: the mistake cannot be made")
			}
			bad := strings.Replace(string(good), edit[0], edit[1], 1)
			line := strconv.Itoa(strings.Count(string(good[:at]), "\n") + 1)
			file := filepath.Join(dir, name)
			if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runReel(t, "package", "--quiet", sample("ladder_360p.mp4"), "-o", out, "--sub", file+":lang=de")
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			assertOneLine(t, "stderr", stderr)
			if !strings.HasPrefix(stderr, "reel package: "+file+":"+line+": ") {
				t.Errorf("stderr %q does not start with %s:%s:", stderr, file, line)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was published", out)
			}
			if got := dirEntries(t, dir); slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, ".") }) {
				t.Errorf("left behind: %v", got)
			}
		})
	}
}
