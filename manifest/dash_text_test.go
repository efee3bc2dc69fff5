package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// textSets returns the text AdaptationSets of a Period by their Representation's id.
func textSets(period *mpd.Period) map[string]*mpd.AdaptationSetType {
	out := map[string]*mpd.AdaptationSetType{}
	for _, as := range period.AdaptationSets {
		if as.ContentType == "text" && len(as.Representations) == 1 {
			out[as.Representations[0].Id] = as
		}
	}
	return out
}

func roleValues(ds []*mpd.DescriptorType) []string {
	var out []string
	for _, d := range ds {
		out = append(out, string(d.SchemeIdUri)+"="+d.Value)
	}
	return out
}

// ISO/IEC 23009-1 §5.8.4.2 (Role), §5.8.4.3 (Accessibility), §5.3.7.2 (Label); DASH-IF IOP
// §6.4.5 (CMAF WebVTT: application/mp4, codecs wvtt); SCTE 214-1 (the caption schemes): the
// exact elements, then what dash-mpd reads back.
func TestDASHText(t *testing.T) {
	p := withText(fixture(false), fixtureText, fixtureCaptions)
	p.Text[2].Default, p.Text[3].Default = true, true // text_en_sdh, both formats
	b, err := p.DASH()
	if err != nil {
		t.Fatal(err)
	}
	raw := string(b)
	for _, want := range []string{
		`<AdaptationSet id="0" contentType="video" par="16:9" maxWidth="1920" maxHeight="1080" maxFrameRate="30000/1001" segmentAlignment="true" mimeType="video/mp4" startWithSAP="1">
      <Accessibility schemeIdUri="urn:scte:dash:cc:cea-608:2015" value="CC1=en;CC3=es"></Accessibility>
      <Representation id="video_1080p"`,
		`<AdaptationSet id="3" lang="en" contentType="text" segmentAlignment="true" mimeType="application/mp4" startWithSAP="1">
      <Label>English</Label>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"></Role>
      <Representation id="text_en_wvtt" bandwidth="2000" codecs="wvtt">
        <SegmentTemplate media="$RepresentationID$/seg_$Number%05d$.m4s" initialization="$RepresentationID$/init.mp4" startNumber="1" timescale="30000">`,
		`<Label>English SDH</Label>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"></Role>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="caption"></Role>
      <Representation id="text_en_sdh_wvtt"`,
		`<AdaptationSet id="6" lang="fr" contentType="text" segmentAlignment="true" mimeType="application/mp4" startWithSAP="1">
      <Label>Français (forcé)</Label>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="forced-subtitle"></Role>`,
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("MPD lacks\n%s\nMPD:\n%s", want, raw)
		}
	}
	if strings.Contains(raw, ".vtt") || strings.Contains(raw, `"text_en"`) {
		t.Error("the MPD lists a WebVTT (HLS) track")
	}

	m := parseMPD(t, p)
	period := m.Periods[0]
	sets := textSets(period)
	if len(sets) != 4 || len(period.AdaptationSets) != 7 {
		t.Fatalf("%d text sets of %d, want 4 of 7", len(sets), len(period.AdaptationSets))
	}
	reps := representations(m)
	wantRoles := map[string]string{
		"text_en_wvtt":        "urn:mpeg:dash:role:2011=subtitle",
		"text_en_sdh_wvtt":    "urn:mpeg:dash:role:2011=main urn:mpeg:dash:role:2011=caption",
		"text_fr_wvtt":        "urn:mpeg:dash:role:2011=subtitle",
		"text_fr_forced_wvtt": "urn:mpeg:dash:role:2011=forced-subtitle",
	}
	for _, tr := range p.TextTracks(WVTT) {
		as := sets[tr.ID]
		if as == nil {
			t.Fatalf("no text set for %s", tr.ID)
		}
		if as.MimeType != "application/mp4" || as.Lang != tr.Language || len(as.Labels) != 1 || as.Labels[0].Value != tr.Name ||
			as.Representations[0].Codecs != "wvtt" || len(as.ContentProtections) != 0 {
			t.Errorf("%s: mime %q lang %q labels %v codecs %q CP %d", tr.ID, as.MimeType, as.Lang, as.Labels,
				as.Representations[0].Codecs, len(as.ContentProtections))
		}
		if got := strings.Join(roleValues(as.Roles), " "); got != wantRoles[tr.ID] {
			t.Errorf("%s: roles %s, want %s", tr.ID, got, wantRoles[tr.ID])
		}
		// The text timeline is the video's, number for number, and names the text files.
		got, want := expandTimeline(t, reps[tr.ID].SegmentTemplate), expandTimeline(t, reps["video_1080p"].SegmentTemplate)
		if len(got) != len(want) || len(got) != len(tr.Segments) {
			t.Fatalf("%s: %d timeline entries, video %d", tr.ID, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s entry %d: %+v, video %+v", tr.ID, i, got[i], want[i])
			}
		}
	}
	video := period.AdaptationSets[0]
	if got := roleValues(video.Accessibilities); len(got) != 1 || got[0] != cea608Scheme+"=CC1=en;CC3=es" {
		t.Errorf("video Accessibility %v", got)
	}
	for _, as := range period.AdaptationSets[1:3] {
		if len(as.Accessibilities) != 0 {
			t.Errorf("audio set %d has Accessibility %v", *as.Id, roleValues(as.Accessibilities))
		}
	}
}

// Captions: 608 channels and 708 services each get their scheme, an unknown language is "und",
// and rungs that carry different captions are in different video sets.
func TestDASHCaptions(t *testing.T) {
	p := fixture(false)
	for _, v := range p.Video[:2] {
		v.Captions = []Caption{{Channel: "CC1", Language: "en"}, {Channel: "SERVICE1", Language: "en"}, {Channel: "SERVICE2"}}
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	m := parseMPD(t, p)
	sets := m.Periods[0].AdaptationSets
	if len(sets) != 4 || len(sets[0].Representations) != 2 || len(sets[1].Representations) != 1 || sets[1].Representations[0].Id != "video_360p" {
		t.Fatalf("video sets: %d sets, first with %d rungs", len(sets), len(sets[0].Representations))
	}
	want := []string{cea608Scheme + "=CC1=en", cea708Scheme + "=1=lang:en;2=lang:und"}
	if got := roleValues(sets[0].Accessibilities); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Accessibility %v, want %v", got, want)
	}
	if len(sets[1].Accessibilities) != 0 {
		t.Errorf("the rung without captions is signalled with %v", roleValues(sets[1].Accessibilities))
	}
}

// Single-file mode: a WVTT track is one file with its sidx like the media; HLS keeps whole
// WebVTT files.
func TestDASHTextSingleFile(t *testing.T) {
	p := withText(fixture(true), fixtureText[:1], nil)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	m := parseMPD(t, p)
	r := representations(m)["text_en_wvtt"]
	if r == nil || r.SegmentBase == nil || len(r.BaseURLs) != 1 || r.BaseURLs[0].Value != "text_en_wvtt/media.mp4" {
		t.Fatalf("text Representation %+v", r)
	}
	if got := string(p.HLSMedia(p.Text[0])); strings.Contains(got, "BYTERANGE") || !strings.Contains(got, "\nseg_00001.vtt\n") {
		t.Errorf("WebVTT playlist in single-file mode:\n%s", got)
	}
}

// Live: the dynamic MPD lists text like the media, without the low-latency offset (text is
// listed once complete); with key rotation every Period has the text set, clear, with its own
// init segment; a text track without a complete segment holds the MPD back as a media track does.
func TestDASHLiveText(t *testing.T) {
	p := withText(liveFixture(liveSpec{first: 999, complete: 6, inProgress: 2, parts: true}), fixtureText[:1], nil)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	m, _ := parseLiveMPD(t, p)
	tr := p.TextTracks(WVTT)[0]
	r := representations(m)[tr.ID]
	if r == nil {
		t.Fatal("no text Representation")
	}
	checkTimeline(t, r, tr)
	if st := r.SegmentTemplate; st.AvailabilityTimeOffset != 0 || st.AvailabilityTimeComplete != nil {
		t.Errorf("text availabilityTimeOffset %v complete %v", st.AvailabilityTimeOffset, st.AvailabilityTimeComplete)
	}
	if v := representations(m)["video_720p"].SegmentTemplate; v.AvailabilityTimeOffset == 0 {
		t.Error("the video lost its availabilityTimeOffset")
	}

	withKeys(p, 3, "cbcs", false)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	m, _ = parseLiveMPD(t, p)
	if len(m.Periods) != 2 {
		t.Fatalf("%d Periods, want 2", len(m.Periods))
	}
	for _, period := range m.Periods {
		as := textSets(period)[tr.ID]
		if as == nil {
			t.Fatalf("Period %s has no text set", period.Id)
		}
		r := as.Representations[0]
		if len(as.ContentProtections) != 0 || len(r.ContentProtections) != 0 || r.SegmentTemplate.Initialization != "$RepresentationID$/init.mp4" {
			t.Errorf("Period %s: text CP %d/%d, init %q", period.Id, len(as.ContentProtections), len(r.ContentProtections), r.SegmentTemplate.Initialization)
		}
		if n := len(expandTimeline(t, r.SegmentTemplate)); n != 3 {
			t.Errorf("Period %s: %d text segments, want 3", period.Id, n)
		}
	}

	p = withText(liveFixture(liveSpec{first: 1000, complete: 3}), fixtureText[:1], nil)
	p.TextTracks(WVTT)[0].Segments = nil
	p.TextTracks(WVTT)[0].NextNumber = 1003
	if _, err := p.DASH(); !errors.Is(err, ErrNoSegmentYet) {
		t.Errorf("text without a segment: %v, want ErrNoSegmentYet", err)
	}
}
