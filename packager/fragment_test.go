package packager

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/live"
)

// decodeFragments parses data (an init segment followed by media segments or parts) with mp4ff
// and returns its fragments and the trex that completes their defaults.
func decodeFragments(t testing.TB, data []byte) ([]*mp4.Fragment, *mp4.TrexBox) {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("mp4ff cannot parse the output: %v", err)
	}
	if f.Init == nil || f.Init.Moov.Mvex == nil || len(f.Init.Moov.Mvex.Trexs) != 1 {
		t.Fatal("no init segment with one trex")
	}
	var frags []*mp4.Fragment
	for _, s := range f.Segments {
		frags = append(frags, s.Fragments...)
	}
	if len(frags) == 0 {
		t.Fatal("no fragment")
	}
	return frags, f.Init.Moov.Mvex.Trexs[0]
}

// checkCompact asserts what a compact fragment looks like: every per-sample field the samples
// share is a tfhd default instead, and a video fragment's leading sync sample is signalled by
// first-sample-flags alone. It returns the fragment's samples, defaults applied.
func checkCompact(t testing.TB, frag *mp4.Fragment, trex *mp4.TrexBox) []mp4.FullSample {
	t.Helper()
	traf := frag.Moof.Traf
	tfhd, trun := traf.Tfhd, traf.Trun
	samples, err := frag.GetFullSamples(trex)
	if err != nil {
		t.Fatal(err)
	}
	same := func(f func(mp4.FullSample) uint32) bool {
		for _, s := range samples {
			if f(s) != f(samples[0]) {
				return false
			}
		}
		return true
	}
	if same(func(s mp4.FullSample) uint32 { return s.Dur }) && trun.HasSampleDuration() {
		t.Errorf("fragment %d: trun repeats the common duration %d", frag.Moof.Mfhd.SequenceNumber, samples[0].Dur)
	}
	if same(func(s mp4.FullSample) uint32 { return s.Size }) && trun.HasSampleSize() {
		t.Errorf("fragment %d: trun repeats the common size", frag.Moof.Mfhd.SequenceNumber)
	}
	if trun.HasSampleFlags() {
		t.Errorf("fragment %d: trun carries per-sample flags (%d samples)", frag.Moof.Mfhd.SequenceNumber, len(samples))
	}
	zero := true
	for _, s := range samples {
		zero = zero && s.CompositionTimeOffset == 0
	}
	if zero && trun.HasSampleCompositionTimeOffset() {
		t.Errorf("fragment %d: trun carries composition offsets that are all zero", frag.Moof.Mfhd.SequenceNumber)
	}
	if !tfhd.HasDefaultSampleFlags() {
		t.Errorf("fragment %d: no default-sample-flags in tfhd", frag.Moof.Mfhd.SequenceNumber)
	}
	return samples
}

// TestPackagedFragmentsCompact packages a rung with its audio and checks every fragment: compact
// tfhd/trun (mp4ff reads the defaults back), the same samples as the source (duration, size,
// composition offset, sync), and every frame decoding in ffprobe.
func TestPackagedFragmentsCompact(t *testing.T) {
	dir, _ := packageTo(t, Options{Inputs: []string{ladder[2]}})
	in, err := openGuarded(ladder[2])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	for _, src := range in.tracks {
		id := "video_360p"
		if src.kind == manifest.Audio {
			id = "audio"
		}
		t.Run(id, func(t *testing.T) {
			data, moofBytes, nfrag := joinTrack(t, filepath.Join(dir, id))
			frags, trex := decodeFragments(t, data)
			it, err := src.newIter()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, frag := range frags {
				for _, s := range checkCompact(t, frag, trex) {
					want, err := it.next()
					if err != nil {
						t.Fatalf("output sample %d: the source has no more (%v)", n, err)
					}
					got := sample{dts: s.DecodeTime, dur: s.Dur, size: s.Size, cto: s.CompositionTimeOffset, sync: s.IsSync(), off: want.off}
					if got != want {
						t.Fatalf("sample %d: output %+v, source %+v", n, got, want)
					}
					n++
				}
			}
			t.Logf("%s: %d fragments, %d bytes of moof (%.1f per fragment), %d samples", id, nfrag, moofBytes, float64(moofBytes)/float64(nfrag), n)
			path := filepath.Join(t.TempDir(), id+".mp4")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			sel := map[manifest.Kind]string{manifest.Video: "v", manifest.Audio: "a"}[src.kind]
			if o := probeTiming(t, path, sel); o.packets != n || o.frames < n-1 {
				t.Errorf("ffprobe: %d packets, %d frames decoded, want %d", o.packets, o.frames, n)
			}
		})
	}
}

// joinTrack reads a packaged track folder: init.mp4 then every segment, and counts the bytes
// of its moof boxes.
func joinTrack(t testing.TB, dir string) (data []byte, moofBytes, frags int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, manifest.InitSegmentName))
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range f.Segments {
		for _, fr := range s.Fragments {
			moofBytes += int(fr.Moof.Size())
			frags++
		}
	}
	return data, moofBytes, frags
}

// TestLivePartsCompact: every LL part of a looped channel is a fragment, and compact too.
func TestLivePartsCompact(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond, Window: time.Minute})
	if err := Loop(t.Context(), ch, LoopOptions{Inputs: []string{ladder[2]}, Loops: 1, Clock: clock.Now, Sleep: clock.Sleep}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"video_360p", "audio"} {
		data := get(t, srv, "/live/test/"+id+"/init.mp4").Body.Bytes()
		pl := get(t, srv, "/live/test/"+id+"/index.m3u8").Body.String()
		parts := partRe.FindAllStringSubmatch(pl, -1)
		if len(parts) < 4 {
			t.Fatalf("%s: %d parts listed:\n%s", id, len(parts), pl)
		}
		for _, p := range parts {
			rec := get(t, srv, "/live/test/"+id+"/seg_"+p[2]+"."+p[3]+".m4s")
			if rec.Code != http.StatusOK {
				t.Fatalf("%s part %s.%s: status %d", id, p[2], p[3], rec.Code)
			}
			data = append(data, rec.Body.Bytes()...)
		}
		frags, trex := decodeFragments(t, data)
		moof := 0
		for _, f := range frags {
			checkCompact(t, f, trex)
			moof += int(f.Moof.Size())
		}
		t.Logf("%s: %d parts, %.1f bytes of moof per part", id, len(frags), float64(moof)/float64(len(frags)))
	}
}

// TestFragmentHeader round-trips fragment headers through mp4ff: what it reads back is what
// was written, with only the varying fields in trun (and signed offsets only when needed).
func TestFragmentHeader(t *testing.T) {
	sync := func(dur, size uint32, cto int32) sample { return sample{dur: dur, size: size, cto: cto, sync: true} }
	non := func(dur, size uint32, cto int32) sample { return sample{dur: dur, size: size, cto: cto} }
	for _, tc := range []struct {
		name      string
		samples   []sample
		trun      uint32 // per-sample trun fields expected
		firstFlag bool
		version   byte
	}{
		{"one sample", []sample{sync(1024, 300, 0)}, 0, false, 0},
		{"audio", []sample{sync(1024, 300, 0), sync(1024, 310, 0), sync(1024, 290, 0)}, mp4.TrunSampleSizePresentFlag, false, 0},
		{"audio with a short last frame", []sample{sync(1024, 300, 0), sync(512, 310, 0)},
			mp4.TrunSampleSizePresentFlag | mp4.TrunSampleDurationPresentFlag, false, 0},
		{"GOP with B-frames", []sample{sync(512, 9000, 1024), non(512, 800, 2048), non(512, 300, 0)},
			mp4.TrunSampleSizePresentFlag | mp4.TrunSampleCompositionTimeOffsetPresentFlag, true, 0},
		{"negative offsets", []sample{sync(512, 9000, 0), non(512, 800, -512)},
			mp4.TrunSampleSizePresentFlag | mp4.TrunSampleCompositionTimeOffsetPresentFlag, true, 1},
		{"part inside a GOP", []sample{non(512, 800, 0), non(512, 800, 0)}, 0, false, 0},
		{"two sync samples in a row then not", []sample{sync(512, 9000, 0), sync(512, 800, 0), non(512, 800, 0)},
			mp4.TrunSampleSizePresentFlag | mp4.TrunSampleFlagsPresentFlag, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr, err := fragmentHeader(7, 90000, tc.samples)
			if err != nil {
				t.Fatal(err)
			}
			var mdatSize int
			for _, s := range tc.samples {
				mdatSize += int(s.size)
			}
			data := append(hdr, make([]byte, mdatSize)...)
			f, err := mp4.DecodeFile(bytes.NewReader(data))
			if err != nil || len(f.Segments) != 1 || len(f.Segments[0].Fragments) != 1 {
				t.Fatalf("mp4ff: %v", err)
			}
			frag := f.Segments[0].Fragments[0]
			trun := frag.Moof.Traf.Trun
			if got := trun.Flags &^ (mp4.TrunDataOffsetPresentFlag | mp4.TrunFirstSampleFlagsPresentFlag); got != tc.trun {
				t.Errorf("trun per-sample fields %#x, want %#x", got, tc.trun)
			}
			if trun.HasFirstSampleFlags() != tc.firstFlag || trun.Version != tc.version {
				t.Errorf("first-sample-flags %v, version %d; want %v, %d", trun.HasFirstSampleFlags(), trun.Version, tc.firstFlag, tc.version)
			}
			got, err := frag.GetFullSamples(&mp4.TrexBox{TrackID: 1})
			if err != nil || len(got) != len(tc.samples) {
				t.Fatalf("%d samples read back (%v)", len(got), err)
			}
			dts := uint64(90000)
			for i, g := range got {
				w := tc.samples[i]
				if g.DecodeTime != dts || g.Dur != w.dur || g.Size != w.size || g.CompositionTimeOffset != w.cto || g.IsSync() != w.sync {
					t.Errorf("sample %d read back as %+v, wrote %+v", i, g.Sample, w)
				}
				dts += uint64(w.dur)
			}
		})
	}
}
