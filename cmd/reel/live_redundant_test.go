package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Redundant live origins (issue 17): two `reel live --loop` processes on the same files, started
// at different moments, are at the same place of the loop at the same time (the loop is
// anchored at --loop-epoch) and publish the same bytes under the same URLs, so an edge's origin
// pool can switch between them mid-stream.

var redundantSegRe = regexp.MustCompile(`(?m)^#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(?:#EXT-X-PART:.*\n)*#EXTINF:[0-9.]+,\n(seg_\d+\.m4s)$`)

// startRedundantLive starts `reel live --loop` on ladder_360p.mp4 with 2 s segments (its
// keyframes are every 2 s) at addr, keeping its segments in dir.
func startRedundantLive(t *testing.T, bin, addr, dir string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd, _ := startLiveCmd(t, bin, nil, append([]string{"--loop", "ch=" + sample("ladder_360p.mp4"), "--segment", "2s", "--listen", addr, "--dir", dir}, extra...)...)
	return cmd
}

// listedSegments polls base's playlist of track until it lists n complete segments and returns
// them (URI → PDT).
func listedSegments(t *testing.T, base, track string, n int) (uris []string, pdt map[string]string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, body, _ := fetch(t, base+"/live/ch/"+track+"/index.m3u8")
		ms := redundantSegRe.FindAllStringSubmatch(body, -1)
		if len(ms) >= n {
			pdt = map[string]string{}
			for _, m := range ms {
				uris = append(uris, m[2])
				pdt[m[2]] = m[1]
			}
			return uris, pdt
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lists %d segments of %s after 60 s, want %d:\n%s", base, len(ms), track, n, body)
		}
		time.Sleep(200 * time.Millisecond) // the poll interval of a bounded wait
	}
}

// compareOrigins fetches every segment b lists for each track (and each track's init segment)
// from a and b, and fails unless a has it too with the same bytes, ETag and PDT; it returns how
// many segments matched.
func compareOrigins(t *testing.T, a, b string, n int) int {
	t.Helper()
	same := 0
	for _, track := range []string{"video_360p", "audio"} {
		uris, bPDT := listedSegments(t, b, track, n)
		// A restarted a makes the segments it missed as it starts: wait (bounded) until it lists
		// b's newest, then compare what both list.
		var aPDT map[string]string
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, aPDT = listedSegments(t, a, track, n)
			if aPDT[uris[len(uris)-1]] != "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not list %s/%s, which %s lists, after 60 s", a, track, uris[len(uris)-1], b)
			}
			time.Sleep(200 * time.Millisecond) // the poll interval of a bounded wait
		}
		uris = slices.DeleteFunc(uris, func(u string) bool { return aPDT[u] == "" })
		for _, uri := range append([]string{"init.mp4"}, uris...) {
			ca, ba, ea := getETag(t, a+"/live/ch/"+track+"/"+uri)
			cb, bb, eb := getETag(t, b+"/live/ch/"+track+"/"+uri)
			if ca != http.StatusOK || cb != http.StatusOK {
				t.Errorf("%s/%s: %d from a, %d from b", track, uri, ca, cb)
				continue
			}
			if ba != bb || ea != eb || ea == "" {
				t.Errorf("%s/%s: a sends %d bytes, ETag %s; b %d bytes, ETag %s (same bytes: %v)", track, uri, len(ba), ea, len(bb), eb, ba == bb)
				continue
			}
			if uri != "init.mp4" {
				if aPDT[uri] != "" && aPDT[uri] != bPDT[uri] {
					t.Errorf("%s/%s: PDT %s on a, %s on b", track, uri, aPDT[uri], bPDT[uri])
				}
				same++
			}
		}
	}
	return same
}

// getETag GETs u and returns the status, body and ETag.
func getETag(t *testing.T, u string) (int, string, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("ETag")
}

// TestLiveRedundantOrigins: two `reel live --loop` processes started seconds apart publish the
// same segments (and init segments) under the same URLs, byte for byte, with the same ETags
// and PDTs, and the same MPD availabilityStartTime.
func TestLiveRedundantOrigins(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	bin := buildReel(t)
	a := "http://" + freeAddr(t)
	startRedundantLive(t, bin, strings.TrimPrefix(a, "http://"), t.TempDir())
	first, _ := listedSegments(t, a, "video_360p", 2) // a has run a few seconds
	b := "http://" + freeAddr(t)
	startRedundantLive(t, bin, strings.TrimPrefix(b, "http://"), t.TempDir())
	if n := compareOrigins(t, a, b, 3); n < 6 {
		t.Errorf("%d segments compared, want 6 at least", n)
	}
	if later, _ := listedSegments(t, b, "video_360p", 1); later[0] <= first[0] && len(later[0]) == len(first[0]) {
		t.Errorf("b's first segment %s is not after a's %s: the two did not start apart", later[0], first[0])
	}
	am, _ := fetchMPD(t, a+"/live/ch/manifest.mpd")
	bm, _ := fetchMPD(t, b+"/live/ch/manifest.mpd")
	if am == nil || bm == nil || am.AvailabilityStartTime != bm.AvailabilityStartTime || am.AvailabilityStartTime == "" {
		t.Errorf("availabilityStartTime differs: %v / %v", am, bm)
	}
}

// TestLiveBackfill: `reel live --backfill` lists a whole live window (30 s: 15 segments of
// 2 s) dated from before it started, and a second instance started later lists the same window
// as the first — the same media sequence — with the same bytes under the same URLs; without
// the flag a fresh instance's first segment is dated after its start. Given no anchored loop,
// the flag is a usage error.
func TestLiveBackfill(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	bin := buildReel(t)
	// firstDate starts an instance and returns the date of the first segment its playlist
	// lists once it lists n, and when it started.
	firstDate := func(base string, n int, extra ...string) (time.Time, time.Time) {
		started := time.Now()
		startRedundantLive(t, bin, strings.TrimPrefix(base, "http://"), t.TempDir(), extra...)
		uris, pdt := listedSegments(t, base, "video_360p", n)
		d, err := time.Parse(time.RFC3339Nano, pdt[uris[0]])
		if err != nil {
			t.Fatal(err)
		}
		return d, started
	}
	a := "http://" + freeAddr(t)
	if first, started := firstDate(a, 14, "--backfill"); first.After(started.Add(-28 * time.Second)) {
		t.Errorf("with --backfill the window starts at %s, %s after the start: want a window (30 s) before it", first, first.Sub(started))
	}
	plain := "http://" + freeAddr(t)
	if first, started := firstDate(plain, 1); first.Before(started.Add(-time.Second)) {
		t.Errorf("without --backfill the window starts at %s, %s before the start: want the next grid line", first, started.Sub(first))
	}
	b := "http://" + freeAddr(t)
	firstDate(b, 14, "--backfill")
	// The same window: b's first segment is a's, read just before or just after (a segment
	// may end between two reads; bounded retries).
	same := false
	for range 5 {
		before, _ := listedSegments(t, a, "video_360p", 1)
		mid, _ := listedSegments(t, b, "video_360p", 1)
		after, _ := listedSegments(t, a, "video_360p", 1)
		if same = mid[0] == before[0] || mid[0] == after[0]; same {
			break
		}
		t.Logf("a's window starts at %s then %s, b's at %s", before[0], after[0], mid[0])
	}
	if !same {
		t.Error("b's live window never started where a's did")
	}
	if n := compareOrigins(t, a, b, 3); n < 28 {
		t.Errorf("%d segments compared, want 28 at least (two windows' worth, video and audio)", n)
	}
	code, _, stderr := runReel(t, "live", "--backfill", "--loop", "x="+sample("ladder_360p.mp4"), "--loop-epoch", "none",
		"--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--admin", "")
	if code != exitUsage || !strings.Contains(stderr, "--backfill") {
		t.Errorf("--backfill with --loop-epoch none: exit %d, %q; want %d naming the flag", code, stderr, exitUsage)
	}
}

// TestBrowserLiveRedundantFailover: a `reel edge` whose origin is a pool of two `reel live
// --loop` processes (urls:); hls.js, then dash.js, play the channel through the edge in
// Chromium, and one of the two origins is killed (SIGKILL) while each plays: the player plays
// on, past a position 12 s after the kill, without an error. Between the cases the first
// victim is restarted on its folder and, once it serves again, publishes what the survivor
// publishes (the restart continues the anchored timeline); the second case kills the other.
func TestBrowserLiveRedundantFailover(t *testing.T) {
	// Not parallel: see sequentialBrowserTests.
	p := requirePlayers(t)
	bin := buildReel(t)

	addrs := []string{freeAddr(t), freeAddr(t)}
	dirs := []string{t.TempDir(), t.TempDir()}
	procs := []*exec.Cmd{startRedundantLive(t, bin, addrs[0], dirs[0]), nil}
	listedSegments(t, "http://"+addrs[0], "video_360p", 1)
	procs[1] = startRedundantLive(t, bin, addrs[1], dirs[1])

	cfgFile := writeConfig(t, "edge.yaml", fmt.Sprintf(`origins:
  - name: live
    urls: [http://%s, http://%s]
    health_check: {path: /live/time, interval: 500ms, timeout: 1s}
rules:
  - path_prefix: /live/
    origin: live
`, addrs[0], addrs[1]))
	accessLog := filepath.Join(t.TempDir(), "access.log") // printed if a case fails
	_, edge := startEdge(t, bin, "--config", cfgFile, "--cache-dir", t.TempDir(), "--access-log-path", accessLog)
	listedSegments(t, edge, "video_360p", 3)
	if n := compareOrigins(t, "http://"+addrs[0], "http://"+addrs[1], 3); n < 6 {
		t.Fatalf("%d segments compared, want 6 at least", n)
	}

	const after, then = 4.0, 12.0 // kill once the player has played 4 s; it must play 12 s more
	for i, c := range []struct{ name, url, player string }{
		{"hls.js live", "/live/ch/master.m3u8", "hls.js"},
		{"dash.js live", "/live/ch/manifest.mpd", "dash.js"},
	} {
		victim := i // the first case kills the first origin, the second the other
		markFile := filepath.Join(t.TempDir(), "marked")
		killed := make(chan string, 1)
		go func() {
			// Kill the victim once play.mjs has marked (bounded: the case's own timeout).
			deadline := time.Now().Add(90 * time.Second)
			for {
				if _, err := os.Stat(markFile); err == nil {
					procs[victim].Process.Kill()
					killed <- time.Now().Format("15:04:05.000")
					return
				}
				if time.Now().After(deadline) {
					killed <- ""
					return
				}
				time.Sleep(50 * time.Millisecond) // the poll interval of a bounded wait
			}
		}()
		run := []map[string]any{{"name": c.name, "url": c.url, "player": c.player, "play": 1e15, "timeout": 90,
			"mark": map[string]any{"after": after, "then": then, "file": markFile}}}
		var res struct {
			Cases []struct {
				Seconds  float64      `json:"seconds"`
				Player   *playerState `json:"player"`
				MarkedAt *float64     `json:"markedAt"`
			} `json:"cases"`
		}
		runPlayInto(t, p.node, map[string]any{"chromium": p.chromium, "base": edge, "cases": run, "libs": p.libs()}, &res)
		at := <-killed
		if at == "" {
			t.Fatalf("%s: play.mjs never marked: no origin was killed", c.name)
		}
		procs[victim].Wait()
		if len(res.Cases) != 1 || res.Cases[0].Player == nil || res.Cases[0].MarkedAt == nil {
			t.Fatalf("%s: no player state or mark: %+v", c.name, res.Cases)
		}
		p, mark := res.Cases[0].Player, *res.Cases[0].MarkedAt
		var atMark playerState // the player's state when it was marked, just before the kill
		if b, err := os.ReadFile(markFile); err != nil || json.Unmarshal(b, &atMark) != nil {
			t.Fatalf("%s: mark file: %v", c.name, err)
		}
		t.Logf("%s: %s; origin %d killed at %s, marked at %.1f s, played to %.1f s in %.1f s, %d frames (%d after the mark); warnings before the mark %q, after %q",
			c.name, p.Library, victim, at, mark, p.Played, res.Cases[0].Seconds, p.Frames, p.Frames-atMark.Frames, atMark.Warnings, p.Warnings[len(atMark.Warnings):])
		if len(p.Errors) > 0 || p.Played < mark+then || p.Frames-atMark.Frames < 60 {
			// What the player loaded and what the edge answered, for the failure's report.
			b, _ := os.ReadFile(accessLog)
			t.Logf("%s: events:\n%s\nedge access log:\n%s", c.name, strings.Join(p.Events, "\n"), b)
		}
		if len(p.Errors) > 0 {
			t.Errorf("%s: player errors after the kill: %q", c.name, p.Errors)
		}
		if p.Played < mark+then {
			t.Errorf("%s: played to %.1f s, want past %.1f s (%.0f s after the kill)", c.name, p.Played, mark+then, then)
		}
		// It decoded video after the kill, not only moved its clock (over holes in its buffer).
		if p.Frames-atMark.Frames < 60 {
			t.Errorf("%s: %d frames decoded after the kill, want 60 at least", c.name, p.Frames-atMark.Frames)
		}
		if i == 0 {
			// The victim restarts on its folder and port: it continues the anchored timeline.
			procs[0] = startRedundantLive(t, bin, addrs[0], dirs[0])
			if n := compareOrigins(t, "http://"+addrs[0], "http://"+addrs[1], 3); n < 6 {
				t.Errorf("after the restart: %d segments compared, want 6 at least", n)
			}
		}
	}
}
