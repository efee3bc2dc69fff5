package live

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/manifest"
)

// TestOneWriterPerChannel: a second channel on a folder in use is refused, naming the folder
// and the holder (this process); once the first is closed the folder is free again.
func TestOneWriterPerChannel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ch")
	first, err := NewChannel(Config{Name: "ch", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewChannel(Config{Name: "ch", Dir: dir})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second writer on %s: %v, want ErrInUse", dir, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, dir) || !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())+" ") || strings.Contains(msg, "\n") {
		t.Errorf("refusal %q does not name the folder and the holder on one line", msg)
	}
	first.Close()
	again, err := NewChannel(Config{Name: "ch", Dir: dir})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	again.Close()
}

// TestSegmentWriteOnce: a segment name that already holds other bytes (a previous run whose log
// was lost) is not overwritten; the refusal is logged as an error. The same bytes again are fine.
func TestSegmentWriteOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ch")
	published := []byte("bytes a cache already holds for a year")
	// What a previous run left: its init and one segment, but no log.
	os.MkdirAll(filepath.Join(dir, "video"), 0o755)
	os.WriteFile(filepath.Join(dir, "video", manifest.InitSegmentName), []byte("init"), 0o644)
	os.WriteFile(filepath.Join(dir, "video", segmentName(0)), published, 0o644)
	var logs bytes.Buffer
	c, err := NewChannel(Config{Name: "ch", Dir: dir, SegmentDuration: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.AddTrack(manifest.Track{ID: "video", Kind: manifest.Video, Codecs: "avc1.64001f", Timescale: ts}, []byte("init")); err != nil {
		t.Fatal(err)
	}
	for at := uint64(0); at < 3000; at += 1000 {
		c.Append("video", frag(at, 1000, true))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "video", segmentName(0))); !bytes.Equal(b, published) {
		t.Errorf("%s was overwritten: %q", segmentName(0), b)
	}
	srv := NewServer(nil)
	srv.Add(c)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/ch/video/"+segmentName(0), nil))
	if !bytes.Equal(rec.Body.Bytes(), published) {
		t.Errorf("%s served as %q, not the bytes published first", segmentName(0), rec.Body.Bytes())
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), ErrPublished.Error()) {
		t.Errorf("the refusal was not logged as an error:\n%s", logs.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "video", segmentName(1))); string(b) != "f1s" {
		t.Errorf("the next segment was not stored: %q", b)
	}
	f := filepath.Join(t.TempDir(), "x")
	if writeOnce(f, []byte("x")) != nil || writeOnce(f, []byte("x")) != nil || !errors.Is(writeOnce(f, []byte("y")), ErrPublished) {
		t.Error("writeOnce: same bytes twice must pass, other bytes must be refused")
	}
}

// TestClockNumbers: numbers from the clock only grow. A real-time run started at t0 publishes
// its segment k (parts of it, while in progress) no earlier than t0 + k·d; a run started after
// such a publication starts above it, whatever the segment duration.
func TestClockNumbers(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 123e6, time.UTC)
	for _, seg := range []time.Duration{time.Second, 2 * time.Second, 1500 * time.Millisecond, 6 * time.Second} {
		part := seg / 10 // the shortest part anything is published after
		for _, k := range []uint64{0, 1, 2, 7, 1800} {
			published := t0.Add(time.Duration(k)*seg + part)
			for _, later := range []time.Duration{0, time.Millisecond, seg / 3, seg - 1, seg, time.Hour} {
				if next, last := clockNumber(published.Add(later), seg), clockNumber(t0, seg)+k; next <= last {
					t.Errorf("segment %v: a run started at t0 published %d at t0+%v; a run started %v later starts at %d",
						seg, last, published.Sub(t0), later, next)
				}
			}
		}
		if n := clockNumber(time.Date(2038, 1, 1, 0, 0, 0, 0, time.UTC), seg); n > 1<<32-1 {
			t.Errorf("segment %v: %d does not fit DASH @startNumber in 2038", seg, n)
		}
	}
}

// TestPartsStayFetchable: a part is served while listed, after it left the playlist, after its
// segment left the live window (from disk) and after a restart, always with the bytes of its
// slice of the segment; beyond the DVR window it is gone.
func TestPartsStayFetchable(t *testing.T) {
	cfg := Config{SegmentDuration: time.Second, PartDuration: 250 * time.Millisecond, Window: 3 * time.Second, DVR: 8 * time.Second}
	c := testChannel(t, cfg, "video")
	srv := NewServer(nil)
	srv.Add(c)
	get := func(srv *Server, u string) (int, []byte) {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
		return rec.Code, rec.Body.Bytes()
	}
	at := uint64(0)
	add := func(ms uint64) {
		for end := at + ms; at < end; at += 250 {
			if err := c.Append("video", frag(at, 250, at%1000 == 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(2000)
	// Segment 0 is complete and its parts are listed: remember them.
	_, pl := get(srv, "/live/ch/video/index.m3u8")
	if !strings.Contains(string(pl), `URI="seg_0.3.m4s"`) {
		t.Fatalf("segment 0's parts are not listed:\n%s", pl)
	}
	listed := map[string][]byte{}
	for p := range 4 {
		name := partName(0, p)
		code, b := get(srv, "/live/ch/video/"+name)
		if code != 200 {
			t.Fatalf("%s while listed: %d", name, code)
		}
		listed[name] = b
	}
	check := func(srv *Server, when string) {
		t.Helper()
		var whole []byte
		for p := range 4 {
			name := partName(0, p)
			code, b := get(srv, "/live/ch/video/"+name)
			if code != 200 || !bytes.Equal(b, listed[name]) {
				t.Errorf("%s %s: %d %q, want 200 %q", name, when, code, b, listed[name])
			}
			whole = append(whole, b...)
		}
		if _, seg := get(srv, "/live/ch/video/"+segmentName(0)); !bytes.Equal(seg, whole) {
			t.Errorf("%s: the parts are not the segment's slices", when)
		}
	}
	add(3000) // segment 0's parts leave the playlist (parts are listed for ~3 target durations)
	if _, pl := get(srv, "/live/ch/video/index.m3u8"); strings.Contains(string(pl), "seg_0.") {
		t.Fatalf("segment 0's parts still listed:\n%s", pl)
	}
	check(srv, "after leaving the playlist")
	add(3000) // segment 0 leaves the live window and memory: its parts come from disk
	if _, pl := get(srv, "/live/ch/video/index.m3u8"); strings.Contains(string(pl), segmentName(0)) {
		t.Fatalf("segment 0 still in the live window:\n%s", pl)
	}
	check(srv, "in the DVR window")

	// A restarted process serves them too, from its segment log.
	c.Close()
	cfg.Name, cfg.Dir = "ch", c.cfg.Dir
	c2, err := NewChannel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.AddTrack(manifest.Track{ID: "video", Kind: manifest.Video, Codecs: "avc1.64001f", Timescale: ts}, []byte("init")); err != nil {
		t.Fatal(err)
	}
	srv2 := NewServer(nil)
	srv2.Add(c2)
	check(srv2, "after a restart")

	// Beyond the DVR window: gone.
	c = c2
	add(10000)
	for p := range 4 {
		if code, _ := get(srv2, "/live/ch/video/"+partName(0, p)); code != http.StatusNotFound {
			t.Errorf("%s beyond the DVR window: %d, want 404", partName(0, p), code)
		}
	}
}

// TestUnalignedKeyframes: a video rendition whose keyframes miss the segment grid is reported
// once per segment it had to extend (log with track and segment, metric); its segments run to
// the next keyframe, each starting with one, and no media is dropped. An aligned rendition and
// audio are not reported.
func TestUnalignedKeyframes(t *testing.T) {
	var logs bytes.Buffer
	m := NewMetrics()
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, "video_a", "video_b", "video_c", "audio")
	for at := uint64(0); at < 12000; at += 500 {
		for _, a := range []error{
			c.Append("video_a", frag(at, 500, at%2000 == 0)), // keyframes on the grid
			c.Append("video_b", frag(at, 500, at%2500 == 0)), // every 2.5 s: off the grid
			c.Append("video_c", frag(at, 500, at%5000 == 0)), // every 5 s: misses whole grid lines
			c.Append("audio", frag(at, 500, true)),
		} {
			if a != nil {
				t.Fatal(a)
			}
		}
	}
	p := c.snapshot(time.Now(), "", false)
	var b *manifest.Track
	for _, tr := range p.Tracks() {
		if tr.ID == "video_b" {
			b = tr
		}
	}
	// video_b: segments 0+2.5 (grid line 2 s), 2.5+2.5 (4 s), 5+2.5 (6 s), 7.5+2.5 (8 s), each
	// extended past its line to the next keyframe; 10 s… in progress.
	var got []string
	var total uint64
	for i, s := range b.Segments {
		got = append(got, strconv.FormatUint(s.Start, 10)+"+"+strconv.FormatUint(s.Duration, 10))
		total += s.Duration
		if !c.byID["video_b"].segs[i].parts[0].independent {
			t.Errorf("video_b segment %d does not start with a keyframe", s.Number)
		}
	}
	if strings.Join(got, " ") != "0+2500 2500+2500 5000+2500 7500+2500" || total != 10000 {
		t.Errorf("video_b segments %v", got)
	}
	text := logs.String()
	for _, want := range []string{
		"track=video_b segment=0 grid_line=2s extended_by=500ms grid_lines_missed=1\n",
		"track=video_b segment=1 grid_line=4s extended_by=1s grid_lines_missed=1\n",
		"track=video_b segment=2 grid_line=6s extended_by=1.5s grid_lines_missed=1\n",
		"track=video_b segment=3 grid_line=8s extended_by=2s grid_lines_missed=1\n",
		"track=video_c segment=0 grid_line=2s extended_by=3s grid_lines_missed=2\n",
		"track=video_c segment=1 grid_line=6s extended_by=4s grid_lines_missed=2\n",
	} {
		if n := strings.Count(text, want); n != 1 {
			t.Errorf("%q reported %d times, want once:\n%s", want, n, text)
		}
	}
	if n := strings.Count(text, "level=WARN"); n != 6 || strings.Contains(text, "track=video_a") || strings.Contains(text, "track=audio") {
		t.Errorf("%d warnings, want 6, none for the aligned renditions:\n%s", n, text)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{`reel_live_unaligned_segments_total{channel="ch",track="video_b"} 4`, `reel_live_unaligned_segments_total{channel="ch",track="video_c"} 2`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("missing %s in:\n%s", want, rec.Body.String())
		}
	}
}
