package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/internal/testkit"
)

// TestLiveCPIXBad: reel live --cpix with a document it cannot use, or flags out of place:
// one line (naming the document when it is the document's fault), exit 1 (2 for usage), no
// key in it, and nothing published — the channel's folder is not even made.
func TestLiveCPIXBad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.cpix.xml", testkit.LiveCPIX{}.Document(0, 1, 2))
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"malformed", []string{"--cpix", write("malformed.xml", testkit.LiveCPIX{}.Document(0, 1)[:300]), "--key-rotation", "2"}, exitFailure, "malformed XML"},
		{"wrong key length", []string{"--cpix", write("short.xml", testkit.LiveCPIX{KeyBytes: 8}.Document(0, 1)), "--key-rotation", "2"}, exitFailure, "key is 8 bytes, want 16"},
		{"periods not contiguous", []string{"--cpix", write("gap.xml", testkit.LiveCPIX{}.Document(0, 1, 3)), "--key-rotation", "2"}, exitFailure, "not contiguous: index 3"},
		{"no key for audio", []string{"--cpix", write("noaudio.xml", testkit.LiveCPIX{NoAudio: true}.Document(0, 1)), "--key-rotation", "2"}, exitFailure, "no ContentKeyUsageRule gives a key for a audio track"},
		{"timed periods", []string{"--cpix", write("timed.xml", testkit.LiveCPIX{Timed: true}.Document(0, 1)), "--key-rotation", "2"}, exitFailure, "by @index"},
		{"periods without rotation", []string{"--cpix", good}, exitFailure, "--key-rotation N"},
		{"missing file", []string{"--cpix", filepath.Join(dir, "none.xml"), "--key-rotation", "2"}, exitFailure, "none.xml"},
		{"with a seed", []string{"--cpix", good, "--key-seed", "000102030405060708090a0b0c0d0e0f", "--key-rotation", "2"}, exitUsage, "cannot go with --cpix"},
		{"token file for a file", []string{"--cpix", good, "--cpix-token-file", good, "--key-rotation", "2"}, exitUsage, "--cpix-token-file needs --cpix with a key server's URL"},
		{"token file alone", []string{"--cpix-token-file", good}, exitUsage, "--cpix-token-file needs --cpix"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stderr := liveRefused(t, tc.args, tc.code, tc.want)
			if tc.code == exitFailure && !strings.Contains(stderr, tc.args[1]) {
				t.Errorf("stderr %q does not name the document %s", stderr, tc.args[1])
			}
			for i := uint64(0); i < 4; i++ {
				for _, typ := range []string{"video", "audio"} {
					_, key := testkit.CPIXKey(i, typ)
					testkit.CheckNoSecret(t, "stderr", []byte(stderr), key[:])
				}
			}
		})
	}
}

// TestLiveCPIX: reel live --cpix URL (a loopback key server requiring the token of
// $REEL_CPIX_TOKEN) with a key period per segment: the channel publishes segments of several
// key periods, each period's init segment carries its KID of the track's type, the playlists
// signal each period's KID with the document's Widevine system and the MPD has a Period per
// key period; segments decrypt with their period's key; no key is in any answer.
func TestLiveCPIX(t *testing.T) {
	bin := buildReel(t)
	// A looped channel numbers its segments on its timeline anchored at --loop-epoch (2025 by
	// default): segment durations (here 1 s) since then.
	n0 := uint64(time.Since(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) / time.Second)
	var indices []uint64
	for i := n0 - 5; i < n0+200; i++ {
		indices = append(indices, i)
	}
	doc := testkit.LiveCPIX{}.Document(indices...)
	var secrets [][]byte
	for _, i := range indices {
		for _, typ := range []string{"video", "audio"} {
			_, key := testkit.CPIXKey(i, typ)
			secrets = append(secrets, key[:])
		}
	}
	keysrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer cmd-live-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, doc)
	}))
	defer keysrv.Close()
	t.Setenv("REEL_CPIX_TOKEN", "cmd-live-token")
	base := startLive(t, bin, nil, "--loop", "k="+sample("ladder_360p.mp4"), "--segment", "1s", "--part", "0",
		"--cpix", keysrv.URL+"/cpix/k", "--key-rotation", "1")
	client := &http.Client{Timeout: 10 * time.Second}
	fetch := func(path string) []byte {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		testkit.CheckNoSecret(t, path, b, secrets...)
		return b
	}
	mapRe := regexp.MustCompile(`#EXT-X-MAP:URI="init-(\d+)\.mp4"\n(?:#EXT-X-PROGRAM-DATE-TIME:.*\n)?#EXTINF:.*\n(seg_\d+\.m4s)`)
	var pl string
	deadline := time.Now().Add(30 * time.Second)
	poll := time.NewTicker(200 * time.Millisecond) // without parts there is no blocking reload
	defer poll.Stop()
	for {
		pl = string(fetch("/live/k/video_360p/index.m3u8"))
		if len(mapRe.FindAllString(pl, -1)) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no three key periods listed after 30 s:\n%s", pl)
		}
		<-poll.C
	}
	for _, m := range mapRe.FindAllStringSubmatch(pl, -1) {
		var k uint64
		fmt.Sscan(m[1], &k)
		kid, key := testkit.CPIXKey(k, "video")
		if !strings.Contains(pl, base64.StdEncoding.EncodeToString(kid[:])) {
			t.Errorf("playlist does not name period %d's video KID:\n%s", k, pl)
		}
		initData := fetch("/live/k/video_360p/init-" + m[1] + ".mp4")
		f, err := mp4.DecodeFile(bytes.NewReader(initData))
		if err != nil || f.Init == nil {
			t.Fatalf("init-%s.mp4: %v", m[1], err)
		}
		if len(f.Init.Moov.Psshs) < 2 {
			t.Errorf("init-%s.mp4: %d pssh boxes, want the common one and Widevine's", m[1], len(f.Init.Moov.Psshs))
		}
		di, err := mp4.DecryptInit(f.Init)
		if err != nil {
			t.Fatal(err)
		}
		seg, err := mp4.DecodeFile(bytes.NewReader(fetch("/live/k/video_360p/" + m[2])))
		if err != nil || len(seg.Segments) != 1 {
			t.Fatalf("%s: %v", m[2], err)
		}
		if err := mp4.DecryptSegment(seg.Segments[0], di, key[:]); err != nil {
			t.Errorf("%s does not decrypt with period %d's key: %v", m[2], k, err)
		}
	}
	if !strings.Contains(pl, `KEYFORMAT="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"`) {
		t.Errorf("playlist without the document's Widevine EXT-X-KEY:\n%s", pl)
	}
	apl := string(fetch("/live/k/audio/index.m3u8"))
	if m := mapRe.FindStringSubmatch(apl); m != nil {
		var k uint64
		fmt.Sscan(m[1], &k)
		kid, _ := testkit.CPIXKey(k, "audio")
		if !strings.Contains(apl, base64.StdEncoding.EncodeToString(kid[:])) {
			t.Errorf("audio playlist does not name period %d's audio KID:\n%s", k, apl)
		}
	} else {
		t.Errorf("audio playlist without key periods:\n%s", apl)
	}
	mpd := string(fetch("/live/k/manifest.mpd"))
	if c := strings.Count(mpd, "<Period "); c < 2 || strings.Count(mpd, "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed") < 2*c {
		t.Errorf("MPD: %d Periods, or not each with Widevine per adaptation set:\n%s", c, mpd)
	}
}
