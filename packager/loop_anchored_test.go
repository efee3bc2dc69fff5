package packager

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/packager/live"
)

// The looped source anchored at an epoch (LoopOptions.Epoch, live.Config.Epoch): two
// channels of the same files, started at different wall-clock moments, are at the same place
// of the loop at the same time and publish the same URLs with the same bytes — what redundant
// origins behind an edge's pool need — and a restarted channel continues that timeline.

var testEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// stopClock is a fakeClock whose Sleep ends the source once the clock reaches stop.
type stopClock struct {
	fakeClock
	stop time.Time
}

func (c *stopClock) Sleep(ctx context.Context, d time.Duration) error {
	if !c.Now().Add(d).Before(c.stop) {
		return errors.New("stopped")
	}
	return c.fakeClock.Sleep(ctx, d)
}

// anchoredRun loops the ladder (with subtitles) on a channel in dir from wall-clock time
// from to stop, as fast as it can, and returns the channel's server; the channel stays open
// (live) until stopRun or the test's end.
func anchoredRun(t *testing.T, dir string, from, stop time.Time, epoch time.Time) *live.Server {
	t.Helper()
	return anchoredRunWith(t, dir, from, stop, LoopOptions{Epoch: epoch})
}

// anchoredRunWith is anchoredRun with opt's Epoch and Backfill.
func anchoredRunWith(t *testing.T, dir string, from, stop time.Time, o LoopOptions) *live.Server {
	t.Helper()
	ch, err := live.NewChannel(live.Config{Name: "test", Dir: dir, SegmentDuration: 2 * time.Second,
		PartDuration: 500 * time.Millisecond, DVR: 10 * time.Minute, NumberByClock: true, Epoch: o.Epoch})
	if err != nil {
		t.Fatal(err)
	}
	clock := &stopClock{fakeClock{now: from}, stop}
	opt := LoopOptions{Inputs: ladder, Subtitles: []Subtitle{{File: samplePath("subs/ladder.fr.vtt")}},
		Clock: clock.Now, Sleep: clock.Sleep, Epoch: o.Epoch, Backfill: o.Backfill}
	if err := Loop(context.Background(), ch, opt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.Close)
	runs[dir] = ch
	srv := live.NewServer(nil)
	if err := srv.Add(ch); err != nil {
		t.Fatal(err)
	}
	return srv
}

// freshFirst is the number of the first segment a channel without history makes when it
// starts at start: the first grid line after it, or with backfill the first at or after a
// live window (30 s, the default) and a segment (2 s) before it.
func freshFirst(start time.Time, backfill bool) uint64 {
	const seg = 2 * time.Second
	at := start.Sub(testEpoch)
	if backfill {
		at -= 30*time.Second + seg
	}
	return uint64((at + seg - 1) / seg)
}

// runs are the channels anchoredRun left open, by folder.
var runs = map[string]*live.Channel{}

// stopRun closes the channel on dir, as when its process stops: the folder is free.
func stopRun(dir string) { runs[dir].Close(); delete(runs, dir) }

var (
	masterURIRe = regexp.MustCompile(`(?m)(?:URI="([^"]+/index\.m3u8)"|^([^#\n]+/index\.m3u8)$)`)
	entryPDTRe  = regexp.MustCompile(`#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(?:#EXT-X-[A-Z-]+:?.*\n)*?#EXTINF:([0-9.]+),\n(seg_(\d+)\.(?:m4s|vtt))`)
	mediaSeqRe  = regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)
	astRe       = regexp.MustCompile(`availabilityStartTime="([^"]+)"`)
	startNumRe  = regexp.MustCompile(`startNumber="(\d+)"`)
	templateRe  = regexp.MustCompile(`(?s)<SegmentTemplate[^>]*startNumber="(\d+)"[^>]*>\s*<SegmentTimeline>(.*?)</SegmentTimeline>`)
	sRe         = regexp.MustCompile(`<S(?: t="(\d+)")? d="(\d+)"(?: r="(\d+)")?`)
)

// entry is one segment as a media playlist lists it.
type entry struct {
	number     uint64
	pdt, dur   string
	uri        string
	body, etag string
}

// playlistEntries reads track's DVR playlist from srv, with every listed segment's bytes.
func playlistEntries(t *testing.T, srv *live.Server, track string) (msn uint64, entries []entry) {
	t.Helper()
	rec := get(t, srv, "/live/test/"+track+"?dvr=1")
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: %d", track, rec.Code)
	}
	pl := rec.Body.String()
	m := mediaSeqRe.FindStringSubmatch(pl)
	if m == nil {
		t.Fatalf("%s: no media sequence:\n%s", track, pl)
	}
	msn, _ = strconv.ParseUint(m[1], 10, 64)
	if strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") {
		t.Errorf("%s lists a discontinuity:\n%s", track, pl)
	}
	dir := track[:strings.LastIndex(track, "/")+1]
	for i, m := range entryPDTRe.FindAllStringSubmatch(pl, -1) {
		n, _ := strconv.ParseUint(m[4], 10, 64)
		if n != msn+uint64(i) {
			t.Fatalf("%s: segment %d of the playlist is number %d, media sequence %d", track, i, n, msn)
		}
		seg := get(t, srv, "/live/test/"+dir+m[3])
		if seg.Code != http.StatusOK || seg.Header().Get("ETag") == "" {
			t.Fatalf("%s%s: %d, ETag %q", dir, m[3], seg.Code, seg.Header().Get("ETag"))
		}
		entries = append(entries, entry{number: n, pdt: m[1], dur: m[2], uri: dir + m[3], body: seg.Body.String(), etag: seg.Header().Get("ETag")})
	}
	return msn, entries
}

// compareAnchored checks that b publishes, for every segment it lists, what a publishes under
// that number (at least minCommon segments per track), the same init segments, and the same
// MPD timeline facts.
func compareAnchored(t *testing.T, a, b *live.Server, minCommon int) {
	t.Helper()
	master := get(t, b, "/live/test/master.m3u8").Body.String()
	if got := get(t, a, "/live/test/master.m3u8").Body.String(); got != master {
		t.Errorf("master playlists differ:\n%s\n---\n%s", got, master)
	}
	var tracks []string
	for _, m := range masterURIRe.FindAllStringSubmatch(master, -1) {
		tracks = append(tracks, m[1]+m[2])
	}
	if len(tracks) < 5 { // three videos, audio, subtitles
		t.Fatalf("master lists %d media playlists:\n%s", len(tracks), master)
	}
	for _, track := range tracks {
		_, as := playlistEntries(t, a, track)
		_, bs := playlistEntries(t, b, track)
		byNumber := map[uint64]entry{}
		for _, e := range as {
			byNumber[e.number] = e
		}
		common := 0
		for _, e := range bs {
			ae, ok := byNumber[e.number]
			if !ok {
				continue
			}
			common++
			if ae.uri != e.uri || ae.pdt != e.pdt || ae.dur != e.dur || ae.etag != e.etag || ae.body != e.body {
				t.Errorf("%s number %d: a: %s PDT %s EXTINF %s ETag %s, %d bytes; b: %s PDT %s EXTINF %s ETag %s, %d bytes (same bytes: %v)",
					track, e.number, ae.uri, ae.pdt, ae.dur, ae.etag, len(ae.body), e.uri, e.pdt, e.dur, e.etag, len(e.body), ae.body == e.body)
			}
		}
		if common < minCommon {
			t.Errorf("%s: %d segments of b's %d are a's too, want at least %d", track, common, len(bs), minCommon)
		}
		dir := track[:strings.LastIndex(track, "/")+1]
		init := dir + "init.mp4"
		if strings.HasSuffix(strings.TrimSuffix(dir, "/"), "_vtt") || !strings.HasPrefix(dir, "video") && !strings.HasPrefix(dir, "audio") {
			continue // the text track's HLS form has no init segment
		}
		ai, bi := get(t, a, "/live/test/"+init), get(t, b, "/live/test/"+init)
		if ai.Code != 200 || ai.Body.String() != bi.Body.String() || ai.Header().Get("ETag") != bi.Header().Get("ETag") || ai.Header().Get("ETag") == "" {
			t.Errorf("%s differs: %d/%d, ETag %q/%q", init, ai.Code, bi.Code, ai.Header().Get("ETag"), bi.Header().Get("ETag"))
		}
		// The ETag validates: a cache holding the init segment of one origin revalidates it
		// against the other.
		req := httptest.NewRequest(http.MethodGet, "/live/test/"+init, nil)
		req.Header.Set("If-None-Match", ai.Header().Get("ETag"))
		rec := httptest.NewRecorder()
		b.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Errorf("%s with a's ETag from b: %d, want 304", init, rec.Code)
		}
	}
	am, bm := get(t, a, "/live/test/manifest.mpd?dvr=1").Body.String(), get(t, b, "/live/test/manifest.mpd?dvr=1").Body.String()
	if x, y := astRe.FindStringSubmatch(am), astRe.FindStringSubmatch(bm); x == nil || y == nil || x[1] != y[1] {
		t.Errorf("availabilityStartTime: %v, %v", x, y)
	}
	// Each adaptation set's timeline: b's segments have, by number, a's media times and durations.
	at, bt := mpdTimelines(t, am), mpdTimelines(t, bm)
	if len(at) != len(bt) || len(bt) < 5 {
		t.Fatalf("MPDs have %d and %d segment timelines", len(at), len(bt))
	}
	for i := range bt {
		common := 0
		for n, s := range bt[i] {
			if as, ok := at[i][n]; ok {
				common++
				if as != s {
					t.Errorf("MPD adaptation set %d, number %d: a has t=%d d=%d, b t=%d d=%d", i, n, as[0], as[1], s[0], s[1])
				}
			}
		}
		if common < minCommon {
			t.Errorf("MPD adaptation set %d: %d numbers in common, want at least %d", i, common, minCommon)
		}
	}
}

// mpdTimelines expands each SegmentTimeline of an MPD: number → {t, d}.
func mpdTimelines(t *testing.T, mpd string) []map[uint64][2]uint64 {
	t.Helper()
	if !strings.Contains(mpd, `type="dynamic"`) {
		t.Fatalf("not a dynamic MPD:\n%s", mpd)
	}
	var out []map[uint64][2]uint64
	for _, m := range templateRe.FindAllStringSubmatch(mpd, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		segs := map[uint64][2]uint64{}
		var at uint64
		for _, s := range sRe.FindAllStringSubmatch(m[2], -1) {
			if s[1] != "" {
				at, _ = strconv.ParseUint(s[1], 10, 64)
			}
			d, _ := strconv.ParseUint(s[2], 10, 64)
			r, _ := strconv.ParseUint(s[3], 10, 64)
			for range r + 1 {
				segs[n] = [2]uint64{at, d}
				n, at = n+1, at+d
			}
		}
		out = append(out, segs)
	}
	return out
}

// TestLoopAnchoredRedundant: two channels of the same looped ladder and subtitles, started
// 7.9 s apart on the wall clock (an injected clock), publish byte-identical segments and init
// segments with the same ETags under the same numbers, with the same PDTs, EXTINFs, media
// sequence numbers and MPD availabilityStartTime, over the window both cover.
func TestLoopAnchoredRedundant(t *testing.T) {
	t0 := testEpoch.Add(8000*time.Hour + 300*time.Millisecond)
	stop := t0.Add(50 * time.Second)
	a := anchoredRun(t, filepath.Join(t.TempDir(), "test"), t0, stop, testEpoch)
	b := anchoredRun(t, filepath.Join(t.TempDir(), "test"), t0.Add(7900*time.Millisecond), stop, testEpoch)
	compareAnchored(t, a, b, 15) // b covers about 42 s: 20 segments
	// The numbers are the grid cells since the epoch, the PDTs the epoch plus media time.
	_, es := playlistEntries(t, b, "video_360p/index.m3u8")
	first := es[0]
	if want := freshFirst(t0.Add(7900*time.Millisecond), false); first.number != want {
		t.Errorf("b's first segment is number %d, want %d (the first grid line after its start)", first.number, want)
	}
	if want := testEpoch.Add(time.Duration(first.number) * 2 * time.Second).Format("2006-01-02T15:04:05.000Z"); first.pdt != want {
		t.Errorf("b's first segment is dated %s, want %s", first.pdt, want)
	}
}

// TestLoopAnchoredBackfill: with Backfill, a channel started 38.3 s after another, and run
// for less than a live window, lists the same live playlists and MPD timelines as the one
// that has run longer: it started with the window behind it made, the same segments under
// the same numbers.
func TestLoopAnchoredBackfill(t *testing.T) {
	t0 := testEpoch.Add(8000*time.Hour + 300*time.Millisecond)
	stop := t0.Add(50 * time.Second)
	bStart := t0.Add(38300 * time.Millisecond) // 11.7 s before stop: less than the 30 s window
	o := LoopOptions{Epoch: testEpoch, Backfill: true}
	a := anchoredRunWith(t, filepath.Join(t.TempDir(), "test"), t0, stop, o)
	b := anchoredRunWith(t, filepath.Join(t.TempDir(), "test"), bStart, stop, o)
	compareAnchored(t, a, b, 15) // b covers about 44 s: 21 segments
	master := get(t, a, "/live/test/master.m3u8").Body.String()
	for _, m := range masterURIRe.FindAllStringSubmatch(master, -1) {
		track := "/live/test/" + m[1] + m[2]
		if pa, pb := get(t, a, track).Body.String(), get(t, b, track).Body.String(); pa != pb {
			t.Errorf("%s: the live playlists differ:\n%s\n---\n%s", track, pa, pb)
		}
	}
	ma, mb := mpdTimelines(t, get(t, a, "/live/test/manifest.mpd").Body.String()), mpdTimelines(t, get(t, b, "/live/test/manifest.mpd").Body.String())
	if !slices.EqualFunc(ma, mb, maps.Equal) {
		t.Errorf("the live MPDs' segment timelines differ:\n%v\n%v", ma, mb)
	}
	_, es := playlistEntries(t, b, "video_360p/index.m3u8")
	if want := freshFirst(bStart, true); es[0].number != want {
		t.Errorf("b's first segment is number %d, want %d (the first grid line a window and a segment before its start)", es[0].number, want)
	}
}

// TestLoopAnchoredRestart: an anchored channel stopped and restarted on its folder 11 s later
// continues its timeline without a discontinuity: the segments it missed are made at once,
// and every segment it lists is, byte for byte and by ETag and date, the one a channel that
// never stopped publishes under that number (the restart promise — a number never names other
// bytes — holds because the bytes are the same). History older than the DVR window, or from
// a run on another timeline, is dropped instead: numbers start at the grid line after now.
func TestLoopAnchoredRestart(t *testing.T) {
	t0 := testEpoch.Add(9000*time.Hour + 1100*time.Millisecond)
	stop := t0.Add(60 * time.Second)
	ref := anchoredRun(t, filepath.Join(t.TempDir(), "test"), t0, stop, testEpoch)

	dir := filepath.Join(t.TempDir(), "test")
	anchoredRun(t, dir, t0, t0.Add(20*time.Second), testEpoch)
	stopRun(dir)
	restarted := anchoredRun(t, dir, t0.Add(31*time.Second), stop, testEpoch)
	compareAnchored(t, ref, restarted, 25) // the whole minute: about 29 segments
	_, es := playlistEntries(t, restarted, "video_360p/index.m3u8")
	if want := freshFirst(t0, false); es[0].number != want {
		t.Errorf("after the restart the DVR starts at number %d, want %d (the first run's first)", es[0].number, want)
	}

	t.Run("history older than the DVR", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "test")
		anchoredRun(t, dir, t0, t0.Add(20*time.Second), testEpoch)
		stopRun(dir)
		late := t0.Add(11 * time.Minute) // the DVR is 10 minutes
		srv := anchoredRun(t, dir, late, late.Add(20*time.Second), testEpoch)
		_, es := playlistEntries(t, srv, "video_360p/index.m3u8")
		if want := freshFirst(late, false); len(es) == 0 || es[0].number != want {
			t.Errorf("the DVR starts at %v, want number %d: the old history dropped", es, want)
		}
	})
	t.Run("history on another timeline", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "test")
		anchoredRun(t, dir, t0, t0.Add(20*time.Second), testEpoch.Add(time.Second)) // another epoch
		stopRun(dir)
		srv := anchoredRun(t, dir, t0.Add(21*time.Second), t0.Add(40*time.Second), testEpoch)
		_, es := playlistEntries(t, srv, "video_360p/index.m3u8")
		if want := freshFirst(t0.Add(21*time.Second), false); len(es) == 0 || es[0].number != want {
			t.Errorf("the DVR starts at number %v, want %d: the other timeline's history dropped", slices.Collect(func(yield func(uint64) bool) {
				for _, e := range es {
					if !yield(e.number) {
						return
					}
				}
			}), want)
		}
	})
}
