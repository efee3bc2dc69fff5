package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// liveSubsCue is the cue of samples/subs/ladder.fr.vtt shown from 2.5 s to 4.5 s of every 12 s
// loop, across a segment boundary: early in the loop, so that the players find an instance of
// it behind their live playhead after a short wait, and a segment past the channel's first
// (at the very start of the DVR window dash.js plays no video and loads no cue).
const (
	liveSubsCue  = "Ce sous-titre"
	liveSubsAt   = 3.0  // seconds into a loop: within the cue
	liveSubsLoop = 12.0 // the ladder's length
)

// TestBrowserLiveSubtitles: `reel live --loop … --sub ladder.fr.vtt`, through `reel edge`,
// lists its French text track in hls.js (HLS WebVTT), dash.js and Shaka Player (DASH wvtt),
// and the track, enabled through each player's API, shows a cue of the loop at the instant
// where the video's timeline has it: the check seeks to 3 s into a loop, found from the date
// the player gives its playhead (PDT in HLS, the MPD's availability start in DASH) and the
// channel's start, and the active cue must span that instant. One live channel and one edge
// serve every player; 2 s segments without parts, players started once five segments exist.
func TestBrowserLiveSubtitles(t *testing.T) {
	// Not parallel: see sequentialBrowserTests.
	kit := requirePlayers(t)
	bin := buildReel(t)
	origin := startLive(t, bin, nil, "--loop", "subs="+sample("ladder_360p.mp4"), "--sub", sample("subs/ladder.fr.vtt"),
		"--segment", "2s", "--part", "0")
	_, base := startEdge(t, bin, "--origin", origin, "--cache-dir", t.TempDir())
	const mpdPath = "/live/subs/manifest.mpd"

	// Wait (bounded) for five segments of text in the MPD, through the edge: the players then
	// start a few segments behind the live edge, past the cue.
	var start time.Time
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, raw := fetchMPD(t, base+mpdPath)
		segs := 0
		if m != nil {
			for _, as := range m.Periods[0].AdaptationSets {
				if as.ContentType == "text" && as.Lang == "fr" && as.Representations[0].SegmentTemplate != nil {
					for _, s := range as.Representations[0].SegmentTemplate.SegmentTimeline.S {
						segs += 1 + s.R
					}
				}
			}
		}
		if segs >= 5 {
			var err error
			if start, err = time.Parse(time.RFC3339Nano, string(m.AvailabilityStartTime)); err != nil {
				t.Fatalf("availabilityStartTime %q: %v", m.AvailabilityStartTime, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no five text segments in the MPD after 30 s:\n%s", raw)
		}
		time.Sleep(250 * time.Millisecond) // polling interval of a bounded wait, not a wait for time
	}

	check := textCheck{Lang: "fr", At: liveSubsAt, Cue: liveSubsCue, Timeout: 15, Live: &liveAt{Start: start.UnixMilli(), Loop: liveSubsLoop}}
	cases := []textCase{
		// hls.js's timeline starts at 0 at its first playlist's first segment: once it has played
		// past 14 s, the check's instant (1 to 13 s behind the playhead) is in that playlist.
		{"hls.js", "/live/subs/master.m3u8", "hls.js", 14, 40, check, nil},
		{"dash.js", mpdPath, "dash.js", 1, 30, check, nil},
		{"Shaka Player DASH", mpdPath, "shaka", 1, 30, check, nil},
		{"Shaka Player HLS", "/live/subs/master.m3u8", "shaka", 1, 30, check, nil},
	}
	for i, got := range runTextCases(t, kit, base, cases) {
		if got == nil {
			continue
		}
		c := cases[i]
		tx := got.Text
		t.Logf("%-18s %s: text tracks %+v; at %s (now %.2f s) cues %+v", c.Name, got.Player.Library, tx.Tracks, fmtAt(tx.At), tx.Cues.Time, tx.Cues.Cues)
		if len(tx.Tracks) != 1 || tx.Tracks[0].Lang != "fr" || tx.Tracks[0].Label != "Français" {
			t.Errorf("%s: text tracks %+v, want one: fr, Français", c.Name, tx.Tracks)
		}
		if tx.At == nil || !tx.Enabled {
			t.Errorf("%s: the fr track not enabled, or no date for the playhead (at %v); events:\n%s", c.Name, tx.At, strings.Join(got.Player.Events, "\n"))
			continue
		}
		if at := *tx.At; !got.showing(liveSubsCue, at) {
			t.Errorf("%s: at %.2f s (%.1f s into a loop) the active cues are %+v, want %q spanning it; all tracks %s; events:\n%s",
				c.Name, at, liveSubsAt, tx.Cues.Cues, liveSubsCue, tx.Cues.All, strings.Join(got.Player.Events, "\n"))
		}
	}
}

// fmtAt prints where a text check went ("none" when the player gave no date).
func fmtAt(at *float64) string {
	if at == nil {
		return "none"
	}
	return strconv.FormatFloat(*at, 'f', 2, 64) + " s"
}
