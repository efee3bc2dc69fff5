package packager

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/live"
)

// liveTestSeed is the key seed of these tests.
var liveTestSeed, _ = hex.DecodeString("8a2f5c0e91d34b7a6c1e0f2d3b4a5968")

// liveKeyRotation is the key rotation of these tests: a key period every 2 segments, so the
// 12-second loop (six 2-second segments) spans three key periods.
const liveKeyRotation = 2

// liveEncryption is a channel encryption with keys from liveTestSeed.
func liveEncryption(t *testing.T, scheme string, seed []byte) *live.Encryption {
	t.Helper()
	prot, err := NewLiveProtector(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return &live.Encryption{Scheme: scheme, Keys: live.SeedKeys{Seed: seed, Rotation: liveKeyRotation}, Protector: prot}
}

// loopChannel plays ladder[2] (360p and its audio) once, as fast as it can, into a channel in
// dir, encrypted with enc (clear when nil), and returns it ended, with its server.
func loopChannel(t *testing.T, dir string, enc *live.Encryption, log *slog.Logger) (*live.Channel, *live.Server) {
	t.Helper()
	ch, err := live.NewChannel(live.Config{Name: "ch", Dir: dir, SegmentDuration: 2 * time.Second,
		PartDuration: 500 * time.Millisecond, Window: time.Minute, Encryption: enc, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.Close)
	srv := live.NewServer(nil)
	if err := srv.Add(ch); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
	if err := Loop(context.Background(), ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 1, Clock: clock.Now, Sleep: clock.Sleep}); err != nil {
		t.Fatal(err)
	}
	return ch, srv
}

// segmentNumbers lists the numbers of the segment files in dir.
func segmentNumbers(t *testing.T, dir string) []uint64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, n := range names {
		num, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(n), "seg_"), ".m4s"), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, num)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// liveSamples decodes a live segment file (fragments, no styp) and returns its samples.
func liveSamples(t *testing.T, data []byte, trex *mp4.TrexBox, decrypt func(*mp4.MediaSegment)) []mp4.FullSample {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil || len(f.Segments) != 1 {
		t.Fatalf("decoding a live segment: %v", err)
	}
	if decrypt != nil {
		decrypt(f.Segments[0])
	}
	var out []mp4.FullSample
	for _, frag := range f.Segments[0].Fragments {
		fss, err := frag.GetFullSamples(trex)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fss...)
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// initTenc decodes an init segment and returns its tenc.
func initTenc(t *testing.T, data []byte) *mp4.TencBox {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil || f.Init == nil {
		t.Fatalf("init segment: %v", err)
	}
	sinf := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children[0]
	var tenc *mp4.TencBox
	switch se := sinf.(type) {
	case *mp4.VisualSampleEntryBox:
		if se.Sinf != nil && se.Sinf.Schi != nil {
			tenc = se.Sinf.Schi.Tenc
		}
	case *mp4.AudioSampleEntryBox:
		if se.Sinf != nil && se.Sinf.Schi != nil {
			tenc = se.Sinf.Schi.Tenc
		}
	}
	if tenc == nil {
		t.Fatal("init segment without tenc")
	}
	return tenc
}

// TestLiveEncryptRoundTrip: the looped ladder, through a channel encrypted with a key per two
// segments (cenc and cbcs), and the same through a clear channel: every segment of every track,
// over three key periods, decrypts (mp4ff) with its period's key, from its period's init
// segment, whose tenc carries the period's KID, to the clear channel's samples, sample by
// sample (bytes, timing, flags). The encrypted samples differ from the clear ones, and a
// neighbouring period's key does not decrypt them.
func TestLiveEncryptRoundTrip(t *testing.T) {
	clearDir := filepath.Join(t.TempDir(), "clear")
	loopChannel(t, clearDir, nil, nil)
	for _, scheme := range []string{"cenc", "cbcs"} {
		t.Run(scheme, func(t *testing.T) {
			encDir := filepath.Join(t.TempDir(), "enc")
			enc := liveEncryption(t, scheme, liveTestSeed)
			loopChannel(t, encDir, enc, nil)
			periods := map[uint64]bool{}
			for _, track := range []string{"video_360p", "audio"} {
				nums := segmentNumbers(t, filepath.Join(clearDir, track))
				if got := segmentNumbers(t, filepath.Join(encDir, track)); fmt.Sprint(got) != fmt.Sprint(nums) || len(nums) < 5 {
					t.Fatalf("%s: encrypted segments %v, clear %v", track, got, nums)
				}
				if _, err := os.Stat(filepath.Join(encDir, track, "init.mp4")); err != nil {
					t.Fatalf("%s: no init.mp4 (the clear init, the resume check): %v", track, err)
				}
				clearInit := decodeInit(t, readFile(t, filepath.Join(clearDir, track, "init.mp4")))
				trex := clearInit.Moov.Mvex.Trex
				var samples, changed int
				for _, n := range nums {
					k := n / liveKeyRotation
					periods[k] = true
					key, _ := enc.Keys.Key(k, manifest.Video)
					initData := readFile(t, filepath.Join(encDir, track, fmt.Sprintf("init-%d.mp4", k)))
					if tenc := initTenc(t, initData); !bytes.Equal(tenc.DefaultKID, key.ID[:]) {
						t.Fatalf("%s segment %d: init-%d.mp4 has KID %x, want %x", track, n, k, []byte(tenc.DefaultKID), key.ID)
					}
					want := liveSamples(t, readFile(t, filepath.Join(clearDir, track, fmt.Sprintf("seg_%d.m4s", n))), trex, nil)
					encData := readFile(t, filepath.Join(encDir, track, fmt.Sprintf("seg_%d.m4s", n)))
					raw := liveSamples(t, encData, trex, nil)
					decrypt := func(key live.Key) []mp4.FullSample {
						di, err := mp4.DecryptInit(decodeInit(t, initData))
						if err != nil {
							t.Fatal(err)
						}
						return liveSamples(t, encData, trex, func(seg *mp4.MediaSegment) {
							if err := mp4.DecryptSegment(seg, di, key.Value[:]); err != nil {
								t.Fatalf("%s segment %d: DecryptSegment: %v", track, n, err)
							}
						})
					}
					got := decrypt(key)
					if len(got) != len(want) || len(raw) != len(want) {
						t.Fatalf("%s segment %d: %d samples decrypted, %d clear", track, n, len(got), len(want))
					}
					for i := range want {
						w, g := want[i], got[i]
						if g.DecodeTime != w.DecodeTime || g.Dur != w.Dur || g.Flags != w.Flags || g.CompositionTimeOffset != w.CompositionTimeOffset {
							t.Fatalf("%s segment %d sample %d: %+v, clear %+v", track, n, i, g.Sample, w.Sample)
						}
						if !bytes.Equal(g.Data, w.Data) {
							t.Fatalf("%s segment %d sample %d: decrypted bytes differ from the clear sample", track, n, i)
						}
						if !bytes.Equal(raw[i].Data, w.Data) {
							changed++
						}
					}
					samples += len(want)
					// The next period's key is another key: it decrypts to something else.
					other, _ := enc.Keys.Key(k+1, manifest.Video)
					if other.Value == key.Value || bytes.Equal(decrypt(other)[0].Data, want[0].Data) {
						t.Fatalf("%s segment %d: period %d's key decrypts period %d's segment", track, n, k+1, k)
					}
				}
				if changed < samples/2 {
					t.Errorf("%s: only %d of %d samples are encrypted", track, changed, samples)
				}
				t.Logf("%s: %d samples in %d segments decrypted and equal", track, samples, len(nums))
			}
			if len(periods) < 3 {
				t.Errorf("segments of %d key periods, want at least 3", len(periods))
			}
		})
	}
}

func decodeInit(t *testing.T, data []byte) *mp4.InitSegment {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil || f.Init == nil {
		t.Fatalf("init segment: %v", err)
	}
	return f.Init
}

var clearKeyURIRe = regexp.MustCompile(`URI="data:text/plain;base64,([^"]+)",KEYFORMAT="org.w3.clearkey"[^\n]*\n#EXT-X-MAP:URI="init-(\d+)\.mp4"`)

// TestLiveKeysDeterministic: two channels fed the same input with the same seed publish the
// same KIDs at the same segment numbers — the same init segments, the same EXT-X-KEY tags and
// MPD Periods — and, for cbcs (constant IVs derived from the key), the same segment bytes.
func TestLiveKeysDeterministic(t *testing.T) {
	for _, scheme := range []string{"cenc", "cbcs"} {
		t.Run(scheme, func(t *testing.T) {
			var dirs []string
			var playlists, mpds []string
			for i := range 2 {
				dir := filepath.Join(t.TempDir(), fmt.Sprint("instance", i))
				_, srv := loopChannel(t, dir, liveEncryption(t, scheme, liveTestSeed), nil)
				dirs = append(dirs, dir)
				pl := get(t, srv, "/live/ch/video_360p/index.m3u8")
				mpd := get(t, srv, "/live/ch/manifest.mpd")
				if pl.Code != 200 || mpd.Code != 200 {
					t.Fatalf("playlist %d, MPD %d", pl.Code, mpd.Code)
				}
				playlists = append(playlists, pl.Body.String())
				mpds = append(mpds, regexp.MustCompile(`publishTime="[^"]+"|availabilityStartTime="[^"]+"`).ReplaceAllString(mpd.Body.String(), ""))
			}
			keyTags := func(pl string) string { return fmt.Sprint(clearKeyURIRe.FindAllStringSubmatch(pl, -1)) }
			if a, b := keyTags(playlists[0]), keyTags(playlists[1]); a != b || strings.Count(playlists[0], "org.w3.clearkey") < 3 {
				t.Errorf("key tags differ or are too few:\n%s\n%s", a, b)
			}
			// Each key tag names its period's KID.
			for _, m := range clearKeyURIRe.FindAllStringSubmatch(playlists[0], -1) {
				k, _ := strconv.ParseUint(m[2], 10, 64)
				key, _ := live.SeedKeys{Seed: liveTestSeed, Rotation: liveKeyRotation}.Key(k, manifest.Video)
				if m[1] != base64.StdEncoding.EncodeToString(key.ID[:]) {
					t.Errorf("init-%d.mp4 listed with KID %s, want %x", k, m[1], key.ID)
				}
			}
			if mpds[0] != mpds[1] || strings.Count(mpds[0], "<Period ") < 3 {
				t.Errorf("MPDs differ or have fewer than 3 Periods:\n%s\n%s", mpds[0], mpds[1])
			}
			for _, track := range []string{"video_360p", "audio"} {
				for _, n := range segmentNumbers(t, filepath.Join(dirs[0], track)) {
					init := fmt.Sprintf("init-%d.mp4", n/liveKeyRotation)
					a, b := readFile(t, filepath.Join(dirs[0], track, init)), readFile(t, filepath.Join(dirs[1], track, init))
					if !bytes.Equal(a, b) {
						t.Errorf("%s/%s differs between the instances", track, init)
					}
					seg := fmt.Sprintf("seg_%d.m4s", n)
					a, b = readFile(t, filepath.Join(dirs[0], track, seg)), readFile(t, filepath.Join(dirs[1], track, seg))
					// cenc's IVs start at random per run; cbcs has no per-sample IVs.
					if same := bytes.Equal(a, b); same != (scheme == "cbcs") {
						t.Errorf("%s/%s: the instances' bytes are equal: %v", track, seg, same)
					}
				}
			}
		})
	}
}

// TestLiveKeysNeverPublished: no key of any period, nor the seed, in any form (bytes, hex,
// base64), is in any file of the channel's folder, in any answer of its server (playlists, DVR
// and delta views, MPD, init segments, segments, parts) or in its log.
func TestLiveKeysNeverPublished(t *testing.T) {
	for _, scheme := range []string{"cenc", "cbcs"} {
		t.Run(scheme, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "enc")
			enc := liveEncryption(t, scheme, liveTestSeed)
			var logged bytes.Buffer
			_, srv := loopChannel(t, dir, enc, slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
			var secrets [][]byte
			secrets = append(secrets, liveTestSeed)
			for k := uint64(0); k < 8; k++ {
				key, _ := enc.Keys.Key(k, manifest.Video)
				secrets = append(secrets, key.Value[:])
			}
			checked := 0
			check := func(where string, data []byte) {
				checked++
				testkit.CheckNoSecret(t, where, data, secrets...)
			}
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					check(path, readFile(t, path))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			files := checked
			var fetch func(target string)
			seen := map[string]bool{}
			uriRe := regexp.MustCompile(`URI="([^"]+)"|^([^#\s][^\s]*)$`)
			fetch = func(target string) {
				if seen[target] {
					return
				}
				seen[target] = true
				rec := get(t, srv, target)
				if rec.Code != http.StatusOK {
					t.Errorf("%s: %d", target, rec.Code)
					return
				}
				check(target, rec.Body.Bytes())
				for h, v := range rec.Header() {
					check(target+" "+h, []byte(strings.Join(v, " ")))
				}
				if !strings.HasSuffix(strings.SplitN(target, "?", 2)[0], ".m3u8") {
					return
				}
				base := target[:strings.LastIndex(target, "/")+1]
				for _, l := range strings.Split(rec.Body.String(), "\n") {
					for _, m := range uriRe.FindAllStringSubmatch(l, -1) {
						u := m[1] + m[2]
						if u == "" || strings.HasPrefix(u, "data:") {
							continue
						}
						fetch(filepath.Clean(base+strings.SplitN(u, "?", 2)[0]) + map[bool]string{true: "?dvr=1", false: ""}[strings.Contains(u, "dvr=1")])
					}
				}
			}
			fetch("/live/ch/master.m3u8")
			fetch("/live/ch/master.m3u8?dvr=1")
			fetch("/live/ch/video_360p/index.m3u8?_HLS_skip=YES")
			fetch("/live/ch/manifest.mpd")
			fetch("/live/ch/manifest.mpd?dvr=1")
			for _, track := range []string{"video_360p", "audio"} {
				for _, n := range segmentNumbers(t, filepath.Join(dir, track)) {
					fetch(fmt.Sprintf("/live/ch/%s/init-%d.mp4", track, n/liveKeyRotation))
					fetch(fmt.Sprintf("/live/ch/%s/seg_%d.m4s", track, n))
					fetch(fmt.Sprintf("/live/ch/%s/seg_%d.0.m4s", track, n))
				}
			}
			check("log", logged.Bytes())
			if files < 10 || checked-files < 30 {
				t.Fatalf("checked only %d files and %d answers", files, checked-files)
			}
			t.Logf("%d files, %d answers and the log hold no key", files, checked-files-1)
			// The clear init segment stays in the folder (the resume check) but is not served.
			if rec := get(t, srv, "/live/ch/video_360p/init.mp4"); rec.Code != http.StatusNotFound {
				t.Errorf("init.mp4 of an encrypted channel: %d", rec.Code)
			}
			if rec := get(t, srv, "/live/ch/video_360p/init-99.mp4"); rec.Code != http.StatusNotFound {
				t.Errorf("init segment of a period never published: %d", rec.Code)
			}
		})
	}
}

// TestLiveKeysResume: a restarted encrypted channel resumes what it left when its keys are the
// same, and starts afresh — its old segments and key periods' init segments removed — when
// the seed or the scheme changed, or when it restarts clear.
func TestLiveKeysResume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ch")
	ch, _ := loopChannel(t, dir, liveEncryption(t, "cbcs", liveTestSeed), nil)
	ch.Close()
	reopen := func(enc *live.Encryption) (resumed bool) {
		c, err := live.NewChannel(live.Config{Name: "ch", Dir: dir, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Encryption: enc})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		l, err := NewLoop(context.Background(), c, LoopOptions{Inputs: []string{ladder[2]}})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		return c.ResumeAt("video_360p") > 0
	}
	if !reopen(liveEncryption(t, "cbcs", liveTestSeed)) {
		t.Fatal("same keys: the channel did not resume")
	}
	other := bytes.Clone(liveTestSeed)
	other[0] ^= 1
	if reopen(liveEncryption(t, "cbcs", other)) {
		t.Fatal("another seed: the channel resumed segments it cannot decrypt")
	}
	if inits, _ := filepath.Glob(filepath.Join(dir, "video_360p", "init-*.mp4")); len(inits) != 0 {
		t.Errorf("init segments of the old keys left: %v", inits)
	}
	// Again with the old keys, then clear: a clear channel drops encrypted segments.
	ch, _ = loopChannel(t, dir, liveEncryption(t, "cenc", liveTestSeed), nil)
	ch.Close()
	if reopen(liveEncryption(t, "cbcs", liveTestSeed)) {
		t.Fatal("cenc to cbcs: the channel resumed")
	}
	ch, _ = loopChannel(t, dir, liveEncryption(t, "cbcs", liveTestSeed), nil)
	ch.Close()
	if reopen(nil) {
		t.Fatal("encrypted to clear: the channel resumed")
	}
}

// TestLoopTracksShareNumbers: looped without parts (a fragment per segment), audio and video
// keep the same segment numbers for the same media time across loop points, which key periods
// (by segment number) rely on. Audio's segment at each loop point used to span two grid cells
// (its first fragment stopped at the loop point and the rest waited for the next tick), so its
// numbers fell one behind per loop.
func TestLoopTracksShareNumbers(t *testing.T) {
	for _, part := range []time.Duration{0, 500 * time.Millisecond} {
		dir := filepath.Join(t.TempDir(), "ch")
		ch, err := live.NewChannel(live.Config{Name: "ch", Dir: dir, SegmentDuration: 2 * time.Second, PartDuration: part, Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		clock := &fakeClock{now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}
		if err := Loop(context.Background(), ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 3, Clock: clock.Now, Sleep: clock.Sleep}); err != nil {
			t.Fatal(err)
		}
		rec := get(t, liveServer(t, ch), "/live/ch/manifest.mpd")
		video := segmentNumbers(t, filepath.Join(dir, "video_360p"))
		audio := segmentNumbers(t, filepath.Join(dir, "audio"))
		if len(video) < 18 || rec.Code != http.StatusOK {
			t.Fatalf("part %v: %d video segments, MPD %d", part, len(video), rec.Code)
		}
		// Segment n of either track starts within a grid slack (0.1 s) of n·2 s.
		starts := func(track string, ts float64) map[uint64]float64 {
			out := map[uint64]float64{}
			for _, l := range strings.Split(string(readFile(t, filepath.Join(dir, track, "segments.log"))), "\n") {
				var n, start uint64
				if _, err := fmt.Sscanf(l, `{"n":%d,"start":%d`, &n, &start); err == nil {
					out[n] = float64(start) / ts
				}
			}
			return out
		}
		vs, as := starts("video_360p", 15360), starts("audio", 48000)
		for _, n := range audio {
			if v, ok := vs[n]; ok && (as[n]-v > 0.1 || v-as[n] > 0.1) {
				t.Errorf("part %v: segment %d starts at %.3f s in video, %.3f s in audio", part, n, v, as[n])
			}
		}
	}
}

func liveServer(t *testing.T, ch *live.Channel) *live.Server {
	t.Helper()
	srv := live.NewServer(nil)
	if err := srv.Add(ch); err != nil {
		t.Fatal(err)
	}
	return srv
}
