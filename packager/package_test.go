package packager

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/hls-m3u8/m3u8"
	"github.com/reelvideo/reel/manifest"
)

// decodePlaylist parses a written playlist back with hls-m3u8 (strict) and checks its type.
func decodePlaylist(t *testing.T, file string, want m3u8.ListType) m3u8.Playlist {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pl, typ, err := m3u8.DecodeFrom(f, true)
	if err != nil || typ != want {
		t.Fatalf("%s: want playlist type %v, got %v: %v", file, want, typ, err)
	}
	return pl
}

func decodeMaster(t *testing.T, file string) *m3u8.MasterPlaylist {
	t.Helper()
	return decodePlaylist(t, file, m3u8.MASTER).(*m3u8.MasterPlaylist)
}

func decodeMedia(t *testing.T, file string) *m3u8.MediaPlaylist {
	t.Helper()
	return decodePlaylist(t, file, m3u8.MEDIA).(*m3u8.MediaPlaylist)
}

func segmentsOf(pl *m3u8.MediaPlaylist) []*m3u8.MediaSegment {
	var out []*m3u8.MediaSegment
	for _, s := range pl.Segments {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// expectedCodec derives the RFC 6381 string from ffprobe's independent reading of the input.
func expectedCodec(t *testing.T, st map[string]any) string {
	t.Helper()
	switch str(st, "codec_name") {
	case "h264":
		profiles := map[string]int{"Constrained Baseline": 66, "Baseline": 66, "Main": 77, "High": 100}
		p, ok := profiles[str(st, "profile")]
		if !ok {
			t.Fatalf("unexpected H.264 profile %q", str(st, "profile"))
		}
		return fmt.Sprintf("avc1.%02x", p) // constraint flags and level are checked separately
	case "aac":
		if str(st, "profile") != "LC" {
			t.Fatalf("unexpected AAC profile %q", str(st, "profile"))
		}
		return "mp4a.40.2"
	}
	t.Fatalf("unexpected codec %q", str(st, "codec_name"))
	return ""
}

// TestPackageLadder packages the sample ladder plus a second audio language and checks the
// result against the inputs as ffprobe reads them, and HLS against DASH.
func TestPackageLadder(t *testing.T) {
	inputs := append(append([]string{}, ladder...), samplePath("audio_fra.mp4"))
	out, _ := packageTo(t, Options{Inputs: inputs, Languages: []string{"en"}})

	master := decodeMaster(t, filepath.Join(out, manifest.MasterPlaylist))
	var variants, iframes []*m3u8.Variant
	for _, v := range master.Variants {
		if v.Iframe {
			iframes = append(iframes, v)
		} else {
			variants = append(variants, v)
		}
	}
	if len(variants) != 3 || len(iframes) != 3 {
		t.Fatalf("master has %d variants and %d I-frame variants, want 3 and 3", len(variants), len(iframes))
	}
	// RFC 8216 §4.3.4.2: variants ordered here by bandwidth, highest first.
	wantRes := []string{"1280x720", "854x480", "640x360"}
	var boundaries []string
	for i, v := range variants {
		if v.Resolution != wantRes[i] {
			t.Errorf("variant %d: RESOLUTION %s, want %s", i, v.Resolution, wantRes[i])
		}
		if v.FrameRate != 30 {
			t.Errorf("variant %d: FRAME-RATE %v, want 30", i, v.FrameRate)
		}
		if v.AverageBandwidth == 0 || v.AverageBandwidth > v.Bandwidth {
			t.Errorf("variant %d: AVERAGE-BANDWIDTH %d vs BANDWIDTH %d", i, v.AverageBandwidth, v.Bandwidth)
		}
		if v.Audio != manifest.AudioGroupID {
			t.Errorf("variant %d: AUDIO=%q", i, v.Audio)
		}
		// CODECS must say what the bitstream says (ffprobe reads the SPS independently).
		streams := probeStreams(t, ladder[i])
		var vs, as map[string]any
		for _, s := range streams {
			switch str(s, "codec_type") {
			case "video":
				vs = s
			case "audio":
				as = s
			}
		}
		codecs := strings.Split(v.Codecs, ",")
		if len(codecs) != 2 {
			t.Fatalf("variant %d: CODECS=%q, want video and audio", i, v.Codecs)
		}
		if want := expectedCodec(t, vs); !strings.HasPrefix(codecs[0], want) {
			t.Errorf("variant %d: video codec %s, ffprobe says %s…", i, codecs[0], want)
		}
		if lvl := fmt.Sprintf("%02x", int(num(vs, "level"))); !strings.HasSuffix(codecs[0], lvl) {
			t.Errorf("variant %d: video codec %s, ffprobe says level %s", i, codecs[0], lvl)
		}
		if want := expectedCodec(t, as); codecs[1] != want {
			t.Errorf("variant %d: audio codec %s, want %s", i, codecs[1], want)
		}

		media := decodeMedia(t, filepath.Join(out, v.URI))
		if media.MediaType != m3u8.VOD || !media.Closed {
			t.Errorf("%s: want PLAYLIST-TYPE:VOD and ENDLIST", v.URI)
		}
		if media.Map == nil || media.Map.URI != manifest.InitSegmentName {
			t.Errorf("%s: EXT-X-MAP missing or wrong: %+v", v.URI, media.Map)
		}
		// Sum of segment durations equals the input's duration within one frame.
		var sum float64
		var cuts []string
		for _, s := range segmentsOf(media) {
			cuts = append(cuts, fmt.Sprintf("%.4f", sum))
			sum += s.Duration
			if _, err := os.Stat(filepath.Join(out, path.Dir(v.URI), s.URI)); err != nil {
				t.Errorf("%s: segment %s missing", v.URI, s.URI)
			}
		}
		if d := num(vs, "duration"); math.Abs(sum-d) > 1.0/30 {
			t.Errorf("%s: segments sum to %.4fs, input video lasts %.4fs", v.URI, sum, d)
		}
		// Segment boundaries are the same in every rendition.
		if b := strings.Join(cuts, " "); boundaries == nil {
			boundaries = cuts
		} else if b != strings.Join(boundaries, " ") {
			t.Errorf("%s: boundaries %s differ from %s", v.URI, b, strings.Join(boundaries, " "))
		}
	}
	if len(boundaries) != 6 {
		t.Errorf("want 6 segments of 2s for 12s of video, got boundaries %v", boundaries)
	}

	// Audio renditions: one group, two languages, first default.
	var alts []*m3u8.Alternative
	for _, a := range variants[0].Alternatives {
		alts = append(alts, a)
	}
	if len(alts) != 2 || alts[0].Language != "en" || !alts[0].Default || alts[1].Language != "fr" || alts[1].Default {
		t.Fatalf("audio renditions: %+v", alts)
	}
	for _, a := range alts {
		if a.Channels == nil || a.Channels.Amount != 2 {
			t.Errorf("audio %s: CHANNELS=%+v", a.Language, a.Channels)
		}
	}

	checkDASHMatchesHLS(t, out)
}

// checkDASHMatchesHLS parses the MPD back and checks that, for every representation, its
// SegmentTemplate expands to exactly the files the HLS media playlist lists.
func checkDASHMatchesHLS(t *testing.T, out string) {
	t.Helper()
	m, err := mpd.ReadFromFile(filepath.Join(out, manifest.DASHManifest))
	if err != nil {
		t.Fatalf("MPD does not parse: %v", err)
	}
	if m.GetType() != mpd.STATIC_TYPE || m.MediaPresentationDuration == nil {
		t.Fatalf("want a static MPD with mediaPresentationDuration")
	}
	reps := 0
	for _, as := range m.Periods[0].AdaptationSets {
		for _, rep := range as.Representations {
			reps++
			st := rep.SegmentTemplate
			if st == nil || st.SegmentTimeline == nil {
				t.Fatalf("representation %s has no SegmentTemplate with SegmentTimeline", rep.Id)
			}
			var uris []string
			n := int(*st.StartNumber)
			for _, s := range st.SegmentTimeline.S {
				for range s.R + 1 {
					u := strings.ReplaceAll(st.Media, "$RepresentationID$", rep.Id)
					u = strings.ReplaceAll(u, "$Number%05d$", fmt.Sprintf("%05d", n))
					uris = append(uris, u)
					n++
				}
			}
			media := decodeMedia(t, filepath.Join(out, rep.Id, manifest.MediaPlaylist))
			var hls []string
			for _, s := range segmentsOf(media) {
				hls = append(hls, rep.Id+"/"+s.URI)
			}
			if strings.Join(uris, ",") != strings.Join(hls, ",") {
				t.Errorf("representation %s: DASH segments %v, HLS segments %v", rep.Id, uris, hls)
			}
		}
	}
	if reps != 5 {
		t.Errorf("MPD has %d representations, want 5", reps)
	}
}

// TestFFprobeThroughOrigin decodes every rendition through the HLS master and through the
// MPD, both served over HTTP by the origin on loopback.
func TestFFprobeThroughOrigin(t *testing.T) {
	requireTool(t, "ffprobe")
	out, _ := packageTo(t, Options{Inputs: append(append([]string{}, ladder...), samplePath("audio_fra.mp4"))})
	o, err := NewOrigin(out, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	srv := httptest.NewServer(o)
	defer srv.Close()

	for _, name := range []string{manifest.MasterPlaylist, manifest.DASHManifest} {
		t.Run(name, func(t *testing.T) {
			streams := probeStreams(t, "-count_frames", srv.URL+"/"+name)
			videos := map[string]float64{}
			audio := 0
			for _, s := range streams {
				frames := num(s, "nb_read_frames")
				switch str(s, "codec_type") {
				case "video":
					videos[fmt.Sprintf("%vx%v", s["width"], s["height"])] = frames
				case "audio":
					audio++
					if frames < 500 {
						t.Errorf("audio stream decoded only %v frames", frames)
					}
				}
			}
			for _, res := range []string{"1280x720", "854x480", "640x360"} {
				// 12 s at 30 fps; ffmpeg's DASH demuxer may drop the very last frame.
				if f := videos[res]; f < 359 || f > 360 {
					t.Errorf("%s rendition decoded %v frames, want 360", res, f)
				}
			}
			if audio < 2 {
				t.Errorf("decoded %d audio streams, want 2", audio)
			}
		})
	}
}

// trackSample is what must survive packaging untouched.
type trackSample struct {
	dts       uint64
	dur       uint32
	cto       int32
	size      uint32
	sync      bool
	dataHash  [32]byte
	timescale uint32
}

// readTrackSamples reads every sample of the first track of kind in file with our own reader.
func readTrackSamples(t *testing.T, file string, kind manifest.Kind) []trackSample {
	t.Helper()
	in, err := openInput(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	defer in.Close()
	for _, tr := range in.tracks {
		if tr.kind != kind {
			continue
		}
		it, err := tr.newIter()
		if err != nil {
			t.Fatal(err)
		}
		var out []trackSample
		for {
			s, err := it.next()
			if err == io.EOF {
				return out
			}
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			data := make([]byte, s.size)
			if _, err := in.f.ReadAt(data, s.off); err != nil {
				t.Fatal(err)
			}
			out = append(out, trackSample{s.dts, s.dur, s.cto, s.size, s.sync, sha256.Sum256(data), tr.timescale})
		}
	}
	t.Fatalf("%s: no %s track", file, kind)
	return nil
}

func compareSamples(t *testing.T, what string, got, want []trackSample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples, input has %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: sample %d differs: got %+v want %+v", what, i, got[i], want[i])
		}
	}
}

// concatSegments joins init and media segments into one fragmented MP4, as a player would
// feed them to its decoder.
func concatSegments(t *testing.T, dir string, tr *manifest.Track) string {
	t.Helper()
	var buf bytes.Buffer
	for _, name := range append([]string{tr.InitURI}, segmentURIs(tr)...) {
		b, err := os.ReadFile(filepath.Join(dir, tr.ID, name))
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	file := filepath.Join(t.TempDir(), tr.ID+".mp4")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func segmentURIs(tr *manifest.Track) []string {
	var out []string
	for _, s := range tr.Segments {
		out = append(out, s.URI)
	}
	return out
}

// TestSegmentsHoldInputSamples checks that the segments carry every input sample with the
// same timing, flags and bytes (CMAF output read back with our fragmented reader).
func TestSegmentsHoldInputSamples(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	p, err := Package(context.Background(), Options{Inputs: ladder[:2], Output: out})
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range p.Video {
		got := readTrackSamples(t, concatSegments(t, out, tr), manifest.Video)
		compareSamples(t, tr.ID, got, readTrackSamples(t, ladder[i], manifest.Video))
	}
	got := readTrackSamples(t, concatSegments(t, out, p.Audio[0]), manifest.Audio)
	compareSamples(t, "audio", got, readTrackSamples(t, ladder[0], manifest.Audio))
}

// TestFragmentedInput packages a fragmented MP4 (our own CMAF output, joined) and gets the
// same samples and the same segmentation as from the progressive original.
func TestFragmentedInput(t *testing.T) {
	dirA := filepath.Join(t.TempDir(), "a")
	first, err := Package(context.Background(), Options{Inputs: ladder[2:], Output: dirA})
	if err != nil {
		t.Fatal(err)
	}
	frag := concatSegments(t, dirA, first.Video[0])
	second, err := Package(context.Background(), Options{Inputs: []string{frag}, Output: filepath.Join(t.TempDir(), "b")})
	if err != nil {
		t.Fatalf("packaging a fragmented input: %v", err)
	}
	a, b := first.Video[0], second.Video[0]
	if len(a.Segments) != len(b.Segments) {
		t.Fatalf("%d segments from fragmented input, %d from progressive", len(b.Segments), len(a.Segments))
	}
	for i := range a.Segments {
		if a.Segments[i].Start != b.Segments[i].Start || a.Segments[i].Duration != b.Segments[i].Duration {
			t.Errorf("segment %d: %+v vs %+v", i, b.Segments[i], a.Segments[i])
		}
	}
	if a.Codecs != b.Codecs || a.Width != b.Width || a.FrameRate != b.FrameRate {
		t.Errorf("track description changed: %+v vs %+v", b, a)
	}
}

// TestHEVC packages an HEVC rendition: CODECS follows ISO/IEC 14496-15 Annex E as ffprobe
// reads the SPS, and the result decodes through the origin.
func TestHEVC(t *testing.T) {
	requireTool(t, "ffprobe")
	src := samplePath("hevc_360p.mp4")
	out, _ := packageTo(t, Options{Inputs: []string{src}})
	vs := probeStreams(t, src)[0]
	master := decodeMaster(t, filepath.Join(out, manifest.MasterPlaylist))
	codec := master.Variants[0].Codecs
	// Main profile → general_profile_idc 1; ffprobe's level is general_level_idc.
	want := fmt.Sprintf("hvc1.1.6.L%d.", int(num(vs, "level")))
	if str(vs, "profile") != "Main" || !strings.HasPrefix(codec, want) {
		t.Errorf("CODECS=%q, ffprobe says profile %s level %v (want prefix %s)", codec, str(vs, "profile"), vs["level"], want)
	}
	o, err := NewOrigin(out, OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	srv := httptest.NewServer(o)
	defer srv.Close()
	streams := probeStreams(t, "-count_frames", srv.URL+"/"+manifest.MasterPlaylist)
	if len(streams) == 0 || str(streams[0], "codec_name") != "hevc" || num(streams[0], "nb_read_frames") != 120 {
		t.Errorf("through the origin: %v", streams)
	}
}
