package main

import (
	"path/filepath"
	"slices"
	"testing"
)

// imscCue is the cue of samples/subs/ladder.de.ttml shown from 6 s to 8 s, in its top region
// and yellow italic style: the browser test seeks to 6.5 s and looks for it.
const imscCue = "Reel schneidet Text wie Video."

// TestBrowserIMSC: a presentation packaged with a TTML --sub (and a WebVTT one), served by the
// real `reel origin` through the real `reel edge`, lists both text tracks with their languages
// in dash.js and Shaka Player, the German one from the MPD's stpp (IMSC1) AdaptationSet, and
// that track, enabled through the player's API, shows the expected cue at 6.5 s in the
// video's text tracks (dash.js keeps a TTML cue's text in the imsc.js document it renders,
// which play.mjs reads), in Shaka Player with its style.
func TestBrowserIMSC(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	kit := requirePlayers(t)
	bin := buildReel(t)
	dir := filepath.Join(t.TempDir(), "vod")
	code, _, stderr := runReel(t, "package", "--quiet", sample("ladder_360p.mp4"), "-o", dir,
		"--sub", sample("subs/ladder.de.ttml"), "--sub", sample("subs/ladder.fr.vtt"))
	if code != exitOK {
		t.Fatalf("reel package: exit %d\n%s", code, stderr)
	}
	origin := startOrigin(t, bin, dir)
	_, base := startEdge(t, bin, "--origin", origin, "--cache-dir", t.TempDir())

	check := textCheck{Lang: "de", At: 6.5, Cue: imscCue, Timeout: 20}
	cases := []textCase{
		{"dash.js", "/manifest.mpd", "dash.js", 1, 40, check, nil},
		{"Shaka Player DASH", "/manifest.mpd", "shaka", 1, 40, check, nil},
	}
	for i, got := range runTextCases(t, kit, base, cases) {
		if got == nil {
			continue
		}
		c := cases[i]
		t.Logf("%-18s %s: text tracks %+v; at %.2f s cues %+v", c.Name, got.Player.Library, got.Text.Tracks, got.Text.Cues.Time, got.Text.Cues.Cues)
		if langs := got.langs(); !slices.Equal(langs, []string{"de", "fr"}) {
			t.Errorf("%s: text tracks in %q, want de and fr", c.Name, langs)
		}
		if !got.Text.Enabled {
			t.Errorf("%s: could not enable the de track", c.Name)
		}
		if !got.showing(imscCue, 6.5) {
			t.Errorf("%s: at %.2f s the active cues are %+v, want %q (6 s to 8 s)", c.Name, got.Text.Cues.Time, got.Text.Cues.Cues, imscCue)
		}
		// Shaka Player turns a TTML cue's style into WebVTT markup: the IMSC1 document's style
		// reached it (yellow and italic, on the style's black background), not plain text.
		if c.Player == "shaka" && !got.showing("<i><c.yellow.bg_black>"+imscCue, 6.5) {
			t.Errorf("%s: the cue lost its style (yellow, italic): %+v", c.Name, got.Text.Cues.Cues)
		}
	}
}
