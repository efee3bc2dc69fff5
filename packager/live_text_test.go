package packager

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/packager/live"
	"github.com/reelvideo/reel/packager/subtitles"
)

// liveSub is the sidecar of the live tests: four cues over the 12 s ladder, one crossing a
// 2 s segment boundary.
var liveSub = samplePath("subs/ladder.fr.vtt")

// liveFrameMs is one frame of the ladder (30 fps), the tolerance of the round trips.
const liveFrameMs = 34

// loopUntil plays opt on ch with a fake clock until `until` of media time has been appended,
// then stops the source, as a signal would (the channel stays live: not ended).
func loopUntil(t *testing.T, ch *live.Channel, opt LoopOptions, until time.Duration) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	start := clock.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt.Clock = clock.Now
	opt.Sleep = func(ctx context.Context, d time.Duration) error {
		if clock.Now().Add(d).Sub(start) > until {
			cancel()
		}
		return clock.Sleep(ctx, d)
	}
	if err := Loop(ctx, ch, opt); err != nil {
		t.Fatal(err)
	}
}

// fileCues are the cues of a subtitle file.
func fileCues(t *testing.T, file string) []subtitles.Cue {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := subtitles.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Cues
}

// loopedCues are the file's cues in loops [0, loops), loop k moved by k·loop ms, and only those
// that start before end ms.
func loopedCues(cues []subtitles.Cue, loop int64, loops int, end int64) []subtitles.Cue {
	var out []subtitles.Cue
	for k := range loops {
		for _, c := range cues {
			c.Start += int64(k) * loop
			c.End += int64(k) * loop
			if c.Start < end {
				c.End = min(c.End, end)
				out = append(out, c)
			}
		}
	}
	return out
}

// joinPieces joins consecutive pieces of one cue (the same cue in segments that follow each
// other, clipped at their boundary) and drops exact repeats.
func joinPieces(cues []subtitles.Cue) []subtitles.Cue {
	slices.SortStableFunc(cues, func(a, b subtitles.Cue) int { return int(a.Start - b.Start) })
	var out []subtitles.Cue
	for _, c := range cues {
		if i := slices.IndexFunc(out, func(o subtitles.Cue) bool {
			return o.Text == c.Text && o.Settings == c.Settings && o.ID == c.ID && c.Start >= o.Start && c.Start <= o.End
		}); i >= 0 {
			out[i].End = max(out[i].End, c.End)
			continue
		}
		out = append(out, c)
	}
	return out
}

var timestampMapRe = regexp.MustCompile(`X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:00:00:00\.000`)

// liveHLSCues reads the cues of a live text playlist back from its WebVTT segments, placed on
// the media timeline by their X-TIMESTAMP-MAP, and returns them with the playlist.
func liveHLSCues(t *testing.T, srv http.Handler, dir string) ([]subtitles.Cue, *m3u8.MediaPlaylist) {
	t.Helper()
	rec := get(t, srv, dir+"/index.m3u8")
	pl, typ, err := m3u8.DecodeFrom(bytes.NewReader(rec.Body.Bytes()), true)
	if err != nil || typ != m3u8.MEDIA {
		t.Fatalf("%s: %d %v:\n%s", dir, rec.Code, err, rec.Body.String())
	}
	media := pl.(*m3u8.MediaPlaylist)
	if strings.Contains(rec.Body.String(), "#EXT-X-PART") || strings.Contains(rec.Body.String(), "#EXT-X-KEY") ||
		strings.Contains(rec.Body.String(), "#EXT-X-MAP") || strings.Contains(rec.Body.String(), "PRELOAD-HINT") {
		t.Errorf("%s: a text playlist has no parts, keys, map or hint:\n%s", dir, rec.Body.String())
	}
	var all []subtitles.Cue
	for _, s := range segmentsOf(media) {
		seg := get(t, srv, dir+"/"+s.URI)
		if seg.Code != 200 || seg.Header().Get("Content-Type") != "text/vtt; charset=utf-8" || seg.Header().Get("ETag") == "" {
			t.Fatalf("%s: %d %v", s.URI, seg.Code, seg.Header())
		}
		m := timestampMapRe.FindStringSubmatch(seg.Body.String())
		if m == nil {
			t.Fatalf("%s: no X-TIMESTAMP-MAP:\n%s", s.URI, seg.Body.String())
		}
		mpegts, _ := strconv.ParseInt(m[1], 10, 64)
		tr, err := subtitles.ParseVTT(s.URI, seg.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tr.Cues {
			c.Start += mpegts / 90
			c.End += mpegts / 90
			c.Line = 0
			all = append(all, c)
		}
	}
	return joinPieces(all), media
}

// liveDASHCues reads the cues of the MPD's text AdaptationSet in lang back from its wvtt
// segments, and returns them with the Representation's id.
func liveDASHCues(t *testing.T, srv http.Handler, base, lang string) ([]subtitles.Cue, *mpd.MPD) {
	t.Helper()
	rec := get(t, srv, base+"/manifest.mpd")
	m, err := mpd.ReadFromString(rec.Body.String())
	if err != nil {
		t.Fatalf("MPD %d: %v\n%s", rec.Code, err, rec.Body.String())
	}
	var samples []mp4.FullSample
	var timescale uint32
	found := 0
	for _, p := range m.Periods {
		for _, as := range p.AdaptationSets {
			if as.ContentType != "text" || as.Lang != lang {
				continue
			}
			found++
			r := as.Representations[0]
			st := r.SegmentTemplate
			if r.Codecs != "wvtt" || st == nil || st.SegmentTimeline == nil || st.AvailabilityTimeOffset != 0 {
				t.Fatalf("text representation %+v", r)
			}
			init := get(t, srv, base+"/"+strings.ReplaceAll(st.Initialization, "$RepresentationID$", r.Id))
			f, err := mp4.DecodeFile(bytes.NewReader(init.Body.Bytes()))
			if err != nil || f.Init == nil || f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Wvtt == nil {
				t.Fatalf("%s init: %d %v", r.Id, init.Code, err)
			}
			timescale = f.Init.Moov.Trak.Mdia.Mdhd.Timescale
			n := uint64(*st.StartNumber)
			for _, s := range st.SegmentTimeline.S {
				for range s.R + 1 {
					uri := strings.ReplaceAll(strings.ReplaceAll(st.Media, "$RepresentationID$", r.Id), "$Number$", strconv.FormatUint(n, 10))
					seg := get(t, srv, base+"/"+uri)
					if seg.Code != 200 {
						t.Fatalf("%s: %d", uri, seg.Code)
					}
					sf, err := mp4.DecodeFile(bytes.NewReader(seg.Body.Bytes()))
					if err != nil {
						t.Fatalf("%s: %v", uri, err)
					}
					for _, s := range sf.Segments {
						for _, frag := range s.Fragments {
							fs, err := frag.GetFullSamples(f.Init.Moov.Mvex.Trex)
							if err != nil {
								t.Fatal(err)
							}
							samples = append(samples, fs...)
						}
					}
					n++
				}
			}
		}
	}
	if found == 0 {
		t.Fatalf("no text AdaptationSet in %s:\n%s", lang, rec.Body.String())
	}
	cues, err := subtitles.CuesFromWvtt(samples, timescale)
	if err != nil {
		t.Fatal(err)
	}
	return joinPieces(cues), m
}

// compareLiveCues: the cues that came back are the wanted ones, with their text and times
// within a frame.
func compareLiveCues(t *testing.T, what string, got, want []subtitles.Cue) {
	t.Helper()
	for i := range got {
		got[i].Line = 0
	}
	compareTextCues(t, what, got, want, liveFrameMs)
}

// TestLoopSubtitlesRoundTrip loops the ladder with a WebVTT sidecar for two loops and a bit,
// as fast as it can, and reads every cue back — from the live HLS WebVTT segments and from the
// dynamic MPD's wvtt segments, then again once the event has ended — with its text and its
// times within a frame: the cues of the second loop 12 s after the first's. The text segments
// are in step with the video's (same numbers, same program date-times), and the text has no
// LL-HLS parts though the channel has.
func TestLoopSubtitlesRoundTrip(t *testing.T) {
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute})
	loopUntil(t, ch, LoopOptions{Inputs: []string{ladder[2]}, Subtitles: []Subtitle{{File: liveSub}}}, 25*time.Second)
	file := fileCues(t, liveSub)
	// Two loops of text are complete at 25 s: the segments to 24 s (the third loop's first
	// cue, 24.5–25.9 s, is in a segment still in progress).
	want := loopedCues(file, 12000, 2, 24000)

	master, typ, err := m3u8.DecodeFrom(strings.NewReader(get(t, srv, "/live/test/master.m3u8").Body.String()), true)
	if err != nil || typ != m3u8.MASTER {
		t.Fatal(err)
	}
	var subs []*m3u8.Alternative
	for _, a := range master.(*m3u8.MasterPlaylist).Variants[0].Alternatives {
		if a.Type == "SUBTITLES" {
			subs = append(subs, a)
		}
	}
	if len(subs) != 1 || subs[0].Language != "fr" || subs[0].Name != "Français" || subs[0].URI != "text_fr/index.m3u8" {
		t.Fatalf("SUBTITLES renditions %+v", subs)
	}

	got, media := liveHLSCues(t, srv, "/live/test/text_fr")
	if media.Closed {
		t.Fatal("the event has not ended, yet the text playlist has EXT-X-ENDLIST")
	}
	compareLiveCues(t, "live HLS", got, want)
	dash, m := liveDASHCues(t, srv, "/live/test", "fr")
	if m.Type == nil || *m.Type != "dynamic" {
		t.Fatalf("MPD type %v, want dynamic", m.Type)
	}
	compareLiveCues(t, "live DASH", dash, want)

	// In step: each text segment has the number and the program date-time of the video
	// segment of the same time.
	vpdt := map[uint64]time.Time{}
	var pdt time.Time
	for _, l := range strings.Split(get(t, srv, "/live/test/video_360p/index.m3u8").Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"); ok {
			pdt, _ = time.Parse(time.RFC3339Nano, v)
		}
		if m := regexp.MustCompile(`^seg_(\d+)\.m4s$`).FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			vpdt[n] = pdt
		}
	}
	for i, s := range segmentsOf(media) {
		n := media.SeqNo + uint64(i)
		if s.URI != fmt.Sprintf("seg_%d.vtt", n) || !vpdt[n].Equal(s.ProgramDateTime) || s.Duration != 2 {
			t.Errorf("text segment %d (%s, %v, %.3fs): video's PDT %v", n, s.URI, s.ProgramDateTime, s.Duration, vpdt[n])
		}
	}
	if len(segmentsOf(media)) != 12 {
		t.Errorf("%d text segments, want 12 (24 s)", len(segmentsOf(media)))
	}
	// No parts of text: the part names of a text track are not served.
	if rec := get(t, srv, "/live/test/text_fr_wvtt/seg_0.0.m4s"); rec.Code != 404 {
		t.Errorf("a text part: %d", rec.Code)
	}

	ch.End()
	got, media = liveHLSCues(t, srv, "/live/test/text_fr")
	if !media.Closed {
		t.Error("ended event: no EXT-X-ENDLIST on the text playlist")
	}
	compareLiveCues(t, "ended HLS", got, want)
	dash, m = liveDASHCues(t, srv, "/live/test", "fr")
	if m.Type == nil || *m.Type != "static" {
		t.Fatalf("MPD type %v, want static", m.Type)
	}
	compareLiveCues(t, "ended DASH", dash, want)
}

// TestLoopSubtitlesEvent: a sidecar looped for a fixed number of loops ends with the media; a
// cue past the loop's end is cut at it, and the text stays clear and complete under key
// rotation (no key tags on its playlist, its own init segment in every key Period).
func TestLoopSubtitlesEvent(t *testing.T) {
	dir := t.TempDir()
	long := dir + "/long.fr.vtt"
	if err := os.WriteFile(long, []byte("WEBVTT\n\n00:00:10.000 --> 00:00:14.000\nÀ cheval sur la boucle\n\n00:00:13.000 --> 00:00:14.000\nAprès la boucle\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, Window: time.Minute, Encryption: liveEncryption(t, "cbcs", liveTestSeed)})
	clock := &fakeClock{now: time.Now()}
	if err := Loop(context.Background(), ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 2, Subtitles: []Subtitle{{File: long, Name: "Boucle"}},
		Clock: clock.Now, Sleep: clock.Sleep}); err != nil {
		t.Fatal(err)
	}
	want := []subtitles.Cue{{Start: 10000, End: 12000, Text: "À cheval sur la boucle"}, {Start: 22000, End: 24000, Text: "À cheval sur la boucle"}}
	got, media := liveHLSCues(t, srv, "/live/test/text_fr")
	compareLiveCues(t, "HLS", got, want)
	if !media.Closed || len(segmentsOf(media)) != 12 {
		t.Errorf("%d text segments (closed %v), want 12 and ENDLIST", len(segmentsOf(media)), media.Closed)
	}
	dash, m := liveDASHCues(t, srv, "/live/test", "fr")
	compareLiveCues(t, "DASH", dash, want)
	if len(m.Periods) < 2 {
		t.Errorf("%d Periods, want one per key period", len(m.Periods))
	}
	init := get(t, srv, "/live/test/text_fr_wvtt/init.mp4").Body.Bytes()
	if bytes.Contains(init, []byte("sinf")) || bytes.Contains(init, []byte("encv")) {
		t.Error("the text init segment is protected")
	}
	if vid := get(t, srv, "/live/test/video_360p/index.m3u8").Body.String(); !strings.Contains(vid, "#EXT-X-KEY") {
		t.Errorf("the video is not encrypted:\n%.300s", vid)
	}
}

// loopRuns are runs of reel live on one channel folder, one after another as restarts are.
type loopRuns struct{ prev *live.Channel }

// run closes the previous run's channel, plays one loop of the ladder's 360p rung with subs on
// a channel of cfg (a fake clock, as fast as it goes) and returns a server of that channel.
func (r *loopRuns) run(t *testing.T, cfg live.Config, subs []Subtitle) *live.Server {
	t.Helper()
	if r.prev != nil {
		r.prev.Close()
	}
	ch, err := live.NewChannel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Now()}
	if err := Loop(context.Background(), ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 1, Subtitles: subs, Clock: clock.Now, Sleep: clock.Sleep}); err != nil {
		t.Fatal(err)
	}
	r.prev = ch
	srv := live.NewServer(nil)
	if err := srv.Add(ch); err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestLoopSubtitlesResume: a restarted looped channel keeps its text segments (the segment log)
// and continues them, in step with the media: the second run's cues sit where its media does.
func TestLoopSubtitlesResume(t *testing.T) {
	dir := t.TempDir()
	cfg := live.Config{Name: "test", Dir: dir, SegmentDuration: 2 * time.Second, Window: time.Minute}
	var runs loopRuns
	subs := []Subtitle{{File: liveSub}}
	runs.run(t, cfg, subs)
	srv := runs.run(t, cfg, subs)
	got, media := liveHLSCues(t, srv, "/live/test/text_fr")
	want := loopedCues(fileCues(t, liveSub), 12000, 2, 24000)
	compareLiveCues(t, "HLS after a restart", got, want)
	if n := len(segmentsOf(media)); n != 12 || media.SeqNo != 0 {
		t.Errorf("%d text segments from %d, want 12 from 0", n, media.SeqNo)
	}
	pl := get(t, srv, "/live/test/text_fr/index.m3u8").Body.String()
	if strings.Count(pl, "#EXT-X-DISCONTINUITY\n") != 1 {
		t.Errorf("text playlist after a restart:\n%s", pl)
	}
	dash, _ := liveDASHCues(t, srv, "/live/test", "fr")
	compareLiveCues(t, "DASH after a restart", dash, want)
}

// wvttInput builds an encoder's wvtt track at timescale ts: its init segment (language fr) and
// fragments with the given sample boundaries (ms), each sample the cues showing then, or a
// vtte.
func wvttInput(t *testing.T, ts uint32, cues []subtitles.Cue, frags [][2]int64) (init []byte, out [][]byte) {
	t.Helper()
	b, err := subtitles.WvttInit(&subtitles.Track{Styles: []string{"::cue { color: yellow; }"}}, "fr")
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	f.Init.Moov.Trak.Mdia.Mdhd.Timescale = ts
	var ib bytes.Buffer
	if err := f.Init.Encode(&ib); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frags {
		var seg bytes.Buffer
		if err := subtitles.WriteWvttSegment(&seg, uint32(i+1), fr[0], fr[1], cues); err != nil {
			t.Fatal(err)
		}
		// Re-time the ms samples to ts.
		sf, err := mp4.DecodeFile(bytes.NewReader(seg.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		src := sf.Segments[0].Fragments[0]
		samples, err := src.GetFullSamples(nil)
		if err != nil {
			t.Fatal(err)
		}
		frag, _ := mp4.CreateFragment(uint32(i+1), 1)
		for _, s := range samples {
			s.DecodeTime = s.DecodeTime * uint64(ts) / 1000
			s.Dur = s.Dur * ts / 1000
			frag.AddFullSample(s)
		}
		var fb bytes.Buffer
		if err := frag.Encode(&fb); err != nil {
			t.Fatal(err)
		}
		out = append(out, fb.Bytes())
	}
	return ib.Bytes(), out
}

// put sends body to the ingest handler and returns the answer.
func put(t *testing.T, h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPut, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/mp4")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestIngestWvtt: a wvtt track pushed over DASH-IF ingest beside ffmpeg's video and audio
// becomes the channel's text track, in the sender's timescale (90 kHz here) re-cut on the
// channel's 2 s grid whatever the sender's fragments (1.5 s, 2.5 s, 2 s): every cue comes back
// from HLS and DASH with its text and times. A malformed wvtt track is refused with 400 and a
// reason, and nothing of it is published.
func TestIngestWvtt(t *testing.T) {
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, Window: time.Minute})
	ing := NewIngest(nil)
	ing.Add(ch)
	ts := httptest.NewServer(ing)
	defer ts.Close()
	pushDASH(t, ts.URL+"/ingest/test/manifest.mpd", "6")

	cues := []subtitles.Cue{
		{Start: 500, End: 1500, Text: "Un"},
		{Start: 1800, End: 2600, Text: "Deux, <i>à cheval</i>", Settings: subtitles.Settings{Line: "0"}},
		{Start: 4200, End: 5000, Text: "Trois"},
	}
	init, frags := wvttInput(t, 90000, cues, [][2]int64{{0, 1500}, {1500, 4000}, {4000, 6000}})
	if rec := put(t, ing, "/ingest/test/Streams(subs)/init.mp4", init); rec.Code != 204 {
		t.Fatalf("text init: %d %s", rec.Code, rec.Body.String())
	}
	for i, f := range frags {
		if rec := put(t, ing, fmt.Sprintf("/ingest/test/Streams(subs)/seg_%d.m4s", i+1), f); rec.Code != 204 {
			t.Fatalf("text segment %d: %d %s", i+1, rec.Code, rec.Body.String())
		}
	}
	got, media := liveHLSCues(t, srv, "/live/test/text_fr")
	compareLiveCues(t, "ingest HLS", got, cues)
	if n := len(segmentsOf(media)); n != 3 {
		t.Errorf("%d text segments, want 3 (the 2 s grid)", n)
	}
	if master := get(t, srv, "/live/test/master.m3u8").Body.String(); !strings.Contains(master, `TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr"`) {
		t.Errorf("master:\n%s", master)
	}
	dash, _ := liveDASHCues(t, srv, "/live/test", "fr")
	compareLiveCues(t, "ingest DASH", dash, cues)
	if vtt := get(t, srv, "/live/test/text_fr/seg_0.vtt").Body.String(); !strings.Contains(vtt, "STYLE\n::cue { color: yellow; }") {
		t.Errorf("the sender's STYLE block is not in the WebVTT segments:\n%s", vtt)
	}
	// Time going back without a new init is refused, with the reason.
	if rec := put(t, ing, "/ingest/test/Streams(subs)/seg_9.m4s", frags[0]); rec.Code != 400 || !strings.Contains(rec.Body.String(), "before the end") {
		t.Errorf("a text fragment going back: %d %s", rec.Code, rec.Body.String())
	}

	// The encoder reconnects, its clock restarted: the text goes on after a discontinuity.
	_, again := wvttInput(t, 90000, []subtitles.Cue{{Start: 500, End: 1000, Text: "Quatre"}}, [][2]int64{{0, 2000}})
	if rec := put(t, ing, "/ingest/test/Streams(subs)/init.mp4", init); rec.Code != 204 {
		t.Fatalf("text init again: %d %s", rec.Code, rec.Body.String())
	}
	if rec := put(t, ing, "/ingest/test/Streams(subs)/seg_1.m4s", again[0]); rec.Code != 204 {
		t.Fatalf("text after the reconnect: %d %s", rec.Code, rec.Body.String())
	}
	pl := get(t, srv, "/live/test/text_fr/index.m3u8").Body.String()
	if !strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") || !strings.Contains(pl, "seg_3.vtt") {
		t.Errorf("text playlist after the reconnect:\n%s", pl)
	}
	if vtt := get(t, srv, "/live/test/text_fr/seg_3.vtt").Body.String(); !strings.Contains(vtt, "00:00:00.500 --> 00:00:01.000\nQuatre") {
		t.Errorf("seg_3.vtt after the reconnect:\n%s", vtt)
	}

	// Malformed wvtt tracks, each on a channel of its own.
	bad := func(name string, edit func(f *mp4.File)) {
		t.Run(name, func(t *testing.T) {
			ch, srv := newChannel(t, live.Config{Name: "bad"})
			ing := NewIngest(nil)
			ing.Add(ch)
			f, err := mp4.DecodeFile(bytes.NewReader(init))
			if err != nil {
				t.Fatal(err)
			}
			edit(f)
			var b bytes.Buffer
			if err := f.Init.Encode(&b); err != nil {
				t.Fatal(err)
			}
			rec := put(t, ing, "/ingest/bad/Streams(subs)/init.mp4", b.Bytes())
			if rec.Code != 400 || !strings.Contains(rec.Body.String(), "wvtt track 1") {
				t.Errorf("%d %q, want 400 naming the wvtt track", rec.Code, rec.Body.String())
			}
			if rec := get(t, srv, "/live/bad/text_fr/index.m3u8"); rec.Code != 404 {
				t.Errorf("a refused text track is served: %d", rec.Code)
			}
		})
	}
	bad("timescale 0", func(f *mp4.File) { f.Init.Moov.Trak.Mdia.Mdhd.Timescale = 0 })
	bad("no vttC", func(f *mp4.File) {
		w := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Wvtt
		w.VttC, w.Children = nil, nil
	})
}

// TestLoopSubtitlesLowLatencyKeys: with LL-DASH and key rotation, the key Period that the
// media's segment in progress opens is in the MPD at once, its text segment (made at the end
// of its cell) announced with it; without that the Period waited a segment for the text.
func TestLoopSubtitlesLowLatencyKeys(t *testing.T) {
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute,
		Encryption: liveEncryption(t, "cenc", liveTestSeed)})
	// 8.5 s: segments 0–3 complete, segment 4 (key period 2) in progress.
	loopUntil(t, ch, LoopOptions{Inputs: []string{ladder[2]}, Subtitles: []Subtitle{{File: liveSub}}}, 8500*time.Millisecond)
	m, err := mpd.ReadFromString(get(t, srv, "/live/test/manifest.mpd").Body.String())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range m.Periods {
		ids = append(ids, p.Id)
	}
	if !slices.Equal(ids, []string{"key-0", "key-1", "key-2"}) {
		t.Fatalf("Periods %v, want key-0 to key-2 (the one segment 4 opens)", ids)
	}
	last := m.Periods[2]
	var text *mpd.SegmentTemplateType
	for _, as := range last.AdaptationSets {
		if as.ContentType == "text" {
			text = as.Representations[0].SegmentTemplate
		}
	}
	if text == nil || *text.StartNumber != 4 || len(text.SegmentTimeline.S) != 1 || text.SegmentTimeline.S[0].D != 2000 {
		t.Fatalf("text in Period key-2: %+v", text)
	}
	if rec := get(t, srv, "/live/test/text_fr/index.m3u8"); strings.Contains(rec.Body.String(), "seg_4.vtt") {
		t.Errorf("HLS lists the text segment not made yet:\n%s", rec.Body.String())
	}
}

// TestLoopSubtitlesAddedOnRestart: subtitles added when a channel restarts (or whose header
// changed, which starts the text afresh) are numbered and dated as the resumed media: each
// text segment has the number of the video segment of the same time, and a program date-time
// within a frame of that segment's (the text's cells start on the grid lines, the video's
// segments at the keyframes just after them), though new tracks are numbered from the clock.
func TestLoopSubtitlesAddedOnRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := live.Config{Name: "test", Dir: dir, SegmentDuration: 2 * time.Second, Window: time.Minute}
	var runs loopRuns
	runs.run(t, cfg, nil) // numbered from 0
	// Numbered from the clock from now on: the video continues its numbers (6…), a new track
	// without history would start at the clock's.
	cfg.NumberByClock = true
	srv := runs.run(t, cfg, []Subtitle{{File: liveSub}})
	dated := func(pl, ext string) map[string]time.Time {
		out := map[string]time.Time{}
		var pdt time.Time
		for _, l := range strings.Split(pl, "\n") {
			if v, ok := strings.CutPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"); ok {
				pdt, _ = time.Parse(time.RFC3339Nano, v)
			} else if n, ok := strings.CutSuffix(l, ext); ok {
				out[n] = pdt
			}
		}
		return out
	}
	video := dated(get(t, srv, "/live/test/video_360p/index.m3u8").Body.String(), ".m4s")
	text := dated(get(t, srv, "/live/test/text_fr/index.m3u8").Body.String(), ".vtt")
	if len(text) != 6 || len(video) != 12 {
		t.Fatalf("%d text segments, %d video segments; want the second run's 6 and both runs' 12", len(text), len(video))
	}
	for n, pdt := range text {
		v, ok := video[n]
		if d := pdt.Sub(v); !ok || d > liveFrameMs*time.Millisecond || d < -liveFrameMs*time.Millisecond {
			t.Errorf("text %s at %v, video %s at %v", n, pdt, n, v)
		}
	}
}
