package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/reelvideo/reel/internal/testkit"
)

// liveClearKeySeed is the key seed of TestBrowserLiveClearKey.
const liveClearKeySeed = "5eed5eed00112233445566778899aabb"

// liveClearKeyAdvance is how far past where it started the player must play: with a key per
// 2-second segment, at least three key rotations.
const liveClearKeyAdvance = 7

// seedKey derives key period k's KID or key from seed as `reel live -h` documents it:
// HMAC-SHA256(seed, label ‖ uint64be(k)), first 16 bytes. The test derives them itself, so a
// change of the derivation fails it.
func seedKey(t *testing.T, seedHex, label string, k uint64) []byte {
	t.Helper()
	seed, err := hex.DecodeString(seedHex)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, seed)
	m.Write([]byte(label))
	m.Write(binary.BigEndian.AppendUint64(nil, k))
	return m.Sum(nil)[:16]
}

// TestBrowserLiveClearKey: `reel live --encrypt cenc` (with parts) and cbcs (without) with
// --key-seed and --key-rotation 1 (2-second segments: a new key every segment, a new Period in
// the MPD each time), through `reel edge`, plays in headless Chromium with dash.js given every key period's
// ClearKey key: it plays liveClearKeyAdvance seconds past where it started — across at least
// two key rotations, counted from the Periods of the MPD (hls.js: from the key periods' init
// segments it switches to) — with frames decoded, no player and no console error, and dash.js
// opened a key session for each new KID. Given the keys of the first periods only, it stops
// at the first period whose key it lacks. hls.js (cenc) plays the HLS playlists across the
// rotations too, and Shaka Player (cenc and cbcs) the MPD, their
// ClearKey licenses answered by the driver; given wrong keys, Shaka Player does not play.
func TestBrowserLiveClearKey(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	node := testkit.RequireTool(t, "node")
	chromium := testkit.RequireTool(t, "chromium")
	vendor := requireUIModules(t)
	bin := buildReel(t)
	for _, scheme := range []string{"cenc", "cbcs"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			testLiveClearKey(t, node, chromium, vendor, bin, scheme)
		})
	}
}

func testLiveClearKey(t *testing.T, node, chromium, vendor, bin, scheme string) {
	started := time.Now()
	// cenc with LL-HLS parts and low-latency DASH (the default 0.5 s parts: the next period's
	// tags before its first part and preload hint, the segment in progress in the MPD); cbcs
	// without parts.
	part := map[string]string{"cenc": "500ms", "cbcs": "0"}[scheme]
	origin := startLive(t, bin, nil, "--loop", "k="+sample("ladder_360p.mp4"), "--segment", "2s", "--part", part,
		"--encrypt", scheme, "--key-seed", liveClearKeySeed, "--key-rotation", "1")
	_, base := startEdge(t, bin, "--origin", origin, "--cache-dir", t.TempDir())
	const mpdPath = "/live/k/manifest.mpd"

	// Wait (bounded) until the MPD, through the edge, has two key periods: two Periods, each
	// with its own default KID, the one this test derives from the seed.
	var first uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, raw := fetchMPD(t, base+mpdPath)
		if m != nil && len(m.Periods) >= 2 {
			first = periodIndex(t, m.Periods[0].Id)
			for _, p := range m.Periods {
				k := periodIndex(t, p.Id)
				kid := hex.EncodeToString(seedKey(t, liveClearKeySeed, "reel live kid", k))
				uuid := kid[0:8] + "-" + kid[8:12] + "-" + kid[12:16] + "-" + kid[16:20] + "-" + kid[20:]
				if !strings.Contains(periodXML(raw, p.Id), `cenc:default_KID="`+uuid+`"`) || !strings.Contains(raw, `value="`+scheme+`"`) {
					t.Fatalf("Period %s does not carry KID %s (%s):\n%s", p.Id, uuid, scheme, raw)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no MPD with two key periods through the edge in 30 s:\n%s", raw)
		}
		time.Sleep(250 * time.Millisecond) // poll interval: the condition is the MPD's content
	}

	// Every key period the player may meet: a few before the first listed (it may start back
	// in the window) to well past the test's end.
	// The first case has only the keys of the periods before first+missingFrom: the player,
	// starting near the live edge (a period or two after first), must stop at that period.
	// Six periods (12 s) leave room for Chromium's start on a loaded machine: at four, a player
	// started late (beside a CPU hog and the parallel tests) began past the missing period.
	const missingFrom = 6
	keys := func(below uint64) map[string]string {
		m := map[string]string{}
		for k := first - min(first, 15); k < below; k++ {
			m[base64.RawURLEncoding.EncodeToString(seedKey(t, liveClearKeySeed, "reel live kid", k))] =
				base64.RawURLEncoding.EncodeToString(seedKey(t, liveClearKeySeed, "reel live key", k))
		}
		return m
	}
	wrongKeys := keys(first + 60)
	for kid := range wrongKeys {
		wrongKeys[kid] = base64url(t, wrongClearKey)
	}
	cases := []map[string]any{
		{"name": "missing keys " + scheme, "url": mpdPath, "clearkeys": keys(first + missingFrom), "advance": 2 * liveClearKeyAdvance, "timeout": 40},
		{"name": "live " + scheme, "url": mpdPath, "clearkeys": keys(first + 60), "advance": liveClearKeyAdvance, "timeout": 60},
		// Shaka Player flattens the Periods into one timeline and asks the license server
		// for each new KID (the license server answers only the KIDs asked for).
		{"name": "Shaka Player " + scheme, "player": "shaka", "url": mpdPath,
			"clearkeys": keys(first + 60), "licenseAsked": true, "advance": liveClearKeyAdvance, "timeout": 60},
		// Given wrong keys for every KID, Shaka Player must not play at all.
		{"name": "wrong keys Shaka Player " + scheme, "player": "shaka", "url": mpdPath,
			"clearkeys": wrongKeys, "licenseAsked": true, "advance": liveClearKeyAdvance, "timeout": 10},
	}
	if scheme == "cenc" {
		// hls.js 1.7.4 with cbcs: at some key rotations (reproduced when the player starts a
		// period before a loop point) its ClearKey session for the new KID is bound to the
		// previous period's playlist key — hls.js matches the "encrypted" event's pssh to a
		// playlist key only for Widevine, PlayReady and FairPlay, and takes the first active
		// key otherwise — and Chromium reports the key "internal-error". The same stream plays
		// in dash.js, and through other rotations in hls.js.
		// The license server answers only the KIDs asked for: each key period's key comes
		// with a license request of its own.
		cases = append(cases, map[string]any{"name": "hls.js " + scheme, "player": "hls.js", "url": "/live/k/master.m3u8",
			"clearkeys": keys(first + 60), "licenseAsked": true, "advance": liveClearKeyAdvance, "timeout": 60})
	}
	var res clearKeyRun
	runClearKey(t, node, base, chromium, vendor, cases, 4*time.Minute, &res)
	// Key rotations are Period starts (key-period boundaries) in the MPD; HLS switches keys
	// at the same media times.
	m, raw := fetchMPD(t, base+mpdPath+"?dvr=1")
	if m == nil {
		t.Fatalf("DVR MPD:\n%s", raw)
	}
	for _, c := range res.Cases[1:] {
		s := c.State
		if strings.HasPrefix(c.Name, "wrong keys") {
			// A wrong key decrypts to noise: the decoder fails before the first frame.
			t.Logf("%s (%s): currentTime %.2f s, %d frames, %d license requests, errors %q", c.Name, s.Library, s.CurrentTime, s.Frames, c.LicenseRequests, s.Errors)
			if s.StartTime != nil || s.Frames > 0 || c.LicenseRequests == 0 {
				t.Errorf("%s: played (started %v) to %.2f s with %d frames, %d license requests; want no playback after a license", c.Name, s.StartTime != nil, s.CurrentTime, s.Frames, c.LicenseRequests)
			}
			continue
		}
		if len(s.Errors) > 0 || len(c.ConsoleErrors) > 0 {
			t.Errorf("%s: player errors %q, console errors %q", c.Name, s.Errors, c.ConsoleErrors)
		}
		if s.StartTime == nil {
			t.Errorf("%s: never played: currentTime %.2f, %d frames", c.Name, s.CurrentTime, s.Frames)
			continue
		}
		var crossed []string
		for _, p := range m.Periods {
			if at := time.Duration(*p.Start).Seconds(); at > *s.StartTime && at <= s.CurrentTime {
				crossed = append(crossed, p.Id)
			}
		}
		if c.Player == "hls.js" && len(s.Periods) > 0 {
			// hls.js's media timeline starts at its first playlist's first segment, not at the
			// channel's media time zero (the MPD's, 2025 for a looped channel: --loop-epoch):
			// the rotations it crossed are the key periods' init segments it switched to.
			crossed = s.Periods[1:]
		}
		t.Logf("%s (%s): played %.2f s → %.2f s, %d frames, across key periods %v; the player went through %v with %d keys, %d license requests",
			c.Name, s.Library, *s.StartTime, s.CurrentTime, s.Frames, crossed, s.Periods, s.Sessions, c.LicenseRequests)
		if len(crossed) < 2 {
			t.Errorf("%s: played from %.2f s to %.2f s: across %d key rotations %v, want at least 2", c.Name, *s.StartTime, s.CurrentTime, len(crossed), crossed)
		}
		if s.CurrentTime < *s.StartTime+liveClearKeyAdvance || s.Frames < 100 {
			t.Errorf("%s: played from %.2f s to %.2f s with %d frames; want %d s", c.Name, *s.StartTime, s.CurrentTime, s.Frames, liveClearKeyAdvance)
		}
		if s.Sessions < len(crossed) {
			t.Errorf("%s: %d key sessions for %d new KIDs", c.Name, s.Sessions, len(crossed))
		}
		if c.Player != "dash.js" && c.LicenseRequests < len(crossed) {
			t.Errorf("%s: %d license requests for %d new KIDs", c.Name, c.LicenseRequests, len(crossed))
		}
	}
	// Without the keys from period first+missingFrom on, playback stops there: the player
	// does use each period's own key.
	miss := res.Cases[0].State
	var stop float64
	for _, p := range m.Periods {
		if periodIndex(t, p.Id) == first+missingFrom {
			stop = time.Duration(*p.Start).Seconds()
		}
	}
	if miss.StartTime == nil {
		t.Fatalf("without the keys from key-%d on, the player did not play at all (it starts before that period)", first+missingFrom)
	}
	t.Logf("missing keys from key-%d (at %.2f s): played %.2f → %.2f s, %d frames, errors %q", first+missingFrom, stop, *miss.StartTime, miss.CurrentTime, miss.Frames, miss.Errors)
	// Judged by the frames decoded (the sample is 30 fps), not by currentTime: stalled at the
	// keyless period, dash.js's gap handling may move its clock on a little without decoding
	// anything (2 s once, over a 40 s wait, with 340 frames: exactly up to the period).
	if maxFrames := int((stop+0.5-*miss.StartTime)*30) + 15; stop == 0 || miss.Frames > maxFrames {
		t.Errorf("without the keys from key-%d (at %.2f s) on, the player played from %.2f to %.2f s: %d frames, want at most %d",
			first+missingFrom, stop, *miss.StartTime, miss.CurrentTime, miss.Frames, maxFrames)
	}
	t.Logf("took %s", time.Since(started).Round(time.Millisecond))
}

// fetchMPD gets and parses an MPD; nil (with the body) when it is not there yet.
func fetchMPD(t *testing.T, url string) (*mpd.MPD, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, string(b)
	}
	m, err := mpd.MPDFromBytes(b)
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, b)
	}
	return m, string(b)
}

// periodIndex reads the key period of a Period id "key-K".
func periodIndex(t *testing.T, id string) uint64 {
	t.Helper()
	k, err := strconv.ParseUint(strings.TrimPrefix(id, "key-"), 10, 64)
	if err != nil || !strings.HasPrefix(id, "key-") {
		t.Fatalf("Period id %q is not key-<period>", id)
	}
	return k
}

// periodXML is the text of the Period with id in raw.
func periodXML(raw, id string) string {
	i := strings.Index(raw, `<Period id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := raw[i:]
	if j := strings.Index(rest, "</Period>"); j >= 0 {
		return rest[:j]
	}
	return rest
}
