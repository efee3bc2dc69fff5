package packager

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/live"
	"github.com/reelvideo/reel/packager/subtitles"
)

// liveText feeds a live channel's text track: it collects cues (ms of media time) and appends
// them as CMAF wvtt segments, one per cell of the channel's segment grid — the cells the media
// segments of the same numbers fill — each appended whole as one fragment once the source's
// time has passed the cell's end. A cell without cues is one vtte sample: the track has every
// segment the media has. A cue crossing a grid line is in both cells, clipped to each (wvtt
// carries times per sample; readers join the pieces, see subtitles.CuesFromWvtt).
type liveText struct {
	id   string
	grid int64 // the segment duration, ms
	next int64 // where the next cell starts, ms; -1 before the first cue time is known
	seen int64 // where the source's samples end so far, ms (ingest)
	seq  uint32
	// seqByCell numbers fragments by their grid cell instead of counting them (a looped source
	// anchored at an epoch: redundant sources agree on the bytes).
	seqByCell bool
	cues      []subtitles.Cue // cues that may still show in cells not yet appended, by start
}

func newLiveText(id string, segment time.Duration) *liveText {
	return &liveText{id: id, grid: max(segment.Milliseconds(), 1), next: -1}
}

// cellEnd is the end of the cell that a segment starting at ms from runs to: the next grid
// line, with the channel's slack (a start just before a line belongs to the cell after it;
// live.track.gridLineAfter), so that each appended cell is one segment.
func (lt *liveText) cellEnd(from int64) int64 {
	return ((from+lt.grid/20)/lt.grid + 1) * lt.grid
}

// add takes cues to show (times in ms of media time).
func (lt *liveText) add(cues ...subtitles.Cue) {
	lt.cues = append(lt.cues, cues...)
	slices.SortStableFunc(lt.cues, func(a, b subtitles.Cue) int { return cmp.Compare(a.Start, b.Start) })
}

// appendUpTo appends every cell that ends at or before upTo (ms). last, when known (else -1),
// is where the event ends: the last cell ends there, shorter than the others — or longer, by
// a sliver past its grid line, as a media segment ending just after its grid line is.
func (lt *liveText) appendUpTo(ch *live.Channel, upTo, last int64) error {
	if lt.next < 0 {
		return nil
	}
	if last >= 0 {
		upTo = min(upTo, last)
	}
	for lt.next < upTo {
		end := lt.cellEnd(lt.next)
		if last >= 0 && (end > last || last-end <= lt.grid/20) {
			end = last
		}
		if end > upTo {
			return nil
		}
		var in []subtitles.Cue
		for _, c := range lt.cues {
			if c.Start >= end {
				break
			}
			if c.End > lt.next && c.End > c.Start {
				in = append(in, c)
			}
		}
		lt.seq++
		if lt.seqByCell {
			lt.seq = uint32(lt.next/lt.grid + 1)
		}
		var b bytes.Buffer
		if err := subtitles.WriteWvttSegment(&b, lt.seq, lt.next, end, in); err != nil {
			return fmt.Errorf("text track %s: %w", lt.id, err)
		}
		f := live.Fragment{Data: b.Bytes(), Decode: uint64(lt.next), Duration: uint64(end - lt.next), Independent: true, Boundary: true}
		if err := ch.Append(lt.id, f); err != nil {
			return fmt.Errorf("text track %s: %w", lt.id, err)
		}
		lt.next = end
		// Cues over before the next cell are done with.
		lt.cues = slices.DeleteFunc(lt.cues, func(c subtitles.Cue) bool { return c.End <= end })
	}
	return nil
}

// restart forgets the pending cues and starts the cells again at from (ms): the source's
// time restarted (an encoder that reconnected).
func (lt *liveText) restart(from int64) {
	lt.cues, lt.next, lt.seen = nil, from, from
}

// textTrackInfo is the channel's description of a text track of subtitle s.
func textTrackInfo(id string, s Subtitle) manifest.Track {
	return manifest.Track{
		ID: id, Kind: manifest.Text, Format: manifest.WVTT, Timescale: subtitles.WvttTimescale,
		Language: s.Language, Name: s.Name, Default: s.Default, Forced: s.Forced, SDH: s.SDH, Autoselect: true,
	}
}

// loopText is a subtitle file looped with the media: the cues of loop k are the file's, moved
// by the start of loop k on the reference video track's timeline (so a cue at t in the file
// shows at t in every loop) and cut at the loop's end.
type loopText struct {
	*liveText
	file  []subtitles.Cue
	loops uint64 // loops whose cues have been added
}

// fill adds the cues of every loop that starts before upTo ms; start(k) is loop k's start, ms.
func (t *loopText) fill(upTo int64, start func(k uint64) int64, maxLoops int) {
	for (maxLoops <= 0 || t.loops < uint64(maxLoops)) && start(t.loops) < upTo {
		s, e := start(t.loops), start(t.loops+1)
		for _, c := range t.file {
			c.Start, c.End = c.Start+s, min(c.End+s, e)
			if c.Start < e {
				t.add(c)
			}
		}
		t.loops++
	}
}

// ingestText turns one ingested wvtt fragment's samples into cues for lt, and appends the
// cells they complete. The sender's timeline restarting (a reconnected encoder: reinit) is a
// discontinuity; otherwise time going back is refused.
func ingestText(ch *live.Channel, lt *liveText, samples []mp4.FullSample, timescale uint32, reinit bool) error {
	for _, s := range samples {
		if int(s.Size) != len(s.Data) {
			return fmt.Errorf("sample of %d bytes has %d bytes of data", s.Size, len(s.Data))
		}
	}
	cues, err := subtitles.CuesFromWvtt(samples, timescale)
	if err != nil {
		return err
	}
	first := subtitles.MsFromTimescale(samples[0].DecodeTime, timescale)
	last := samples[len(samples)-1]
	end := subtitles.MsFromTimescale(last.DecodeTime+uint64(last.Dur), timescale)
	switch {
	case lt.next < 0:
		lt.restart(first)
	case first >= lt.seen+lt.grid:
		// A cell or more without text: what came before ends where it did, and the channel
		// starts a new segment after a discontinuity, as it does for media that jumps ahead
		// (no cell of empty text for the time nothing was sent).
		if err := lt.appendUpTo(ch, lt.seen, lt.seen); err != nil {
			return err
		}
		lt.restart(first)
	case first < lt.seen && reinit:
		// What came before ends where it did; the new run starts a segment of its own.
		if err := lt.appendUpTo(ch, lt.seen, lt.seen); err != nil {
			return err
		}
		if err := ch.TrackDiscontinuity(lt.id); err != nil {
			return err
		}
		lt.restart(first)
	case first < lt.seen:
		return fmt.Errorf("%w (%d ms < %d ms)", live.ErrBackwards, first, lt.seen)
	}
	lt.add(cues...)
	lt.seen = max(lt.seen, end)
	return lt.appendUpTo(ch, end, -1)
}

// wvttTrack reads an ingested text trak with a wvtt sample entry: its WebVTT header (REGION and
// STYLE blocks) and timescale. ok is false for a text track in another format (stpp, tx3g),
// which is not carried.
func wvttTrack(trak *mp4.TrakBox) (hdr *subtitles.Track, timescale uint32, ok bool, err error) {
	stsd := trak.Mdia.Minf.Stbl.Stsd
	if len(stsd.Children) == 0 {
		return nil, 0, false, nil
	}
	entry, isWvtt := stsd.Children[0].(*mp4.WvttBox)
	if !isWvtt {
		return nil, 0, false, nil
	}
	switch {
	case len(stsd.Children) != 1:
		return nil, 0, true, fmt.Errorf("wvtt track %d has %d sample descriptions; only one is supported", trak.Tkhd.TrackID, len(stsd.Children))
	case trak.Mdia.Mdhd.Timescale == 0:
		return nil, 0, true, fmt.Errorf("wvtt track %d has timescale 0", trak.Tkhd.TrackID)
	case entry.VttC == nil:
		return nil, 0, true, fmt.Errorf("wvtt track %d: sample entry without its vttC box", trak.Tkhd.TrackID)
	}
	cfg := entry.VttC.Config
	if len(cfg) < 6 || cfg[:6] != "WEBVTT" {
		return nil, 0, true, fmt.Errorf("wvtt track %d: vttC does not start with WEBVTT", trak.Tkhd.TrackID)
	}
	hdr, err = subtitles.ParseVTT(fmt.Sprintf("wvtt track %d vttC", trak.Tkhd.TrackID), []byte(cfg))
	if err != nil {
		return nil, 0, true, err
	}
	if len(hdr.Cues) > 0 {
		return nil, 0, true, errors.New("wvtt vttC holds cues")
	}
	return hdr, trak.Mdia.Mdhd.Timescale, true, nil
}

// CheckSubtitles reads and parses subtitle files as a looped channel will, so that a command
// can refuse a malformed one (FILE:LINE: problem) before it makes anything.
func CheckSubtitles(subs []Subtitle) error {
	_, err := parseSubtitles(subs)
	return err
}
