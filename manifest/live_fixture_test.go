package manifest

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// The live fixture is a channel that started at liveEpoch (media time zero of every track):
// 29.97 fps video cut every 60 frames (2.002 s, 60060 ticks at 30 kHz) into 4 parts of 15
// frames (0.5005 s), and AAC audio (1024-sample frames at 48 kHz) cut at the first frame
// boundary at or after each video cut, so its segment and part durations vary as real ones do.
const (
	liveSegTicks  = 60060
	livePartTicks = 15015
	livePerSeg    = liveSegTicks / livePartTicks
)

var liveEpoch = time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)

type liveSpec struct {
	first      uint64          // Number of the first listed segment
	complete   int             // complete segments listed
	inProgress int             // parts of the segment in progress (LL-HLS only)
	parts      bool            // LL-HLS on
	disc       map[uint64]bool // segment numbers preceded by a discontinuity
	discSeq    uint64          // discontinuities that have left the window
	pdtJump    time.Duration   // wall-clock jump at each discontinuity (an encoder outage)
	nextDisc   bool            // the segment in progress follows a discontinuity
}

// audioCut maps a video tick position to the first AAC frame boundary at or after it.
func audioCut(v uint64) uint64 {
	samples := (v*48000 + videoTimescale - 1) / videoTimescale
	return (samples + 1023) / 1024 * 1024
}

func videoCut(v uint64) uint64 { return v }

func liveFixture(s liveSpec) *Presentation {
	l := &Live{
		TargetDuration:    2 * time.Second,
		CanBlockReload:    true,
		CanSkipUntil:      12 * time.Second,
		AvailabilityStart: liveEpoch,
		UTCTimingURL:      "https://origin.example/time",
	}
	if s.parts {
		l.PartTarget = 500500 * time.Microsecond
	}
	p := &Presentation{Live: l}
	p.Video = []*Track{
		liveTrack(&Track{ID: "video_720p", Kind: Video, Codecs: "avc1.64001f", Timescale: videoTimescale,
			Width: 1280, Height: 720, SAR: Rational{1, 1}, FrameRate: Rational{30000, 1001},
			PeakBandwidth: 3_200_000, AverageBandwidth: 2_400_000}, videoCut, s),
		liveTrack(&Track{ID: "video_360p", Kind: Video, Codecs: "avc1.64001e", Timescale: videoTimescale,
			Width: 640, Height: 360, SAR: Rational{1, 1}, FrameRate: Rational{30000, 1001},
			PeakBandwidth: 900_000, AverageBandwidth: 700_000}, videoCut, s),
	}
	p.Audio = []*Track{
		liveTrack(&Track{ID: "audio_eng", Kind: Audio, Codecs: "mp4a.40.2", Timescale: 48000,
			SampleRate: 48000, Channels: 2, Language: "en", Name: "English", Default: true,
			PeakBandwidth: 132_000, AverageBandwidth: 128_000}, audioCut, s),
	}
	// The snapshot is published when the newest video part (or segment) ended.
	v := p.Video[0]
	end := uint64(v.liveNext())*liveSegTicks + uint64(len(v.LiveParts))*livePartTicks
	l.PublishTime = liveEpoch.Add(ticksToDuration(end, videoTimescale)).Add(time.Duration(countDisc(s, v.liveNext())) * s.pdtJump)
	return p
}

func countDisc(s liveSpec, upTo uint64) int {
	n := 0
	for num := range s.disc {
		if num <= upTo {
			n++
		}
	}
	if s.nextDisc {
		n++
	}
	return n
}

func ticksToDuration(ticks uint64, ts uint32) time.Duration {
	q, r := ticks/uint64(ts), ticks%uint64(ts)
	return time.Duration(q)*time.Second + time.Duration(r*uint64(time.Second)/uint64(ts))
}

// liveTrack fills t's window from spec s; cut maps video ticks to t's ticks.
func liveTrack(t *Track, cut func(uint64) uint64, s liveSpec) *Track {
	t.InitURI = InitSegmentName
	t.SegmentTemplate = "seg_$Number$.m4s"
	t.DiscontinuitySequence = s.discSeq
	var jump time.Duration
	parts := func(n uint64, count int) []Part {
		var out []Part
		for k := range count {
			a := cut(n*liveSegTicks + uint64(k)*livePartTicks)
			b := cut(n*liveSegTicks + uint64(k+1)*livePartTicks)
			out = append(out, Part{Duration: b - a, URI: fmt.Sprintf("seg_%d.%d.m4s", n, k),
				Independent: k == 0 || t.Kind == Audio})
		}
		return out
	}
	for i := range s.complete {
		n := s.first + uint64(i)
		start, end := cut(n*liveSegTicks), cut((n+1)*liveSegTicks)
		if s.disc[n] {
			jump += s.pdtJump
		}
		seg := Segment{Start: start, Duration: end - start, URI: fmt.Sprintf("seg_%d.m4s", n), Size: 1000,
			Number: n, Discontinuity: s.disc[n],
			ProgramDateTime: liveEpoch.Add(ticksToDuration(start, t.Timescale) + jump)}
		if s.parts {
			seg.Parts = parts(n, livePerSeg)
		}
		t.Segments = append(t.Segments, seg)
	}
	next := s.first + uint64(s.complete)
	t.NextNumber = next
	if s.parts {
		t.LiveParts = parts(next, s.inProgress)
		t.NextDiscontinuity = s.nextDisc
		if s.nextDisc {
			jump += s.pdtJump
		}
		t.NextProgramDateTime = liveEpoch.Add(ticksToDuration(cut(next*liveSegTicks), t.Timescale) + jump)
	}
	return t
}

// reportDecoder reads EXT-X-RENDITION-REPORT, which hls-m3u8 v0.6.5 ignores. It keeps every
// tag itself: the library's Custom map holds one value per tag name.
type reportDecoder struct{ reports []RenditionReport }

type rawTag string

func (r rawTag) TagName() string       { return "#EXT-X-RENDITION-REPORT:" }
func (r rawTag) Encode() *bytes.Buffer { return bytes.NewBufferString(string(r)) }
func (r rawTag) String() string        { return string(r) }

func (d *reportDecoder) TagName() string  { return "#EXT-X-RENDITION-REPORT:" }
func (d *reportDecoder) SegmentTag() bool { return false }

func (d *reportDecoder) Decode(line string) (m3u8.CustomTag, error) {
	r := RenditionReport{LastPart: -1}
	for _, attr := range splitAttrs(strings.TrimPrefix(line, d.TagName())) {
		k, v, _ := strings.Cut(attr, "=")
		var err error
		switch k {
		case "URI":
			r.URI = strings.Trim(v, `"`)
		case "LAST-MSN":
			r.LastMSN, err = strconv.ParseUint(v, 10, 64)
		case "LAST-PART":
			r.LastPart, err = strconv.Atoi(v)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
	}
	d.reports = append(d.reports, r)
	return rawTag(line), nil
}

// splitAttrs splits an attribute-list at the commas outside quoted strings (RFC 8216 §4.2).
func splitAttrs(s string) []string {
	var out []string
	quoted, from := false, 0
	for i, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, s[from:i])
			from = i + 1
		}
	}
	return append(out, s[from:])
}

// parseLive parses a live media playlist with hls-m3u8 in strict mode, with the rendition
// reports read by reportDecoder.
func parseLive(t *testing.T, b []byte) (*m3u8.MediaPlaylist, []*m3u8.MediaSegment, []RenditionReport) {
	t.Helper()
	d := &reportDecoder{}
	pl, typ, err := m3u8.DecodeWith(bytes.NewReader(b), true, []m3u8.CustomDecoder{d})
	if err != nil || typ != m3u8.MEDIA {
		t.Fatalf("live playlist does not parse (type %v): %v\n%s", typ, err, b)
	}
	media := pl.(*m3u8.MediaPlaylist)
	return media, media.Segments[:media.Count()], d.reports
}

// lines returns the playlist's lines that start with prefix.
func lines(b []byte, prefix string) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
