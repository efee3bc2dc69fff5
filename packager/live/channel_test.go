package live

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/manifest"
)

const ts = 1000 // timescale of the synthetic tracks: milliseconds

func testChannel(t *testing.T, cfg Config, ids ...string) *Channel {
	t.Helper()
	cfg.Name = "ch"
	cfg.Dir = filepath.Join(t.TempDir(), "ch")
	c, err := NewChannel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		kind := manifest.Video
		if strings.HasPrefix(id, "audio") {
			kind = manifest.Audio
		}
		if err := c.AddTrack(manifest.Track{ID: id, Kind: kind, Codecs: "avc1.64001f", Timescale: ts}, []byte("init")); err != nil {
			t.Fatal(err)
		}
	}
	c.SetStart(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return c
}

// frag is a synthetic fragment of d ms at time at; its bytes name it.
func frag(at, d uint64, independent bool) Fragment {
	return Fragment{Data: []byte("f" + time.Duration(at*uint64(time.Millisecond)).String()), Decode: at, Duration: d, Independent: independent}
}

func numbers(p *manifest.Presentation, id string) (nums []uint64, discs []bool) {
	for _, tr := range p.Tracks() {
		if tr.ID == id {
			for _, s := range tr.Segments {
				nums = append(nums, s.Number)
				discs = append(discs, s.Discontinuity)
			}
		}
	}
	return nums, discs
}

// TestSegmentCutting: segments start at the first independent fragment at or after each grid
// line, numbers follow each other (RFC 8216 §6.2.1), parts are the fragments.
func TestSegmentCutting(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond}, "video")
	// Keyframes every 1 s; the one at 3 s is missing, so segment 1 runs 2 s → 4 s.
	for at := uint64(0); at < 8000; at += 500 {
		if err := c.Append("video", frag(at, 500, at%1000 == 0 && at != 3000)); err != nil {
			t.Fatal(err)
		}
	}
	p := c.snapshot(time.Now(), "", false)
	v := p.Video[0]
	var got []string
	for _, s := range v.Segments {
		got = append(got, time.Duration(s.Start*uint64(time.Millisecond)).String()+"+"+time.Duration(s.Duration*uint64(time.Millisecond)).String())
		if len(s.Parts) != int(s.Duration/500) || !s.Parts[0].Independent {
			t.Errorf("segment %d: %d parts, first independent %v", s.Number, len(s.Parts), s.Parts[0].Independent)
		}
	}
	want := "0s+2s 2s+2s 4s+2s"
	if strings.Join(got, " ") != want {
		t.Fatalf("segments %v, want %s", got, want)
	}
	if nums, _ := numbers(p, "video"); nums[0] != 0 || nums[2] != 2 || v.NextNumber != 3 || len(v.LiveParts) != 4 {
		t.Fatalf("numbers %v, next %d, live parts %d", nums, v.NextNumber, len(v.LiveParts))
	}
	// The segments are on disk, whole.
	for _, s := range v.Segments {
		b, err := os.ReadFile(filepath.Join(c.cfg.Dir, "video", s.URI))
		if err != nil || int64(len(b)) != s.Size {
			t.Errorf("%s on disk: %d bytes, %v", s.URI, len(b), err)
		}
	}
	// PDT = start + media time.
	if pdt := v.Segments[1].ProgramDateTime; !pdt.Equal(c.start.Add(2 * time.Second)) {
		t.Errorf("PDT %v", pdt)
	}
}

// TestAppendRefusals: bad fragments get an error and change nothing.
func TestAppendRefusals(t *testing.T) {
	c := testChannel(t, Config{}, "video")
	if err := c.Append("video", frag(0, 1000, true)); err != nil {
		t.Fatal(err)
	}
	if err := c.Append("video", frag(500, 1000, true)); !errors.Is(err, ErrBackwards) {
		t.Errorf("overlapping fragment: %v", err)
	}
	if err := c.Append("nope", frag(1000, 1000, true)); !errors.Is(err, ErrUnknownTrack) {
		t.Errorf("unknown track: %v", err)
	}
	if err := c.Append("video", Fragment{Decode: 1000, Duration: 0, Data: []byte("x")}); err == nil {
		t.Error("zero-duration fragment accepted")
	}
	c.End()
	if err := c.Append("video", frag(1000, 1000, true)); !errors.Is(err, ErrEnded) {
		t.Errorf("after End: %v", err)
	}
	p := c.snapshot(time.Now(), "", false)
	if len(p.Video[0].Segments) != 1 || p.Video[0].Segments[0].Duration != 1000 || !p.Live.Ended {
		t.Fatalf("state changed by refused fragments: %+v", p.Video[0].Segments)
	}
	for _, bad := range []Config{{Name: "a/b", Dir: "x"}, {Name: "ok", Dir: ""}, {Name: "ok", Dir: t.TempDir(), SegmentDuration: time.Second, PartDuration: time.Second}} {
		if _, err := NewChannel(bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
}

// TestDiscontinuity: after a reconnect every track starts a new segment flagged
// EXT-X-DISCONTINUITY, numbers continue, and time may restart.
func TestDiscontinuity(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second}, "video", "audio")
	for at := uint64(0); at < 3000; at += 1000 {
		c.Append("video", frag(at, 1000, at%2000 == 0))
		c.Append("audio", frag(at, 1000, true))
	}
	c.Discontinuity()
	// The encoder came back with its clock restarted.
	for at := uint64(0); at < 5000; at += 1000 {
		if err := c.Append("video", frag(at, 1000, at%2000 == 0)); err != nil {
			t.Fatal(err)
		}
		if err := c.Append("audio", frag(at, 1000, true)); err != nil {
			t.Fatal(err)
		}
	}
	p := c.snapshot(time.Now(), "", false)
	for _, id := range []string{"video", "audio"} {
		// Segment 1 (2 s → 3 s) ends at the reconnect; segment 2 restarts at media time 0.
		nums, discs := numbers(p, id)
		if len(nums) != 4 || nums[0] != 0 || nums[1] != 1 || nums[2] != 2 || nums[3] != 3 {
			t.Fatalf("%s: numbers %v", id, nums)
		}
		if discs[0] || discs[1] || !discs[2] || discs[3] {
			t.Errorf("%s: discontinuities %v, want only before segment 2", id, discs)
		}
	}
}

// TestWindowAndDVR: playlists list the live window; segments leave memory after it and the
// disk after the DVR window; the discontinuity sequence counts what left.
func TestWindowAndDVR(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: time.Second, Window: 4 * time.Second, DVR: 6 * time.Second}, "video")
	for at := uint64(0); at < 20000; at += 1000 {
		if at == 3000 {
			c.Discontinuity()
		}
		c.Append("video", frag(at, 1000, true))
	}
	p := c.snapshot(time.Now(), "", false)
	v := p.Video[0]
	if n := len(v.Segments); n < 3 || n > 5 {
		t.Errorf("window lists %d one-second segments, want about 4", n)
	}
	if v.DiscontinuitySequence != 1 {
		t.Errorf("discontinuity sequence %d, want 1 (the flagged segment left the window)", v.DiscontinuitySequence)
	}
	entries, _ := os.ReadDir(filepath.Join(c.cfg.Dir, "video"))
	segs := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".m4s") {
			segs++
		}
	}
	if segs < 5 || segs > 8 {
		t.Errorf("%d segments on disk, want about 6 (the DVR window)", segs)
	}
	// A segment outside the live window but inside the DVR window is still served (from disk).
	srv := NewServer(nil)
	srv.Add(c)
	first := v.Segments[0].Number
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/ch/video/"+segmentName(first-1), nil))
	if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
		t.Errorf("DVR segment %d: %d", first-1, rec.Code)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/ch/video/seg_0.m4s", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("segment past the DVR window: %d", rec.Code)
	}
}

func TestParseMediaName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    uint64
		p    int
		okay bool
	}{
		{"seg_0.m4s", 0, -1, true}, {"seg_12.m4s", 12, -1, true}, {"seg_12.3.m4s", 12, 3, true},
		{"seg_012.m4s", 0, 0, false}, {"seg_1.03.m4s", 0, 0, false}, {"seg_-1.m4s", 0, 0, false},
		{"seg_1.-1.m4s", 0, 0, false}, {"seg_.m4s", 0, 0, false}, {"seg_1.mp4", 0, 0, false}, {"init.mp4", 0, 0, false},
	} {
		n, p, ok := parseMediaName(tc.in)
		if ok != tc.okay || ok && (n != tc.n || p != tc.p) {
			t.Errorf("%s: %d %d %v", tc.in, n, p, ok)
		}
	}
}

// TestDVRView: ?dvr=1 lists the DVR window (segments older than the live window, still on
// disk), and the master playlist points its media playlists at that view.
func TestDVRView(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: time.Second, Window: 4 * time.Second, DVR: time.Minute}, "video")
	for at := uint64(0); at < 20000; at += 1000 {
		c.Append("video", frag(at, 1000, true))
	}
	srv := NewServer(nil)
	srv.Add(c)
	get := func(u string) string {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
		return rec.Body.String()
	}
	live, dvr := get("/live/ch/video/index.m3u8"), get("/live/ch/video/index.m3u8?dvr=1")
	if n, m := strings.Count(live, "#EXTINF"), strings.Count(dvr, "#EXTINF"); n > 5 || m < 18 {
		t.Errorf("live window lists %d segments, DVR view %d (want ≤5 and ≥18)", n, m)
	}
	if !strings.Contains(dvr, "#EXT-X-MEDIA-SEQUENCE:0\n") {
		t.Errorf("DVR view does not start at the first segment:\n%.300s", dvr)
	}
	if m := get("/live/ch/master.m3u8?dvr=1"); !strings.Contains(m, "video/index.m3u8?dvr=1") {
		t.Errorf("DVR master:\n%s", m)
	}
}

// TestMetrics: fragments appended and refused, segments and the live edge are counted.
func TestMetrics(t *testing.T) {
	m := NewMetrics()
	c := testChannel(t, Config{SegmentDuration: time.Second, Metrics: m}, "video")
	for at := uint64(0); at < 3000; at += 1000 {
		c.Append("video", frag(at, 1000, true))
	}
	c.Append("video", frag(500, 1000, true)) // backwards: refused
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`reel_live_fragments_total{channel="ch",result="appended",track="video"} 3`,
		`reel_live_fragments_total{channel="ch",result="refused",track="video"} 1`,
		`reel_live_segments_total{channel="ch",track="video"} 2`,
		`reel_live_last_segment{channel="ch",track="video"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in:\n%s", want, body)
		}
	}
}

// TestGaps: a source that skips media keeps the playlists and the MPD valid — a short gap is
// absorbed into the next segment, a long one is a discontinuity — and after time went back
// (an encoder reconnecting with its clock reset) the MPD still renders (from the restart on).
func TestGaps(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second}, "video")
	at := uint64(0)
	add := func(n int) {
		for range n {
			if err := c.Append("video", frag(at, 1000, at%2000 == 0)); err != nil {
				t.Fatal(err)
			}
			at += 1000
		}
	}
	add(4)
	at += 2000 // a hole of a whole segment: a discontinuity
	add(4)
	at += 1000 // a one-second hole: absorbed into the next segment
	add(5)
	srv := NewServer(nil)
	srv.Add(c)
	get := func(u string) (int, string) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
		return rec.Code, rec.Body.String()
	}
	code, pl := get("/live/ch/video/index.m3u8")
	if code != 200 || strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Fatalf("playlist %d:\n%s", code, pl)
	}
	p := c.snapshot(time.Now(), "", false)
	if err := p.Validate(); err != nil {
		t.Fatalf("snapshot invalid: %v", err)
	}
	if code, mpd := get("/live/ch/manifest.mpd"); code != 200 {
		t.Fatalf("MPD %d: %s", code, mpd)
	}
	// The clock goes back after a reconnect.
	c.TrackDiscontinuity("video")
	at = 0
	add(5)
	if code, mpd := get("/live/ch/manifest.mpd"); code != 200 || !strings.Contains(mpd, `startNumber="`) {
		t.Fatalf("MPD after time went back: %d %s", code, mpd)
	}
}
