package manifest

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// Every MPD is parsed back with dash-mpd, so the assertions are about what a client reads.

const mpdURL = "https://cdn.example/title/" + DASHManifest

func parseMPD(t *testing.T, p *Presentation) *mpd.MPD {
	t.Helper()
	b, err := p.DASH()
	if err != nil {
		t.Fatalf("DASH: %v", err)
	}
	m, err := mpd.MPDFromBytes(b)
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, b)
	}
	return m
}

func representations(m *mpd.MPD) map[string]*mpd.RepresentationType {
	reps := map[string]*mpd.RepresentationType{}
	for _, as := range m.Periods[0].AdaptationSets {
		for _, r := range as.Representations {
			reps[r.Id] = r
		}
	}
	return reps
}

func seconds(d *mpd.Duration) float64 {
	if d == nil {
		return -1
	}
	return time.Duration(*d).Seconds()
}

// ISO/IEC 23009-1 §5.3.1 (MPD), §5.3.2 (Period), §5.3.3 (AdaptationSet), §5.3.5
// (Representation), §5.3.7 (common attributes), §5.8.5.4 (audio channel configuration).
func TestDASHStructure(t *testing.T) {
	m := parseMPD(t, fixture(false))
	if m.GetType() != mpd.STATIC_TYPE ||
		m.Profiles != "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019" {
		t.Errorf("type %q profiles %q", m.GetType(), m.Profiles)
	}
	// The longest track is audio: 2755584 samples at 48 kHz = 57.408 s. The longest segment
	// is an AAC one of 288768 samples = 6.016 s.
	if got := seconds(m.MediaPresentationDuration); math.Abs(got-57.408) > 1e-3 {
		t.Errorf("mediaPresentationDuration %v s, want 57.408", got)
	}
	if got := seconds(m.MinBufferTime); math.Abs(got-6.016) > 1e-3 {
		t.Errorf("minBufferTime %v s, want 6.016", got)
	}
	if len(m.Periods) != 1 || m.Periods[0].Id != "0" || seconds(m.Periods[0].Start) != 0 {
		t.Fatalf("want one Period id 0 starting at 0")
	}
	sets := m.Periods[0].AdaptationSets
	if len(sets) != 3 {
		t.Fatalf("%d adaptation sets, want video + 2 audio", len(sets))
	}

	v := sets[0]
	if v.Id == nil || *v.Id != 0 || v.ContentType != "video" || v.MimeType != "video/mp4" || !v.SegmentAlignment ||
		v.StartWithSAP != 1 || v.MaxWidth != 1920 || v.MaxHeight != 1080 || v.MaxFrameRate != "30000/1001" || v.Par != "16:9" {
		t.Errorf("video set: id %v %s %s align %v sap %d max %dx%d@%s par %s", v.Id, v.ContentType, v.MimeType,
			v.SegmentAlignment, v.StartWithSAP, v.MaxWidth, v.MaxHeight, v.MaxFrameRate, v.Par)
	}
	if len(v.Representations) != len(fixtureLadder) {
		t.Fatalf("%d video representations", len(v.Representations))
	}
	for i, want := range fixtureLadder {
		r := v.Representations[i]
		if r.Id != want.id || r.Bandwidth != uint32(want.peak) || r.Codecs != want.codecs || r.Width != uint32(want.w) ||
			r.Height != uint32(want.h) || r.FrameRate != "30000/1001" || r.Sar != "1:1" || r.GetMimeType() != "video/mp4" {
			t.Errorf("video rep %d: %s %d %s %dx%d %s sar %s", i, r.Id, r.Bandwidth, r.Codecs, r.Width, r.Height, r.FrameRate, r.Sar)
		}
	}

	audio := []struct {
		id, lang, codecs, channels string
		bandwidth                  uint32
		main                       bool
	}{
		{"audio_eng", "en", "mp4a.40.2", "2", 132_000, true},
		{"audio_fra", "fr", "ec-3", "6", 400_000, false},
	}
	for i, want := range audio {
		as := sets[i+1]
		if as.Id == nil || *as.Id != uint32(i+1) || as.ContentType != "audio" || as.MimeType != "audio/mp4" || as.Lang != want.lang {
			t.Errorf("audio set %d: id %v %s %s lang %q", i, as.Id, as.ContentType, as.MimeType, as.Lang)
		}
		// DASH-IF IOP: the default audio set carries Role main.
		isMain := len(as.Roles) == 1 && as.Roles[0].SchemeIdUri == "urn:mpeg:dash:role:2011" && as.Roles[0].Value == "main"
		if isMain != want.main || (!want.main && len(as.Roles) != 0) {
			t.Errorf("audio set %s: roles %+v, main wanted: %v", want.lang, as.Roles, want.main)
		}
		if len(as.Representations) != 1 {
			t.Fatalf("audio set %s: %d representations", want.lang, len(as.Representations))
		}
		r := as.Representations[0]
		if r.Id != want.id || r.Codecs != want.codecs || r.Bandwidth != want.bandwidth ||
			r.AudioSamplingRate == nil || *r.AudioSamplingRate != "48000" {
			t.Errorf("audio rep %s: %s %d rate %v", r.Id, r.Codecs, r.Bandwidth, r.AudioSamplingRate)
		}
		acc := r.AudioChannelConfigurations
		if len(acc) != 1 || acc[0].SchemeIdUri != mpd.AUDIO_CHANNEL_CONFIGURATION_MPEG_DASH || acc[0].Value != want.channels {
			t.Errorf("audio rep %s: AudioChannelConfiguration %+v, want value %s", r.Id, acc, want.channels)
		}
	}
}

type timelineEntry struct {
	number, t, d uint64
}

// expandTimeline follows ISO/IEC 23009-1 §5.3.9.6: S@t restarts the clock, otherwise each
// segment starts where the previous ended; S@r repeats S@d r more times.
func expandTimeline(t *testing.T, st *mpd.SegmentTemplateType) []timelineEntry {
	t.Helper()
	if st == nil || st.SegmentTimeline == nil || st.StartNumber == nil {
		t.Fatalf("SegmentTemplate without timeline or startNumber: %+v", st)
	}
	var out []timelineEntry
	var now uint64
	n := uint64(*st.StartNumber)
	for _, s := range st.SegmentTimeline.S {
		if s.T != nil {
			now = *s.T
		}
		if s.R < 0 {
			t.Fatalf("open-ended S@r=%d in a static MPD", s.R)
		}
		for range s.R + 1 {
			out = append(out, timelineEntry{n, now, s.D})
			now += s.D
			n++
		}
	}
	return out
}

var numberTag = regexp.MustCompile(`\$Number(?:%0(\d+)d)?\$`)

// expandNumber is the test's own $Number$ expansion, independent of the package's.
func expandNumber(media string, n uint64) string {
	return numberTag.ReplaceAllStringFunc(media, func(tag string) string {
		w, _ := strconv.Atoi(numberTag.FindStringSubmatch(tag)[1])
		return fmt.Sprintf("%0*d", w, n)
	})
}

// hlsFiles returns, per track ID, the absolute init and segment URIs (with byte ranges) that
// the HLS playlists reference, found by walking from the master playlist as a player would.
func hlsFiles(t *testing.T, p *Presentation) map[string][]string {
	t.Helper()
	base, _ := url.Parse("https://cdn.example/title/" + MasterPlaylist)
	master := parseMaster(t, p.HLSMaster())
	playlists := map[string]string{}
	for _, v := range master.Variants {
		if !v.Iframe {
			playlists[resolve(t, base, v.URI)] = ""
		}
		for _, a := range v.Alternatives {
			playlists[resolve(t, base, a.URI)] = ""
		}
	}
	files := map[string][]string{}
	for _, tr := range p.Tracks() {
		u := "https://cdn.example/title/" + tr.ID + "/" + MediaPlaylist
		if _, ok := playlists[u]; !ok {
			t.Fatalf("master playlist does not lead to %s", u)
		}
		pu, _ := url.Parse(u)
		pl, segs := parseMedia(t, p.HLSMedia(tr))
		list := []string{withRange(resolve(t, pu, pl.Map.URI), pl.Map.Limit, pl.Map.Offset)}
		for _, s := range segs {
			list = append(list, withRange(resolve(t, pu, s.URI), s.Limit, s.Offset))
		}
		files[tr.ID] = list
	}
	return files
}

func withRange(u string, length, offset int64) string {
	if length == 0 {
		return u
	}
	return fmt.Sprintf("%s@%d-%d", u, offset, offset+length-1)
}

// ISO/IEC 23009-1 §5.3.9.4.4 (template identifiers), §5.3.9.6 (SegmentTimeline): the timeline
// carries the model's times exactly, and the expanded URIs are the files HLS lists.
func TestDASHTimelineMatchesHLS(t *testing.T) {
	p := fixture(false)
	m := parseMPD(t, p)
	reps := representations(m)
	base, _ := url.Parse(mpdURL)
	hls := hlsFiles(t, p)
	for _, tr := range p.Tracks() {
		r := reps[tr.ID]
		if r == nil {
			t.Fatalf("no Representation %s", tr.ID)
		}
		st := r.SegmentTemplate
		if st.Timescale == nil || *st.Timescale != tr.Timescale || st.PresentationTimeOffset != nil {
			t.Errorf("%s: timescale %v PTO %v, want %d and none", tr.ID, st.Timescale, st.PresentationTimeOffset, tr.Timescale)
		}
		entries := expandTimeline(t, st)
		if len(entries) != len(tr.Segments) {
			t.Fatalf("%s: timeline has %d segments, model %d", tr.ID, len(entries), len(tr.Segments))
		}
		var sum, want uint64
		for i, e := range entries {
			sum += e.d
			want += tr.Segments[i].Duration
			if e.t != tr.Segments[i].Start {
				t.Errorf("%s segment %d: t=%d, model %d", tr.ID, i, e.t, tr.Segments[i].Start)
			}
		}
		if sum != want {
			t.Errorf("%s: timeline sums to %d, model %d", tr.ID, sum, want)
		}

		init, err := r.GetInit()
		if err != nil {
			t.Fatal(err)
		}
		media, err := r.GetMedia()
		if err != nil {
			t.Fatal(err)
		}
		dash := []string{resolve(t, base, init)}
		for _, e := range entries {
			dash = append(dash, resolve(t, base, expandNumber(media, e.number)))
		}
		if strings.Join(dash, "\n") != strings.Join(hls[tr.ID], "\n") {
			t.Errorf("%s: DASH and HLS reference different files:\nDASH %v\nHLS  %v", tr.ID, dash, hls[tr.ID])
		}
	}
}

// ISO/IEC 23009-1 §5.3.9.2 (SegmentBase), §8.3 (on-demand profile): one file per track, its
// init and sidx ranges, and the same bytes HLS addresses with EXT-X-MAP / EXT-X-BYTERANGE.
func TestDASHSingleFile(t *testing.T) {
	p := fixture(true)
	m := parseMPD(t, p)
	if m.Profiles != "urn:mpeg:dash:profile:isoff-on-demand:2011,urn:mpeg:dash:profile:cmaf:2019" {
		t.Errorf("profiles %q", m.Profiles)
	}
	for _, as := range m.Periods[0].AdaptationSets {
		if !as.SubsegmentAlignment || as.SubsegmentStartsWithSAP != 1 {
			t.Errorf("set %s: subsegmentAlignment %v subsegmentStartsWithSAP %d", as.ContentType, as.SubsegmentAlignment, as.SubsegmentStartsWithSAP)
		}
	}
	reps := representations(m)
	base, _ := url.Parse(mpdURL)
	hls := hlsFiles(t, p)
	for _, tr := range p.Tracks() {
		r := reps[tr.ID]
		if r == nil || r.SegmentTemplate != nil || r.SegmentBase == nil || len(r.BaseURLs) != 1 {
			t.Fatalf("%s: want BaseURL + SegmentBase only, got %+v", tr.ID, r)
		}
		sb := r.SegmentBase
		file := resolve(t, base, string(r.BaseURLs[0].Value))
		if file != "https://cdn.example/title/"+tr.ID+"/media.mp4" {
			t.Errorf("%s: BaseURL resolves to %s", tr.ID, file)
		}
		// Fixture layout: ftyp+moov in bytes 0-1186, then a sidx of 32+12×10 bytes.
		if sb.Initialization == nil || sb.Initialization.Range != "0-1186" || sb.Initialization.SourceURL != "" ||
			sb.IndexRange != "1187-1338" || !sb.IndexRangeExact {
			t.Errorf("%s: SegmentBase init %+v index %q exact %v", tr.ID, sb.Initialization, sb.IndexRange, sb.IndexRangeExact)
		}
		if sb.Timescale == nil || *sb.Timescale != tr.Timescale || sb.PresentationTimeOffset != nil {
			t.Errorf("%s: SegmentBase timescale %v PTO %v", tr.ID, sb.Timescale, sb.PresentationTimeOffset)
		}
		// HLS must address the same init bytes, and its media must start right after the sidx.
		h := hls[tr.ID]
		if h[0] != file+"@0-1186" || !strings.HasPrefix(h[1], file+"@1339-") {
			t.Errorf("%s: HLS init %s and first segment %s do not match the MPD's file and ranges", tr.ID, h[0], h[1])
		}
		for _, u := range h[1:] {
			if !strings.HasPrefix(u, file+"@") {
				t.Errorf("%s: HLS segment %s is not in %s", tr.ID, u, file)
			}
		}
	}
}

// ISO/IEC 23009-1 §5.3.9.6: run-length encoding of the timeline.
func TestSegmentTimeline(t *testing.T) {
	seg := func(start, d uint64) Segment { return Segment{Start: start, Duration: d} }
	tests := []struct {
		name string
		segs []Segment
		want string
	}{
		{"one segment", []Segment{seg(0, 10)}, "t=0 d=10"},
		{"equal durations repeat", []Segment{seg(0, 10), seg(10, 10), seg(20, 10)}, "t=0 d=10 r=2"},
		{"non-zero start", []Segment{seg(900, 10), seg(910, 10)}, "t=900 d=10 r=1"},
		{"short last segment", []Segment{seg(0, 10), seg(10, 10), seg(20, 4)}, "t=0 d=10 r=1; d=4"},
		{"alternating", []Segment{seg(0, 10), seg(10, 11), seg(21, 10)}, "t=0 d=10; d=11; d=10"},
		{"runs", []Segment{seg(0, 10), seg(10, 10), seg(20, 20), seg(40, 20), seg(60, 20)}, "t=0 d=10 r=1; d=20 r=2"},
		{"gap restarts with t", []Segment{seg(0, 10), seg(10, 10), seg(30, 10)}, "t=0 d=10 r=1; t=30 d=10"},
		{"overlap restarts with t", []Segment{seg(0, 10), seg(5, 10)}, "t=0 d=10; t=5 d=10"},
	}
	for _, tc := range tests {
		var parts []string
		for _, s := range segmentTimeline(tc.segs).S {
			var f []string
			if s.T != nil {
				f = append(f, fmt.Sprintf("t=%d", *s.T))
			}
			f = append(f, fmt.Sprintf("d=%d", s.D))
			if s.R != 0 {
				f = append(f, fmt.Sprintf("r=%d", s.R))
			}
			parts = append(parts, strings.Join(f, " "))
		}
		if got := strings.Join(parts, "; "); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// ISO/IEC 23009-1 §5.3.9.4.4, Table 16: identifiers, $$ escape, %0<width>d.
func TestExpandTemplate(t *testing.T) {
	tests := []struct {
		tmpl, want string
		err        bool
	}{
		{tmpl: "seg_$Number%05d$.m4s", want: "seg_00042.m4s"},
		{tmpl: "seg_$Number$.m4s", want: "seg_42.m4s"},
		{tmpl: "$Number%01d$", want: "42"}, // width is a minimum, never a truncation
		{tmpl: "t$Time$.m4s", want: "t180180.m4s"},
		{tmpl: "$Time%012d$", want: "000000180180"},
		{tmpl: "$RepresentationID$/$Bandwidth$/x", want: "video_720p/3200000/x"},
		{tmpl: "cost$$$Number$", want: "cost$42"},
		{tmpl: "seg_$Number.m4s", err: true},
		{tmpl: "$Foo$", err: true},
		{tmpl: "$Number%5d$", err: true},
		{tmpl: "$Number%05x$", err: true},
		{tmpl: "$Number%0d$", err: true},
		{tmpl: "$RepresentationID%02d$", err: true},
	}
	for _, tc := range tests {
		got, err := expandTemplate(tc.tmpl, "video_720p", 3_200_000, 42, 180180)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("expandTemplate(%q) = %q, %v; want %q, error %v", tc.tmpl, got, err, tc.want, tc.err)
		}
	}
}

// ISO/IEC 23009-1 §5.3.12.3 (FrameRateType) and §5.3.3.2 (par/sar as ratios).
func TestDASHRatios(t *testing.T) {
	rates := map[Rational]mpd.FrameRateType{
		{30000, 1001}: "30000/1001", {30, 1}: "30", {60, 2}: "30", {50, 4}: "25/2", {0, 1}: "", {25, 0}: "",
	}
	for r, want := range rates {
		if got := dashRate(r); got != want {
			t.Errorf("dashRate(%v) = %q, want %q", r, got, want)
		}
	}
	ratios := []struct {
		a, b int
		want string
	}{{1920, 1080, "16:9"}, {720 * 64, 576 * 45, "16:9"}, {640, 480, "4:3"}, {1, 1, "1:1"}, {0, 9, ""}}
	for _, tc := range ratios {
		if got := ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("ratio(%d, %d) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

// ISO/IEC 23009-1 §5.3.9.2 / §5.3.9.6 (presentationTimeOffset): tracks that start after zero keep
// their relative timing, and the earliest one starts the period.
func TestDASHPresentationTimeOffset(t *testing.T) {
	// Video starts at 2.002 s, audio at 2.000 s: the period starts at 2.000 s.
	for _, single := range []bool{false, true} {
		p := fixtureAt(single, 60060, 96000)
		reps := representations(parseMPD(t, p))
		for _, tr := range p.Tracks() {
			want := uint64(60000)
			if tr.Kind == Audio {
				want = 96000
			}
			r := reps[tr.ID]
			var pto *uint64
			if single {
				pto = r.SegmentBase.PresentationTimeOffset
			} else {
				pto = r.SegmentTemplate.PresentationTimeOffset
				if e := expandTimeline(t, r.SegmentTemplate); e[0].t != tr.Segments[0].Start {
					t.Errorf("%s: first S@t %d, want %d", tr.ID, e[0].t, tr.Segments[0].Start)
				}
			}
			if pto == nil || *pto != want {
				t.Errorf("%s (single file %v): presentationTimeOffset %v, want %d", tr.ID, single, pto, want)
			}
		}
	}
	// Video starting 0.5005 s after audio ends last, at 0.5005 + 57.390667 s.
	m := parseMPD(t, fixtureAt(false, 15015, 0))
	if got := seconds(m.MediaPresentationDuration); math.Abs(got-57.891) > 1e-3 {
		t.Errorf("mediaPresentationDuration %v s, want 57.891 (the late video's end)", got)
	}
}

// ISO/IEC 23009-1 §5.3.3.2: AdaptationSet@par holds for every Representation or is absent;
// DASH-IF IOP: Role main marks the default audio, which the Default flag chooses.
func TestDASHSetAttributes(t *testing.T) {
	p := fixture(false)
	p.Video[2].Width, p.Video[2].Height = 640, 480
	p.Audio[0].Default, p.Audio[1].Default = false, true
	sets := parseMPD(t, p).Periods[0].AdaptationSets
	if sets[0].Par != "" || sets[0].MaxWidth != 1920 {
		t.Errorf("mixed 16:9 and 4:3 ladder: par %q maxWidth %d, want no par", sets[0].Par, sets[0].MaxWidth)
	}
	if len(sets[1].Roles) != 0 || len(sets[2].Roles) != 1 || sets[2].Roles[0].Value != "main" {
		t.Errorf("Role main should move to the French set: %+v / %+v", sets[1].Roles, sets[2].Roles)
	}
	p.Audio[1].Default = false // no flag: the first audio track is the default
	sets = parseMPD(t, p).Periods[0].AdaptationSets
	if len(sets[1].Roles) != 1 || len(sets[2].Roles) != 0 {
		t.Errorf("without a Default flag Role main belongs to the first set: %+v / %+v", sets[1].Roles, sets[2].Roles)
	}
}

// ISO/IEC 23009-1 §5.3.3.1: only switchable Representations share an AdaptationSet.
func TestDASHAudioGrouping(t *testing.T) {
	p := fixture(false)
	lo := *p.Audio[0]
	lo.ID, lo.PeakBandwidth, lo.Default = "audio_eng_64k", 66_000, false
	lo.Segments = append([]Segment(nil), lo.Segments...)
	noLang1 := *p.Audio[1]
	noLang1.ID, noLang1.Language, noLang1.Name = "audio_x1", "", "Track"
	noLang2 := noLang1
	noLang2.ID = "audio_x2"
	p.Audio = append(p.Audio, &lo, &noLang1, &noLang2)

	var got []string
	for _, as := range parseMPD(t, p).Periods[0].AdaptationSets[1:] {
		var ids []string
		for _, r := range as.Representations {
			ids = append(ids, r.Id)
		}
		got = append(got, as.Lang+":"+strings.Join(ids, ","))
	}
	want := "en:audio_eng,audio_eng_64k fr:audio_fra :audio_x1 :audio_x2"
	if strings.Join(got, " ") != want {
		t.Errorf("audio sets %v, want %s", got, want)
	}
}

func TestDASHRejects(t *testing.T) {
	tests := []struct {
		name   string
		single bool
		mutate func(p *Presentation)
		want   string
	}{
		{"invalid model", false, func(p *Presentation) { p.Video[0].Segments[3].Start++ }, "gap or overlap"},
		{"template disagrees with files", false, func(p *Presentation) { p.Audio[0].SegmentTemplate = "seg_$Number%04d$.m4s" }, "template"},
		{"start number disagrees with files", false, func(p *Presentation) { p.Video[2].StartNumber = 0 }, "template"},
		{"no template", false, func(p *Presentation) { p.Video[1].SegmentTemplate = "" }, "no segment template"},
		{"negative start number", false, func(p *Presentation) { p.Video[1].StartNumber = -1 }, "negative"},
		{"single file without sidx range", true, func(p *Presentation) { p.Video[0].IndexRange = ByteRange{} }, "sidx"},
		{"single file spread over files", true, func(p *Presentation) { p.Audio[1].Segments[4].URI = "other.mp4" }, "other.mp4"},
	}
	for _, tc := range tests {
		p := fixture(tc.single)
		tc.mutate(p)
		if _, err := p.DASH(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

// Validate guards both writers: a timeline with a hole would be written as a DASH S@t jump and
// as HLS segments that silently shift, so it must fail before either is written.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Presentation)
		want   string // empty: valid
	}{
		{"fixture is valid", func(p *Presentation) {}, ""},
		{"gap", func(p *Presentation) { p.Video[1].Segments[5].Start += 1001 }, "gap or overlap"},
		{"overlap", func(p *Presentation) { p.Audio[0].Segments[2].Start -= 1024 }, "gap or overlap"},
		{"gap after a longer segment", func(p *Presentation) { p.Audio[1].Segments[0].Duration -= 1536 }, "gap or overlap"},
		{"zero duration", func(p *Presentation) { p.Audio[1].Segments[9].Duration = 0 }, "zero duration"},
		{"no video", func(p *Presentation) { p.Video = nil }, "no video"},
		{"duplicate id", func(p *Presentation) { p.Audio[1].ID = p.Audio[0].ID }, "used twice"},
		{"id with a slash", func(p *Presentation) { p.Video[0].ID = "a/b" }, "not a plain folder name"},
		{"dot-dot id", func(p *Presentation) { p.Video[0].ID = ".." }, "not a plain folder name"},
		{"zero timescale", func(p *Presentation) { p.Video[2].Timescale = 0 }, "timescale"},
		{"no segments", func(p *Presentation) { p.Audio[0].Segments = nil }, "no segments"},
		{"no codecs", func(p *Presentation) { p.Video[0].Codecs = "" }, "codec"},
	}
	for _, tc := range tests {
		p := fixture(false)
		tc.mutate(p)
		err := p.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
