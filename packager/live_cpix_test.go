package packager

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/cpix"
	"github.com/reelvideo/reel/packager/live"
)

// liveTrackType is the CPIX track type of a test track folder.
func liveTrackType(track string) string {
	if track == "audio" {
		return "audio"
	}
	return "video"
}

// TestLiveCPIXRoundTrip: the looped ladder through a channel whose keys come from a CPIX
// document with four key periods (two segments each), video and audio under keys of their
// own: every segment decrypts (mp4ff) with its period's key of its track's type, from its
// period's init segment (tenc: that KID; a Widevine pssh from the document); the other type's
// key does not decrypt it. The media playlists signal each period's KID of their type with
// the document's systems (Widevine, FairPlay) at each boundary, the MPD has a Period per key
// period with each type's KID and the systems' ContentProtection, and no key is in any file,
// answer or log line.
func TestLiveCPIXRoundTrip(t *testing.T) {
	clearDir := filepath.Join(t.TempDir(), "clear")
	loopChannel(t, clearDir, nil, nil)
	docPath := filepath.Join(t.TempDir(), "keys.cpix.xml")
	if err := os.WriteFile(docPath, []byte(testkit.LiveCPIX{}.Document(0, 1, 2, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"cenc", "cbcs"} {
		t.Run(scheme, func(t *testing.T) {
			var logged bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
			keys, err := live.LoadCPIXKeys(context.Background(), docPath, "", liveKeyRotation, log)
			if err != nil {
				t.Fatal(err)
			}
			prot, err := NewLiveProtector(scheme)
			if err != nil {
				t.Fatal(err)
			}
			encDir := filepath.Join(t.TempDir(), "enc")
			_, srv := loopChannel(t, encDir, &live.Encryption{Scheme: scheme, Keys: keys, Protector: prot}, log)
			periods := map[uint64]bool{}
			for _, track := range []string{"video_360p", "audio"} {
				typ := liveTrackType(track)
				other := map[string]string{"video": "audio", "audio": "video"}[typ]
				nums := segmentNumbers(t, filepath.Join(clearDir, track))
				if got := segmentNumbers(t, filepath.Join(encDir, track)); fmt.Sprint(got) != fmt.Sprint(nums) || len(nums) < 5 {
					t.Fatalf("%s: encrypted segments %v, clear %v", track, got, nums)
				}
				trex := decodeInit(t, readFile(t, filepath.Join(clearDir, track, "init.mp4"))).Moov.Mvex.Trex
				samples := 0
				for _, n := range nums {
					k := n / liveKeyRotation
					if typ == "video" {
						periods[k] = true // the MPD lists a key period once every track has a segment in it
					}
					kid, key := testkit.CPIXKey(k, typ)
					_, otherKey := testkit.CPIXKey(k, other)
					initData := readFile(t, filepath.Join(encDir, track, fmt.Sprintf("init-%d.mp4", k)))
					if tenc := initTenc(t, initData); !bytes.Equal(tenc.DefaultKID, kid[:]) {
						t.Fatalf("%s segment %d: init-%d.mp4 has KID %x, want the %s KID %x", track, n, k, []byte(tenc.DefaultKID), typ, kid)
					}
					init := decodeInit(t, initData)
					var systems []string
					for _, p := range init.Moov.Psshs {
						systems = append(systems, p.SystemID.String())
					}
					if !slicesContain(systems, testkit.UUID(cpix.Widevine)) {
						t.Fatalf("%s init-%d.mp4: pssh of systems %v, want Widevine's from the document", track, k, systems)
					}
					want := liveSamples(t, readFile(t, filepath.Join(clearDir, track, fmt.Sprintf("seg_%d.m4s", n))), trex, nil)
					encData := readFile(t, filepath.Join(encDir, track, fmt.Sprintf("seg_%d.m4s", n)))
					decrypt := func(key [16]byte) []mp4.FullSample {
						di, err := mp4.DecryptInit(decodeInit(t, initData))
						if err != nil {
							t.Fatal(err)
						}
						return liveSamples(t, encData, trex, func(seg *mp4.MediaSegment) {
							if err := mp4.DecryptSegment(seg, di, key[:]); err != nil {
								t.Fatalf("%s segment %d: DecryptSegment: %v", track, n, err)
							}
						})
					}
					got := decrypt(key)
					if len(got) != len(want) {
						t.Fatalf("%s segment %d: %d samples decrypted, %d clear", track, n, len(got), len(want))
					}
					for i := range want {
						if !bytes.Equal(got[i].Data, want[i].Data) || got[i].DecodeTime != want[i].DecodeTime {
							t.Fatalf("%s segment %d sample %d: decrypted sample differs from the clear one", track, n, i)
						}
					}
					if bytes.Equal(decrypt(otherKey)[0].Data, want[0].Data) {
						t.Fatalf("%s segment %d: the %s key of period %d decrypts it", track, n, other, k)
					}
					samples += len(want)
				}
				t.Logf("%s: %d samples in %d segments decrypted with the %s keys", track, samples, len(nums), typ)

				// HLS: each period's KID of this type, with the document's systems, at its
				// first segment; never the other type's.
				pl := get(t, srv, "/live/ch/"+track+"/index.m3u8?dvr=1").Body.String()
				for k := range periods {
					kid, _ := testkit.CPIXKey(k, typ)
					okid, _ := testkit.CPIXKey(k, other)
					wants := []string{
						base64.StdEncoding.EncodeToString(kid[:]), // the ClearKey data: URI
						"KEYFORMAT=\"urn:uuid:" + testkit.UUID(cpix.Widevine) + "\"",
						fmt.Sprintf("#EXT-X-MAP:URI=\"init-%d.mp4\"", k),
					}
					if scheme == "cbcs" { // FairPlay is cbcs only, as in VOD
						wants = append(wants, "skd://fairplay.example/"+hex.EncodeToString(kid[:]))
					}
					for _, want := range wants {
						if !strings.Contains(pl, want) {
							t.Errorf("%s playlist: no %q for period %d:\n%s", track, want, k, pl)
						}
					}
					if strings.Contains(pl, hex.EncodeToString(okid[:])) {
						t.Errorf("%s playlist names the %s KID of period %d", track, other, k)
					}
				}
			}
			if len(periods) < 3 {
				t.Errorf("segments of %d key periods, want at least 3", len(periods))
			}
			// DASH: a Period per key period, each adaptation set with its type's KID and the
			// Widevine ContentProtection.
			mpd := get(t, srv, "/live/ch/manifest.mpd?dvr=1").Body.String()
			for k := range periods {
				m := regexp.MustCompile(`(?s)<Period [^>]*id="key-` + fmt.Sprint(k) + `".*?</Period>`).FindString(mpd)
				if m == "" {
					t.Fatalf("no Period key-%d in the MPD:\n%s", k, mpd)
				}
				for _, typ := range []string{"video", "audio"} {
					kid, _ := testkit.CPIXKey(k, typ)
					if !strings.Contains(m, `cenc:default_KID="`+testkit.UUID(kid)+`"`) {
						t.Errorf("Period key-%d does not name the %s KID %s", k, typ, testkit.UUID(kid))
					}
				}
				if c := strings.Count(m, `schemeIdUri="urn:uuid:`+testkit.UUID(cpix.Widevine)+`"`); c != 2 {
					t.Errorf("Period key-%d: %d Widevine ContentProtection, want one per adaptation set", k, c)
				}
			}
			assertNoLiveCPIXKeys(t, encDir, srv, &logged, []string{"/live/ch/master.m3u8", "/live/ch/manifest.mpd", "/live/ch/manifest.mpd?dvr=1",
				"/live/ch/video_360p/index.m3u8?dvr=1", "/live/ch/audio/index.m3u8?dvr=1"}, 0, 1, 2, 3)
		})
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// assertNoLiveCPIXKeys: no key of periods, in any form, is in a file under dir, in the
// answers to targets (bodies and headers) or in the log.
func assertNoLiveCPIXKeys(t *testing.T, dir string, srv http.Handler, logged *bytes.Buffer, targets []string, periods ...uint64) {
	t.Helper()
	var secrets [][]byte
	for _, k := range periods {
		for _, typ := range []string{"video", "audio"} {
			_, key := testkit.CPIXKey(k, typ)
			secrets = append(secrets, key[:])
		}
	}
	testkit.CheckNoSecretInDir(t, dir, 10, secrets...)
	for _, target := range targets {
		rec := get(t, srv, target)
		testkit.CheckNoSecret(t, target, rec.Body.Bytes(), secrets...)
		for h, v := range rec.Header() {
			testkit.CheckNoSecret(t, target+" "+h, []byte(strings.Join(v, " ")), secrets...)
		}
	}
	testkit.CheckNoSecret(t, "log", logged.Bytes(), secrets...)
}

// cpixServer is a loopback CPIX key server whose document the test changes, and which
// requires a bearer token.
type cpixServer struct {
	mu       sync.Mutex
	doc      string
	requests int
}

func (s *cpixServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer live-test-token" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprint(w, s.doc)
}

func (s *cpixServer) set(doc string) { s.mu.Lock(); s.doc = doc; s.mu.Unlock() }
func (s *cpixServer) count() int     { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, d)
		}
		<-tick.C
	}
}

// TestLiveCPIXKeyServerGrows: a channel whose key server's document covers key periods 0 and 1
// (segments 0 to 3) re-fetches it from the start of period 1, and when period 2 begins without
// its key, publishes nothing of it: segment 3 is the live edge, no init-2.mp4, no segment 4,
// reel_live_key_missing is 1 for each track, and one log line says so. The key server then adds
// periods 2 to 5; the channel fetches them and resumes (after a discontinuity), its new
// segments decrypting with period 2's keys, the gauge back to 0.
func TestLiveCPIXKeyServerGrows(t *testing.T) {
	ks := &cpixServer{doc: testkit.LiveCPIX{}.Document(0, 1)}
	hs := httptest.NewServer(ks)
	defer hs.Close()
	var logged syncBuffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys, err := live.LoadCPIXKeys(ctx, hs.URL+"/cpix/ch", "live-test-token", liveKeyRotation, log)
	if err != nil {
		t.Fatal(err)
	}
	keys.MinBackoff, keys.MaxBackoff = 5*time.Millisecond, 40*time.Millisecond
	refresher := make(chan struct{})
	go func() { defer close(refresher); keys.Run(ctx) }()
	defer func() { cancel(); <-refresher }()

	prot, err := NewLiveProtector("cbcs")
	if err != nil {
		t.Fatal(err)
	}
	metrics := live.NewMetrics()
	dir := filepath.Join(t.TempDir(), "ch")
	ch, err := live.NewChannel(live.Config{Name: "ch", Dir: dir, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond,
		Window: time.Minute, Encryption: &live.Encryption{Scheme: "cbcs", Keys: keys, Protector: prot}, Logger: log, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	srv := liveServer(t, ch)

	// The source runs on a fake clock that stops at 11 s (in period 2, segments 4 and 5)
	// until the test lets it go on.
	clock := &fakeClock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	t0 := clock.now
	release := make(chan struct{})
	sleep := func(ctx context.Context, d time.Duration) error {
		if clock.Now().Sub(t0) >= 11*time.Second {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Minute):
				return fmt.Errorf("never released")
			}
		}
		return clock.Sleep(ctx, d)
	}
	loopDone := make(chan error, 1)
	go func() {
		loopDone <- Loop(ctx, ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 2, Clock: clock.Now, Sleep: sleep})
	}()

	gauge := func() string {
		body := get(t, metrics.Handler(), "/metrics").Body.String()
		return strings.Join(regexp.MustCompile(`(?m)^reel_live_key_missing\{.*$`).FindAllString(body, -1), "\n")
	}
	stalled := func() bool {
		g := gauge()
		return strings.Count(g, "} 1") == 2
	}
	waitFor(t, 30*time.Second, "both tracks stalled for want of period 2's key", stalled)
	waitFor(t, 30*time.Second, "the document re-fetched while stalled", func() bool { return ks.count() >= 3 })
	for _, track := range []string{"video_360p", "audio"} {
		if nums := segmentNumbers(t, filepath.Join(dir, track)); len(nums) == 0 || nums[len(nums)-1] != 3 {
			t.Fatalf("%s: segments %v while stalled, want 0 to 3", track, nums)
		}
		if _, err := os.Stat(filepath.Join(dir, track, "init-2.mp4")); !os.IsNotExist(err) {
			t.Errorf("%s: init-2.mp4 published without its key: %v", track, err)
		}
		pl := get(t, srv, "/live/ch/"+track+"/index.m3u8").Body.String()
		if strings.Contains(pl, "seg_4") || strings.Contains(pl, "init-2.mp4") {
			t.Errorf("%s playlist lists period 2 while its key is missing:\n%s", track, pl)
		}
	}
	if c := strings.Count(logged.String(), "publishing stalls"); c != 1 {
		t.Errorf("%d log lines about the stall, want 1:\n%s", c, logged.String())
	}

	ks.set(testkit.LiveCPIX{}.Document(0, 1, 2, 3, 4, 5))
	waitFor(t, 30*time.Second, "period 2's key fetched", func() bool {
		_, err := keys.Key(2, manifest.Video)
		return err == nil
	})
	close(release)
	select {
	case err := <-loopDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the loop did not end")
	}
	if g := gauge(); strings.Count(g, "} 0") != 2 {
		t.Errorf("key_missing after the key came: %s", g)
	}
	if !strings.Contains(logged.String(), "publishing resumes") {
		t.Errorf("no log line about resuming:\n%s", logged.String())
	}
	for _, track := range []string{"video_360p", "audio"} {
		nums := segmentNumbers(t, filepath.Join(dir, track))
		if len(nums) < 7 || nums[4] != 4 {
			t.Fatalf("%s: segments %v after the key came", track, nums)
		}
		kid, key := testkit.CPIXKey(2, liveTrackType(track))
		initData := readFile(t, filepath.Join(dir, track, "init-2.mp4"))
		if tenc := initTenc(t, initData); !bytes.Equal(tenc.DefaultKID, kid[:]) {
			t.Fatalf("%s: init-2.mp4 has KID %x, want %x", track, []byte(tenc.DefaultKID), kid)
		}
		di, err := mp4.DecryptInit(decodeInit(t, initData))
		if err != nil {
			t.Fatal(err)
		}
		f, err := mp4.DecodeFile(bytes.NewReader(readFile(t, filepath.Join(dir, track, "seg_4.m4s"))))
		if err != nil || len(f.Segments) != 1 {
			t.Fatalf("%s seg_4: %v", track, err)
		}
		if err := mp4.DecryptSegment(f.Segments[0], di, key[:]); err != nil {
			t.Fatalf("%s seg_4 does not decrypt with period 2's key: %v", track, err)
		}
		t.Logf("%s: segments %v; the key server answered %d times", track, nums, ks.count())
		pl := get(t, srv, "/live/ch/"+track+"/index.m3u8?dvr=1").Body.String()
		if !regexp.MustCompile(`#EXT-X-DISCONTINUITY\n(#EXT-X-KEY[^\n]*\n)+#EXT-X-MAP:URI="init-2.mp4"`).MatchString(pl) {
			t.Errorf("%s: period 2 does not start after a discontinuity with its keys:\n%s", track, pl)
		}
	}
	assertNoLiveCPIXKeys(t, dir, srv, &logged.Buffer, []string{"/live/ch/manifest.mpd", "/live/ch/video_360p/index.m3u8", "/metrics"}, 0, 1, 2, 3, 4, 5)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it at once.
type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

// TestLiveCPIXNoPeriods: a document with one key per track type and no ContentKeyPeriodList
// means no rotation: every segment is in key period 0, video and audio under their keys, with
// the document's systems; asking for rotation with it is an error naming the problem.
func TestLiveCPIXNoPeriods(t *testing.T) {
	doc := filepath.Join("cpix", "testdata", "ladder.cpix.xml")
	keys, err := live.LoadCPIXKeys(context.Background(), doc, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{0, 1, 1000, 1 << 40} {
		if k := keys.Period(n); k != 0 {
			t.Fatalf("segment %d in key period %d, want 0", n, k)
		}
	}
	v, err := keys.Key(0, manifest.Video)
	if err != nil {
		t.Fatal(err)
	}
	a, err := keys.Key(0, manifest.Audio)
	if err != nil {
		t.Fatal(err)
	}
	if testkit.UUID(v.ID) != "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" || testkit.UUID(a.ID) != "f0e1d2c3-b4a5-4968-8776-655443322110" {
		t.Errorf("video KID %x, audio KID %x", v.ID, a.ID)
	}
	if len(v.Systems) != 5 || len(a.Systems) != 5 {
		t.Errorf("%d video and %d audio DRM systems, want the document's 5 each", len(v.Systems), len(a.Systems))
	}
	if keys.Scheme != "cbcs" {
		t.Errorf("scheme %q, want the document's cbcs", keys.Scheme)
	}
	if _, err := live.LoadCPIXKeys(context.Background(), doc, "", 2, nil); err == nil || !strings.Contains(err.Error(), "no ContentKeyPeriodList") {
		t.Errorf("rotation with a document without periods: %v", err)
	}
}

// TestLiveCPIXKeysNeverChange: a re-read document that gives another key for a period in use
// is not followed (the first key stays, an error is logged); the periods it adds are taken.
func TestLiveCPIXKeysNeverChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.cpix.xml")
	if err := os.WriteFile(path, []byte(testkit.LiveCPIX{}.Document(0, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var logged syncBuffer
	keys, err := live.LoadCPIXKeys(context.Background(), path, "", 2, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	keys.MinBackoff, keys.MaxBackoff = time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); keys.Run(ctx) }()
	defer func() { cancel(); <-done }()

	before, err := keys.Key(1, manifest.Video)
	if err != nil {
		t.Fatal(err)
	}
	// Period 1's video key replaced by another, and period 2 added.
	_, old := testkit.CPIXKey(1, "video")
	changed := strings.Replace(testkit.LiveCPIX{}.Document(0, 1, 2), base64.StdEncoding.EncodeToString(old[:]), base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16)), 1)
	if _, err := keys.Key(2, manifest.Video); err == nil {
		t.Fatal("period 2's key before the document has it")
	}
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "period 2 read from the file", func() bool {
		_, err := keys.Key(2, manifest.Video)
		return err == nil
	})
	after, err := keys.Key(1, manifest.Video)
	if err != nil || after.Value != before.Value {
		t.Errorf("period 1's key changed with the document (%v)", err)
	}
	if !strings.Contains(logged.String(), "changed the keys of a key period already in use") {
		t.Errorf("no error logged:\n%s", logged.String())
	}
	testkit.CheckNoSecret(t, "log", []byte(logged.String()), old[:], bytes.Repeat([]byte{9}, 16))
}
