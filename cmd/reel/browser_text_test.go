package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// What the subtitle browser tests (browser_subtitles_test.go, browser_imsc_test.go,
// browser_live_subs_test.go) share: play.mjs cases with a "text" check, and its report of them.

// textCheck is a case's "text" check (see the top of edge/ui/e2e/play.mjs): list the text
// tracks, enable the one in Lang, seek to At and poll the active cues for Cue.
type textCheck struct {
	Lang    string  `json:"lang"`
	At      float64 `json:"at"`
	Cue     string  `json:"cue"`
	Timeout float64 `json:"timeout"`
	// Live, on a live stream, makes At a time within a loop of Loop seconds from Start (ms
	// since the epoch of media time 0), found through the date the player gives its playhead.
	Live *liveAt `json:"live,omitempty"`
}

type liveAt struct {
	Start int64   `json:"start"`
	Loop  float64 `json:"loop"`
}

// textCase is one play.mjs case with a text check; Configure goes to Shaka Player's configure
// before load.
type textCase struct {
	Name      string         `json:"name"`
	URL       string         `json:"url"`
	Player    string         `json:"player"`
	Play      float64        `json:"play"`
	Timeout   float64        `json:"timeout"`
	Text      textCheck      `json:"text"`
	Configure map[string]any `json:"configure,omitempty"`
}

type activeCue struct {
	Lang  string  `json:"lang"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	Text  string  `json:"text"`
}

type textTrack struct {
	Lang  string `json:"lang"`
	Label string `json:"label"`
}

// textResult is play.mjs's report of a text case.
type textResult struct {
	Name          string       `json:"name"`
	Player        *playerState `json:"player"`
	ConsoleErrors []string     `json:"consoleErrors"`
	Text          *struct {
		Tracks  []textTrack `json:"tracks"`
		Enabled bool        `json:"enabled"`
		At      *float64    `json:"at"` // where a live check went, on the player's timeline
		Cues    struct {
			Time float64         `json:"time"`
			Cues []activeCue     `json:"cues"`
			All  json.RawMessage `json:"all"` // every text track of the video element: its mode, cue count, first cues
		} `json:"cues"`
	} `json:"text"`
}

// langs are the languages of the text tracks the player listed, sorted.
func (r *textResult) langs() []string {
	var out []string
	for _, tr := range r.Text.Tracks {
		out = append(out, tr.Lang)
	}
	slices.Sort(out)
	return out
}

// showing reports whether an active cue holds text and spans at.
func (r *textResult) showing(text string, at float64) bool {
	return slices.ContainsFunc(r.Text.Cues.Cues, func(q activeCue) bool {
		return strings.Contains(q.Text, text) && q.Start <= at && q.End >= at
	})
}

// players is what the text tests play with: node, Chromium, edge/ui's node_modules (vendor)
// and Shaka Player's file in it.
type players struct{ node, chromium, vendor, shaka string }

// requirePlayers finds them, failing (under CI=true) or skipping the test without them.
func requirePlayers(t *testing.T) players {
	t.Helper()
	p := players{node: testkit.RequireTool(t, "node"), chromium: testkit.RequireTool(t, "chromium"), vendor: requireUIModules(t)}
	p.shaka = requireShaka(t, p.vendor)
	return p
}

// libs is play.mjs's "libs": each player library's file, by the name cases give as "player".
func (p players) libs() map[string]string {
	return map[string]string{
		"hls.js":  filepath.Join(p.vendor, "hls.js", "dist", "hls.min.js"),
		"dash.js": filepath.Join(p.vendor, "dashjs", "dist", "modern", "umd", "dash.all.min.js"),
		"shaka":   p.shaka,
	}
}

// runTextCases plays cases in Chromium against base with hls.js, dash.js and Shaka Player,
// and returns their reports in order: nil for a case whose player
// failed or made no text check, which is reported as an error here.
func runTextCases(t *testing.T, p players, base string, cases []textCase) []*textResult {
	t.Helper()
	var res struct {
		Cases []*textResult `json:"cases"`
	}
	runPlayInto(t, p.node, map[string]any{"chromium": p.chromium, "base": base, "cases": cases, "libs": p.libs()}, &res)
	if len(res.Cases) != len(cases) {
		t.Fatalf("%d cases reported, want %d", len(res.Cases), len(cases))
	}
	for i, got := range res.Cases {
		if got == nil || got.Player == nil || len(got.Player.Errors) > 0 || got.Text == nil {
			var p *playerState
			if got != nil {
				p = got.Player
			}
			t.Errorf("%s: player %+v, no text check", cases[i].Name, p)
			res.Cases[i] = nil
			continue
		}
		if len(got.Player.Warnings) > 0 || len(got.ConsoleErrors) > 0 {
			t.Logf("%s: warnings %q; console errors %q", cases[i].Name, got.Player.Warnings, got.ConsoleErrors)
		}
	}
	return res.Cases
}
