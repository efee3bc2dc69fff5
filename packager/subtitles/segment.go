package subtitles

import (
	"fmt"
	"sort"
)

// Split cuts cues along the media's segments: segment i covers [starts[i], starts[i+1]), the
// last one [starts[len-1], end). Each segment gets every cue that overlaps it, times kept as
// they are, not clipped: a cue crossing a boundary is in every segment it overlaps, as HLS
// WebVTT segmentation expects (RFC 8216 §3.5 leaves cue times absolute on the media timeline
// and Apple's HLS authoring spec has a cue repeated in each segment it spans; players drop the
// repeats by identity). A zero-length cue goes in the segment holding its start. Segments with
// no cue are returned empty: players need every segment of the playlist. Cues that start at
// or after end, or end at or before starts[0], fall in no segment. starts must increase and
// end must be after the last start; times are in ms, as in Cue.
func Split(cues []Cue, starts []int64, end int64) ([][]Cue, error) {
	if len(starts) == 0 {
		return nil, fmt.Errorf("subtitles: no segments")
	}
	for i := 1; i < len(starts); i++ {
		if starts[i] <= starts[i-1] {
			return nil, fmt.Errorf("subtitles: segment starts not increasing at %d (%d ms after %d ms)", i, starts[i], starts[i-1])
		}
	}
	if end <= starts[len(starts)-1] {
		return nil, fmt.Errorf("subtitles: end %d ms not after the last segment start %d ms", end, starts[len(starts)-1])
	}
	segs := make([][]Cue, len(starts))
	for i := range segs {
		segs[i] = []Cue{}
	}
	for _, c := range cues {
		// From the segment holding the cue's start (or the first) while segments overlap it:
		// a film's thousand cues over thousands of segments stay cheap.
		i := max(sort.Search(len(starts), func(i int) bool { return starts[i] > c.Start })-1, 0)
		for ; i < len(starts) && starts[i] <= max(c.End, c.Start); i++ {
			e := end
			if i+1 < len(starts) {
				e = starts[i+1]
			}
			if overlaps(c, starts[i], e) {
				segs[i] = append(segs[i], c)
			}
		}
	}
	return segs, nil
}

// overlaps: c shows during [s, e) — or, zero-length, starts in it.
func overlaps(c Cue, s, e int64) bool {
	if c.Start == c.End {
		return c.Start >= s && c.Start < e
	}
	return c.Start < e && c.End > s
}

// MsFromTimescale converts a media time (in units of 1/timescale s) to ms, rounded to the
// nearest: how segment starts taken from the media's tfdt become Split's boundaries.
func MsFromTimescale(t uint64, timescale uint32) int64 {
	return int64((t*1000 + uint64(timescale)/2) / uint64(timescale))
}
