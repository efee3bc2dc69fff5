package packager

import (
	"bytes"
	"context"
	"encoding/hex"
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
	checkSingleFileLayout(t, out, p)

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

// checkSingleFileLayout is TestSingleFile's check of the layout and of every range that points
// into media.mp4 (HLS, sidx, DASH), for the presentation p packaged at out.
func checkSingleFileLayout(t *testing.T, out string, p *manifest.Presentation) {
	t.Helper()
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
}

// TestSingleFileEncrypted: --single-file with cenc and cbcs. media.mp4 keeps the single-file
// layout, and every range into it (EXT-X-BYTERANGE, EXT-X-MAP, sidx, SegmentBase indexRange and
// Initialization) lands on the boxes of the encrypted file, whose moofs grow by senc/saiz/saio;
// the init part is protected (encv/enca, tenc with the KID); the fragments hold the clear twin's
// samples and timing once mp4ff decrypts them; and ffmpeg, given the key, decodes the same
// frames as from the clear file (a wrong key does not).
func TestSingleFileEncrypted(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg")
	for _, e := range []*Encryption{testEncryption(), testCbcs()} {
		t.Run(e.Scheme, func(t *testing.T) {
			ctx := context.Background()
			clearDir := filepath.Join(t.TempDir(), "clear")
			encDir := filepath.Join(t.TempDir(), "enc")
			clearP, err := Package(ctx, Options{Inputs: ladder, Output: clearDir, SingleFile: true})
			if err != nil {
				t.Fatal(err)
			}
			encP, err := Package(ctx, Options{Inputs: ladder, Output: encDir, SingleFile: true, Encryption: e})
			if err != nil {
				t.Fatal(err)
			}
			checkSingleFileLayout(t, encDir, encP)
			for i, et := range encP.Tracks() {
				ct := clearP.Tracks()[i]
				encFile := filepath.Join(encDir, et.ID, singleFileName)
				clearFile := filepath.Join(clearDir, ct.ID, singleFileName)
				if len(et.Segments) != len(ct.Segments) || len(et.Segments) < 2 {
					t.Fatalf("%s: %d segments, clear %d", et.ID, len(et.Segments), len(ct.Segments))
				}
				grew := false
				for n, s := range et.Segments {
					c := ct.Segments[n]
					if s.Start != c.Start || s.Duration != c.Duration {
						t.Errorf("%s segment %d: %d+%d, clear %d+%d", et.ID, n, s.Start, s.Duration, c.Start, c.Duration)
					}
					grew = grew || s.Range.Length > c.Range.Length
				}
				if !grew && e.Scheme == "cenc" {
					t.Errorf("%s: no segment grew with senc", et.ID)
				}
				checkProtectedInit(t, encFile, ct.Kind, e.Scheme, ivSize(e))

				clearMP4 := decodeMP4(t, clearFile)
				encMP4 := decodeMP4(t, encFile)
				trex := clearMP4.Init.Moov.Mvex.Trex
				want := fileSamples(t, clearMP4, trex)
				before := fileSamples(t, encMP4, trex)
				di, err := mp4.DecryptInit(encMP4.Init)
				if err != nil {
					t.Fatalf("%s: DecryptInit: %v", et.ID, err)
				}
				for _, seg := range encMP4.Segments {
					if err := mp4.DecryptSegment(seg, di, testKey); err != nil {
						t.Fatalf("%s: DecryptSegment: %v", et.ID, err)
					}
				}
				got := fileSamples(t, encMP4, trex)
				if len(got) != len(want) || len(want) == 0 || len(before) != len(want) {
					t.Fatalf("%s: %d samples decrypted, %d clear", et.ID, len(got), len(want))
				}
				differ := 0
				for n := range want {
					w, g := want[n], got[n]
					if g.DecodeTime != w.DecodeTime || g.Dur != w.Dur || g.Flags != w.Flags || g.CompositionTimeOffset != w.CompositionTimeOffset {
						t.Fatalf("%s sample %d: timing/flags %+v, clear %+v", et.ID, n, g.Sample, w.Sample)
					}
					if !bytes.Equal(g.Data, w.Data) {
						t.Fatalf("%s sample %d: decrypted bytes differ from the clear sample", et.ID, n)
					}
					if !bytes.Equal(before[n].Data, w.Data) {
						differ++
					}
				}
				if differ < len(want)/2 {
					t.Errorf("%s: only %d of %d samples were encrypted", et.ID, differ, len(want))
				}

				md5 := frameMD5(t, ffmpeg, clearFile)
				if dec := frameMD5(t, ffmpeg, encFile, "-decryption_key", hex.EncodeToString(testKey)); md5 == "" || dec != md5 {
					t.Errorf("%s: ffmpeg's decryption of %s differs from the clear file", et.ID, singleFileName)
				}
				if wrong := frameMD5(t, ffmpeg, encFile, "-decryption_key", strings.Repeat("ab", 16)); wrong == md5 {
					t.Errorf("%s: a wrong key decodes the same frames", et.ID)
				}
			}
			checkKeyNotIn(t, encDir)
		})
	}
}

// fileSamples returns every sample of every fragment of a decoded file (copies of the bytes).
func fileSamples(t *testing.T, f *mp4.File, trex *mp4.TrexBox) []mp4.FullSample {
	t.Helper()
	var out []mp4.FullSample
	for _, seg := range f.Segments {
		for _, fs := range fullSamples(t, seg, trex) {
			fs.Data = append([]byte(nil), fs.Data...)
			out = append(out, fs)
		}
	}
	return out
}
