package manifest

import "fmt"

// textSpec is one subtitle input as the packager will see it: two tracks, one per format.
type textSpec struct {
	id, lang, name         string
	def, auto, forced, sdh bool
}

var fixtureText = []textSpec{
	{id: "text_en", lang: "en", name: "English", auto: true},
	{id: "text_en_sdh", lang: "en", name: "English SDH", auto: true, sdh: true},
	{id: "text_fr", lang: "fr", name: "Français", auto: true},
	{id: "text_fr_forced", lang: "fr", name: "Français (forcé)", auto: true, forced: true},
}

// fixtureCaptions are CEA-608 captions on every rung: English on CC1, Spanish on CC3.
var fixtureCaptions = []Caption{{Channel: "CC1", Language: "en", Name: "English"}, {Channel: "CC3", Language: "es", Name: "Español"}}

// withText adds specs to p as WebVTT and WVTT tracks cut exactly where p's first video track is
// (segments aligned with the media's, in the video timescale), and captions to every rung.
func withText(p *Presentation, specs []textSpec, captions []Caption) *Presentation {
	v := p.Video[0]
	for _, r := range p.Video {
		r.Captions = captions
	}
	for _, s := range specs {
		vtt := &Track{ID: s.id, Kind: Text, Format: WebVTT, Timescale: v.Timescale, Language: s.lang, Name: s.name,
			Default: s.def, Autoselect: s.auto, Forced: s.forced, SDH: s.sdh, PeakBandwidth: 2000, AverageBandwidth: 1000}
		wvtt := *vtt
		wvtt.ID, wvtt.Format = s.id+"_wvtt", WVTT
		for i, seg := range v.Segments {
			// A WebVTT segment is a whole file even in single-file mode.
			vtt.Segments = append(vtt.Segments, Segment{Start: seg.Start, Duration: seg.Duration, Size: 120,
				URI: fmt.Sprintf("seg_%05d.vtt", i+1), Number: seg.Number, ProgramDateTime: seg.ProgramDateTime,
				Discontinuity: seg.Discontinuity})
		}
		if p.Live != nil {
			vtt.NextNumber = v.liveNext()
			wvtt.InitURI, wvtt.SegmentTemplate = InitSegmentName, "seg_$Number$.m4s"
			for _, seg := range v.Segments {
				seg.URI, seg.Parts, seg.Size = fmt.Sprintf("seg_%d.m4s", seg.Number), nil, 150
				wvtt.Segments = append(wvtt.Segments, seg)
			}
			wvtt.NextNumber = v.liveNext()
		} else {
			cuts := []uint64{}
			for _, seg := range v.Segments {
				cuts = append(cuts, seg.Start-v.Segments[0].Start)
			}
			last := v.Segments[len(v.Segments)-1]
			cuts = append(cuts, last.Start+last.Duration-v.Segments[0].Start)
			fillTrack(&wvtt, p.SingleFile, cuts, v.Segments[0].Start, 2000)
			wvtt.IFrames = nil
		}
		p.Text = append(p.Text, vtt, &wvtt)
	}
	return p
}

// inMilliseconds moves p's text tracks to a 1000 Hz timescale, each boundary rounded to the
// nearest millisecond from the video's, as packager/subtitles writes them (WvttTimescale, and
// segment starts from MsFromTimescale): durations then differ from the video's by up to 1 ms
// while the boundaries never drift.
func inMilliseconds(p *Presentation) {
	ms := func(ticks uint64, ts uint32) uint64 { return (ticks*1000 + uint64(ts)/2) / uint64(ts) }
	for _, tr := range p.Text {
		for i := range tr.Segments {
			s := &tr.Segments[i]
			start, end := ms(s.Start, tr.Timescale), ms(s.Start+s.Duration, tr.Timescale)
			s.Start, s.Duration = start, end-start
		}
		tr.Timescale = 1000
	}
}
