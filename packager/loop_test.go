package packager

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/packager/live"
)

// fakeClock runs a looped source as fast as it can produce: sleeping only moves the clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return nil
}

func newChannel(t *testing.T, cfg live.Config) (*live.Channel, *live.Server) {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	cfg.Dir = filepath.Join(t.TempDir(), cfg.Name)
	ch, err := live.NewChannel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := live.NewServer(nil)
	if err := srv.Add(ch); err != nil {
		t.Fatal(err)
	}
	return ch, srv
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

var (
	extinfRe = regexp.MustCompile(`#EXTINF:([0-9.]+),\n(seg_(\d+)\.m4s)`)
	pdtRe    = regexp.MustCompile(`#EXT-X-PROGRAM-DATE-TIME:(\S+)`)
	partRe   = regexp.MustCompile(`#EXT-X-PART:DURATION=([0-9.]+),URI="seg_(\d+)\.(\d+)\.m4s"(,INDEPENDENT=YES)?`)
)

// TestLoopEvent runs two loops of the ladder (24 s of media) as fast as possible and checks
// the finished event: contiguous numbers, durations, PDT, parts, ENDLIST, and that the DVR copy
// of every track decodes across the loop point with monotonic timestamps (ffprobe).
func TestLoopEvent(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute})
	err := Loop(context.Background(), ch, LoopOptions{Inputs: []string{ladder[2], samplePath("audio_fra.mp4")}, Loops: 2, Clock: clock.Now, Sleep: clock.Sleep})
	if err != nil {
		t.Fatal(err)
	}
	master := get(t, srv, "/live/test/master.m3u8").Body.String()
	if !strings.Contains(master, "video_360p/index.m3u8") || !strings.Contains(master, `LANGUAGE="fr"`) {
		t.Fatalf("master:\n%s", master)
	}
	for _, id := range []string{"video_360p", "audio", "audio_fr"} {
		t.Run(id, func(t *testing.T) {
			rec := get(t, srv, "/live/test/"+id+"/index.m3u8")
			pl := rec.Body.String()
			if rec.Code != 200 || !strings.Contains(pl, "#EXT-X-ENDLIST") || strings.Contains(pl, "PRELOAD-HINT") {
				t.Fatalf("status %d, playlist:\n%s", rec.Code, pl)
			}
			if cc := rec.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "max-age=") {
				t.Errorf("playlist Cache-Control %q", cc)
			}
			segs := extinfRe.FindAllStringSubmatch(pl, -1)
			pdts := pdtRe.FindAllStringSubmatch(pl, -1)
			if len(segs) < 11 || len(pdts) != len(segs) {
				t.Fatalf("%d segments, %d PDTs:\n%s", len(segs), len(pdts), pl)
			}
			var total float64
			for i, s := range segs {
				n, _ := strconv.Atoi(s[3])
				if n != i {
					t.Fatalf("segment %d numbered %d (RFC 8216 §6.2.1: numbers never skip)", i, n)
				}
				d, _ := strconv.ParseFloat(s[1], 64)
				total += d
				// PDT continuity: each segment starts where the previous ended.
				p, err := time.Parse(time.RFC3339Nano, pdts[i][1])
				if err != nil {
					t.Fatal(err)
				}
				want := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC).Add(time.Duration((total - d) * float64(time.Second)))
				if diff := p.Sub(want); diff > 2*time.Millisecond || diff < -2*time.Millisecond {
					t.Errorf("segment %d PDT %v, want %v", i, p, want)
				}
			}
			if math.Abs(total-24) > 0.05 {
				t.Errorf("segments add up to %.3fs, want 24s (two loops)", total)
			}
			// Parts: listed for the last segments only, each segment's first part independent.
			for _, p := range partRe.FindAllStringSubmatch(pl, -1) {
				if p[3] == "0" && p[4] == "" {
					t.Errorf("part %s.0 is not INDEPENDENT", p[2])
				}
			}
			// The DVR copy: init + every segment decodes as one stream with monotonic times.
			var all bytes.Buffer
			all.Write(get(t, srv, "/live/test/"+id+"/init.mp4").Body.Bytes())
			for _, s := range segs {
				rec := get(t, srv, "/live/test/"+id+"/"+s[2])
				if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
					t.Fatalf("%s: %d %q", s[2], rec.Code, rec.Header().Get("Cache-Control"))
				}
				all.Write(rec.Body.Bytes())
			}
			path := filepath.Join(t.TempDir(), "all.mp4")
			os.WriteFile(path, all.Bytes(), 0o644)
			v := ffprobeJSON(t, "-show_entries", "packet=dts_time", "-select_streams", "0", path)
			pkts, _ := v["packets"].([]any)
			last := -1.0
			for i, p := range pkts {
				ts, err := strconv.ParseFloat(str(p.(map[string]any), "dts_time"), 64)
				if err != nil || ts <= last {
					t.Fatalf("packet %d dts %v after %v: timestamps must increase across the loop", i, ts, last)
				}
				last = ts
			}
			if last < 23.5 {
				t.Errorf("last packet at %.3fs, want about 24s", last)
			}
		})
	}
	// The MPD of an ended event is static (ISO/IEC 23009-1 §5.3.1.2).
	if mpd := get(t, srv, "/live/test/manifest.mpd").Body.String(); !strings.Contains(mpd, `type="static"`) {
		t.Errorf("ended event's MPD:\n%.400s", mpd)
	}
}

// TestLiveHTTP runs a channel in real time for a few seconds and checks the LL-HLS delivery
// rules: blocking playlist reload (rfc8216bis §6.2.5.2) with its errors, the preload-hinted
// part held until it exists (§6.2.6), 404 no-store for what doesn't exist yet, rendition
// reports, and a dynamic MPD.
func TestLiveHTTP(t *testing.T) {
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Loop(ctx, ch, LoopOptions{Inputs: []string{ladder[1], ladder[2]}}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	base := ts.URL + "/live/test/video_360p/"
	fetch := func(url string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	// Wait (bounded) for the first complete segment.
	var pl string
	for i := 0; i < 60 && !strings.Contains(pl, "#EXTINF"); i++ {
		time.Sleep(100 * time.Millisecond)
		_, _, pl = fetch(base + "index.m3u8")
	}
	if !strings.Contains(pl, "#EXTINF") {
		t.Fatalf("no segment after 6s:\n%s", pl)
	}
	if !strings.Contains(pl, `#EXT-X-RENDITION-REPORT:URI="../video_480p/index.m3u8"`) || !strings.Contains(pl, "CAN-BLOCK-RELOAD=YES") {
		t.Errorf("playlist lacks rendition reports or server control:\n%s", pl)
	}
	hint := regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_(\d+)\.(\d+)\.m4s"`).FindStringSubmatch(pl)
	if hint == nil {
		t.Fatalf("no preload hint:\n%s", pl)
	}
	msn, part := hint[1], hint[2]

	// The hinted part is held until it exists, then served whole and immutable.
	partStart := time.Now()
	code, h, body := fetch(base + "seg_" + msn + "." + part + ".m4s")
	if code != 200 || len(body) == 0 || h.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("hinted part: %d, %d bytes, %q", code, len(body), h.Get("Cache-Control"))
	}
	partReady := time.Now()

	// A blocking reload for the part after it returns once that part exists: within one part
	// duration of its availability (it becomes available about one part duration after the
	// previous one; the bound is two part durations from here).
	next, _ := strconv.Atoi(part)
	blockStart := time.Now()
	code, h, body = fetch(base + "index.m3u8?_HLS_msn=" + msn + "&_HLS_part=" + strconv.Itoa(next+1))
	waited := time.Since(blockStart)
	if code != 200 {
		t.Fatalf("blocking reload: %d %s", code, body)
	}
	n1, _ := strconv.Atoi(msn)
	if !strings.Contains(body, `URI="seg_`+msn+"."+strconv.Itoa(next+1)+`.m4s"`) && !strings.Contains(body, "seg_"+strconv.Itoa(n1+1)+".0.m4s") {
		t.Fatalf("blocking reload answered without the part asked for:\n%s", body)
	}
	if waited > time.Second {
		t.Errorf("blocking reload took %v for a part due within 0.5s (the hinted part took %v)", waited, partReady.Sub(partStart))
	}
	if cc := h.Get("Cache-Control"); !strings.HasPrefix(cc, "max-age=") {
		t.Errorf("blocking response Cache-Control %q", cc)
	}

	// Errors (rfc8216bis §6.2.5.2) and what doesn't exist yet.
	for _, tc := range []struct {
		url  string
		want int
	}{
		{base + "index.m3u8?_HLS_msn=" + strconv.Itoa(n1+5), 400},
		{base + "index.m3u8?_HLS_part=1", 400},
		{base + "index.m3u8?_HLS_msn=x", 400},
		{base + "seg_" + strconv.Itoa(n1+50) + ".m4s", 404},
		{base + "seg_" + strconv.Itoa(n1+50) + ".0.m4s", 404},
		{base + "seg_01.m4s", 404},
		{ts.URL + "/live/nope/master.m3u8", 404},
		{ts.URL + "/live/test/nope/index.m3u8", 404},
	} {
		code, h, _ := fetch(tc.url)
		if code != tc.want || (code >= 400 && h.Get("Cache-Control") != "no-store") {
			t.Errorf("%s: %d (Cache-Control %q), want %d no-store", tc.url, code, h.Get("Cache-Control"), tc.want)
		}
	}

	// Low-latency DASH: the segment in progress is announced, and asking for it streams it
	// whole as its parts arrive.
	code, _, mpdNow := fetch(ts.URL + "/live/test/manifest.mpd")
	if code != 200 || !strings.Contains(mpdNow, "availabilityTimeOffset") {
		t.Fatalf("MPD %d:\n%.600s", code, mpdNow)
	}
	c0, _, pl0 := fetch(base + "index.m3u8")
	cur := regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_(\d+)\.`).FindStringSubmatch(pl0)
	if c0 != 200 || cur == nil {
		t.Fatalf("no segment in progress:\n%s", pl0)
	}
	code, h, seg := fetch(base + "seg_" + cur[1] + ".m4s")
	if code != 200 || len(seg) == 0 || h.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("segment in progress: %d, %d bytes, %q", code, len(seg), h.Get("Cache-Control"))
	}
	_, _, whole := fetch(base + "seg_" + cur[1] + ".m4s")
	if whole != seg {
		t.Errorf("the streamed segment (%d bytes) differs from the complete one (%d bytes)", len(seg), len(whole))
	}

	// The MPD is dynamic, with the clock players synchronise to.
	code, _, mpd := fetch(ts.URL + "/live/test/manifest.mpd")
	if code != 200 || !strings.Contains(mpd, `type="dynamic"`) || !strings.Contains(mpd, "/live/time") {
		t.Fatalf("MPD %d:\n%.600s", code, mpd)
	}
	code, h, now := fetch(ts.URL + live.TimePath)
	if tm, err := time.Parse(time.RFC3339Nano, now); code != 200 || err != nil || time.Since(tm).Abs() > 5*time.Second || h.Get("Cache-Control") != "no-store" {
		t.Errorf("time endpoint: %d %q %v", code, now, err)
	}
}

// TestLoopResume: `reel live` restarted on the same folder lists the previous run's segments
// again, continues the media sequence numbers and the media timeline, and marks the restart
// with one EXT-X-DISCONTINUITY; the MPD still renders (no time going back).
func TestLoopResume(t *testing.T) {
	dir := t.TempDir()
	cfg := live.Config{Name: "test", Dir: dir, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute}
	var prev *live.Channel
	run := func() *live.Server {
		if prev != nil {
			prev.Close() // the first run's process stops: the folder is free
		}
		ch, err := live.NewChannel(cfg)
		if err != nil {
			t.Fatal(err)
		}
		clock := &fakeClock{now: time.Now()}
		if err := Loop(context.Background(), ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 1, Clock: clock.Now, Sleep: clock.Sleep}); err != nil {
			t.Fatal(err)
		}
		prev = ch
		srv := live.NewServer(nil)
		srv.Add(ch)
		return srv
	}
	first := extinfRe.FindAllStringSubmatch(get(t, run(), "/live/test/video_360p/index.m3u8").Body.String(), -1)
	srv := run()
	pl := get(t, srv, "/live/test/video_360p/index.m3u8").Body.String()
	segs := extinfRe.FindAllStringSubmatch(pl, -1)
	if len(segs) != 2*len(first) {
		t.Fatalf("%d segments after the restart, want %d (both runs):\n%s", len(segs), 2*len(first), pl)
	}
	for i, s := range segs {
		if s[3] != strconv.Itoa(i) {
			t.Fatalf("segment %d numbered %s: numbers must continue across the restart", i, s[3])
		}
	}
	if n := strings.Count(pl, "#EXT-X-DISCONTINUITY\n"); n != 1 {
		t.Errorf("%d discontinuities, want 1 (the restart):\n%s", n, pl)
	}
	if rec := get(t, srv, "/live/test/manifest.mpd"); rec.Code != 200 {
		t.Errorf("MPD after the restart: %d %s", rec.Code, rec.Body.String())
	}
	// Every segment of both runs is still served (from disk for the first run's).
	for _, s := range segs {
		if rec := get(t, srv, "/live/test/video_360p/"+s[2]); rec.Code != 200 || rec.Body.Len() == 0 {
			t.Fatalf("%s: %d", s[2], rec.Code)
		}
	}
}

// TestLoopBadInputs: the looped live source refuses what Package refuses for the same reason,
// with the same one-line error, before the channel gets a track.
func TestLoopBadInputs(t *testing.T) {
	bad := testkit.BadInputsFrom(t, ladder[2])
	tests := []struct {
		name   string
		inputs []string
		want   string
	}{
		{"empty video samples", []string{bad.EmptyVideo}, bad.EmptyVideo + ": video track 1 has no media: all its 360 samples are empty"},
		{"same file twice", []string{ladder[2], ladder[2]}, ladder[2] + ": the same file as " + ladder[2]},
		{"same file by a symlink", []string{ladder[2], bad.Symlink}, bad.Symlink + ": the same file as " + ladder[2]},
		{"same content", []string{ladder[1], bad.Copy, ladder[2]}, ladder[2] + ": the same content as " + bad.Copy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
			ch, srv := newChannel(t, live.Config{})
			err := Loop(context.Background(), ch, LoopOptions{Inputs: tc.inputs, Loops: 1, Clock: clock.Now, Sleep: clock.Sleep})
			if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want one line starting %q", err, tc.want)
			}
			if rec := get(t, srv, "/live/test/master.m3u8"); rec.Code != http.StatusNotFound {
				t.Errorf("master playlist after the refusal: %d, want 404 (no track)", rec.Code)
			}
		})
	}
}

// TestLoopRefusesUnalignedLadder: a looped ladder is checked as Package checks it — the same
// error, naming the rung whose GOPs don't align — and nothing is added to the channel.
func TestLoopRefusesUnalignedLadder(t *testing.T) {
	inputs := []string{ladder[0], samplePath("bad/unaligned_gop.mp4")}
	_, pkgErr := Package(context.Background(), Options{Inputs: inputs, Output: filepath.Join(t.TempDir(), "out")})
	ch, srv := newChannel(t, live.Config{})
	_, err := NewLoop(context.Background(), ch, LoopOptions{Inputs: inputs})
	var ie *InputError
	if !errors.As(err, &ie) || ie.File != inputs[1] || pkgErr == nil || err.Error() != pkgErr.Error() {
		t.Fatalf("NewLoop: %v; Package: %v", err, pkgErr)
	}
	if rec := get(t, srv, "/live/test/master.m3u8"); rec.Code != http.StatusNotFound {
		t.Errorf("the refused ladder's tracks were added: master %d", rec.Code)
	}
}
