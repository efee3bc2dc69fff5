package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reelvideo/reel/packager"
)

// TestPackageSubtitles: --sub files come out as WebVTT and wvtt tracks named by the language
// the file name gives, with the options' name and flags, and the summary counts them.
func TestPackageSubtitles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", out,
		"--sub", sample("subs/ladder.fr.vtt")+":default",
		"--sub", sample("subs/ladder.en.srt")+":sdh:name=English: hard of hearing")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "+ 2 subtitle renditions") {
		t.Errorf("summary %q does not count the subtitles", stdout)
	}
	master, err := os.ReadFile(filepath.Join(out, "master.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="text_fr/index.m3u8"`,
		`LANGUAGE="en",NAME="English: hard of hearing",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,CHARACTERISTICS=`,
		`SUBTITLES="subs"`,
	} {
		if !bytes.Contains(master, []byte(want)) {
			t.Errorf("master lacks %s:\n%s", want, master)
		}
	}
	seg, err := os.ReadFile(filepath.Join(out, "text_fr", "seg_00002.vtt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(seg, []byte("00:00:02.500 --> 00:00:04.500 line:0\n<i>Ce sous-titre</i> traverse deux segments.")) {
		t.Errorf("segment 2 lacks the cue crossing into it:\n%s", seg)
	}
	for _, f := range []string{"text_en_sdh/seg_00006.vtt", "text_fr_wvtt/init.mp4", "text_en_sdh_wvtt/seg_00006.m4s"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	mpd, _ := os.ReadFile(filepath.Join(out, "manifest.mpd"))
	if !bytes.Contains(mpd, []byte(`<Representation id="text_fr_wvtt"`)) || !bytes.Contains(mpd, []byte(`lang="en" contentType="text"`)) {
		t.Errorf("MPD lacks the wvtt tracks:\n%s", mpd)
	}
}

// TestPackageSubtitleWarnings: what an input says that players would not show as meant — here
// a cue identifier used twice — is packaged (exit 0, the cue renamed) with a warning on stderr
// naming the file and line, not dropped silently.
func TestPackageSubtitleWarnings(t *testing.T) {
	dir := t.TempDir()
	vtt := filepath.Join(dir, "dup.fr.vtt")
	if err := os.WriteFile(vtt, []byte("WEBVTT\n\na\n00:01.000 --> 00:02.000\none\n\na\n00:03.000 --> 00:04.000\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", out, "--quiet", "--sub", vtt)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, vtt+`:8: cue identifier \"a\"`) || !strings.Contains(stderr, `renamed \"a-2\"`) {
		t.Errorf("stderr %q: want a warning naming %s:8 and the new identifier", stderr, vtt)
	}
	seg, err := os.ReadFile(filepath.Join(out, "text_fr", "seg_00002.vtt"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(seg, []byte("a-2\n00:00:03.000 --> 00:00:04.000\ntwo")) {
		t.Errorf("segment 2 lacks the renamed cue:\n%s", seg)
	}
}

// TestPackageSubtitleBadFile: a malformed subtitle file is one line with file:line, exit 1,
// and the presentation already at OUT is left as it was, nothing beside it.
func TestPackageSubtitleBadFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", out, "--quiet"); code != exitOK {
		t.Fatalf("first run: exit %d: %s", code, stderr)
	}
	before := dirEntries(t, out)
	for name, data := range map[string]string{
		"bad.vtt":  "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:00:03.000 --> 00:00:0x.000\nbad\n",
		"bad.srt":  "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,0x0 --> 00:00:04,000\nbad\n",
		"bad.ttml": "<?xml version=\"1.0\"?>\n<tt xmlns=\"http://www.w3.org/ns/ttml\"><body><div>\n<p begin=\"1s\" end=\"soon\">x</p>\n</div></body></tt>\n",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, name)
			if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", out, "--quiet", "--sub", sample("subs/ladder.fr.vtt"), "--sub", file+":lang=de")
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			assertOneLine(t, "stderr", stderr)
			if !strings.HasPrefix(stderr, "reel package: "+file+":") || !strings.ContainsAny(stderr[len("reel package: "+file+":"):][:1], "0123456789") {
				t.Errorf("stderr %q does not start with %s:LINE", stderr, file)
			}
			if got := dirEntries(t, out); !slices.Equal(got, before) {
				t.Errorf("presentation changed: %v, was %v", got, before)
			}
			if got := dirEntries(t, dir); slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, ".") }) {
				t.Errorf("left behind: %v", got)
			}
		})
	}
}

// TestPackageSubtitleBadFlag: a --sub that cannot be read is a usage error (exit 2), before
// anything is opened.
func TestPackageSubtitleBadFlag(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	vtt := sample("subs/ladder.fr.vtt")
	for _, arg := range []string{vtt + ":bogus", vtt + ":lang=", vtt + ":name=", ":lang=fr", vtt + ":lang=fr:colour=red", vtt + ":forced=yes"} {
		code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", out, "--sub", arg)
		if code != exitUsage {
			t.Errorf("--sub %q: exit %d, want %d (%s)", arg, code, exitUsage, stderr)
		}
		assertOneLine(t, "stderr", stderr)
	}
	code, _, stderr := runReel(t, "package", sample("ladder_360p.mp4"), "-o", out, "--sub", vtt+":default", "--sub", sample("subs/ladder.en.srt")+":default")
	if code != exitUsage || !strings.Contains(stderr, "only one") {
		t.Errorf("two defaults: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output written after a usage error: %v", err)
	}
}

// TestParseSub: the --sub grammar, file names and names with colons included.
func TestParseSub(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "a:b")
	if err := os.WriteFile(odd, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]packager.Subtitle{
		"film.fr.vtt":                        {File: "film.fr.vtt"},
		"x.srt:lang=pt-BR:name=Português":    {File: "x.srt", Language: "pt-BR", Name: "Português"},
		"x.srt:sdh:forced:default":           {File: "x.srt", SDH: true, Forced: true, Default: true},
		"C:dir/x.srt:language=en":            {File: "C:dir/x.srt", Language: "en"},
		"x.vtt:name=Star Wars: Commentary":   {File: "x.vtt", Name: "Star Wars: Commentary"},
		"x.vtt:name=A: B:forced:lang=fr":     {File: "x.vtt", Name: "A: B", Forced: true, Language: "fr"},
		odd:                                  {File: odd},
		"subs/ep.1.vtt:name=Episode 1:lang=": {}, // error: lang= without a value
	} {
		got, err := parseSub(in)
		if want.File == "" {
			if err == nil {
				t.Errorf("parseSub(%q) = %+v, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("parseSub(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
