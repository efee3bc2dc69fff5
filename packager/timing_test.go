package packager

import (
	"context"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/live"
)

// aacFrame is one AAC-LC access unit of the samples (1024 samples at 48 kHz), in seconds.
const aacFrame = 1024.0 / 48000

// streamTiming is what ffprobe says about one stream's place on the presentation timeline.
type streamTiming struct {
	first   float64 // presentation time of the first packet (negative: priming the edit list hides)
	end     float64 // start_time + duration
	packets int
	frames  int // frames decoded: for AAC, ffmpeg drops the priming frame of a progressive file only
}

// probeTiming reads the first video ("v") or audio ("a") stream of path with ffprobe,
// decoding every frame.
func probeTiming(t testing.TB, path, sel string) streamTiming {
	t.Helper()
	streams := probeStreams(t, "-select_streams", sel+":0", "-count_frames", "-count_packets", path)
	if len(streams) != 1 {
		t.Fatalf("%s: %d %s streams", path, len(streams), sel)
	}
	s := streams[0]
	v := ffprobeJSON(t, "-select_streams", sel+":0", "-read_intervals", "%+#1", "-show_entries", "packet=pts_time", path)
	pkts, _ := v["packets"].([]any)
	if len(pkts) == 0 {
		t.Fatalf("%s: no %s packet", path, sel)
	}
	return streamTiming{
		first:   num(pkts[0].(map[string]any), "pts_time"),
		end:     num(s, "start_time") + num(s, "duration"),
		packets: int(num(s, "nb_read_packets")),
		frames:  int(num(s, "nb_read_frames")),
	}
}

// trackFile joins a packaged track's init segment and media segments into one fragmented MP4
// in a temporary folder (in single-file mode it is media.mp4 itself).
func trackFile(t testing.TB, tr *manifest.Track, dir string) string {
	t.Helper()
	if tr.InitURI != manifest.InitSegmentName {
		return filepath.Join(dir, tr.ID, tr.InitURI)
	}
	files := []string{tr.InitURI}
	for _, s := range tr.Segments {
		files = append(files, s.URI)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, tr.ID, f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	path := filepath.Join(t.TempDir(), tr.ID+".mp4")
	if err := os.WriteFile(path, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// avOffsets packages src and reports each output track's timing beside the source's.
func avOffsets(t testing.TB, src string, singleFile bool) (out map[string]streamTiming, source map[string]streamTiming, p *manifest.Presentation) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	p, err := Package(context.Background(), Options{Inputs: []string{src}, Output: dir, SingleFile: singleFile})
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	out, source = map[string]streamTiming{}, map[string]streamTiming{}
	for _, tr := range p.Tracks() {
		sel := "v"
		if tr.Kind == manifest.Audio {
			sel = "a"
		}
		out[sel] = probeTiming(t, trackFile(t, tr, dir), sel)
		source[sel] = probeTiming(t, src, sel)
	}
	return out, source, p
}

// TestEditListCarried packages a file whose audio starts with AAC priming hidden by an edit
// list (media_time 1024) and whose video has B-frames delayed by one (media_time 2 frames),
// and checks with ffprobe that the output puts every packet where the source does: the same
// first presentation time (the priming frame before zero), the same end, audio and video
// ending together, every frame decodable, and the MPD as long as the source.
func TestEditListCarried(t *testing.T) {
	for _, single := range []bool{false, true} {
		name := "segments"
		if single {
			name = "single-file"
		}
		t.Run(name, func(t *testing.T) {
			out, src, p := avOffsets(t, ladder[2], single)
			for _, sel := range []string{"v", "a"} {
				o, s := out[sel], src[sel]
				t.Logf("%s: first packet %.6fs (source %.6fs), end %.6fs (source %.6fs), %d packets (source %d)",
					sel, o.first, s.first, o.end, s.end, o.packets, s.packets)
				if math.Abs(o.first-s.first) > 0.001 {
					t.Errorf("%s: first packet at %.6fs, the source's at %.6fs: the edit list was not carried", sel, o.first, s.first)
				}
				// Issue 12 asks for one audio frame; hold half to stay clear of rounding.
				if math.Abs(o.end-s.end) > aacFrame/2 {
					t.Errorf("%s: ends at %.6fs, the source at %.6fs", sel, o.end, s.end)
				}
				if o.packets != s.packets || o.frames < o.packets-1 {
					t.Errorf("%s: %d packets, %d frames decode; the source has %d packets", sel, o.packets, o.frames, s.packets)
				}
			}
			if d := math.Abs(out["a"].end - out["v"].end); d > aacFrame/2 {
				t.Errorf("audio and video end %.1f ms apart", d*1000)
			}
			if d := p.Duration(); math.Abs(d-src["v"].end) > 0.001 {
				t.Errorf("presentation lasts %.6fs, the source %.6fs", d, src["v"].end)
			}
		})
	}
}

// TestEditListSourceKeepsTiming checks the premise of TestEditListCarried: the sample's audio
// has priming and its video a B-frame delay, both in edit lists.
func TestEditListSourceKeepsTiming(t *testing.T) {
	in, err := openGuarded(ladder[2])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var edits []int64
	for _, trak := range in.moov.Traks {
		if trak.Edts != nil && len(trak.Edts.Elst) > 0 && len(trak.Edts.Elst[0].Entries) > 0 {
			edits = append(edits, trak.Edts.Elst[0].Entries[0].MediaTime)
		}
	}
	if len(edits) != 2 || slices.Contains(edits, 0) {
		t.Fatalf("edit media times %v: want a non-zero edit on video and audio", edits)
	}
}

// liveTrackFile joins a live track's init segment and every listed segment into one file.
func liveTrackFile(t *testing.T, h http.Handler, channel, id string) string {
	t.Helper()
	all := get(t, h, "/live/"+channel+"/"+id+"/init.mp4").Body.Bytes()
	pl := get(t, h, "/live/"+channel+"/"+id+"/index.m3u8").Body.String()
	for _, s := range extinfRe.FindAllStringSubmatch(pl, -1) {
		rec := get(t, h, "/live/"+channel+"/"+id+"/"+s[2])
		if rec.Code != http.StatusOK {
			t.Fatalf("%s/%s: status %d", id, s[2], rec.Code)
		}
		all = append(all, rec.Body.Bytes()...)
	}
	path := filepath.Join(t.TempDir(), id+".mp4")
	if err := os.WriteFile(path, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoopEditListCarried: reel live --loop reads the same files, so its init segments carry
// the same edit lists: packets start where the source's do, and a two-loop event lasts two
// sources to the audio frame, audio and video ending together (every loop after the first
// starts after the priming the edit list hid in the first, so each loop lasts the video's
// length).
func TestLoopEditListCarried(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute})
	if err := Loop(context.Background(), ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 2, Clock: clock.Now, Sleep: clock.Sleep}); err != nil {
		t.Fatal(err)
	}
	out := map[string]streamTiming{}
	for id, sel := range map[string]string{"video_360p": "v", "audio": "a"} {
		o, s := probeTiming(t, liveTrackFile(t, srv, "test", id), sel), probeTiming(t, ladder[2], sel)
		t.Logf("%s: first packet %.6fs (source %.6fs), end %.6fs (two sources %.6fs)", id, o.first, s.first, o.end, 2*s.end)
		if math.Abs(o.first-s.first) > 0.001 {
			t.Errorf("%s: first packet at %.6fs, the source's at %.6fs: the edit list was not carried", id, o.first, s.first)
		}
		if math.Abs(o.end-2*s.end) > aacFrame/2 {
			t.Errorf("%s: ends at %.6fs, two loops of the source at %.6fs", id, o.end, 2*s.end)
		}
		out[sel] = o
	}
	if d := out["v"].end - out["a"].end; math.Abs(d) > aacFrame/2 {
		t.Errorf("audio ends %.1f ms before video", d*1000)
	}
}

// TestAVEndOffsets (make bench) packages the sample ladder with its French audio and prints,
// for every output track, where it ends against its source (ffprobe: start_time + duration),
// and how far each track's end lies from the first video's.
func TestAVEndOffsets(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("A/V end offsets against the source: run with REEL_COMPARE=1 (make bench)")
	}
	fra := samplePath("audio_fra.mp4")
	dir := filepath.Join(t.TempDir(), "out")
	p, err := Package(context.Background(), Options{Inputs: append(append([]string{}, ladder...), fra), Output: dir})
	if err != nil {
		t.Fatalf("Package: %v", err)
	}
	source := map[string]string{"video_720p": ladder[0], "video_480p": ladder[1], "video_360p": ladder[2], "audio": ladder[0], "audio_fr": fra}
	var videoEnd float64
	t.Logf("%-11s %-16s %10s %10s %9s %9s", "track", "source", "source end", "output end", "vs source", "vs video")
	for _, tr := range p.Tracks() {
		src, ok := source[tr.ID]
		if !ok {
			t.Fatalf("no source for track %s", tr.ID)
		}
		sel := map[manifest.Kind]string{manifest.Video: "v", manifest.Audio: "a"}[tr.Kind]
		o, s := probeTiming(t, trackFile(t, tr, dir), sel), probeTiming(t, src, sel)
		if videoEnd == 0 {
			videoEnd = o.end
		}
		t.Logf("%-11s %-16s %9.3fs %9.3fs %+7.1fms %+7.1fms", tr.ID, filepath.Base(src), s.end, o.end, (o.end-s.end)*1000, (o.end-videoEnd)*1000)
		if math.Abs(o.end-s.end) >= aacFrame || math.Abs(o.end-videoEnd) >= aacFrame {
			t.Errorf("%s ends %.1f ms from its source, %.1f ms from the video: more than one audio frame", tr.ID, (o.end-s.end)*1000, (o.end-videoEnd)*1000)
		}
	}
}
