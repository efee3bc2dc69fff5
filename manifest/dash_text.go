package manifest

import (
	"math/big"
	"strconv"
	"strings"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// Text tracks and closed captions in DASH (ISO/IEC 23009-1 §5.8.4.2 Role, §5.8.4.3
// Accessibility; DASH-IF IOP v4.3 §6.4 subtitles; SCTE 214-1 §4.5 for the caption schemes):
//
//	<AdaptationSet contentType="text" mimeType="application/mp4" lang="fr" …>
//	  <Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>
//	  <Label>Français</Label>
//	  <Representation id="text_fr_wvtt" codecs="wvtt" bandwidth="…"><SegmentTemplate …/></Representation>
//	</AdaptationSet>
//	<AdaptationSet contentType="video" …>
//	  <Accessibility schemeIdUri="urn:scte:dash:cc:cea-608:2015" value="CC1=en;CC3=es"/>
//
// An IMSC1 track is the same set with codecs="stpp.ttml.im1t" (ISO/IEC 23000-19 §11.3; DASH-IF
// IOP v4.3 §6.4.4 names the IMSC1 text profile in codecs so that a player can tell it from the
// image profile, im1i, before fetching a segment).
//
// One AdaptationSet per WVTT or IMSC1 track: text tracks are not switchable with each other. Role is
// "forced-subtitle" for a forced track (the value dash.js and Shaka Player look for), else
// "caption" for SDH, else "subtitle"; a Default track also gets "main". Label carries the menu
// name. The caption values write each channel as "CCn=lang" (608) or "n=lang:lang" (708), the
// forms dash.js and Shaka Player parse; the language is the track's BCP 47 tag ("und" when
// unknown), which both players take as well as SCTE 214-1's ISO 639-2 codes.
const (
	cea608Scheme = "urn:scte:dash:cc:cea-608:2015"
	cea708Scheme = "urn:scte:dash:cc:cea-708:2015"
	textMimeType = "application/mp4"
)

// dashText are the text tracks the MPD lists, in order: those in the formats DASH carries.
func (p *Presentation) dashText() []*Track {
	var out []*Track
	for _, t := range p.Text {
		if t.Format == WVTT || t.Format == IMSC1 {
			out = append(out, t)
		}
	}
	return out
}

// textSet builds the AdaptationSet of text track t.
func (p *Presentation) textSet(id uint32, t *Track, origin *big.Rat) (*mpd.AdaptationSetType, error) {
	as := newSet(id, "text", textMimeType, p.SingleFile)
	as.Lang = t.Language
	if t.Default {
		as.Roles = append(as.Roles, mpd.NewRole("main"))
	}
	switch {
	case t.Forced:
		as.Roles = append(as.Roles, mpd.NewRole("forced-subtitle"))
	case t.SDH:
		as.Roles = append(as.Roles, mpd.NewRole("caption"))
	default:
		as.Roles = append(as.Roles, mpd.NewRole("subtitle"))
	}
	if t.Name != "" {
		as.Labels = []*mpd.LabelType{{Value: t.Name}}
	}
	codecs := t.Codecs
	if codecs == "" {
		codecs = t.Format.codecs()
	}
	r := mpd.NewRepresentationWithID(t.ID, codecs, "", t.PeakBandwidth)
	if err := p.addAddressing(r, t, origin); err != nil {
		return nil, err
	}
	as.Representations = []*mpd.RepresentationType{r}
	return as, nil
}

// captionAccessibility is the Accessibility descriptors of a video set whose rungs carry cs:
// one for the CEA-608 channels, one for the CEA-708 services.
func captionAccessibility(cs []Caption) []*mpd.DescriptorType {
	var cc608, cc708 []string
	for _, c := range cs {
		lang := c.Language
		if lang == "" {
			lang = "und"
		}
		if c.cea608() {
			cc608 = append(cc608, c.Channel+"="+lang)
		} else {
			cc708 = append(cc708, strconv.Itoa(c.service())+"=lang:"+lang)
		}
	}
	var out []*mpd.DescriptorType
	if len(cc608) > 0 {
		out = append(out, mpd.NewDescriptor(cea608Scheme, strings.Join(cc608, ";"), ""))
	}
	if len(cc708) > 0 {
		out = append(out, mpd.NewDescriptor(cea708Scheme, strings.Join(cc708, ";"), ""))
	}
	return out
}

// captionKey identifies a set of captions, so that video sets only group rungs that carry the
// same ones (Accessibility is a property of the whole AdaptationSet).
func captionKey(cs []Caption) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Channel + "=" + c.Language + ";")
	}
	return b.String()
}
