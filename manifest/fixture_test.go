package manifest

import "fmt"

// The fixture is a realistic 29.97 fps ladder: 6.006 s segments (180 frames), a short last
// segment, AAC (1024-sample frames) and E-AC-3 (1536-sample frames) cut at the first frame
// boundary after each video cut, so audio durations vary the way real packagers produce them.
const (
	fixtureSegments   = 10
	videoTimescale    = 30000
	framesPerSegment  = 180
	framesLastSegment = 100
	frameTicks        = 1001
	initSize          = 1187 // ftyp+moov, single-file mode
)

type rung struct {
	id, codecs          string
	w, h                int
	peak, avg           int
	iframePeak, iframeA int
}

var fixtureLadder = []rung{
	{"video_1080p", "avc1.640028", 1920, 1080, 6_000_000, 4_500_000, 1_100_000, 800_000},
	{"video_720p", "avc1.64001f", 1280, 720, 3_200_000, 2_400_000, 600_000, 420_000},
	{"video_360p", "avc1.64001e", 640, 360, 900_000, 700_000, 180_000, 120_000},
}

// fixture builds the 3-rung, 2-audio presentation. Video starts at videoStart ticks and audio
// at audioStart samples so that tests can move the tracks off zero.
func fixture(singleFile bool) *Presentation { return fixtureAt(singleFile, 0, 0) }

func fixtureAt(singleFile bool, videoStart, audioStart uint64) *Presentation {
	var cuts []uint64 // video segment boundaries, in ticks from the start
	for i := 0; i < fixtureSegments; i++ {
		cuts = append(cuts, uint64(i*framesPerSegment*frameTicks))
	}
	end := uint64(((fixtureSegments-1)*framesPerSegment + framesLastSegment) * frameTicks)
	cuts = append(cuts, end)

	p := &Presentation{SingleFile: singleFile}
	for _, r := range fixtureLadder {
		t := &Track{
			ID: r.id, Kind: Video, Codecs: r.codecs, Timescale: videoTimescale,
			Width: r.w, Height: r.h, SAR: Rational{1, 1}, FrameRate: Rational{30000, 1001},
			PeakBandwidth: r.peak, AverageBandwidth: r.avg,
			IFramePeakBandwidth: r.iframePeak, IFrameAverageBandwidth: r.iframeA,
		}
		fillTrack(t, singleFile, cuts, videoStart, r.avg)
		p.Video = append(p.Video, t)
	}
	audio := []*Track{
		{ID: "audio_eng", Kind: Audio, Codecs: "mp4a.40.2", Timescale: 48000, SampleRate: 48000,
			Channels: 2, Language: "en", Name: "English", Default: true,
			PeakBandwidth: 132_000, AverageBandwidth: 128_000},
		{ID: "audio_fra", Kind: Audio, Codecs: "ec-3", Timescale: 48000, SampleRate: 48000,
			Channels: 6, Language: "fr", Name: "Français 5.1",
			PeakBandwidth: 400_000, AverageBandwidth: 384_000},
	}
	frames := map[string]uint64{"audio_eng": 1024, "audio_fra": 1536}
	for _, t := range audio {
		f := frames[t.ID]
		var acuts []uint64
		for i, c := range cuts {
			samples := c * 48000 / videoTimescale
			a := (samples + f - 1) / f * f // first frame boundary at or after the cut
			if i == 0 {
				a = 0
			}
			acuts = append(acuts, a)
		}
		fillTrack(t, singleFile, acuts, audioStart, t.AverageBandwidth)
		t.IFrames = nil
		p.Audio = append(p.Audio, t)
	}
	return p
}

// fillTrack cuts t at cuts (relative to start) and lays the bytes out as files or, in
// single-file mode, as ranges after ftyp+moov and the sidx.
func fillTrack(t *Track, singleFile bool, cuts []uint64, start uint64, bitrate int) {
	n := len(cuts) - 1
	sidxSize := int64(32 + 12*n)
	offset := int64(initSize) + sidxSize
	t.InitURI = InitSegmentName
	if singleFile {
		t.InitURI = "media.mp4"
		t.InitRange = ByteRange{Offset: 0, Length: initSize}
		t.IndexRange = ByteRange{Offset: initSize, Length: sidxSize}
	} else {
		t.SegmentTemplate = "seg_$Number%05d$.m4s"
		t.StartNumber = 1
	}
	for i := 0; i < n; i++ {
		d := cuts[i+1] - cuts[i]
		// Vary sizes by ±5% so ranges are not a regular grid that would hide offset bugs.
		size := int64(bitrate)/8*int64(d)/int64(t.Timescale)*int64(95+i%3*5)/100 + 1
		s := Segment{Start: start + cuts[i], Duration: d, Size: size}
		if singleFile {
			s.URI = "media.mp4"
			s.Range = ByteRange{Offset: offset, Length: size}
			offset += size
		} else {
			s.URI = fmt.Sprintf("seg_%05d.m4s", t.StartNumber+i)
		}
		t.Segments = append(t.Segments, s)
		// One GOP per segment: the I-frame is the segment's moof plus its first sample.
		t.IFrames = append(t.IFrames, IFrame{
			Start: s.Start, Duration: s.Duration, URI: s.URI,
			Range: ByteRange{Offset: s.Range.Offset, Length: 1400 + size/20},
		})
	}
}
