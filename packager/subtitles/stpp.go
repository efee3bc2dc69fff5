package subtitles

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
)

// CMAF IMSC1 text tracks (ISO/IEC 14496-30 §6, ISO/IEC 23000-19 §11.3, DASH-IF IOP v4.3
// §6.4.4): a subt track with an stpp sample entry whose samples are whole TTML documents, one
// sample per segment spanning it. Times inside a document are on the track's media timeline
// (not relative to the sample), so a document shows the cues of [sample start, sample end),
// each clipped to it; a cue crossing a boundary is in both documents, and CuesFromStpp joins
// the pieces again. A segment without cues is still a document, with an empty <body>: a
// player needs every segment of the track.

const (
	// StppTimescale is the stpp track's timescale: milliseconds, like the cue model.
	StppTimescale = 1000
	// StppMimeType is the stpp sample entry's MIME type, naming the IMSC1 text profile
	// (im1t, the codecs parameter of RFC 7303's application/ttml+xml as IMSC1 §A registers).
	StppMimeType = "application/ttml+xml;codecs=im1t"
	// stppNamespaces are the XML namespaces the documents are written in, as the stpp sample
	// entry lists them (ISO/IEC 14496-12 §12.6.3.2).
	stppNamespaces = nsTT + " " + nsTTS + " " + nsTTP + " " + nsITTS + " " + nsITTP + " " + nsEBUTTS
)

// StppInit returns the init segment (ftyp+moov) of a CMAF IMSC1 text track: handler "subt",
// a subtitle media header (sthd, ISO/IEC 14496-12 §12.6.2), and an stpp sample entry with the
// TTML namespaces and a mime box naming the IMSC1 text profile, and the brand of CMAF's IMSC1
// text media profile, im1t. bcp47 is the language, set as in WvttInit.
func StppInit(bcp47 string) ([]byte, error) {
	init := mp4.CreateEmptyInit()
	init.Ftyp.AddCompatibleBrands([]string{"im1t"})
	// mp4ff v0.56.0: AddEmptyTrack's media type "subtitle" makes the subt handler and an sthd;
	// "stpp" would make the sthd too but a handler of type "stpp", which no reader knows.
	trak := init.AddEmptyTrack(StppTimescale, "subtitle", mdhdLanguage(bcp47))
	stpp := mp4.NewStppBox(stppNamespaces, "", "")
	stpp.AddChild(&mp4.MimeBox{ContentType: StppMimeType})
	trak.Mdia.Minf.Stbl.Stsd.AddChild(stpp)
	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		return nil, fmt.Errorf("encoding stpp init segment: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteStppSegment writes one CMAF stpp segment (styp+moof+mdat, track 1) covering
// [start, end) ms: one sample, the IMSC1 document of the cues (IMSCDocument).
func WriteStppSegment(w io.Writer, t *Track, lang string, seq uint32, start, end int64, cues []Cue) error {
	if end <= start || start < 0 {
		return fmt.Errorf("subtitles: stpp segment [%d, %d) ms is empty", start, end)
	}
	if end-start > math.MaxUint32 {
		return fmt.Errorf("subtitles: stpp segment [%d, %d) ms is longer than a sample can last", start, end)
	}
	doc := IMSCDocument(t, lang, start, end, cues)
	frag, err := mp4.CreateFragment(seq, 1)
	if err != nil {
		return fmt.Errorf("stpp fragment: %w", err)
	}
	frag.AddFullSample(mp4.FullSample{
		Sample:     mp4.Sample{Flags: mp4.SyncSampleFlags, Dur: uint32(end - start), Size: uint32(len(doc))},
		DecodeTime: uint64(start),
		Data:       doc,
	})
	return writeSegment(w, frag, "stpp")
}

// IMSCDocument is the IMSC1 text profile document of the cues showing in [start, end) ms, each
// clipped to it, in order: the track's styles and regions (Track.IMSC) and each cue's <p> in
// its <div>s (Cue.IMSC), or for cues of another format their text, without markup, in a
// plain <p>. lang is the document's xml:lang when the input had none (TTML requires one).
func IMSCDocument(t *Track, lang string, start, end int64, cues []Cue) []byte {
	doc := t.IMSC
	if doc == nil {
		doc = &IMSCDoc{}
	}
	if doc.Lang != "" {
		lang = doc.Lang
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<tt xmlns="` + nsTT + `"`)
	for _, ns := range []string{nsTTP, nsTTS, nsITTP, nsITTS, nsEBUTTS} {
		b.WriteString(` xmlns:` + imscPrefixes[ns] + `="` + ns + `"`)
	}
	b.WriteString(` ttp:profile="` + IMSC1TextProfile + `" xml:lang="` + attrValue(lang) + `"` + doc.Root + ">")
	if doc.Head != "" {
		b.WriteString("<head>" + doc.Head + "</head>")
	}
	b.WriteString("<body" + doc.Body + ">")
	for _, c := range cues {
		s, e := max(c.Start, start), min(c.End, end)
		if e < s || e == s && c.Start != c.End || s >= end {
			continue // not showing in [start, end)
		}
		im := c.IMSC
		if im == nil {
			im = plainIMSC(c.Text)
		}
		divs := im.Divs
		if len(divs) == 0 {
			divs = []string{""} // a <p> belongs in a <div>
		}
		for _, d := range divs {
			b.WriteString("<div" + d + ">")
		}
		b.WriteString(`<p begin="` + FormatTime(s) + `" end="` + FormatTime(e) + `"` + im.P + ">" + im.Content + "</p>")
		for range divs {
			b.WriteString("</div>")
		}
	}
	b.WriteString("</body></tt>\n")
	return []byte(b.String())
}

// plainIMSC is a <p> for cue text of another format: its lines, without markup, a character
// XML cannot hold (a control character, invalid UTF-8: WebVTT and SRT take them) as U+FFFD.
func plainIMSC(text string) *IMSCCue {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = attrValue(PlainText(l)) // escapes as character data needs, and replaces those
	}
	return &IMSCCue{Content: strings.Join(lines, "<br/>")}
}

// CuesFromStpp reads a text track back from stpp samples (in decode order, times in units of
// 1/timescale s): each sample's document parsed by ParseTTML, its cues required to lie in the
// sample's span, and a cue's pieces in consecutive samples joined — a cue that ends where its
// sample ends continues in the next sample if that one has an equal cue (same id, text,
// settings and TTML) starting there. The track's IMSC is the first document's; Styles gathers
// every document's.
func CuesFromStpp(samples []mp4.FullSample, timescale uint32) (*Track, error) {
	out := &Track{}
	var open []Cue // cues of the previous sample that reach its end
	var prevEnd int64 = -1
	for _, s := range samples {
		t0 := MsFromTimescale(s.DecodeTime, timescale)
		t1 := MsFromTimescale(s.DecodeTime+uint64(s.Dur), timescale)
		tr, err := ParseTTML(fmt.Sprintf("stpp sample at %d ms", t0), s.Data)
		if err != nil {
			return nil, err
		}
		if out.IMSC == nil {
			out.IMSC = tr.IMSC
		}
		for _, st := range tr.Styles {
			if !slices.Contains(out.Styles, st) {
				out.Styles = append(out.Styles, st)
			}
		}
		var reach []Cue
		for _, c := range tr.Cues {
			if c.Start < t0 || c.End > t1 {
				return nil, fmt.Errorf("stpp sample [%d, %d) ms: cue %s–%s outside it", t0, t1, FormatTime(c.Start), FormatTime(c.End))
			}
			if t0 == prevEnd && c.Start == t0 {
				if k := slices.IndexFunc(open, func(o Cue) bool { return sameStppCue(o, c) }); k >= 0 {
					c.Start = open[k].Start
					open = slices.Delete(open, k, k+1)
				}
			}
			if c.End == t1 && c.End > c.Start {
				reach = append(reach, c)
			} else {
				out.Cues = append(out.Cues, c)
			}
		}
		out.Cues = append(out.Cues, open...)
		open, prevEnd = reach, t1
	}
	out.Cues = append(out.Cues, open...)
	slices.SortStableFunc(out.Cues, func(a, b Cue) int { return cmpInt(a.Start, b.Start) })
	return out, nil
}

func sameStppCue(a, b Cue) bool { return sameCue(a, b) && a.IMSC.equal(b.IMSC) }
