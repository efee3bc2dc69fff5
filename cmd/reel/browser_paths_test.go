package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBrowserPathOrigins: one `reel edge`, configured by samples/edge-paths.yaml (the README's
// example, its origins' addresses replaced by the test's; no default origin),
// fronts /vod/ on a real `reel origin` (a presentation packaged by `reel package`, served at
// the origin's root) and /live/ on a real `reel live --loop` under one host: hls.js and dash.js
// play both through it. The players resolve the manifests' relative URIs under /vod/, and the
// edge takes the prefix off for the origin (which has no /vod/ of its own).
func TestBrowserPathOrigins(t *testing.T) {
	t.Parallel()
	p := requirePlayers(t)
	bin := buildReel(t)

	// The live channel first: it makes segments while the VOD presentation is packaged.
	live := startLive(t, bin, nil, "--loop", "ch="+sample("ladder_360p.mp4"), "--segment", "1s", "--part", "0")
	dir := filepath.Join(t.TempDir(), "pres")
	if out, err := exec.Command(bin, "package", "--quiet", sample("ladder_360p.mp4"), "-o", dir).CombinedOutput(); err != nil {
		t.Fatalf("reel package: %v\n%s", err, out)
	}
	vod := startOrigin(t, bin, dir)

	sampleCfg, err := os.ReadFile(sample("edge-paths.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("http://127.0.0.1:8080", vod, "http://127.0.0.1:8090", live).Replace(string(sampleCfg))
	if !strings.Contains(cfg, "url: "+vod) || !strings.Contains(cfg, "url: "+live) {
		t.Fatalf("samples/edge-paths.yaml no longer names the origins at :8080 and :8090:\n%s", sampleCfg)
	}
	cfgFile := writeConfig(t, "edge.yaml", cfg)
	_, base := startEdge(t, bin, "--config", cfgFile, "--cache-dir", t.TempDir())

	// The prefix is the edge's: the origin serves the presentation at its root only.
	if s := pathsStatus(t, vod+"/vod/master.m3u8"); s != http.StatusNotFound {
		t.Fatalf("reel origin answers /vod/master.m3u8 with %d: the test would not show the prefix stripped", s)
	}
	if s := pathsStatus(t, base+"/vod/master.m3u8"); s != http.StatusOK {
		t.Fatalf("edge /vod/master.m3u8: %d", s)
	}
	// No origin for other paths: no rule names one, and no origin is the default.
	if s := pathsStatus(t, base+"/master.m3u8"); s != http.StatusMisdirectedRequest {
		t.Errorf("edge /master.m3u8: %d, want 421 (no origin for it)", s)
	}

	// Players start once the channel's media playlist (through the edge) lists three segments.
	master := pathsBody(t, base+"/live/ch/master.m3u8")
	var media string
	for _, l := range strings.Split(master, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			u, _ := url.Parse(base + "/live/ch/master.m3u8")
			media = u.ResolveReference(&url.URL{Path: l}).String()
			break
		}
	}
	if media == "" {
		t.Fatalf("no media playlist in the live master:\n%s", master)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(pathsBody(t, media), "#EXTINF") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%s lists fewer than 3 segments after 30 s", media)
		}
		time.Sleep(200 * time.Millisecond) // polling interval of a bounded wait
	}

	// Live players report their position on the channel's timeline, which starts no earlier
	// than the MPD's availabilityStartTime: a case must play past where the live edge was
	// when it began, plus a second, so each live case runs alone, with its bound taken then.
	m, raw := fetchMPD(t, base+"/live/ch/manifest.mpd")
	if m == nil {
		t.Fatalf("no MPD through the edge:\n%s", raw)
	}
	ast, err := time.Parse(time.RFC3339Nano, string(m.AvailabilityStartTime))
	if err != nil {
		t.Fatalf("availabilityStartTime %q: %v", m.AvailabilityStartTime, err)
	}
	// One run of play.mjs per live case (its bound is taken as it starts), one for both VOD cases.
	for _, run := range [][]pathsCase{
		{{"hls.js live", "/live/ch/master.m3u8", "hls.js", 0, 40}},
		{{"dash.js live", "/live/ch/manifest.mpd", "dash.js", 0, 40}},
		{{"hls.js VOD", "/vod/master.m3u8", "hls.js", 3, 40}, {"dash.js VOD", "/vod/manifest.mpd", "dash.js", 3, 40}},
	} {
		for i := range run {
			if run[i].Play != 0 {
				continue
			}
			run[i].Play = time.Since(ast).Seconds() + 1
			if run[i].Player == "hls.js" {
				// hls.js's timeline starts at the first segment of the first playlist it loads
				// (not at the channel's media time zero, which is the loop's epoch): its live
				// edge is then what that playlist lists.
				run[i].Play = listedSeconds(t, pathsBody(t, media)) + 1
			}
		}
		res := runPlay(t, p.node, map[string]any{"chromium": p.chromium, "base": base, "cases": run, "libs": p.libs()})
		if len(res.Cases) != len(run) {
			t.Fatalf("%d cases reported, want %d", len(res.Cases), len(run))
		}
		for i, got := range res.Cases {
			c, p := run[i], got.Player
			if p == nil {
				t.Errorf("%s: no player state", c.Name)
				continue
			}
			t.Logf("%-12s %s: played to %.1f s (wanted %.1f s) in %.1f s, %d frames, %d warnings", c.Name, p.Library, p.Played, c.Play, got.Seconds, p.Frames, len(p.Warnings))
			if len(p.Errors) > 0 {
				t.Errorf("%s: player errors %q", c.Name, p.Errors)
			}
			if p.Played < c.Play || p.Frames < 30 {
				t.Errorf("%s: played to %.1f s, %d frames; want past %.1f s", c.Name, p.Played, p.Frames, c.Play)
			}
		}
	}
}

// pathsCase is a case of play.mjs's bare player page.
type pathsCase struct {
	Name    string  `json:"name"`
	URL     string  `json:"url"`
	Player  string  `json:"player"`
	Play    float64 `json:"play"`
	Timeout float64 `json:"timeout"`
}

// pathsStatus is the status of a GET of u.
func pathsStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// pathsBody is the body of a GET of u, which must answer 200.
func pathsBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return string(b)
}

// listedSeconds is the duration of the segments a media playlist lists (its #EXTINF values).
func listedSeconds(t *testing.T, playlist string) float64 {
	t.Helper()
	var total float64
	for _, l := range strings.Split(playlist, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "#EXTINF:"); ok {
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.Split(v, ",")[0], ","), 64)
			if err != nil {
				t.Fatalf("#EXTINF:%s: %v", v, err)
			}
			total += d
		}
	}
	return total
}
