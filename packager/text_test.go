package packager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/subtitles"
)

// Subtitle inputs for the packager's round trip: cues crossing the 2 s segment boundaries,
// settings, markup, an empty segment (8–10 s), and (VTT) a cue after the 12 s of video.
const (
	textVTT = "WEBVTT\n\nSTYLE\n::cue(.y) { color: yellow; }\n\n" +
		"a\n00:00:00.500 --> 00:00:02.250 align:start line:0\n<v Esme>Bonjour <i>à tous</i>\n\n" +
		"00:00:02.250 --> 00:00:06.010\n<c.y>Traverse deux segments</c> &amp; plus\n\n" +
		"00:00:10.100 --> 00:00:11.900 position:20%\nFin\n\n" +
		"00:00:30.000 --> 00:00:31.000\nAprès la vidéo\n"
	textSRT = "1\r\n00:00:01,000 --> 00:00:03,500\r\n<i>Where are you going?</i>\r\n\r\n" +
		"2\r\n00:00:04,000 --> 00:00:07,999\r\n[door slams]\r\nTo the market & home.\r\n\r\n" +
		"3\r\n00:00:11,000 --> 00:00:11,960\r\nBye.\r\n"
	textTTML = `<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"
    xmlns:tts="http://www.w3.org/ns/ttml#styling"
    ttp:frameRate="30" ttp:frameRateMultiplier="1000 1001" xml:lang="de">
  <head>
    <styling><style xml:id="gelb" tts:color="yellow" tts:fontStyle="italic"/></styling>
    <layout>
      <region xml:id="unten" tts:origin="10% 80%" tts:extent="80% 15%" tts:displayAlign="after"/>
      <region xml:id="oben" tts:origin="10% 5%" tts:extent="80% 15%"/>
    </layout>
  </head>
  <body><div region="unten">
    <p begin="00:00:01:15" end="00:00:03:00">Uhrzeit<br/>mit Frames</p>
  </div><div region="oben">
    <p begin="5s" dur="4.5s" style="gelb">Über die Grenze</p>
  </div></body>
</tt>
`
)

// writeSubs writes the three samples into dir, named the way the CLI guesses languages from.
func writeSubs(t *testing.T, dir string) []Subtitle {
	t.Helper()
	files := map[string]string{"film.fr.vtt": textVTT, "film.en.srt": textSRT, "film.de.ttml": textTTML}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return []Subtitle{
		{File: filepath.Join(dir, "film.fr.vtt"), Default: true},
		{File: filepath.Join(dir, "film.en.srt"), SDH: true},
		{File: filepath.Join(dir, "film.de.ttml"), Language: "de", Name: "Deutsch (erzwungen)", Forced: true},
	}
}

// TestSubtitlesRoundTrip packages the ladder with a VTT, an SRT and a TTML file and reads every
// input cue back from the HLS WebVTT segments and from the DASH wvtt (VTT, SRT) or stpp (TTML)
// segments, with its text and times within one frame, the TTML's styled cue with its style and
// region; playlists and MPD parse back, and every variant names the SUBTITLES group.
func TestSubtitlesRoundTrip(t *testing.T) {
	for _, single := range []bool{false, true} {
		name := "segmented"
		if single {
			name = "single-file"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			subs := writeSubs(t, dir)
			var logs bytes.Buffer
			out, _ := packageTo(t, Options{Inputs: ladder[1:], Output: filepath.Join(dir, "out"), SingleFile: single,
				Subtitles: subs, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if !strings.Contains(logs.String(), "subtitle cues outside the video") || !strings.Contains(logs.String(), "film.fr.vtt") {
				t.Errorf("no warning about the cue after the video's end in the log:\n%s", logs.String())
			}
			frameMs := checkTextTracks(t, out, single)
			for i, s := range subs {
				data, _ := os.ReadFile(s.File)
				in, err := subtitles.Parse(s.File, data)
				if err != nil {
					t.Fatal(err)
				}
				var want []subtitles.Cue
				for _, c := range in.Cues {
					if c.Start < 12000 {
						want = append(want, c)
					}
				}
				id := []string{"text_fr", "text_en_sdh", "text_de_forced"}[i]
				compareTextCues(t, id+" (HLS)", hlsCues(t, filepath.Join(out, id)), want, frameMs)
				if in.IMSC == nil {
					compareTextCues(t, id+"_wvtt (DASH)", wvttCues(t, out, id+"_wvtt", single), want, frameMs)
					continue
				}
				back := stppTrack(t, out, id+"_stpp", single)
				compareTextCues(t, id+"_stpp (DASH)", back.Cues, want, frameMs)
				styled := back.Cues[len(back.Cues)-1]
				if styled.IMSC == nil || styled.IMSC.P != ` style="gelb"` || !slices.Equal(styled.IMSC.Divs, []string{` region="oben"`}) ||
					!strings.Contains(back.IMSC.Head, `<style xml:id="gelb" tts:color="yellow" tts:fontStyle="italic"/>`) ||
					!strings.Contains(back.IMSC.Head, `<region xml:id="oben"`) || !strings.Contains(back.IMSC.Head, `<region xml:id="unten"`) {
					t.Errorf("%s_stpp: styled cue %+v %+v in document %+v", id, styled, styled.IMSC, back.IMSC)
				}
			}
		})
	}
}

// checkTextTracks checks the master, the text playlists and the MPD, and returns the video's
// frame duration in ms.
func checkTextTracks(t *testing.T, out string, single bool) int64 {
	t.Helper()
	master := decodeMaster(t, filepath.Join(out, manifest.MasterPlaylist))
	want := map[string]string{"fr": "Français", "en": "English SDH", "de": "Deutsch (erzwungen)"}
	var subs []*m3u8.Alternative
	for _, v := range master.Variants {
		if v.Iframe {
			continue
		}
		if v.Subtitles != manifest.TextGroupID {
			t.Errorf("variant %s: SUBTITLES=%q, want %q", v.URI, v.Subtitles, manifest.TextGroupID)
		}
		for _, a := range v.Alternatives {
			if a.Type == "SUBTITLES" && !slices.ContainsFunc(subs, func(b *m3u8.Alternative) bool { return b.URI == a.URI }) {
				subs = append(subs, a)
			}
		}
	}
	if len(subs) != 3 {
		t.Fatalf("%d SUBTITLES renditions, want 3", len(subs))
	}
	for _, a := range subs {
		if want[a.Language] != a.Name {
			t.Errorf("SUBTITLES %s: LANGUAGE=%q NAME=%q", a.URI, a.Language, a.Name)
		}
		if (a.Language == "fr") != a.Default || (a.Language == "de") != a.Forced {
			t.Errorf("SUBTITLES %s: DEFAULT=%v FORCED=%v", a.URI, a.Default, a.Forced)
		}
		media := decodeMedia(t, filepath.Join(out, a.URI))
		if n := len(segmentsOf(media)); n != 6 {
			t.Errorf("%s: %d segments, want 6 (one per video segment, empty ones too)", a.URI, n)
		}
	}
	m, err := mpd.ReadFromFile(filepath.Join(out, manifest.DASHManifest))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, as := range m.Periods[0].AdaptationSets {
		if as.ContentType != "text" {
			continue
		}
		for _, r := range as.Representations {
			texts = append(texts, as.Lang+":"+r.Codecs)
			if single != (r.SegmentBase != nil) {
				t.Errorf("%s: SegmentBase %v in single-file %v", r.Id, r.SegmentBase != nil, single)
			}
		}
	}
	slices.Sort(texts)
	if !slices.Equal(texts, []string{"de:stpp.ttml.im1t", "en:wvtt", "fr:wvtt"}) {
		t.Errorf("DASH text representations %v", texts)
	}
	if _, err := os.Stat(filepath.Join(out, "text_fr_wvtt", "index.m3u8")); err == nil {
		t.Errorf("a wvtt track has an HLS playlist: HLS lists the WebVTT tracks only")
	}
	// One frame of the video, from the master's FRAME-RATE.
	fps := master.Variants[0].FrameRate
	if fps <= 0 {
		t.Fatalf("no FRAME-RATE on %s", master.Variants[0].URI)
	}
	return int64(1000/fps + 0.5)
}

// hlsCues reads a WebVTT track's cues back from its playlist's segments, a cue repeated in
// several segments counted once.
func hlsCues(t *testing.T, dir string) []subtitles.Cue {
	t.Helper()
	media := decodeMedia(t, filepath.Join(dir, manifest.MediaPlaylist))
	var out []subtitles.Cue
	for _, s := range segmentsOf(media) {
		data, err := os.ReadFile(filepath.Join(dir, s.URI))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte("X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000")) {
			t.Errorf("%s: no X-TIMESTAMP-MAP", s.URI)
		}
		tr, err := subtitles.ParseVTT(s.URI, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tr.Cues {
			if !slices.ContainsFunc(out, func(o subtitles.Cue) bool {
				return o.Start == c.Start && o.End == c.End && o.Text == c.Text
			}) {
				out = append(out, c)
			}
		}
	}
	return out
}

// wvttCues reads a wvtt track's cues back from its DASH segments (or its single file).
func wvttCues(t *testing.T, out, id string, single bool) []subtitles.Cue {
	t.Helper()
	init, samples := cmafTextSamples(t, out, id, single)
	if init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Wvtt == nil {
		t.Fatalf("%s: no wvtt sample entry", id)
	}
	cues, err := subtitles.CuesFromWvtt(samples, init.Moov.Trak.Mdia.Mdhd.Timescale)
	if err != nil {
		t.Fatal(err)
	}
	return cues
}

// stppTrack reads an stpp track back from its DASH segments (or its single file).
func stppTrack(t *testing.T, out, id string, single bool) *subtitles.Track {
	t.Helper()
	init, samples := cmafTextSamples(t, out, id, single)
	if init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Stpp == nil || init.Moov.Trak.Mdia.Hdlr.HandlerType != "subt" {
		t.Fatalf("%s: no stpp sample entry in a subt track", id)
	}
	tr, err := subtitles.CuesFromStpp(samples, init.Moov.Trak.Mdia.Mdhd.Timescale)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// cmafTextSamples decodes a CMAF text track's init segment and samples.
func cmafTextSamples(t *testing.T, out, id string, single bool) (*mp4.InitSegment, []mp4.FullSample) {
	t.Helper()
	var files []string
	if single {
		files = []string{filepath.Join(out, id, "media.mp4")}
	} else {
		files = []string{filepath.Join(out, id, "init.mp4")}
		segs, _ := filepath.Glob(filepath.Join(out, id, "seg_*.m4s"))
		if len(segs) != 6 {
			t.Fatalf("%s: %d segments, want 6", id, len(segs))
		}
		files = append(files, segs...)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(all))
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	if f.Init == nil {
		t.Fatalf("%s: no init segment", id)
	}
	var samples []mp4.FullSample
	for _, seg := range f.Segments {
		for _, frag := range seg.Fragments {
			fs, err := frag.GetFullSamples(f.Init.Moov.Mvex.Trex)
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, fs...)
		}
	}
	return f.Init, samples
}

// compareTextCues: every wanted cue came back with its text, its times within a frame (the
// last one may be cut at the video's end in wvtt), and nothing else.
func compareTextCues(t *testing.T, what string, got, want []subtitles.Cue, frameMs int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d cues, want %d:\n got %+v\nwant %+v", what, len(got), len(want), got, want)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Text != w.Text || g.Settings != w.Settings || abs64(g.Start-w.Start) > frameMs || abs64(g.End-w.End) > frameMs {
			t.Errorf("%s: cue %d:\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

func abs64(v int64) int64 { return max(v, -v) }

// TestSubtitleBadInput: a malformed subtitle file fails the run with its file:line before
// anything is written, and an existing presentation stays as it was.
func TestSubtitleBadInput(t *testing.T) {
	dir := t.TempDir()
	out, _ := packageTo(t, Options{Inputs: ladder[2:], Output: filepath.Join(dir, "out")})
	before, err := os.ReadFile(filepath.Join(out, manifest.MasterPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.srt")
	if err := os.WriteFile(bad, []byte("1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,0x0 --> 00:00:04,000\nbad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Package(context.Background(), Options{Inputs: ladder[2:], Output: out, Subtitles: []Subtitle{{File: bad}}})
	var pe *subtitles.ParseError
	if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), bad+":6: ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %v, want %s:6: … on one line", err, bad)
	}
	after, err := os.ReadFile(filepath.Join(out, manifest.MasterPlaylist))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the existing presentation changed (%v)", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

// TestSubtitleClearUnderEncryption: with --encrypt the media is protected and the text is not.
func TestSubtitleClearUnderEncryption(t *testing.T) {
	dir := t.TempDir()
	subs := writeSubs(t, dir)
	enc := &Encryption{Scheme: "cbcs", KeyID: bytes.Repeat([]byte{1}, 16), Key: bytes.Repeat([]byte{2}, 16)}
	out, _ := packageTo(t, Options{Inputs: ladder[2:], Output: filepath.Join(dir, "out"), Subtitles: subs[:1], Encryption: enc})
	pl, err := os.ReadFile(filepath.Join(out, "text_fr", manifest.MediaPlaylist))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(pl, []byte("EXT-X-KEY")) {
		t.Errorf("text playlist carries a key:\n%s", pl)
	}
	init, err := os.ReadFile(filepath.Join(out, "text_fr_wvtt", "init.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(init, []byte("encv")) || bytes.Contains(init, []byte("tenc")) || !bytes.Contains(init, []byte("wvtt")) {
		t.Errorf("wvtt init segment is not a clear wvtt track")
	}
	video, _ := os.ReadFile(filepath.Join(out, "video_360p", manifest.MediaPlaylist))
	if !bytes.Contains(video, []byte("EXT-X-KEY")) {
		t.Errorf("video playlist has no key: the run was not encrypted")
	}
}

func TestGuessSubtitleLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"film.fr.vtt": "fr", "dir.x/film.pt-BR.srt": "pt-BR", "film.vtt": "", "film.final.vtt": "",
		"film.en.sdh.srt": "en", "film.sdh.srt": "", "ep.1.vtt": "", "film.deu.ttml": "de",
	} {
		if got := GuessSubtitleLanguage(in); got != want {
			t.Errorf("GuessSubtitleLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSubtitleTTMLRegionWarning: a TTML cue that TTML players would show in no region is
// packaged all the same, with a warning naming the file and the line.
func TestSubtitleTTMLRegionWarning(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "film.de.ttml")
	ttml := strings.Replace(textTTML, `<p begin="5s" dur="4.5s" style="gelb">`, `<p begin="5s" dur="4.5s" style="gelb" region="unten">`, 1)
	if ttml == textTTML {
		t.Fatal("the sample changed: the stray region was not put in")
	}
	if err := os.WriteFile(file, []byte(ttml), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	out, _ := packageTo(t, Options{Inputs: ladder[2:], Output: filepath.Join(dir, "out"), Subtitles: []Subtitle{{File: file}},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	at := fmt.Sprintf("%s:%d: <p> in region", file, strings.Count(ttml[:strings.Index(ttml, `style="gelb" region="unten">`)], "\n")+1)
	if !strings.Contains(logs.String(), "subtitle cue not shown as meant") || !strings.Contains(logs.String(), at) {
		t.Errorf("no warning %q in the log:\n%s", at, logs.String())
	}
	if _, err := os.Stat(filepath.Join(out, "text_de_stpp", "init.mp4")); err != nil {
		t.Errorf("the track was not written: %v", err)
	}
}
