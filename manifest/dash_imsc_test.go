package manifest

import (
	"strings"
	"testing"
)

// IMSC1 text tracks (a TTML input's DASH rendering): an AdaptationSet like wvtt's, with
// codecs stpp.ttml.im1t (ISO/IEC 23000-19 §11.3, DASH-IF IOP v4.3 §6.4.4), its Role and Label,
// and a SegmentTemplate on the video's timeline; the HLS master still lists WebVTT only.
func TestDASHTextIMSC1(t *testing.T) {
	p := withText(fixture(false), fixtureText[1:2], nil) // text_en_sdh, WebVTT and WVTT
	stpp := p.Text[1]
	stpp.ID, stpp.Format = "text_en_sdh_stpp", IMSC1
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := p.DASH()
	if err != nil {
		t.Fatal(err)
	}
	want := `<AdaptationSet id="3" lang="en" contentType="text" segmentAlignment="true" mimeType="application/mp4" startWithSAP="1">
      <Label>English SDH</Label>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="caption"></Role>
      <Representation id="text_en_sdh_stpp" bandwidth="2000" codecs="stpp.ttml.im1t">
        <SegmentTemplate media="$RepresentationID$/seg_$Number%05d$.m4s" initialization="$RepresentationID$/init.mp4" startNumber="1" timescale="30000">`
	if !strings.Contains(string(b), want) {
		t.Errorf("MPD lacks\n%s\nMPD:\n%s", want, b)
	}

	m := parseMPD(t, p)
	sets := textSets(m.Periods[0])
	as := sets["text_en_sdh_stpp"]
	if len(sets) != 1 || as == nil {
		t.Fatalf("text sets %v, want text_en_sdh_stpp alone", sets)
	}
	r := as.Representations[0]
	if as.MimeType != "application/mp4" || as.Lang != "en" || r.Codecs != "stpp.ttml.im1t" || r.SegmentTemplate == nil {
		t.Errorf("IMSC1 set read back: mime %q lang %q codecs %q template %v", as.MimeType, as.Lang, r.Codecs, r.SegmentTemplate)
	}
	reps := representations(m)
	got, video := expandTimeline(t, r.SegmentTemplate), expandTimeline(t, reps["video_1080p"].SegmentTemplate)
	if len(got) != len(video) || len(got) == 0 || got[0] != video[0] || got[len(got)-1] != video[len(video)-1] {
		t.Errorf("IMSC1 timeline %d entries, video %d: not the video's", len(got), len(video))
	}

	master := p.HLSMaster()
	if raw := string(master); strings.Contains(raw, "stpp") || !strings.Contains(raw, `URI="text_en_sdh/`) {
		t.Errorf("HLS master: want the WebVTT track only:\n%s", raw)
	}
}
