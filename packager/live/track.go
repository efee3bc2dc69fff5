package live

import (
	"time"

	"github.com/reelvideo/reel/manifest"
)

// segment is one media segment of a track: complete, or the one being produced (track.cur).
type segment struct {
	number   uint64
	start    uint64 // media time of its first fragment
	duration uint64 // so far, while in progress
	gridEnd  uint64 // the grid line after which the next independent fragment starts a new segment
	endPos   uint64 // track.pos at its end: ages are measured on that monotonic scale
	pdt      time.Time
	disc     bool
	forceEnd bool // a discontinuity is pending: the next fragment starts a new segment

	parts []part // every fragment is a part; dropped once too old to be listed
	data  []byte // the whole segment once complete, while in the live window (else on disk)
	size  int64
	etag  string // its ETag once a request asked for it (segmentETag)
}

// part is one fragment of a segment, as LL-HLS lists it and LL-DASH streams it. Its bytes
// are kept in memory while it may be listed; after that it is served as its slice of the
// complete segment (in memory, then on disk), which is the same bytes: a player that indexed
// it from an earlier playlist (seeking back in the DVR window) can still fetch it.
type part struct {
	data        []byte // nil once only the segment holds it
	size        int64
	duration    uint64
	independent bool
}

// track is one rendition's state inside a Channel (guarded by Channel.mu).
type track struct {
	info manifest.Track
	init []byte
	dir  string
	grid uint64 // segment target in the track's timescale
	// firstNumber is the number of the segment at media time zero for a track without
	// history (Config.NumberByClock).
	firstNumber uint64
	// anchored: the channel's timeline is anchored at its epoch (Config.Epoch); a first
	// segment's number is its grid cell.
	anchored bool

	segs []*segment // complete segments still on disk, oldest first
	cur  *segment   // the segment being produced, nil between segments
	end  uint64     // media time where the last fragment ended
	// pos is the media duration appended so far. Media time may restart after a discontinuity
	// (an encoder reconnecting), so how old a segment is is measured in pos, never in media time.
	pos uint64
	// anchorMedia/anchorPDT map media time to wall-clock time (PDT) for the current run of
	// continuous media; a discontinuity re-anchors them.
	anchorMedia uint64
	anchorPDT   time.Time

	discPending bool   // the next segment follows a discontinuity
	expired     bool   // segments have left the DVR window (the event is no longer whole)
	discDropped uint64 // discontinuities that left the DVR window
	peakBits    int    // highest segment bitrate seen, for BANDWIDTH when the source gives none

	keys *trackKeys // set when the channel is encrypted (never for text)
	text *textState // set for a text track (text.go)
}

// nextNumber is the number the next segment will get: one past the last (media sequence
// numbers never skip, RFC 8216 §6.2.1); the first segment takes its place on the time grid, so
// that tracks starting together agree on numbers.
func (t *track) nextNumber(decode uint64) uint64 {
	if last := t.lastNumber(); last != nil {
		return *last + 1
	}
	if t.anchored {
		return (decode + t.slack()) / t.grid // the cell gridLineAfter ends
	}
	return t.firstNumber + decode/t.grid
}

func (t *track) lastNumber() *uint64 {
	switch {
	case t.cur != nil:
		return &t.cur.number
	case len(t.segs) > 0:
		return &t.segs[len(t.segs)-1].number
	}
	return nil
}

// pdt is the wall-clock time of media time dec in the current run.
func (t *track) pdt(dec uint64) time.Time { return t.pdtFrom(t.anchorMedia, t.anchorPDT, dec) }

// pdtFrom is the wall-clock time of media time dec when media time media is at wall. Integer
// arithmetic: media times on an anchored timeline are large (years in the track's timescale),
// and two channels computing the same date must get the same nanosecond.
func (t *track) pdtFrom(media uint64, wall time.Time, dec uint64) time.Time {
	ts := uint64(t.info.Timescale)
	span := func(d uint64) time.Duration {
		return time.Duration(d/ts)*time.Second + time.Duration(d%ts*uint64(time.Second)/ts)
	}
	if dec >= media {
		return wall.Add(span(dec - media))
	}
	return wall.Add(-span(media - dec))
}

// append adds f and returns the segment it completed, if any. now is the wall-clock time,
// used to re-anchor PDT after a discontinuity.
func (t *track) append(f Fragment, now time.Time) ([]*segment, error) {
	var done []*segment
	if s := t.cur; s != nil && f.Independent && (s.forceEnd || f.Decode+t.slack() >= s.gridEnd) {
		done = append(done, t.finish())
	}
	start := f.Decode
	if t.cur == nil && len(t.segs) > 0 && !t.discPending && f.Decode > t.end {
		// Media time jumped forward (the source dropped something). A short gap is absorbed
		// into this segment, which then starts where the last one ended; a gap of a segment
		// or more is a discontinuity.
		if f.Decode-t.end < t.grid {
			start = t.end
		} else {
			t.discPending = true
		}
	}
	if t.cur == nil {
		disc := t.discPending && len(t.segs) > 0
		if disc {
			// The new run starts now, and never before the previous one ended.
			prevEnd := t.pdt(t.end)
			t.anchorMedia, t.anchorPDT = f.Decode, now
			if now.Before(prevEnd) {
				t.anchorPDT = prevEnd
			}
		}
		t.cur = &segment{
			number:  t.nextNumber(f.Decode),
			start:   start,
			gridEnd: t.gridLineAfter(f.Decode),
			pdt:     t.pdt(start),
			disc:    disc,
		}
		t.discPending = false
	}
	s := t.cur
	s.parts = append(s.parts, part{data: f.Data, size: int64(len(f.Data)), duration: f.Duration, independent: f.Independent})
	s.duration = f.Decode + f.Duration - s.start // a gap inside the segment counts as its time
	s.size += int64(len(f.Data))
	t.end = f.Decode + f.Duration
	t.pos += f.Duration
	s.endPos = t.pos
	return done, nil
}

// slack is how far before a grid line a segment may end and still count as ending on it: an
// encoder's segments end on its own frame grid (2 s of 1024-sample AAC frames end at 1.963 s).
func (t *track) slack() uint64 { return t.grid / 20 }

// gridLineAfter is the grid line that ends the cell of a segment starting at decode. A segment
// starting within slack before a grid line belongs to the cell after that line — its
// predecessor ended early, on that line — and runs to the next one.
func (t *track) gridLineAfter(decode uint64) uint64 {
	return ((decode+t.slack())/t.grid + 1) * t.grid
}

// finish completes the segment in progress and returns it (nil if there is none).
func (t *track) finish() *segment {
	s := t.cur
	if s == nil {
		return nil
	}
	t.cur = nil
	s.data = make([]byte, 0, s.size)
	for _, p := range s.parts {
		s.data = append(s.data, p.data...)
	}
	if secs := float64(s.duration) / float64(t.info.Timescale); secs > 0 {
		t.peakBits = max(t.peakBits, int(float64(s.size*8)/secs))
	}
	t.segs = append(t.segs, s)
	return s
}

// partBytes finds part p of segment n: its bytes when they are in memory, else ok with the
// part's offset and size within the segment's file on disk.
func (t *track) partBytes(n uint64, p int) (data []byte, off, size int64, ok bool) {
	s := t.find(n)
	if s == nil || p >= len(s.parts) {
		return nil, 0, 0, false
	}
	for _, q := range s.parts[:p] {
		off += q.size
	}
	pt := s.parts[p]
	switch {
	case pt.data != nil:
		return pt.data, off, pt.size, true
	case s.data != nil && off+pt.size <= int64(len(s.data)):
		return s.data[off : off+pt.size], off, pt.size, true
	}
	return nil, off, pt.size, s != t.cur
}

// find is segment n, in progress or complete and still in the DVR window, or nil.
func (t *track) find(n uint64) *segment {
	if t.cur != nil && t.cur.number == n {
		return t.cur
	}
	for i := len(t.segs) - 1; i >= 0; i-- {
		if s := t.segs[i]; s.number == n {
			return s
		} else if s.number < n {
			break
		}
	}
	return nil
}
