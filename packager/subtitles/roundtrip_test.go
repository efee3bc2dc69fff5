package subtitles

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// frameMs is the tolerance the round trip allows: one frame at 60 fps, rounded down. Times
// come back exact (ms in, ms out), so this is only the bound the issue sets.
const frameMs = 16

// segmentation is the media's: 2.002 s segments (60 frames at 29.97) covering the track, so
// boundaries fall at odd milliseconds and every sample has cues crossing them.
func segmentation(tr *Track) (starts []int64, end int64) {
	last := int64(0)
	for _, c := range tr.Cues {
		last = max(last, c.End)
	}
	for s := int64(0); s < last; s += 2002 {
		starts = append(starts, s)
	}
	return starts, starts[len(starts)-1] + 2002
}

func parseSample(t *testing.T, name, in string) *Track {
	t.Helper()
	tr, err := Parse(name, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var samples = []struct{ name, in string }{
	{"ep3.vtt", vttSample}, {"film.srt", srtSample}, {"show.ttml", ttmlSample},
}

// TestRoundTripHLS: every cue comes out of the segmented WebVTT (read back with ParseVTT)
// with its text, settings, identifier and times, in every segment it overlaps and no other;
// every segment is written, empty ones included, each with the timestamp map.
func TestRoundTripHLS(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			tr := parseSample(t, s.name, s.in)
			starts, end := segmentation(tr)
			segs, err := Split(tr.Cues, starts, end)
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != len(starts) {
				t.Fatalf("%d segments, want %d", len(segs), len(starts))
			}
			var back []Cue
			empty := 0
			for i, seg := range segs {
				var buf bytes.Buffer
				if err := WriteHLSSegment(&buf, tr, seg, 0); err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(buf.String(), "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n") {
					t.Fatalf("segment %d starts %q", i, buf.String()[:min(buf.Len(), 60)])
				}
				got, err := ParseVTT(fmt.Sprintf("seg%d.vtt", i), buf.Bytes())
				if err != nil {
					t.Fatalf("reading back segment %d: %v\n%s", i, err, buf.String())
				}
				if !slices.Equal(got.Styles, tr.Styles) || !slices.Equal(got.Regions, tr.Regions) {
					t.Errorf("segment %d: styles %q regions %q, want %q %q", i, got.Styles, got.Regions, tr.Styles, tr.Regions)
				}
				segEnd := end
				if i+1 < len(starts) {
					segEnd = starts[i+1]
				}
				for _, c := range got.Cues {
					if !overlaps(c, starts[i], segEnd) {
						t.Errorf("segment %d [%d, %d) has cue %+v outside it", i, starts[i], segEnd, c)
					}
				}
				if len(got.Cues) == 0 {
					empty++
				}
				back = append(back, got.Cues...)
			}
			// Repeats across segments are the same cue: keep the first of each.
			var uniq []Cue
			for _, c := range back {
				c.Line = 0
				if !slices.Contains(uniq, c) {
					uniq = append(uniq, c)
				}
			}
			compareCues(t, uniq, tr.Cues)
			if s.name == "ep3.vtt" && empty == 0 {
				t.Errorf("no empty segment written, want the ones between 14 s and 1 h")
			}
		})
	}
}

// TestRoundTripWvtt: every cue comes out of the wvtt segments, read back with mp4ff and
// rebuilt from the samples, with its text, settings, identifier and times; the samples of
// each segment tile it from its start to its end; the init segment says wvtt with the header.
func TestRoundTripWvtt(t *testing.T) {
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			tr := parseSample(t, s.name, s.in)
			initBytes, err := WvttInit(tr, "fr")
			if err != nil {
				t.Fatal(err)
			}
			initFile, err := mp4.DecodeFile(bytes.NewReader(initBytes))
			if err != nil {
				t.Fatal(err)
			}
			trak := initFile.Init.Moov.Trak
			if got := trak.Mdia.Hdlr.HandlerType; got != "text" {
				t.Errorf("handler %q, want text", got)
			}
			if !slices.ContainsFunc(trak.Mdia.Minf.Children, func(b mp4.Box) bool { return b.Type() == "nmhd" }) {
				t.Errorf("no nmhd (14496-30 §7.2: a WebVTT track has a null media header)")
			}
			if got := trak.Mdia.Mdhd.GetLanguage(); got != "fra" {
				t.Errorf("mdhd language %q, want fra", got)
			}
			if !slices.Contains(initFile.Init.Ftyp.CompatibleBrands(), "cwvt") {
				t.Errorf("ftyp brands %q, want cwvt among them", initFile.Init.Ftyp.CompatibleBrands())
			}
			if got := trak.Mdia.Mdhd.Timescale; got != WvttTimescale {
				t.Errorf("timescale %d", got)
			}
			wvtt := trak.Mdia.Minf.Stbl.Stsd.Wvtt
			if wvtt == nil || wvtt.VttC == nil || wvtt.VttC.Config != strings.TrimRight(tr.Header(), "\n") {
				t.Fatalf("wvtt sample entry %+v, want vttC with the header %q", wvtt, tr.Header())
			}
			trex := initFile.Init.Moov.Mvex.Trex

			starts, end := segmentation(tr)
			segs, err := Split(tr.Cues, starts, end)
			if err != nil {
				t.Fatal(err)
			}
			var all []mp4.FullSample
			for i, seg := range segs {
				segEnd := end
				if i+1 < len(starts) {
					segEnd = starts[i+1]
				}
				var buf bytes.Buffer
				if err := WriteWvttSegment(&buf, uint32(i+1), starts[i], segEnd, seg); err != nil {
					t.Fatal(err)
				}
				f, err := mp4.DecodeFile(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
				if len(f.Segments) != 1 || f.Segments[0].Styp == nil || len(f.Segments[0].Fragments) != 1 {
					t.Fatalf("segment %d: want styp and one fragment", i)
				}
				fs, err := f.Segments[0].Fragments[0].GetFullSamples(trex)
				if err != nil {
					t.Fatal(err)
				}
				at := starts[i]
				for _, smp := range fs {
					if int64(smp.DecodeTime) != at || smp.Dur == 0 {
						t.Fatalf("segment %d: sample at %d ms for %d ms, want one at %d", i, smp.DecodeTime, smp.Dur, at)
					}
					at += int64(smp.Dur)
				}
				if at != segEnd {
					t.Errorf("segment %d: samples end at %d ms, want %d", i, at, segEnd)
				}
				all = append(all, fs...)
			}
			got, err := CuesFromWvtt(all, WvttTimescale)
			if err != nil {
				t.Fatal(err)
			}
			var want []Cue
			for _, c := range tr.Cues {
				if c.End > c.Start {
					want = append(want, c)
				}
			}
			compareCues(t, got, want)
		})
	}
}

// compareCues: same cues in order, text, identifier and settings equal, times within a frame.
func compareCues(t *testing.T, got, want []Cue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d cues came back, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Text != w.Text || g.ID != w.ID || g.Settings != w.Settings ||
			abs(g.Start-w.Start) > frameMs || abs(g.End-w.End) > frameMs {
			t.Errorf("cue %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func abs(v int64) int64 { return max(v, -v) }

func TestSplit(t *testing.T) {
	cues := []Cue{
		{Text: "a", Start: 0, End: 1000},     // ends on a boundary: first segment only
		{Text: "b", Start: 1500, End: 4500},  // crosses two boundaries: three segments
		{Text: "c", Start: 2000, End: 2000},  // zero-length on a boundary: the segment it starts
		{Text: "d", Start: 9000, End: 12000}, // after the end: nowhere
	}
	segs, err := Split(cues, []int64{0, 1000, 2000, 3000, 4000, 5000}, 6000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range segs {
		var texts []string
		for _, c := range s {
			texts = append(texts, c.Text)
		}
		got = append(got, strings.Join(texts, ","))
	}
	want := []string{"a", "b", "b,c", "b", "b", ""}
	if !slices.Equal(got, want) {
		t.Errorf("segments %q, want %q", got, want)
	}
	if segs[5] == nil {
		t.Errorf("empty segment is nil, want an empty list")
	}
	for _, bad := range []struct {
		starts []int64
		end    int64
	}{{nil, 10}, {[]int64{0, 0}, 10}, {[]int64{0, 5}, 5}} {
		if _, err := Split(cues, bad.starts, bad.end); err == nil {
			t.Errorf("Split(%v, %d): no error", bad.starts, bad.end)
		}
	}
}

// TestSplitMediaTimescale: boundaries taken from a 90 kHz video's tfdt (2.002 s segments)
// become ms by rounding, and a cue ending at such a boundary stays out of the next segment.
func TestSplitMediaTimescale(t *testing.T) {
	var starts []int64
	for i := uint64(0); i < 4; i++ {
		starts = append(starts, MsFromTimescale(i*180180, 90000))
	}
	if !slices.Equal(starts, []int64{0, 2002, 4004, 6006}) {
		t.Fatalf("starts %v", starts)
	}
	if got := MsFromTimescale(1001, 48000); got != 21 { // 20.854 ms
		t.Errorf("1001/48000 s = %d ms, want 21", got)
	}
	segs, err := Split([]Cue{{Text: "x", Start: 1000, End: 4004}}, starts, 8008)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs[0]) != 1 || len(segs[1]) != 1 || len(segs[2]) != 0 || len(segs[3]) != 0 {
		t.Errorf("cue 1000–4004 ms in segments %d %d %d %d, want 1 1 0 0", len(segs[0]), len(segs[1]), len(segs[2]), len(segs[3]))
	}
}

// TestSplitEveryOverlap: Split's search finds exactly the segments each cue overlaps, for
// cues of every length and position (a fixed pseudo-random set, zero-length ones included).
func TestSplitEveryOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var cues []Cue
	for i := range 2000 {
		s := r.Int64N(110000) - 5000
		cues = append(cues, Cue{ID: fmt.Sprint(i), Start: s, End: s + r.Int64N(4)*r.Int64N(8000)})
	}
	var starts []int64
	for s := int64(0); s < 100000; s += 1 + r.Int64N(4000) {
		starts = append(starts, s)
	}
	segs, err := Split(cues, starts, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range starts {
		e := int64(100000)
		if i+1 < len(starts) {
			e = starts[i+1]
		}
		var want []Cue
		for _, c := range cues {
			if overlaps(c, starts[i], e) {
				want = append(want, c)
			}
		}
		if !slices.Equal(segs[i], want) {
			t.Fatalf("segment %d [%d, %d): %d cues, want %d", i, starts[i], e, len(segs[i]), len(want))
		}
	}
}

// TestWvttSegmentBounds: a segment must have a length a sample can carry.
func TestWvttSegmentBounds(t *testing.T) {
	for _, b := range [][2]int64{{5, 5}, {5, 4}, {-1, 10}, {0, math.MaxUint32 + 1}} {
		if err := WriteWvttSegment(io.Discard, 1, b[0], b[1], nil); err == nil {
			t.Errorf("segment [%d, %d): no error", b[0], b[1])
		}
	}
	var buf bytes.Buffer
	if err := WriteWvttSegment(&buf, 1, 0, math.MaxUint32, nil); err != nil {
		t.Errorf("longest segment: %v", err)
	}
}
