package packager

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/packager/live"
)

// pushDASH runs ffmpeg's dash muxer in real time, as an encoder would, PUTting seconds of a
// test pattern to url (…/ingest/CH/manifest.mpd).
func pushDASH(t *testing.T, url string, seconds string) {
	t.Helper()
	pushDASHArgs(t, url,
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", seconds, "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k")
}

// pushDASHArgs runs ffmpeg with the input and encoding args given, pushing to url with its
// dash muxer in 2 s segments of half-second chunks, reading its first input in real time (-re):
// pushed as fast as it encodes, on a loaded machine ffmpeg's requests overlapped, reached the
// server out of order and ended some chunked bodies early (a clean-clone CI run, and 5 runs in
// 30 beside CPU hogs), which no real-time encoder does.
func pushDASHArgs(t *testing.T, url string, args ...string) {
	t.Helper()
	ffmpeg := requireTool(t, "ffmpeg")
	cmd := exec.Command(ffmpeg, append(append([]string{"-v", "error", "-re"}, args...),
		"-f", "dash", "-method", "PUT", "-seg_duration", "2", "-frag_duration", "0.5", "-frag_type", "duration",
		"-streaming", "1", "-use_template", "1", "-use_timeline", "0",
		"-init_seg_name", "init-stream$RepresentationID$.m4s", "-media_seg_name", "chunk-stream$RepresentationID$-$Number%05d$.m4s",
		url)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg dash push: %v\n%s", err, out)
	}
}

// TestIngestFromFFmpeg: ffmpeg's dash muxer pushing with HTTP PUT feeds a channel: one
// rendition per stream, segments and parts, and a reconnect (a second run with a new init and
// its clock restarted) continues the channel after an EXT-X-DISCONTINUITY.
func TestIngestFromFFmpeg(t *testing.T) {
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute})
	ing := NewIngest(nil)
	ing.Add(ch)
	ts := httptest.NewServer(ing)
	defer ts.Close()
	pushDASH(t, ts.URL+"/ingest/test/manifest.mpd", "6")

	pl := get(t, srv, "/live/test/video_180p/index.m3u8").Body.String()
	if n := len(extinfRe.FindAllString(pl, -1)); n < 2 || strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") {
		t.Fatalf("%d segments after 6s pushed:\n%s", n, pl)
	}
	if a := get(t, srv, "/live/test/audio/index.m3u8"); a.Code != 200 || !strings.Contains(a.Body.String(), "#EXTINF") {
		t.Fatalf("audio playlist %d:\n%s", a.Code, a.Body.String())
	}
	before := len(extinfRe.FindAllString(pl, -1))

	// The encoder reconnects.
	pushDASH(t, ts.URL+"/ingest/test/manifest.mpd", "4")
	pl = get(t, srv, "/live/test/video_180p/index.m3u8").Body.String()
	if !strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") || len(extinfRe.FindAllString(pl, -1)) <= before {
		t.Fatalf("after the reconnect:\n%s", pl)
	}
	for i, s := range extinfRe.FindAllStringSubmatch(pl, -1) {
		if s[3] != strconv.Itoa(i) {
			t.Fatalf("segment %d numbered %s after the reconnect: numbers must continue", i, s[3])
		}
	}
}

// TestIngestRequests: what the ingest endpoint answers, by the request.
func TestIngestRequests(t *testing.T) {
	ch, _ := newChannel(t, live.Config{})
	ing := NewIngest(nil)
	ing.Add(ch)
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
		reason                    string
	}{
		{"PUT", "/ingest/test/manifest.mpd", "application/dash+xml", "<MPD/>", 204, ""},
		{"DELETE", "/ingest/test/chunk-stream0-00001.m4s", "", "", 204, ""},
		{"GET", "/ingest/test/init-stream0.m4s", "", "", 405, "PUT or POST"},
		{"PUT", "/ingest/nope/init-stream0.m4s", "video/mp4", "x", 404, "no such"},
		{"PUT", "/ingest/test/init-stream0.m4s", "text/html", "<html>", 415, "not CMAF"},
		{"PUT", "/ingest/test/init-stream1.m4s", "video/mp4", "<html>not mp4</html>", 400, "larger than"},
		{"POST", "/ingest/test/chunk-stream2-00001.m4s", "", "\x00\x00\x00\x08moof", 400, "moof before moov"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		rec := httptest.NewRecorder()
		ing.ServeHTTP(rec, req)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.reason) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.want, tc.reason)
		}
	}
}

// TestTrackKey: how pushed files are grouped into tracks.
func TestTrackKey(t *testing.T) {
	for in, want := range map[string]string{
		"init-stream0.m4s":           "stream0",
		"chunk-stream0-00001.m4s":    "stream0",
		"chunk-stream12-00001.m4s":   "stream12",
		"Streams(video1)/init.cmfv":  "video1",
		"Streams(audio)/seg-12.cmfa": "audio",
		"video/init.mp4":             "video",
		"video/00012.m4s":            "video",
		"audio-init.mp4":             "audio",
		"audio-000123.m4s":           "audio",
	} {
		if got := trackKey(in); got != want {
			t.Errorf("trackKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSegmentNumber(t *testing.T) {
	for in, want := range map[string]int64{
		"chunk-stream0-00042.m4s": 42, "init-stream0.m4s": -1, "Streams(v)/seg-7.cmfv": 7, "video/init.mp4": -1, "manifest.mpd": -1,
	} {
		if got := segmentNumber(in); got != want {
			t.Errorf("segmentNumber(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestIngestUnalignedRendition: an encoder pushing two renditions whose GOPs differ (2 s and
// 2.5 s at 24 fps) gets the off-grid one reported — a warning per extended segment, the
// metric — and the aligned one not at all. ffmpeg keeps one connection per rendition (as a
// real-time encoder's segments, a track's then arrive in order).
func TestIngestUnalignedRendition(t *testing.T) {
	var logs bytes.Buffer // read once the ingest server is closed
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m := live.NewMetrics()
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute,
		Metrics: m, Logger: logger})
	ing := NewIngest(logger) // a refused request would show among the warnings too
	ing.Add(ch)
	ts := httptest.NewServer(ing)
	defer ts.Close()
	pushDASHArgs(t, ts.URL+"/ingest/test/manifest.mpd", append(unalignedLadder, "-http_persistent", "1")...)
	ts.Close() // waits for the requests ffmpeg left behind to be handled
	for _, id := range []string{"video_180p", "video_144p"} {
		if n := len(extinfRe.FindAllString(get(t, srv, "/live/test/"+id+"/index.m3u8").Body.String(), -1)); n < 3 {
			t.Fatalf("%s: %d segments; warnings:\n%s", id, n, logs.String())
		}
	}
	text := logs.String()
	if !strings.Contains(text, "track=video_144p segment=0 grid_line=2s extended_by=500ms") || strings.Contains(text, "track=video_180p") {
		t.Errorf("warnings:\n%s", text)
	}
	metrics := get(t, m.Handler(), "/metrics").Body.String()
	if !strings.Contains(metrics, `reel_live_unaligned_segments_total{channel="test",track="video_144p"}`) ||
		strings.Contains(metrics, `reel_live_unaligned_segments_total{channel="test",track="video_180p"}`) {
		t.Errorf("metrics:\n%s", metrics)
	}
}

// TestIngestOrder: a track's requests are taken in order — the init before the segments that
// wait for it, then the segments by number, even when the later one started waiting first.
func TestIngestOrder(t *testing.T) {
	st := &ingestStream{last: -1, waiting: map[int64]int{}, done: make(chan struct{})}
	st.waitTurn(-1) // the init request arrived; it is being read
	taken := make(chan int64, 2)
	waits := func(n int64) {
		go func() { st.waitTurn(n); taken <- n; st.took(n) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st.orderMu.Lock()
			here := st.waiting[n] > 0
			st.orderMu.Unlock()
			if here {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("segment %d never waited", n)
			}
			runtime.Gosched()
		}
	}
	waits(2)
	waits(1)
	select {
	case n := <-taken:
		t.Fatalf("segment %d taken before the init was read", n)
	default:
	}
	st.took(-1)
	if first, second := <-taken, <-taken; first != 1 || second != 2 {
		t.Fatalf("taken in the order %d, %d", first, second)
	}
}
