package manifest

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

func parseLiveMPD(t *testing.T, p *Presentation) (*mpd.MPD, string) {
	t.Helper()
	b, err := p.DASH()
	if err != nil {
		t.Fatalf("DASH: %v", err)
	}
	m, err := mpd.MPDFromBytes(b)
	if err != nil {
		t.Fatalf("MPD does not parse: %v\n%s", err, b)
	}
	return m, string(b)
}

// checkTimeline expands a Representation's SegmentTimeline (ISO/IEC 23009-1 §5.3.9.6) and
// $Number$ template (§5.3.9.4.4) and compares every (number, t, d, URI) with the model.
func checkTimeline(t *testing.T, r *mpd.RepresentationType, tr *Track) {
	t.Helper()
	entries := expandTimeline(t, r.SegmentTemplate)
	if len(entries) != len(tr.Segments) {
		t.Fatalf("%s: timeline has %d segments, model %d", tr.ID, len(entries), len(tr.Segments))
	}
	media, err := r.GetMedia()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		s := tr.Segments[i]
		if e.number != s.Number || e.t != s.Start || e.d != s.Duration {
			t.Errorf("%s entry %d: number %d t %d d %d, model %d %d %d", tr.ID, i, e.number, e.t, e.d, s.Number, s.Start, s.Duration)
		}
		if u := expandNumber(media, e.number); u != tr.ID+"/"+s.URI {
			t.Errorf("%s entry %d: $Number$ gives %s, HLS lists %s/%s", tr.ID, i, u, tr.ID, s.URI)
		}
	}
}

// ISO/IEC 23009-1 §5.3.1.2 (MPD@type dynamic, availabilityStartTime, publishTime,
// minimumUpdatePeriod, timeShiftBufferDepth, suggestedPresentationDelay), §5.8.4.11 and
// DASH-IF IOP §4.7 (UTCTiming), Annex K (ServiceDescription), §5.3.9.5.3 and DASH-IF
// low-latency DASH (availabilityTimeOffset, availabilityTimeComplete).
func TestDASHLiveDynamic(t *testing.T) {
	p := liveFixture(liveSpec{first: 1000, complete: 15, inProgress: 2, parts: true})
	p.Live.SuggestedPresentationDelay = 3 * time.Second // below the durations' rule: raised
	m, raw := parseLiveMPD(t, p)
	if m.GetType() != mpd.DYNAMIC_TYPE || m.MediaPresentationDuration != nil {
		t.Errorf("type %q, mediaPresentationDuration %v", m.GetType(), m.MediaPresentationDuration)
	}
	if m.AvailabilityStartTime != "2026-11-21T23:00:00.000Z" {
		t.Errorf("availabilityStartTime %s", m.AvailabilityStartTime)
	}
	// Published when the second part of segment 1015 ended: 1015 × 2.002 + 2 × 0.5005 s.
	if m.PublishTime != "2026-11-21T23:33:53.031Z" {
		t.Errorf("publishTime %s", m.PublishTime)
	}
	// The listed window: 15 audio segments, audio being the longest track.
	window := p.Audio[0].DurationSeconds()
	for name, tc := range map[string]struct {
		got  *mpd.Duration
		want float64
	}{
		"minimumUpdatePeriod":  {m.MinimumUpdatePeriod, 2},
		"timeShiftBufferDepth": {m.TimeShiftBufferDepth, window},
		// One 2.00533 s audio segment + three 0.5005 s parts (latencyTargets).
		"suggestedPresentationDelay": {m.SuggestedPresentationDelay, 3.50683},
		"minBufferTime":              {m.MinBufferTime, 2.00533},
	} {
		if got := seconds(tc.got); math.Abs(got-tc.want) > 1e-3 {
			t.Errorf("%s %v s, want %v", name, got, tc.want)
		}
	}
	if len(m.UTCTimings) != 1 || m.UTCTimings[0].SchemeIdUri != "urn:mpeg:dash:utc:http-iso:2014" ||
		m.UTCTimings[0].Value != "https://origin.example/time" {
		t.Errorf("UTCTiming %+v", m.UTCTimings)
	}
	if sd := m.ServiceDescription; len(sd) != 1 || len(sd[0].Latencies) != 1 || sd[0].Latencies[0].Target == nil ||
		*sd[0].Latencies[0].Target != 3507 {
		t.Errorf("ServiceDescription %+v", sd)
	}
	// One Period from PT0S, even with a discontinuity (see dynamicMPD).
	if len(m.Periods) != 1 || seconds(m.Periods[0].Start) != 0 || m.Periods[0].Id != "0" {
		t.Fatalf("periods %+v", m.Periods)
	}
	reps := representations(m)
	for _, tr := range p.Tracks() {
		r := reps[tr.ID]
		if r == nil {
			t.Fatalf("no Representation %s", tr.ID)
		}
		st := r.SegmentTemplate
		if st.Timescale == nil || *st.Timescale != tr.Timescale || st.PresentationTimeOffset != nil ||
			st.StartNumber == nil || *st.StartNumber != 1000 {
			t.Errorf("%s: timescale %v PTO %v startNumber %v", tr.ID, st.Timescale, st.PresentationTimeOffset, st.StartNumber)
		}
		// A 2 s segment can be asked for once its first 0.5005 s part exists.
		if st.AvailabilityTimeOffset != 1.4995 || st.AvailabilityTimeComplete == nil || *st.AvailabilityTimeComplete {
			t.Errorf("%s: availabilityTimeOffset %v complete %v", tr.ID, st.AvailabilityTimeOffset, st.AvailabilityTimeComplete)
		}
		checkTimeline(t, r, tr)
		// The DASH clock and the HLS PDT agree: media time t is AST + t/timescale (no PTO).
		for _, s := range tr.Segments {
			wall := liveEpoch.Add(ticksToDuration(s.Start, tr.Timescale))
			if d := wall.Sub(s.ProgramDateTime); d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("%s segment %d: DASH wall clock %v, PDT %v", tr.ID, s.Number, wall, s.ProgramDateTime)
			}
		}
	}
	if !strings.Contains(raw, `availabilityTimeComplete="false"`) {
		t.Errorf("availabilityTimeComplete not written:\n%s", raw)
	}
}

// The attributes' defaults and the variants of a dynamic MPD.
func TestDASHLiveSettings(t *testing.T) {
	tests := []struct {
		name  string
		spec  liveSpec
		set   func(l *Live)
		check func(t *testing.T, m *mpd.MPD)
	}{
		{"configured update period and DVR depth", liveSpec{first: 0, complete: 3}, func(l *Live) {
			l.MinimumUpdatePeriod, l.TimeShiftBufferDepth = time.Second, 2*time.Hour
		}, func(t *testing.T, m *mpd.MPD) {
			if seconds(m.MinimumUpdatePeriod) != 1 || seconds(m.TimeShiftBufferDepth) != 7200 {
				t.Errorf("MUP %v TSBD %v", seconds(m.MinimumUpdatePeriod), seconds(m.TimeShiftBufferDepth))
			}
		}},
		{"no target: update every longest segment", liveSpec{first: 0, complete: 3}, func(l *Live) { l.TargetDuration = 0 },
			func(t *testing.T, m *mpd.MPD) {
				if got := seconds(m.MinimumUpdatePeriod); math.Abs(got-2.00533) > 1e-3 {
					t.Errorf("MUP %v", got)
				}
			}},
		{"no UTC endpoint: direct timing with the publish time", liveSpec{first: 0, complete: 3}, func(l *Live) { l.UTCTimingURL = "" },
			func(t *testing.T, m *mpd.MPD) {
				if len(m.UTCTimings) != 1 || m.UTCTimings[0].SchemeIdUri != "urn:mpeg:dash:utc:direct:2014" ||
					m.UTCTimings[0].Value != string(m.PublishTime) {
					t.Errorf("UTCTiming %+v", m.UTCTimings[0])
				}
			}},
		{"no parts: no low-latency attributes; a configured delay above the rule", liveSpec{first: 0, complete: 3}, func(l *Live) { l.SuggestedPresentationDelay = 7 * time.Second },
			func(t *testing.T, m *mpd.MPD) {
				for _, r := range representations(m) {
					if st := r.SegmentTemplate; st.AvailabilityTimeOffset != 0 || st.AvailabilityTimeComplete != nil {
						t.Errorf("%s: ATO %v ATC %v", r.Id, st.AvailabilityTimeOffset, st.AvailabilityTimeComplete)
					}
				}
				if m.ServiceDescription != nil || seconds(m.SuggestedPresentationDelay) != 7 {
					t.Errorf("ServiceDescription %v SPD %v", m.ServiceDescription, seconds(m.SuggestedPresentationDelay))
				}
			}},
		{"parts without a configured delay: targets from the durations", liveSpec{first: 0, complete: 3, parts: true}, func(l *Live) {},
			func(t *testing.T, m *mpd.MPD) {
				checkLatency(t, m, 2.00533, 0.5005)
			}},
		{"no parts, no configured delay: three segments", liveSpec{first: 0, complete: 3}, func(l *Live) {},
			func(t *testing.T, m *mpd.MPD) {
				if m.ServiceDescription != nil || math.Abs(seconds(m.SuggestedPresentationDelay)-3*2.00533) > 1e-3 {
					t.Errorf("ServiceDescription %v SPD %v, want none and 3 segments", m.ServiceDescription, seconds(m.SuggestedPresentationDelay))
				}
			}},
		{"discontinuities: still one period, one contiguous timeline", liveSpec{first: 40, complete: 10, parts: true,
			disc: map[uint64]bool{42: true, 47: true}, pdtJump: 10 * time.Second}, func(l *Live) {},
			func(t *testing.T, m *mpd.MPD) {
				if len(m.Periods) != 1 {
					t.Errorf("%d periods", len(m.Periods))
				}
				st := representations(m)["video_720p"].SegmentTemplate
				if len(st.SegmentTimeline.S) != 1 || st.SegmentTimeline.S[0].R != 9 {
					t.Errorf("video timeline %+v", st.SegmentTimeline.S)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := liveFixture(tc.spec)
			tc.set(p.Live)
			m, _ := parseLiveMPD(t, p)
			if m.GetType() != mpd.DYNAMIC_TYPE {
				t.Fatalf("type %s", m.GetType())
			}
			tc.check(t, m)
			for _, tr := range p.Tracks() {
				checkTimeline(t, representations(m)[tr.ID], tr)
			}
		})
	}
}

// An ended event is a static MPD of the window that remains (ISO/IEC 23009-1 §5.3.1.2): its
// duration, the period starting at the first segment (presentationTimeOffset), and numbers
// that keep matching the HLS media sequence.
func TestDASHLiveEnded(t *testing.T) {
	p := liveFixture(liveSpec{first: 1000, complete: 15, inProgress: 2, parts: true})
	p.Live.Ended = true
	m, _ := parseLiveMPD(t, p)
	if m.GetType() != mpd.STATIC_TYPE || m.MinimumUpdatePeriod != nil || m.AvailabilityStartTime != "" || m.UTCTimings != nil {
		t.Errorf("type %s MUP %v AST %q UTCTiming %v", m.GetType(), m.MinimumUpdatePeriod, m.AvailabilityStartTime, m.UTCTimings)
	}
	// From the video's first sample (1000 × 2.002 s) to the end of the audio's last segment.
	first := 1000 * 2.002
	end := float64(p.Audio[0].Segments[14].Start+p.Audio[0].Segments[14].Duration) / 48000
	if got := seconds(m.MediaPresentationDuration); math.Abs(got-(end-first)) > 1e-3 {
		t.Errorf("mediaPresentationDuration %v, want %v", got, end-first)
	}
	for _, tr := range p.Tracks() {
		r := representations(m)[tr.ID]
		st := r.SegmentTemplate
		wantPTO := uint64(first * float64(tr.Timescale))
		if st.PresentationTimeOffset == nil || *st.PresentationTimeOffset != wantPTO || *st.StartNumber != 1000 ||
			st.AvailabilityTimeOffset != 0 || st.AvailabilityTimeComplete != nil {
			t.Errorf("%s: PTO %v startNumber %d ATO %v ATC %v", tr.ID, st.PresentationTimeOffset, *st.StartNumber,
				st.AvailabilityTimeOffset, st.AvailabilityTimeComplete)
		}
		checkTimeline(t, r, tr)
	}
}

func TestDASHLiveRejects(t *testing.T) {
	tests := []struct {
		name   string
		spec   liveSpec
		mutate func(p *Presentation)
		want   string
		is     error
	}{
		{"nothing complete yet", liveSpec{first: 5, inProgress: 2, parts: true}, func(p *Presentation) {}, "video_720p", ErrNoSegmentYet},
		{"one track behind", liveSpec{first: 5, complete: 2}, func(p *Presentation) {
			p.Audio[0].Segments, p.Audio[0].NextNumber = nil, 5
		}, "audio_eng", ErrNoSegmentYet},
		{"no availability start", liveSpec{first: 5, complete: 2}, func(p *Presentation) { p.Live.AvailabilityStart = time.Time{} }, "AvailabilityStart", nil},
		{"no publish time", liveSpec{first: 5, complete: 2}, func(p *Presentation) { p.Live.PublishTime = time.Time{} }, "PublishTime", nil},
		{"number beyond startNumber's range", liveSpec{first: math.MaxUint32 + 1, complete: 2}, func(p *Presentation) {}, "startNumber", nil},
		{"template disagrees with numbers", liveSpec{first: 5, complete: 2}, func(p *Presentation) { p.Video[1].SegmentTemplate = "seg_$Number%03d$.m4s" }, "template", nil},
		{"invalid model", liveSpec{first: 5, complete: 2}, func(p *Presentation) { p.Video[1].Segments[1].Number = 9 }, "consecutive", nil},
	}
	for _, tc := range tests {
		p := liveFixture(tc.spec)
		tc.mutate(p)
		_, err := p.DASH()
		if err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v, want one mentioning %q (is %v)", tc.name, err, tc.want, tc.is)
		}
	}
	// The largest start number that fits is fine.
	p := liveFixture(liveSpec{first: math.MaxUint32, complete: 2})
	if _, err := p.DASH(); err != nil {
		t.Errorf("start number 2^32-1: %v", err)
	}
}

// checkLatency asserts the low-latency targets a client reads are consistent with the
// durations: never below one segment plus one part (the timeline lists complete segments
// only), min ≤ target ≤ max, suggestedPresentationDelay = target, and catch-up rates around 1.
func checkLatency(t *testing.T, m *mpd.MPD, segment, part float64) {
	t.Helper()
	sd := m.ServiceDescription
	if len(sd) != 1 || len(sd[0].Latencies) != 1 || len(sd[0].PlaybackRates) != 1 {
		t.Fatalf("ServiceDescription %+v", sd)
	}
	l, r := sd[0].Latencies[0], sd[0].PlaybackRates[0]
	if l.Min == nil || l.Target == nil || l.Max == nil {
		t.Fatalf("Latency %+v: min, target and max all needed", l)
	}
	lmin, target, lmax := float64(*l.Min)/1000, float64(*l.Target)/1000, float64(*l.Max)/1000
	if lmin < segment+part-1e-3 || target < lmin || lmax < target {
		t.Errorf("Latency min %v target %v max %v: want segment+part (%v) ≤ min ≤ target ≤ max", lmin, target, lmax, segment+part)
	}
	if spd := seconds(m.SuggestedPresentationDelay); math.Abs(spd-target) > 1e-3 {
		t.Errorf("suggestedPresentationDelay %v, Latency target %v", spd, target)
	}
	if r.Min >= 1 || r.Max <= 1 || r.Min < 0.9 || r.Max > 1.1 {
		t.Errorf("PlaybackRate %v..%v", r.Min, r.Max)
	}
}

// The latency rule in numbers (see latencyTargets and README "Live").
func TestLatencyTargets(t *testing.T) {
	s := time.Second
	ms := time.Millisecond
	for _, tc := range []struct {
		segment, part         time.Duration
		spd, lmin, target, mx time.Duration
	}{
		{2 * s, 0, 6 * s, 0, 0, 0},                                    // no parts: three segments
		{6 * s, 0, 18 * s, 0, 0, 0},                                   //
		{2 * s, 500 * ms, 3500 * ms, 2500 * ms, 3500 * ms, 7500 * ms}, // the demo's channel
		{4 * s, 1 * s, 7 * s, 5 * s, 7 * s, 15 * s},                   //
		{1 * s, 200 * ms, 1600 * ms, 1200 * ms, 1600 * ms, 3600 * ms},
		{2 * s, 3 * s, 8 * s, 4 * s, 8 * s, 12 * s}, // a part longer than a segment counts as one
	} {
		got := latencyTargets(tc.segment, tc.part)
		if got.SuggestedPresentationDelay != tc.spd || got.Min != tc.lmin || got.Target != tc.target || got.Max != tc.mx {
			t.Errorf("segment %v part %v: SPD %v min %v target %v max %v; want %v %v %v %v", tc.segment, tc.part,
				got.SuggestedPresentationDelay, got.Min, got.Target, got.Max, tc.spd, tc.lmin, tc.target, tc.mx)
		}
		if tc.part > 0 && (got.Target < tc.segment+min(tc.part, tc.segment) || got.PlaybackRateMin >= 1 || got.PlaybackRateMax <= 1) {
			t.Errorf("segment %v part %v: target %v below a segment and a part, or rates %v..%v", tc.segment, tc.part, got.Target, got.PlaybackRateMin, got.PlaybackRateMax)
		}
	}
}
