package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/ui"
	"github.com/reelvideo/reel/internal/testkit"
)

// The browser tests drive edge/ui/e2e/play.mjs (playwright-core, from edge/ui/node_modules)
// over `reel demo`'s page in Debian's headless Chromium.
var (
	uiDir          = filepath.Join("..", "..", "edge", "ui")
	screenshotsDir = filepath.Join("..", "..", "samples", "screenshots")
)

// updateScreenshotsEnv, set to 1, makes TestBrowser refresh the committed screenshots in
// samples/screenshots/ (the README shows them); otherwise they go to a temporary folder, so
// that a test run never rewrites committed files.
const updateScreenshotsEnv = "REEL_UPDATE_SCREENSHOTS"

// checkScreenshots fails the test when one of names is missing from shots, or when the
// committed screenshots changed although no refresh was asked for.
func checkScreenshots(t *testing.T, shots string, committed map[string]string, names ...string) {
	t.Helper()
	for _, name := range names {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s not written in %s: %v", name, shots, err)
		}
	}
	if os.Getenv(updateScreenshotsEnv) == "1" {
		return
	}
	if now := fileStamps(t, screenshotsDir); !maps.Equal(now, committed) {
		t.Errorf("the committed screenshots in %s changed during the test (%v → %v); only %s=1 may rewrite them",
			screenshotsDir, committed, now, updateScreenshotsEnv)
	}
}

// fileStamps is the size and modification time of every file in dir, by name.
func fileStamps(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	stamps := map[string]string{}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			stamps[e.Name()] = fmt.Sprintf("%d bytes, %s", fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		}
	}
	return stamps
}

// screenshotFolder is where TestBrowser writes its screenshots: samples/screenshots/ when
// asked to refresh them, else a temporary folder.
func screenshotFolder(t *testing.T) string {
	t.Helper()
	if os.Getenv(updateScreenshotsEnv) != "1" {
		return t.TempDir()
	}
	dir, err := filepath.Abs(screenshotsDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("refreshing the screenshots in %s", dir)
	return dir
}

// latencyTargets bound how far behind the wall clock the frame on screen may be, through the
// edge, for the demo's channel (2 s segments, 0.5 s parts): HLS players hold back three target
// durations (HOLD-BACK 6 s) plus the segment being made; LL-HLS players PART-HOLD-BACK (1.5 s)
// plus the part being made; dash.js steers to the MPD's ServiceDescription latency target
// (3.5 s, manifest.latencyTargets; measured 3.7–3.8 s). Each with room for a player that starts
// a little behind and a busy machine (hls.js in low-latency mode measured 3.75 s, and drifted
// from 4.2 to 5.06 s while dropping frames on a machine loaded six times over its cores).
var latencyTargets = map[string]float64{"hls": 10, "llhls": 5.5, "dash": 6}

// playSeconds is how much media each case must play.
const playSeconds = 5.5

// requireShaka returns Shaka Player's compiled library in vendor (edge/ui/node_modules); skipped
// without it, except in CI where make ui must have installed it.
func requireShaka(t *testing.T, vendor string) string {
	t.Helper()
	f := filepath.Join(vendor, "shaka-player", "dist", "shaka-player.compiled.js")
	if _, err := os.Stat(f); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: Shaka Player (make ui): %v", err)
		}
		t.Skipf("no Shaka Player in %s: run make ui", vendor)
	}
	return f
}

// requireUIModules returns edge/ui/node_modules when `make ui` installed it (with the player
// libraries and playwright-core); skipped without it, except in CI where it must be there.
func requireUIModules(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(uiDir, "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	err = ui.CheckVendor(dir)
	if err == nil {
		if _, err = os.Stat(filepath.Join(dir, "playwright-core", "package.json")); err != nil {
			err = fmt.Errorf("no playwright-core in %s (make ui)", dir)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: %v", err)
		}
		t.Skip(err)
	}
	return dir
}

// browserCase is one playback of play.mjs's config.
type browserCase struct {
	Name       string  `json:"name"`
	Path       string  `json:"path"`
	Play       float64 `json:"play"`
	Timeout    float64 `json:"timeout"`
	Screenshot string  `json:"screenshot,omitempty"`
	format     string
	live       bool
}

// playerState is window.reel.player as play.mjs reports it.
type playerState struct {
	Presentation string    `json:"presentation"`
	Format       string    `json:"format"`
	Library      string    `json:"library"`
	Played       float64   `json:"played"`
	Frames       int       `json:"frames"`
	Dropped      int       `json:"dropped"`
	Errors       []string  `json:"errors"`
	Warnings     []string  `json:"warnings"`
	Latency      *float64  `json:"latency"`
	Latencies    []float64 `json:"latencies"`
	Buffer       float64   `json:"buffer"`
	// Events is what the player loaded and what the video element did, in order (play.mjs):
	// fragments, parts, playlist and manifest updates, stalls and seeks.
	Events    []string `json:"events"`
	Rendition *struct {
		Width   int     `json:"width"`
		Height  int     `json:"height"`
		Bitrate float64 `json:"bitrate"`
	} `json:"rendition"`
}

type statusShown struct {
	HitRatio          string   `json:"hitRatio"`
	HitRatioValue     string   `json:"hitRatioValue"`
	ByteHitRatio      string   `json:"byteHitRatio"`
	ByteHitRatioValue string   `json:"byteHitRatioValue"`
	Offload           string   `json:"offload"`
	OffloadValue      string   `json:"offloadValue"`
	Memory            string   `json:"memory"`
	Disk              string   `json:"disk"`
	Requests          int64    `json:"requests"`
	Hits              int64    `json:"hits"`
	CacheBytes        int64    `json:"cacheBytes"`
	OriginBytes       int64    `json:"originBytes"`
	OriginRequests    int64    `json:"originRequests"`
	Top               []string `json:"top"`
	ConsoleErrors     []string `json:"consoleErrors"`
}

type playResult struct {
	Browser string  `json:"browser"`
	Seconds float64 `json:"seconds"`
	Fatal   string  `json:"fatal"`
	Cases   []struct {
		Name          string       `json:"name"`
		Seconds       float64      `json:"seconds"`
		Player        *playerState `json:"player"`
		ConsoleErrors []string     `json:"consoleErrors"`
	} `json:"cases"`
	Status *statusShown `json:"status"`
}

// runPlay runs play.mjs with cfg and returns what it reported.
func runPlay(t *testing.T, node string, cfg map[string]any) playResult {
	t.Helper()
	var res playResult
	runPlayInto(t, node, cfg, &res)
	if res.Fatal != "" {
		t.Fatalf("play.mjs: %s", res.Fatal)
	}
	return res
}

// runPlayInto runs play.mjs with cfg and decodes its report into res (a test's own shape of
// it), failing the test when play.mjs says it failed.
func runPlayInto(t *testing.T, node string, cfg map[string]any, res any) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(t.TempDir(), "play.json")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(uiDir, "e2e", "play.mjs"), cfgFile)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	t.Logf("play.mjs (%s):\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		t.Fatalf("play.mjs: %v", err)
	}
	if err := json.Unmarshal(out, res); err != nil {
		t.Fatalf("play.mjs output %q: %v", out, err)
	}
	var fatal struct {
		Fatal string `json:"fatal"`
	}
	if json.Unmarshal(out, &fatal) == nil && fatal.Fatal != "" {
		t.Fatalf("play.mjs: %s", fatal.Fatal)
	}
}

// edgeCounters are the /metrics series the status page's figures are made from.
type edgeCounters struct{ requests, hits, cacheBytes, originBytes, originRequests int64 }

func scrapeEdge(t *testing.T, admin, token string) edgeCounters {
	t.Helper()
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c edgeCounters
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		f, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		v, name := int64(f), line[:i]
		switch {
		case strings.HasPrefix(name, "reel_edge_requests_total{"):
			c.requests += v
			if name == `reel_edge_requests_total{cache="hit"}` || name == `reel_edge_requests_total{cache="stale"}` {
				c.hits += v
			}
		case name == `reel_edge_response_bytes_total{source="cache"}`:
			c.cacheBytes = v
		case name == `reel_edge_response_bytes_total{source="origin"}`:
			c.originBytes = v
		case name == "reel_edge_origin_requests_total":
			c.originRequests = v
		}
	}
	return c
}

// TestBrowser: `reel demo` played in headless Chromium through its edge — VOD HLS, VOD DASH,
// single-file HLS (byte ranges), live HLS, LL-HLS and live DASH, one after the other in one
// browser: each plays past playSeconds with frames decoded and no player error, live within
// its latency target. Then the status page shows a non-zero hit ratio, and its figures are
// /metrics' counters. Screenshots of both pages go to a temporary folder, or to
// samples/screenshots/ with REEL_UPDATE_SCREENSHOTS=1.
func TestBrowser(t *testing.T) {
	// Not t.Parallel(): see sequentialBrowserTests in parallel_test.go.
	node := testkit.RequireTool(t, "node")
	chromium := testkit.RequireTool(t, "chromium")
	vendor := requireUIModules(t)
	started := time.Now()
	bin := buildReel(t)
	t.Logf("built in %s", time.Since(started).Round(time.Millisecond))
	edgeAddr, originAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	const token = "browser-test"
	cmd := exec.Command(bin, "demo", "--samples", sample(""), "--dir", t.TempDir(),
		"--listen", edgeAddr, "--origin-listen", originAddr, "--admin", adminAddr)
	cmd.Env = append(os.Environ(), "REEL_ADMIN_TOKEN="+token, demoVendorEnv+"="+vendor)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	out := bufio.NewReader(stdout)
	var printed strings.Builder
	for {
		line, err := out.ReadString('\n')
		printed.WriteString(line)
		if err != nil {
			t.Fatalf("reel demo did not start:\n%s", printed.String())
		}
		if strings.Contains(line, "Ctrl-C stops") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	t.Logf("demo up after %s", time.Since(started).Round(time.Millisecond))
	base := "http://" + edgeAddr
	if !strings.Contains(printed.String(), base+"/_reel/") {
		t.Errorf("reel demo does not print the page's URL:\n%s", printed.String())
	}

	var list struct {
		Presentations []ui.Presentation `json:"presentations"`
		Vendor        bool              `json:"vendor"`
	}
	resp, err := http.Get(base + "/_reel/api/presentations")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || !list.Vendor {
		t.Fatalf("presentations: %+v, %v", list, err)
	}
	byPath := func(prefix string) ui.Presentation {
		for _, p := range list.Presentations {
			if strings.HasPrefix(p.HLS, prefix) {
				return p
			}
		}
		t.Fatalf("no presentation at %s in %+v", prefix, list.Presentations)
		return ui.Presentation{}
	}
	vod, single, live := byPath("/vod/"), byPath("/vod-single/"), byPath("/live/")
	if vod.Kind != ui.VOD || single.Kind != ui.VOD || live.Kind != ui.Live || !live.LowLatency {
		t.Fatalf("presentations: %+v", list.Presentations)
	}
	shots := screenshotFolder(t)
	committed := fileStamps(t, screenshotsDir)
	t.Cleanup(func() { checkScreenshots(t, shots, committed, "player.png", "status.png") })
	var cases []browserCase
	for _, c := range []struct {
		name   string
		p      ui.Presentation
		format string
		shot   string
	}{
		{"VOD HLS", vod, "hls", ""},
		{"VOD DASH", vod, "dash", ""},
		{"single-file HLS (byte ranges)", single, "hls", ""},
		{"live HLS", live, "hls", ""},
		{"LL-HLS", live, "llhls", "player.png"},
		{"live DASH", live, "dash", ""},
	} {
		bc := browserCase{Name: c.name, Path: "/_reel/?" + url.Values{"p": {c.p.Name}, "f": {c.format}}.Encode(),
			Play: playSeconds, Timeout: 30, format: c.format, live: c.p.Kind == ui.Live}
		if c.shot != "" {
			bc.Screenshot = filepath.Join(shots, c.shot)
		}
		cases = append(cases, bc)
	}

	res := runPlay(t, node, map[string]any{"chromium": chromium, "base": base, "cases": cases})
	if len(res.Cases) != len(cases) {
		t.Fatalf("%d cases reported, want %d", len(res.Cases), len(cases))
	}
	for i, got := range res.Cases {
		c, p := cases[i], got.Player
		if p == nil {
			t.Errorf("%s: the page has no player state", c.Name)
			continue
		}
		lat := "-"
		if len(p.Latencies) > 0 {
			lat = fmt.Sprintf("%.2f–%.2f s", slices.Min(p.Latencies), slices.Max(p.Latencies))
		}
		rend := "-"
		if p.Rendition != nil {
			rend = fmt.Sprintf("%dp at %.0f kbit/s", p.Rendition.Height, p.Rendition.Bitrate/1000)
		}
		t.Logf("%-30s %s: played %.1f s in %.1f s, %d frames (%d dropped), %s, buffer %.1f s, latency %s, %d warnings",
			c.Name, p.Library, p.Played, got.Seconds, p.Frames, p.Dropped, rend, p.Buffer, lat, len(p.Warnings))
		if len(p.Warnings) > 0 {
			t.Logf("  warnings: %q", p.Warnings)
		}
		if len(p.Errors) > 0 {
			t.Errorf("%s: player errors %q", c.Name, p.Errors)
		}
		if p.Played < playSeconds || p.Frames < 60 {
			t.Errorf("%s: played %.1f s, %d frames decoded; want past %.1f s", c.Name, p.Played, p.Frames, playSeconds)
		}
		if p.Format != c.format {
			t.Errorf("%s: the page played %q", c.Name, p.Format)
		}
		for _, e := range got.ConsoleErrors {
			t.Errorf("%s: console error %q", c.Name, e)
		}
		if c.live {
			target := latencyTargets[c.format]
			if len(p.Latencies) == 0 {
				t.Errorf("%s: no latency measured", c.Name)
			} else if m := slices.Max(p.Latencies); m > target {
				t.Errorf("%s: latency up to %.2f s, target %.0f s (samples %v)", c.Name, m, target, p.Latencies)
			}
		}
	}

	// The status page, with no player running: its figures are /metrics' counters between a
	// scrape before and one after it (the same, as nothing plays).
	before := scrapeEdge(t, "http://"+adminAddr, token)
	st := runPlay(t, node, map[string]any{"chromium": chromium, "base": base,
		"status": map[string]any{"path": "/_reel/status", "screenshot": filepath.Join(shots, "status.png")}}).Status
	after := scrapeEdge(t, "http://"+adminAddr, token)
	if st == nil {
		t.Fatal("no status reported")
	}
	t.Logf("status page: hit ratio %s, byte hit ratio %s, origin offload %s, memory %s, disk %s; %d requests, %d hits, %d origin requests; top objects %q",
		st.HitRatio, st.ByteHitRatio, st.Offload, st.Memory, st.Disk, st.Requests, st.Hits, st.OriginRequests, st.Top)
	if len(st.Top) == 0 {
		t.Error("no top objects after playback")
	}
	shown := edgeCounters{st.Requests, st.Hits, st.CacheBytes, st.OriginBytes, st.OriginRequests}
	for _, f := range []struct {
		name               string
		got, before, after int64
	}{
		{"requests", shown.requests, before.requests, after.requests},
		{"hits", shown.hits, before.hits, after.hits},
		{"bytes from cache", shown.cacheBytes, before.cacheBytes, after.cacheBytes},
		{"bytes from origin", shown.originBytes, before.originBytes, after.originBytes},
		{"origin requests", shown.originRequests, before.originRequests, after.originRequests},
	} {
		if f.got < f.before || f.got > f.after {
			t.Errorf("status page %s = %d, /metrics %d before and %d after", f.name, f.got, f.before, f.after)
		}
	}
	// What the tiles show is what those counters give.
	for _, f := range []struct {
		name, text, value string
		want              float64
	}{
		{"hit ratio", st.HitRatio, st.HitRatioValue, float64(shown.hits) / float64(shown.requests)},
		{"byte hit ratio", st.ByteHitRatio, st.ByteHitRatioValue, float64(shown.cacheBytes) / float64(shown.cacheBytes+shown.originBytes)},
		{"origin offload", st.Offload, st.OffloadValue, 1 - float64(shown.originRequests)/float64(shown.requests)},
	} {
		v, err := strconv.ParseFloat(f.value, 64)
		pct, perr := strconv.ParseFloat(strings.TrimSuffix(f.text, "%"), 64)
		if err != nil || perr != nil || math.Abs(v-f.want) > 1e-9 || math.Abs(pct-100*f.want) > 0.05+1e-9 {
			t.Errorf("status page %s: shows %q (%s), counters give %.4f", f.name, f.text, f.value, f.want)
		}
	}
	if st.Hits == 0 || st.HitRatio == "0.0%" {
		t.Errorf("hit ratio after playback: %s (%d hits)", st.HitRatio, st.Hits)
	}
	for _, e := range st.ConsoleErrors {
		t.Errorf("status page: console error %q", e)
	}
	t.Logf("browser tests took %s (Chromium %s; the six playbacks %.1f s)", time.Since(started).Round(time.Second), res.Browser, res.Seconds)
}
