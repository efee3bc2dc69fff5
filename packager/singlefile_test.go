package packager

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
)

// topBoxes lists a file's top-level boxes with our own reader.
func topBoxes(t *testing.T, file string) (*os.File, []topBox) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, _ := f.Stat()
	var out []topBox
	for pos := int64(0); ; {
		b, err := readTopBox(f, pos, st.Size())
		if err == io.EOF {
			return f, out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, b)
		pos += b.size
	}
}

func parseRange(t *testing.T, s string) manifest.ByteRange {
	t.Helper()
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("bad range %q", s)
	}
	return manifest.ByteRange{Offset: first, Length: last - first + 1}
}

// TestSingleFile checks --single-file output: one fMP4 per track laid out as ftyp, moov, sidx,
// then moof/mdat pairs; every EXT-X-BYTERANGE, the EXT-X-MAP BYTERANGE, the sidx references and
// the MPD's SegmentBase ranges land exactly on box boundaries; and the file holds the input's
// samples untouched.
func TestSingleFile(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	p, err := Package(context.Background(), Options{Inputs: ladder, Output: out, SingleFile: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mpd.ReadFromFile(filepath.Join(out, manifest.DASHManifest))
	if err != nil {
		t.Fatalf("MPD: %v", err)
	}
	reps := map[string]*mpd.RepresentationType{}
	for _, as := range m.Periods[0].AdaptationSets {
		for _, r := range as.Representations {
			reps[r.Id] = r
		}
	}

	for _, tr := range p.Tracks() {
		file := filepath.Join(out, tr.ID, singleFileName)
		f, boxes := topBoxes(t, file)
		if len(boxes) < 5 || boxes[0].typ != "ftyp" || boxes[1].typ != "moov" || boxes[2].typ != "sidx" {
			t.Fatalf("%s: layout %v, want ftyp moov sidx moof mdat…", tr.ID, boxes)
		}
		starts := map[int64]string{}
		ends := map[int64]string{}
		for _, b := range boxes {
			starts[b.pos] = b.typ
			ends[b.pos+b.size] = b.typ
		}
		sidxBox := boxes[2]

		// HLS media playlist (RFC 8216 §4.3.2.2 EXT-X-BYTERANGE, §4.3.2.5 EXT-X-MAP BYTERANGE).
		media := decodeMedia(t, filepath.Join(out, tr.ID, manifest.MediaPlaylist))
		if media.Map == nil || media.Map.Offset != 0 || media.Map.Limit != sidxBox.pos || media.Map.URI != singleFileName {
			t.Errorf("%s: EXT-X-MAP %+v, want %s bytes 0-%d", tr.ID, media.Map, singleFileName, sidxBox.pos-1)
		}
		segs := segmentsOf(media)
		next := sidxBox.pos + sidxBox.size
		for i, s := range segs {
			if s.URI != singleFileName || s.Offset != next {
				t.Fatalf("%s segment %d: BYTERANGE %d@%d, want offset %d", tr.ID, i, s.Limit, s.Offset, next)
			}
			if starts[s.Offset] != "moof" || ends[s.Offset+s.Limit] != "mdat" {
				t.Fatalf("%s segment %d: range %d@%d does not span whole moof…mdat boxes", tr.ID, i, s.Limit, s.Offset)
			}
			next = s.Offset + s.Limit
		}
		if next != boxes[len(boxes)-1].pos+boxes[len(boxes)-1].size {
			t.Errorf("%s: segments end at %d, file at %d", tr.ID, next, boxes[len(boxes)-1].pos+boxes[len(boxes)-1].size)
		}

		// ISO/IEC 14496-12 §8.16.3: sidx references are the segments, back to back after it.
		box, err := decodeBox(f, sidxBox)
		if err != nil {
			t.Fatal(err)
		}
		sidx := box.(*mp4.SidxBox)
		if len(sidx.SidxRefs) != len(segs) || sidx.Timescale != tr.Timescale {
			t.Fatalf("%s: sidx has %d refs at timescale %d, playlist %d segments", tr.ID, len(sidx.SidxRefs), sidx.Timescale, len(segs))
		}
		off := sidxBox.pos + sidxBox.size + int64(sidx.FirstOffset)
		for i, ref := range sidx.SidxRefs {
			if off != segs[i].Offset || int64(ref.ReferencedSize) != segs[i].Limit {
				t.Errorf("%s ref %d: sidx says %d@%d, playlist %d@%d", tr.ID, i, ref.ReferencedSize, off, segs[i].Limit, segs[i].Offset)
			}
			if ref.StartsWithSAP != 1 {
				t.Errorf("%s ref %d: does not start with a SAP", tr.ID, i)
			}
			off += int64(ref.ReferencedSize)
		}

		// I-frame ranges start at a moof and stay inside its mdat.
		if tr.Kind == manifest.Video {
			ifr := decodeMedia(t, filepath.Join(out, tr.ID, manifest.IFramePlaylist))
			if !ifr.Iframe {
				t.Errorf("%s: I-frame playlist lacks EXT-X-I-FRAMES-ONLY", tr.ID)
			}
			for i, s := range segmentsOf(ifr) {
				if starts[s.Offset] != "moof" || s.Limit <= 0 {
					t.Errorf("%s I-frame %d: %d@%d does not start at a moof", tr.ID, i, s.Limit, s.Offset)
				}
			}
		}

		// DASH SegmentBase (ISO/IEC 23009-1 §5.3.9.2): indexRange is the sidx, Initialization ftyp+moov.
		r := reps[tr.ID]
		if r == nil || r.SegmentBase == nil || r.BaseURLs == nil {
			t.Fatalf("%s: no Representation with SegmentBase and BaseURL in MPD", tr.ID)
		}
		if got := parseRange(t, r.SegmentBase.IndexRange); got.Offset != sidxBox.pos || got.Length != sidxBox.size {
			t.Errorf("%s: indexRange %s, sidx at %d+%d", tr.ID, r.SegmentBase.IndexRange, sidxBox.pos, sidxBox.size)
		}
		if r.SegmentBase.Initialization == nil {
			t.Fatalf("%s: SegmentBase has no Initialization", tr.ID)
		}
		if got := parseRange(t, r.SegmentBase.Initialization.Range); got.Offset != 0 || got.Length != sidxBox.pos {
			t.Errorf("%s: Initialization range %s, want 0-%d", tr.ID, r.SegmentBase.Initialization.Range, sidxBox.pos-1)
		}
	}

	// Same samples as the input, byte for byte.
	for _, tr := range p.Video {
		src := ladder[0]
		for j, in := range ladder {
			if strings.Contains(in, strings.TrimPrefix(tr.ID, "video_")) {
				src = ladder[j]
			}
		}
		got := readTrackSamples(t, filepath.Join(out, tr.ID, singleFileName), manifest.Video)
		compareSamples(t, tr.ID, got, readTrackSamples(t, src, manifest.Video))
	}
	got := readTrackSamples(t, filepath.Join(out, p.Audio[0].ID, singleFileName), manifest.Audio)
	compareSamples(t, "audio", got, readTrackSamples(t, ladder[0], manifest.Audio))
}
