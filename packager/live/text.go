package live

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/cespare/xxhash/v2"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/subtitles"
)

// A text track (Kind Text) is stored once, as CMAF wvtt (ISO/IEC 14496-30): its init segment
// and one segment per cell of the channel's time grid, each a fragment whose samples tile the
// cell (a vtte where no cue shows), so that it has the numbers the media has for the same time.
// Its source appends each segment whole, as one fragment: text has no LL-HLS parts, is never
// encrypted (key periods and the key rotation pass it by) and is served in two forms of the
// same bytes:
//
//   - DASH reads the wvtt segments themselves, under the track's ID with "_wvtt" after it
//     (TRACK_wvtt/init.mp4, TRACK_wvtt/seg_N.m4s — the names `reel package --sub` gives its
//     wvtt tracks), an AdaptationSet of its own in the MPD;
//   - HLS reads TRACK/seg_N.vtt, a WebVTT segment rendered on request from seg_N.m4s
//     (CuesFromWvtt, then WriteHLSSegment), listed by TRACK/index.m3u8 in the master's
//     SUBTITLES group. Its cue times count from the segment's start, and its
//     X-TIMESTAMP-MAP maps that start (LOCAL 0) to the segment's media time on the 90 kHz
//     clock (MPEGTS), so that the cues sit on the media timeline whatever its origin.
//
// Both therefore carry the same cues, cut at the same boundaries: a cue crossing a segment
// boundary is in each segment it overlaps, clipped to it (wvtt carries times per sample). The
// WebVTT form leaves out the cues' identifiers (wvttToVTT says why).

// WvttSuffix is appended to a text track's ID to name its wvtt rendition (the DASH one).
const WvttSuffix = "_wvtt"

// textState is what a text track needs beyond a media track's.
type textState struct {
	// header holds the REGION and STYLE blocks of the wvtt sample entry's vttC box, which
	// every WebVTT segment repeats.
	header *subtitles.Track
}

// setupText checks a text track's description and init segment (a wvtt sample entry) and
// keeps its WebVTT header. c.mu is not needed: t is not on the channel yet.
func (c *Channel) setupText(t *track) error {
	if t.info.Format == "" {
		t.info.Format = manifest.WVTT
	}
	if t.info.Format != manifest.WVTT {
		return fmt.Errorf("a live text track is stored as %s, not %s", manifest.WVTT, t.info.Format)
	}
	if !validName(t.info.ID + WvttSuffix) {
		return fmt.Errorf("text track id %q is too long for its wvtt rendition's name", t.info.ID)
	}
	hdr, err := WvttHeader(t.init)
	if err != nil {
		return err
	}
	t.text = &textState{header: hdr}
	t.info.Codecs = "wvtt"
	return nil
}

// WvttHeader reads the WebVTT header (REGION and STYLE blocks) of a wvtt init segment's sample
// entry, and checks that the init segment is one: a single track, handler "text" or "subt",
// sample entry wvtt with a vttC box, a timescale.
func WvttHeader(init []byte) (*subtitles.Track, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(init))
	if err != nil {
		return nil, fmt.Errorf("wvtt init segment: %w", err)
	}
	if f.Moov == nil || len(f.Moov.Traks) != 1 {
		return nil, errors.New("wvtt init segment: want a moov with one track")
	}
	trak := f.Moov.Traks[0]
	if trak.Mdia == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Hdlr == nil || trak.Mdia.Minf == nil ||
		trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil {
		return nil, errors.New("wvtt init segment: incomplete trak box")
	}
	if h := trak.Mdia.Hdlr.HandlerType; h != "text" && h != "subt" {
		return nil, fmt.Errorf("wvtt init segment: handler %q, want \"text\"", h)
	}
	if trak.Mdia.Mdhd.Timescale == 0 {
		return nil, errors.New("wvtt init segment: timescale 0")
	}
	stsd := trak.Mdia.Minf.Stbl.Stsd
	if len(stsd.Children) != 1 {
		return nil, fmt.Errorf("wvtt init segment: %d sample entries, want 1", len(stsd.Children))
	}
	entry, ok := stsd.Children[0].(*mp4.WvttBox)
	if !ok {
		return nil, fmt.Errorf("wvtt init segment: sample entry %q, want \"wvtt\"", stsd.Children[0].Type())
	}
	if entry.VttC == nil {
		return nil, errors.New("wvtt init segment: wvtt sample entry without vttC")
	}
	cfg := entry.VttC.Config
	if !strings.HasPrefix(cfg, "WEBVTT") {
		cfg = "WEBVTT\n\n" + cfg
	}
	hdr, err := subtitles.ParseVTT("vttC", []byte(cfg))
	if err != nil {
		return nil, fmt.Errorf("wvtt init segment: %w", err)
	}
	hdr.Cues = nil
	return hdr, nil
}

// textViews are the two manifest tracks of text track t in a snapshot: WebVTT for HLS under
// t's ID, WVTT for DASH under ID+WvttSuffix, with the same segments.
func textViews(mt manifest.Track) (vtt, wvtt *manifest.Track) {
	mt.LiveParts = nil
	w := mt
	w.ID, w.Format = mt.ID+WvttSuffix, manifest.WVTT
	v := mt
	v.Format, v.InitURI, v.SegmentTemplate, v.Codecs = manifest.WebVTT, "", "", ""
	v.Segments = make([]manifest.Segment, len(mt.Segments))
	for i, s := range mt.Segments {
		s.URI = vttName(s.Number)
		s.Parts = nil
		v.Segments[i] = s
	}
	return &v, &w
}

func vttName(n uint64) string { return "seg_" + strconv.FormatUint(n, 10) + ".vtt" }

// parseVTTName reads "seg_N.vtt".
func parseVTTName(f string) (uint64, bool) {
	body, ok := strings.CutPrefix(f, "seg_")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(body, ".vtt")
	if !ok || num == "" || (len(num) > 1 && num[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil
}

// textTrackFor resolves a request's track element: a text track's wvtt rendition
// (ID+WvttSuffix) is that track. c.mu is held.
func (c *Channel) textTrackFor(id string) *track {
	if base, ok := strings.CutSuffix(id, WvttSuffix); ok {
		if t := c.byID[base]; t != nil && t.text != nil {
			return t
		}
	}
	return nil
}

// serveTextFile answers a text track's files: under its ID the HLS playlist and the WebVTT
// segments, under ID+WvttSuffix the wvtt init segment and segments.
func (c *Channel) serveTextFile(w http.ResponseWriter, r *http.Request, t *track, wvtt bool, f string) {
	switch {
	case !wvtt && f == manifest.MediaPlaylist:
		c.servePlaylist(w, r, t)
	case !wvtt:
		n, ok := parseVTTName(f)
		if !ok {
			fail(w, http.StatusNotFound, "not found")
			return
		}
		c.serveVTT(w, r, t, n)
	case f == manifest.InitSegmentName:
		w.Header().Set("Cache-Control", immutable)
		w.Header().Set("Content-Type", "application/mp4")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(t.init))
	default:
		if _, p, ok := parseMediaName(f); !ok || p >= 0 {
			fail(w, http.StatusNotFound, "not found") // text has no parts
			return
		}
		c.serveMedia(w, r, t, f)
	}
}

// serveVTT renders wvtt segment n of t as an HLS WebVTT segment.
func (c *Channel) serveVTT(w http.ResponseWriter, r *http.Request, t *track, n uint64) {
	c.mu.Lock()
	var seg *segment
	for i := len(t.segs) - 1; i >= 0; i-- {
		if s := t.segs[i]; s.number == n {
			seg = s
			break
		} else if s.number < n {
			break
		}
	}
	var data []byte
	var start uint64
	if seg != nil {
		data, start = seg.data, seg.start
	}
	c.mu.Unlock()
	if seg == nil {
		fail(w, http.StatusNotFound, "no such segment")
		return
	}
	if data == nil {
		var err error
		if data, err = os.ReadFile(filepath.Join(t.dir, segmentName(n))); err != nil {
			fail(w, http.StatusNotFound, "segment left the DVR window")
			return
		}
	}
	body, err := wvttToVTT(data, t.info.Timescale, start, t.text.header)
	if err != nil {
		c.cfg.Logger.Error("live: rendering a WebVTT segment", "channel", c.cfg.Name, "track", t.info.ID, "segment", n, "err", err)
		fail(w, http.StatusInternalServerError, "could not render the WebVTT segment")
		return
	}
	// A strong validator of what is served: the same bytes on every replica and after a restart.
	w.Header().Set("ETag", fmt.Sprintf(`"%016x"`, xxhash.Sum64(body)))
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Type", "text/vtt; charset=utf-8")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// wvttToVTT is the WebVTT form of a wvtt segment starting at media time start (in timescale
// units): its cues, timed from the segment's start, under an X-TIMESTAMP-MAP that puts that
// start at its media time.
func wvttToVTT(seg []byte, timescale uint32, start uint64, header *subtitles.Track) ([]byte, error) {
	cues, err := SegmentCues(seg, timescale)
	if err != nil {
		return nil, err
	}
	base := subtitles.MsFromTimescale(start, timescale)
	for i := range cues {
		cues[i].Start = max(cues[i].Start-base, 0)
		cues[i].End = max(cues[i].End-base, cues[i].Start)
		// No identifier: a WebVTT player takes one identifier seen in two segments for the
		// same cue repeated, and shows it once (hls.js keeps the first cue of each identifier
		// on a track and drops the rest). Here a source identifier stands for several cues:
		// the two halves of a cue clipped at a boundary, and every replay of a looped source.
		// Without one, players identify a cue by its times and text, which is what makes
		// each of these distinct (and a segment fetched twice the same).
		cues[i].ID = ""
	}
	var b bytes.Buffer
	if err := subtitles.WriteHLSSegment(&b, header, cues, uint64(base)*90); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SegmentCues reads the cues of one wvtt segment (styp/moof/mdat…), times in ms of media
// time: a cue crossing the segment's ends comes out clipped to them.
func SegmentCues(seg []byte, timescale uint32) ([]subtitles.Cue, error) {
	f, err := mp4.DecodeFile(bytes.NewReader(seg))
	if err != nil {
		return nil, fmt.Errorf("wvtt segment: %w", err)
	}
	var samples []mp4.FullSample
	for _, s := range f.Segments {
		for _, frag := range s.Fragments {
			fs, err := frag.GetFullSamples(nil)
			if err != nil {
				return nil, fmt.Errorf("wvtt segment: %w", err)
			}
			samples = append(samples, fs...)
		}
	}
	return subtitles.CuesFromWvtt(samples, timescale)
}

// announceText lists, in a low-latency MPD with key rotation, each text track's next segment
// (its grid cell, not made yet) as the media's segments in progress are listed: a key Period
// is in the MPD only once every track has a segment in it, and the text, appended whole at
// the end of its cell, would otherwise keep the Period that a media segment in progress opens
// out of the MPD until that segment is complete. The text segment's availability time is its
// end, when it is made; a request a moment early waits for it (serveSegment). c.mu is held.
func (c *Channel) announceText(p *manifest.Presentation) {
	if p.Live.Keys == nil || c.ended {
		return
	}
	for _, mt := range p.TextTracks(manifest.WVTT) {
		t := c.textTrackFor(mt.ID)
		n := len(mt.Segments)
		if t == nil || t.cur != nil || n == 0 {
			continue
		}
		last := mt.Segments[n-1]
		start := last.Start + last.Duration
		end := ((start+t.slack())/t.grid + 1) * t.grid
		mt.Segments = append(mt.Segments, manifest.Segment{
			Start: start, Duration: end - start, URI: segmentName(last.Number + 1), Number: last.Number + 1,
			ProgramDateTime: t.pdt(start),
		})
		mt.NextNumber = 0
	}
}

// alignText numbers a text track without history (new to a resumed channel, or whose header
// changed) after the resumed video's segments: the number of its first cell is the one the
// video's next segment, starting where the video left off, takes. Numbered from the clock or
// from zero it would name other cells than the media's segments of those numbers, and under key
// rotation fall in other key periods (which are by number). c.mu is held.
func (c *Channel) alignText(t *track) {
	for _, o := range c.tracks {
		if o.info.Kind != manifest.Video || len(o.segs) == 0 {
			continue
		}
		next := o.segs[len(o.segs)-1].number + 1
		if cell := (o.end + o.slack()) / o.grid; next >= cell {
			t.firstNumber = next - cell
		}
		return
	}
}

// textPDT dates the text segment just started by the video's clock: media time m of the text
// is the video's media time m, so its program date-time is the one the video has there. A
// text segment is appended whole at the end of its cell, later than the media of its start,
// so a re-anchoring of its own after a discontinuity (at the time of its first append, see
// track.append) would date it up to a segment late, out of step with the video (players align
// subtitle playlists by PDT). c.mu is held.
func (c *Channel) textPDT(t *track) {
	s := t.cur
	if s == nil || len(s.parts) != 1 {
		return
	}
	for _, o := range c.tracks {
		if o.info.Kind != manifest.Video || o.anchorPDT.IsZero() {
			continue
		}
		at := s.start * uint64(o.info.Timescale) / uint64(t.info.Timescale)
		if at+o.slack() < o.anchorMedia {
			return // before the video's current run (a sender whose clock restarted): its own date
		}
		t.anchorMedia, t.anchorPDT = s.start, o.pdt(at)
		s.pdt = t.anchorPDT
		return
	}
}
