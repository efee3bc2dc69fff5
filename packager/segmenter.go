package packager

import (
	"fmt"
	"io"
	"time"
)

// cursor is a sample iterator with one sample of look-ahead, which is what cutting needs: the
// keyframe that ends a segment belongs to the next one.
type cursor struct {
	it   sampleIter
	cur  sample
	ok   bool
	err  error
	done bool
}

func newCursor(it sampleIter) *cursor {
	c := &cursor{it: it}
	c.advance()
	return c
}

func (c *cursor) advance() {
	s, err := c.it.next()
	switch {
	case err == io.EOF:
		c.ok, c.done = false, true
	case err != nil:
		c.ok, c.err, c.done = false, err, true
	default:
		c.cur, c.ok = s, true
	}
}

// segmenter decides segment boundaries on the reference video track and cuts every other
// track at the same instants: video renditions must have a keyframe exactly there (within
// half a frame), audio is cut at the first access unit that starts at or after the boundary.
type segmenter struct {
	target uint64 // target duration in the reference timescale
	ref    *lane
	video  []*lane // other video renditions
	audio  []*lane
}

// lane is one track being cut (w is nil when only checking, see checkAligned).
type lane struct {
	src *inputTrack
	w   *trackWriter
	c   *cursor
	ts  uint64
	buf []sample
}

// timeString formats a time in a track's timescale as seconds for error messages.
func timeString(t, timescale uint64) string {
	return fmt.Sprintf("%.3fs", float64(t)/float64(timescale))
}

// next cuts the next segment of every lane into lane.buf. It reports false when the
// reference track is exhausted.
func (sg *segmenter) next() (bool, error) {
	ref := sg.ref
	if ref.c.err != nil {
		return false, inputErr(ref.src.in.path, ref.c.err)
	}
	if !ref.c.ok {
		return false, nil
	}
	first := ref.c.cur
	if !first.sync {
		return false, inputErr(ref.src.in.path, fmt.Errorf("video does not start with a keyframe (sample at %s)", timeString(first.dts, ref.ts)))
	}
	// Cut at the first keyframe at least one target duration (less half a frame) in.
	tol := uint64(first.dur / 2)
	ref.buf = append(ref.buf[:0], first)
	ref.c.advance()
	for ref.c.ok && !(ref.c.cur.sync && ref.c.cur.dts+tol >= first.dts+sg.target) {
		ref.buf = append(ref.buf, ref.c.cur)
		ref.c.advance()
	}
	if ref.c.err != nil {
		return false, inputErr(ref.src.in.path, ref.c.err)
	}
	last := !ref.c.ok
	cut := ref.c.cur.dts // meaningful only when !last

	for _, l := range sg.video {
		l.buf = l.buf[:0]
		for l.c.ok && (last || less(l.c.cur.dts, l.ts, cut, ref.ts, tol)) {
			l.buf = append(l.buf, l.c.cur)
			l.c.advance()
		}
		if l.c.err != nil {
			return false, inputErr(l.src.in.path, l.c.err)
		}
		if len(l.buf) == 0 {
			return false, inputErr(l.src.in.path, fmt.Errorf("video ends at %s, before %s (%s)",
				timeString(first.dts, ref.ts), ref.src.in.path, timeString(lastEnd(ref), ref.ts)))
		}
		if !l.buf[0].sync {
			return false, inputErr(l.src.in.path, fmt.Errorf("GOPs not aligned with %s: no keyframe at %s",
				ref.src.in.path, timeString(first.dts, ref.ts)))
		}
		if !last && l.c.ok && !l.c.cur.sync {
			return false, inputErr(l.src.in.path, fmt.Errorf("GOPs not aligned with %s: no keyframe at %s",
				ref.src.in.path, timeString(cut, ref.ts)))
		}
	}
	for _, l := range sg.audio {
		l.buf = l.buf[:0]
		for l.c.ok && (last || l.c.cur.dts*ref.ts < cut*l.ts) {
			l.buf = append(l.buf, l.c.cur)
			l.c.advance()
		}
		if l.c.err != nil {
			return false, inputErr(l.src.in.path, l.c.err)
		}
	}
	return true, nil
}

// less reports whether time a (in timescale ta) lies before b (in tb) by more than tol
// (a tolerance in tb). Cross-multiplying keeps it exact for any pair of timescales.
func less(a, ta, b, tb, tol uint64) bool {
	return a*tb+tol*ta < b*ta
}

func lastEnd(l *lane) uint64 {
	if len(l.buf) == 0 {
		return 0
	}
	s := l.buf[len(l.buf)-1]
	return s.dts + uint64(s.dur)
}

// checkAligned cuts the video tracks as Package would, with segments of target, without
// writing anything: it refuses, with the same errors, what Package refuses about the ladder's
// GOPs (a rung without a keyframe where the reference has one). Sources that cut the ladder
// themselves — the looped live source — check with it first.
func checkAligned(videos []*inputTrack, target time.Duration) error {
	sg := &segmenter{}
	for i, t := range videos {
		it, err := t.newIter()
		if err != nil {
			return inputErr(t.in.path, err)
		}
		l := &lane{src: t, c: newCursor(it), ts: uint64(t.timescale)}
		if i == 0 {
			sg.ref = l
		} else {
			sg.video = append(sg.video, l)
		}
	}
	if sg.ref == nil {
		return nil
	}
	sg.target = uint64(target.Seconds()*float64(sg.ref.ts) + 0.5)
	for {
		more, err := sg.next()
		if err != nil || !more {
			return err
		}
	}
}
