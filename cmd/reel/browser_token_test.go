package main

import (
	"bufio"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/token"
)

// TestBrowserToken: a presentation served by the real `reel origin` through the real `reel
// edge` with tokens required plays, unmodified, in hls.js, dash.js and Shaka Player (HLS and
// DASH) given the master's URL with its token in the query — the edge carries the token into
// the playlists and MPDs it sends — and in hls.js and dash.js given the path form
// (/tok/<token>/…). Every request the edge got carried a valid token (no token was refused,
// segments were served 200), and the origin never saw one.
func TestBrowserToken(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	p := requirePlayers(t)
	bin := buildReel(t)
	started := time.Now()
	dir := filepath.Join(t.TempDir(), "vod")
	code, _, stderr := runReel(t, "package", "--quiet", sample("ladder_480p.mp4"), sample("ladder_360p.mp4"), "-o", dir)
	if code != exitOK {
		t.Fatalf("reel package: exit %d\n%s", code, stderr)
	}
	origin := startOrigin(t, bin, dir)

	// A proxy in front of the origin records what reached it.
	target, _ := url.Parse(origin)
	var mu sync.Mutex
	var seen []string
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI()+" Cookie="+r.Header.Get("Cookie"))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	key := []byte("browser token test key, 32 byte")
	keyFile := filepath.Join(t.TempDir(), "k1.hex")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeConfig(t, "edge.yaml", "tokens:\n  keys:\n    k1: {key_file: "+keyFile+"}\n  require: true\n")
	edgeAddr, adminAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "edge", "--listen", edgeAddr, "--admin", adminAddr, "--origin", front.URL,
		"--config", cfgFile, "--cache-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "REEL_ADMIN_TOKEN=test")
	runUntilServing(t, "edge", cmd)
	base := "http://" + edgeAddr

	tok := token.Mint(token.Claims{Expires: time.Now().Add(time.Hour), ACL: []string{"/*"}}, "k1", key)
	q := "?token=" + url.QueryEscape(tok)
	pathForm := "/tok/" + url.PathEscape(tok)
	if status := httpStatus(t, base+"/master.m3u8"); status != http.StatusForbidden {
		t.Fatalf("the master without a token: %d, want 403", status)
	}
	rejectedBefore := tokenRejections(t, "http://"+adminAddr)

	type tcase struct {
		Name    string  `json:"name"`
		URL     string  `json:"url"`
		Player  string  `json:"player"`
		Play    float64 `json:"play"`
		Timeout float64 `json:"timeout"`
	}
	const play = 4
	cases := []tcase{
		{"hls.js, query token", "/master.m3u8" + q, "hls.js", play, 40},
		{"dash.js, query token", "/manifest.mpd" + q, "dash.js", play, 40},
		{"Shaka Player HLS, query token", "/master.m3u8" + q, "shaka", play, 40},
		{"Shaka Player DASH, query token", "/manifest.mpd" + q, "shaka", play, 40},
		{"hls.js, path form", pathForm + "/master.m3u8", "hls.js", play, 40},
		{"dash.js, path form", pathForm + "/manifest.mpd", "dash.js", play, 40},
	}
	res := runPlay(t, p.node, map[string]any{"chromium": p.chromium, "base": base, "cases": cases, "libs": p.libs()})
	if len(res.Cases) != len(cases) {
		t.Fatalf("%d cases reported, want %d", len(res.Cases), len(cases))
	}
	for i, got := range res.Cases {
		c, p := cases[i], got.Player
		if p == nil {
			t.Errorf("%s: no player state", c.Name)
			continue
		}
		t.Logf("%-32s %s: played %.1f s in %.1f s, %d frames, %d warnings", c.Name, p.Library, p.Played, got.Seconds, p.Frames, len(p.Warnings))
		if len(p.Warnings) > 0 {
			t.Logf("  warnings: %q", p.Warnings)
		}
		if len(p.Errors) > 0 {
			t.Errorf("%s: player errors %q", c.Name, p.Errors)
		}
		if p.Played < play || p.Frames < 30 {
			t.Errorf("%s: played %.1f s, %d frames; want past %d s", c.Name, p.Played, p.Frames, play)
		}
	}
	if n := tokenRejections(t, "http://"+adminAddr) - rejectedBefore; n != 0 {
		t.Errorf("the edge refused %v tokens during playback: a player asked for something without its token", n)
	}
	mu.Lock()
	defer mu.Unlock()
	segments := 0
	for _, s := range seen {
		if strings.Contains(s, "token") || strings.Contains(s, "/tok/") {
			t.Errorf("the origin saw a token: %s", s)
		}
		if strings.HasSuffix(strings.Fields(s)[0], ".m4s") {
			segments++
		}
	}
	if segments == 0 {
		t.Errorf("the origin served no segments through the edge: %q", seen)
	}
	t.Logf("the origin saw %d requests (%d segments); took %s", len(seen), segments, time.Since(started).Round(time.Second))
}

// tokenRejections is the sum of reel_edge_token_rejected_total over its reasons.
func tokenRejections(t *testing.T, admin string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "reel_edge_token_rejected_total{") {
			continue
		}
		found = true
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += f
	}
	if !found {
		t.Fatalf("no reel_edge_token_rejected_total in %s/metrics", admin)
	}
	return sum
}

func httpStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
