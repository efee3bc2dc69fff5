package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// randomLive builds a random but valid live window: segments of 30 to 90 frames at 29.97 fps
// (and AAC audio cut at the first frame after each video cut), random discontinuities, a
// random first number and start time, LL-HLS on or off, 0 to 3 parts in progress.
func randomLive(r *rand.Rand) (*Presentation, string) {
	first := r.Uint64N(1 << 32) // SegmentTemplate@startNumber is an xs:unsignedInt
	if r.IntN(4) == 0 {
		first = r.Uint64N(3)
	}
	baseFrames := r.Uint64N(1 << 20)
	count := r.IntN(40)
	if r.IntN(5) == 0 {
		count = 0
	}
	parts := r.IntN(2) == 0
	inProgress, nextPDT := 0, r.IntN(2) == 0
	if parts {
		inProgress = r.IntN(4)
	}
	frames := []uint64{baseFrames}
	disc := map[int]bool{}
	for i := range count + 1 {
		frames = append(frames, frames[len(frames)-1]+30+r.Uint64N(61))
		if r.IntN(6) == 0 {
			disc[i] = true
		}
	}
	l := &Live{
		TargetDuration:    time.Duration(2+r.IntN(2)) * time.Second,
		CanSkipUntil:      time.Duration(r.IntN(30)) * time.Second,
		CanBlockReload:    r.IntN(2) == 0,
		AvailabilityStart: liveEpoch,
		PublishTime:       liveEpoch.Add(time.Hour),
	}
	if parts {
		l.PartTarget = 500500 * time.Microsecond
	}
	p := &Presentation{Live: l}
	build := func(t *Track, cut func(uint64) uint64) *Track {
		t.InitURI, t.SegmentTemplate = InitSegmentName, "seg_$Number$.m4s"
		t.DiscontinuitySequence = r.Uint64N(3)
		var jump time.Duration
		split := func(n uint64, from, to uint64, limit int) []Part {
			var out []Part
			for k, f := 0, from; f < to && (limit < 0 || k < limit); k, f = k+1, f+15 {
				a, b := cut(f*frameTicks), cut(min(f+15, to)*frameTicks)
				out = append(out, Part{Duration: b - a, URI: fmt.Sprintf("seg_%d.%d.m4s", n, k), Independent: k == 0})
			}
			return out
		}
		for i := range count {
			n := first + uint64(i)
			start, end := cut(frames[i]*frameTicks), cut(frames[i+1]*frameTicks)
			if disc[i] {
				jump += time.Duration(r.IntN(20)) * time.Second
			}
			s := Segment{Start: start, Duration: end - start, URI: fmt.Sprintf("seg_%d.m4s", n), Number: n,
				Discontinuity: disc[i], ProgramDateTime: liveEpoch.Add(ticksToDuration(start, t.Timescale) + jump)}
			if parts {
				s.Parts = split(n, frames[i], frames[i+1], -1)
			}
			t.Segments = append(t.Segments, s)
		}
		t.NextNumber = first + uint64(count)
		if parts {
			t.LiveParts = split(t.NextNumber, frames[count], frames[count+1], inProgress)
			t.NextDiscontinuity = disc[count]
			if nextPDT {
				t.NextProgramDateTime = liveEpoch.Add(ticksToDuration(cut(frames[count]*frameTicks), t.Timescale) + jump)
			}
		}
		return t
	}
	p.Video = []*Track{build(&Track{ID: "v", Kind: Video, Codecs: "avc1.64001f", Timescale: videoTimescale, PeakBandwidth: 1}, videoCut)}
	p.Audio = []*Track{build(&Track{ID: "a", Kind: Audio, Codecs: "mp4a.40.2", Timescale: 48000, PeakBandwidth: 1}, audioCut)}
	desc := fmt.Sprintf("first %d, %d segments, parts %v (%d in progress), discontinuities %v", first, count, parts, inProgress, disc)
	return p, desc
}

// Property (RFC 8216 §4.3.3.2 and §6.2.2, bis §4.4.5.2, ISO/IEC 23009-1 §5.3.9.6): for any
// window, EXT-X-MEDIA-SEQUENCE plus the EXTINF count (plus SKIPPED-SEGMENTS in a delta update)
// is the next segment's number, the listed URIs are numbered consecutively from the media
// sequence, and the DASH timeline expands to the model's (number, time) list.
func TestLiveWindowsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 23))
	for iter := range 400 {
		p, desc := randomLive(r)
		if err := p.Validate(); err != nil {
			t.Fatalf("%d (%s): %v", iter, desc, err)
		}
		for _, tr := range p.Tracks() {
			next := tr.liveNext()
			for _, skip := range []bool{false, true} {
				raw := p.HLSLiveMedia(tr, LiveMediaOptions{Skip: skip})
				seq := lineUint(t, raw, "#EXT-X-MEDIA-SEQUENCE:")
				skipped := lineUint(t, raw, "#EXT-X-SKIP:SKIPPED-SEGMENTS=")
				uris := segmentURIs(raw)
				if seq+skipped+uint64(len(uris)) != next {
					t.Fatalf("%d (%s) %s skip=%v: media sequence %d + skipped %d + %d EXTINF != next %d\n%s",
						iter, desc, tr.ID, skip, seq, skipped, len(uris), next, raw)
				}
				for i, u := range uris {
					if want := fmt.Sprintf("seg_%d.m4s", seq+skipped+uint64(i)); u != want {
						t.Fatalf("%d (%s) %s: entry %d is %s, want %s", iter, desc, tr.ID, i, u, want)
					}
				}
				if !skip && len(tr.Segments) > 0 && seq != tr.Segments[0].Number {
					t.Fatalf("%d (%s) %s: media sequence %d, first segment %d", iter, desc, tr.ID, seq, tr.Segments[0].Number)
				}
				checkPartsBeforeEntries(t, raw)
				// hls-m3u8 reads it too, unless parts come before the first EXTINF (see
				// TestHLSM3U8LiveQuirks).
				if before, _, _ := strings.Cut(string(raw), "#EXTINF"); !strings.Contains(before, "#EXT-X-PART:") {
					pl, segs, _ := parseLive(t, raw)
					if pl.SeqNo != seq || len(segs) != len(uris) || pl.SkippedSegments() != skipped {
						t.Fatalf("%d (%s) %s: hls-m3u8 reads seq %d, %d segments, skipped %d", iter, desc, tr.ID,
							pl.SeqNo, len(segs), pl.SkippedSegments())
					}
					for i, s := range segs {
						m := tr.Segments[int(skipped)+i]
						// The PDT can be lost with the parts hls-m3u8 drops (see parsedPDT and
						// TestHLSM3U8LiveQuirks); the text check below covers every segment.
						pdt := parsedPDT(pl, s, m.Number)
						if s.Discontinuity != m.Discontinuity || !pdt.IsZero() && !pdt.Equal(m.ProgramDateTime.Round(time.Millisecond)) {
							t.Fatalf("%d (%s) %s: segment %d discontinuity %v PDT %v, model %v %v", iter, desc, tr.ID, m.Number,
								s.Discontinuity, pdt, m.Discontinuity, m.ProgramDateTime)
						}
					}
				}
				pdts := segmentPDTs(raw)
				for i, u := range uris {
					m := tr.Segments[int(skipped)+i]
					if want := m.ProgramDateTime.UTC().Round(time.Millisecond).Format(pdtLayout); pdts[u] != want {
						t.Fatalf("%d (%s) %s: %s has PDT %q, want %s", iter, desc, tr.ID, u, pdts[u], want)
					}
				}
			}
		}

		b, err := p.DASH()
		if len(p.Video[0].Segments) == 0 {
			if !errors.Is(err, ErrNoSegmentYet) {
				t.Fatalf("%d (%s): DASH of an empty window: %v", iter, desc, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d (%s): DASH: %v", iter, desc, err)
		}
		m, err := mpd.MPDFromBytes(b)
		if err != nil {
			t.Fatalf("%d (%s): MPD does not parse: %v", iter, desc, err)
		}
		if m.GetType() != mpd.DYNAMIC_TYPE || len(m.Periods) != 1 {
			t.Fatalf("%d (%s): type %s, %d periods", iter, desc, m.GetType(), len(m.Periods))
		}
		for _, tr := range p.Tracks() {
			checkTimeline(t, representations(m)[tr.ID], tr)
		}
	}
}

// lineUint reads the number after prefix, 0 when the line is absent.
func lineUint(t *testing.T, raw []byte, prefix string) uint64 {
	t.Helper()
	ls := lines(raw, prefix)
	if len(ls) == 0 {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(ls[0], prefix), 10, 64)
	if err != nil || len(ls) > 1 {
		t.Fatalf("%q: %v", ls, err)
	}
	return n
}

// segmentPDTs maps every segment URI to the EXT-X-PROGRAM-DATE-TIME written since the
// previous segment ("" for none).
func segmentPDTs(raw []byte) map[string]string {
	out := map[string]string{}
	var pdt string
	ls := strings.Split(string(raw), "\n")
	for i, l := range ls {
		switch {
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			pdt = strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:")
		case strings.HasPrefix(l, "#EXTINF:") && i+1 < len(ls):
			out[ls[i+1]] = pdt
			pdt = ""
		}
	}
	return out
}

// segmentURIs returns the URI line after every EXTINF.
func segmentURIs(raw []byte) []string {
	ls := bytes.Split(raw, []byte("\n"))
	var out []string
	for i, l := range ls {
		if bytes.HasPrefix(l, []byte("#EXTINF:")) && i+1 < len(ls) {
			out = append(out, string(ls[i+1]))
		}
	}
	return out
}
