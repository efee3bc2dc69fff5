package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLiveSubRefused: reel live refuses a bad --sub before it makes anything: a malformed
// subtitle file with its FILE:LINE (exit 1), a bad option, a second default or a --sub before
// any --loop (usage, exit 2), each on one line.
func TestLiveSubRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.fr.vtt")
	if err := os.WriteFile(bad, []byte("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nCassé\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vtt := sample("subs/ladder.fr.vtt")
	liveRefused(t, []string{"--sub", bad}, exitFailure, bad+":3:")
	liveRefused(t, []string{"--sub", vtt + ":bogus"}, exitUsage, "unknown option")
	liveRefused(t, []string{"--sub", vtt + ":default", "--sub", sample("subs/ladder.en.srt") + ":default"}, exitUsage, "only one")

	dir := filepath.Join(t.TempDir(), "live")
	code, stdout, stderr := runReel(t, "live", "--sub", vtt, "--loop", "c="+sample("ladder_360p.mp4"), "--dir", dir, "--listen", "127.0.0.1:0", "--admin", "")
	if code != exitUsage || !strings.Contains(stderr, "after the --loop") || stdout != "" {
		t.Errorf("--sub before --loop: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s was made: something was published", dir)
	}
}

// TestLiveSubServes: `reel live --loop … --sub` serves the subtitles: the master's SUBTITLES
// rendition, its playlist's WebVTT segments (text/vtt, with an X-TIMESTAMP-MAP), and the MPD's
// wvtt AdaptationSet.
func TestLiveSubServes(t *testing.T) {
	bin := buildReel(t)
	base := startLive(t, bin, nil, "--loop", "s="+sample("ladder_360p.mp4"), "--sub", sample("subs/ladder.fr.vtt")+":name=Français (boucle)",
		"--segment", "2s", "--part", "0")
	fetch := func(path string) (int, string, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	// Bounded wait for the first text segment.
	var pl string
	for deadline := time.Now().Add(20 * time.Second); ; {
		if code, _, body := fetch("/live/s/text_fr/index.m3u8"); code == 200 && strings.Contains(body, ".vtt") {
			pl = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no text segment after 20 s")
		}
		time.Sleep(100 * time.Millisecond) // polling interval of a bounded wait
	}
	if _, _, master := fetch("/live/s/master.m3u8"); !strings.Contains(master, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français (boucle)"`) {
		t.Errorf("master:\n%s", master)
	}
	seg := regexp.MustCompile(`seg_\d+\.vtt`).FindString(pl)
	code, ctype, body := fetch("/live/s/text_fr/" + seg)
	if code != 200 || ctype != "text/vtt; charset=utf-8" || !strings.HasPrefix(body, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:") {
		t.Errorf("%s: %d %s\n%s", seg, code, ctype, body)
	}
	if _, _, mpd := fetch("/live/s/manifest.mpd"); !strings.Contains(mpd, `<Representation id="text_fr_wvtt"`) || !strings.Contains(mpd, `codecs="wvtt"`) {
		t.Errorf("MPD:\n%s", mpd)
	}
}
