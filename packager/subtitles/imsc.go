package subtitles

import (
	"bytes"
	"encoding/xml"
	"strings"
)

// IMSC1 text profile documents for DASH's stpp tracks (W3C TTML Profiles for Internet Media
// Subtitles and Captions 1.0.1, §6 text profile; ISO/IEC 14496-30 §6 for their carriage).
//
// WebVTT can say little of what TTML says (ParseTTML maps what it can into Cue.Text and
// Cue.Settings), so a TTML input keeps its styling a second way: the styles and regions of
// its <head> and the attributes of each <p>, its <div>s and its <body> as TTML (IMSCDoc and
// IMSCCue), and each stpp document is written from them, timing aside. Kept: the tt, tts,
// itts (IMSC1 styling extensions) and ebutts (EBU-TT-D's linePadding and multiRowAlign, which
// IMSC1 includes) vocabularies, style and region references, xml:lang and xml:space, xml:id
// on <p>, <span>, <style> and <region>, and the root's ttp:cellResolution,
// ttp:pixelAspectRatio and ittp: parameters. Left out: timing (every <p> gets its absolute
// begin and end, so the frame-based ttp: parameters are not needed), metadata, animation
// (<set>, which the cue model cannot time) and other vocabularies.
const (
	nsITTS   = "http://www.w3.org/ns/ttml/profile/imsc1#styling"
	nsITTP   = "http://www.w3.org/ns/ttml/profile/imsc1#parameter"
	nsEBUTTS = "urn:ebu:tt:style"
	// IMSC1TextProfile is the IMSC1 text profile's designator (IMSC1 §6.1), written as the
	// documents' ttp:profile.
	IMSC1TextProfile = "http://www.w3.org/ns/ttml/profile/imsc1/text"
)

// imscPrefixes are the prefixes the documents declare for the vocabularies they keep.
var imscPrefixes = map[string]string{nsTTS: "tts", nsTTP: "ttp", nsITTS: "itts", nsITTP: "ittp", nsEBUTTS: "ebutts", nsXML: "xml"}

// IMSCDoc is what a TTML input's document says for every cue: its language, parameters,
// styles and regions.
type IMSCDoc struct {
	Lang string // the root's xml:lang ("" when absent: the writer uses the track's language)
	Root string // the root's other attributes that are kept, serialized (` ttp:cellResolution="40 24"`)
	Head string // <styling> and <layout> as IMSC1 writes them ("" when there are none)
	Body string // <body>'s attributes, serialized
}

// IMSCCue is what a TTML input says about one cue: its <p> and the <div>s around it.
type IMSCCue struct {
	Divs    []string // each enclosing <div>'s attributes, serialized, outermost first
	P       string   // the <p>'s attributes but its timing, serialized
	Content string   // the <p>'s content: text, <span>s and <br/>s
}

func (a *IMSCCue) equal(b *IMSCCue) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.P == b.P && a.Content == b.Content && strings.Join(a.Divs, "\x00") == strings.Join(b.Divs, "\x00")
}

// imscDoc captures root's and body's share of the styling.
func imscDoc(root, body *node) *IMSCDoc {
	d := &IMSCDoc{}
	d.Lang, _ = root.attr(nsXML, "lang")
	d.Root = imscAttrs(root)
	var styles, regions strings.Builder
	for _, k := range root.kids {
		head, ok := k.(*node)
		if !ok || head.name.Space != nsTT || head.name.Local != "head" {
			continue
		}
		headElements(head, func(section string, n *node) {
			switch {
			case section == "styling" && (n.name.Local == "style" || n.name.Local == "initial"):
				writeIMSCElement(&styles, n)
			case section == "layout" && n.name.Local == "region":
				writeIMSCElement(&regions, n)
			}
		})
	}
	var h strings.Builder
	if styles.Len() > 0 {
		h.WriteString("<styling>" + styles.String() + "</styling>")
	}
	if regions.Len() > 0 {
		h.WriteString("<layout>" + regions.String() + "</layout>")
	}
	d.Head = h.String()
	if body != nil {
		d.Body = imscAttrs(body)
	}
	return d
}

// imscCue captures p's share: its attributes, its content and its <div>s.
func imscCue(p *node) *IMSCCue {
	c := &IMSCCue{P: imscAttrs(p)}
	for m := p.parent; m != nil && m.name.Space == nsTT && m.name.Local == "div"; m = m.parent {
		c.Divs = append([]string{imscAttrs(m)}, c.Divs...)
	}
	var b strings.Builder
	writeIMSCContent(&b, p)
	c.Content = b.String()
	return c
}

// writeIMSCElement writes n with its kept attributes and its <style> children (a <region>'s
// inline styles).
func writeIMSCElement(b *strings.Builder, n *node) {
	b.WriteString("<" + n.name.Local + imscAttrs(n))
	var kids strings.Builder
	for _, k := range n.kids {
		if c, ok := k.(*node); ok && c.name.Space == nsTT && c.name.Local == "style" {
			writeIMSCElement(&kids, c)
		}
	}
	if kids.Len() == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteString(">" + kids.String() + "</" + n.name.Local + ">")
}

// writeIMSCContent writes n's content: character data, <span>s and <br/>s, as ParseTTML reads
// them (it skips everything else too).
func writeIMSCContent(b *strings.Builder, n *node) {
	for _, k := range n.kids {
		switch k := k.(type) {
		case string:
			b.WriteString(imscText.Replace(k))
		case *node:
			if k.name.Space != nsTT {
				continue
			}
			switch k.name.Local {
			case "br":
				b.WriteString("<br/>")
			case "span":
				b.WriteString("<span" + imscAttrs(k) + ">")
				writeIMSCContent(b, k)
				b.WriteString("</span>")
			}
		}
	}
}

// imscText escapes character data; a carriage return stays one (XML would read a raw one as a
// line feed).
var imscText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")

// imscAttrs serializes the attributes of n that an IMSC1 text document keeps (see above).
func imscAttrs(n *node) string {
	var b strings.Builder
	el := n.name.Local
	seen := map[xml.Name]bool{} // two prefixes of one namespace must not make one name twice
	for _, a := range n.attrs {
		keep := false
		switch a.Name.Space {
		case "":
			keep = a.Name.Local == "style" || a.Name.Local == "region"
		case nsXML, "xml":
			a.Name.Space = nsXML
			switch a.Name.Local {
			case "lang":
				keep = el != "tt" // the root's language is IMSCDoc.Lang
			case "space":
				keep = true
			case "id":
				// Ids of <div>s and <body> would repeat: every <p> gets its own copy of them.
				keep = oneOf(el, "p", "span", "style", "region", "initial")
			}
		case nsTTS, nsITTS, nsEBUTTS:
			keep = true
		case nsTTP, nsITTP:
			keep = el == "tt" && (a.Name.Space == nsITTP || oneOf(a.Name.Local, "cellResolution", "pixelAspectRatio"))
		}
		if !keep || seen[a.Name] {
			continue
		}
		seen[a.Name] = true
		name := a.Name.Local
		if a.Name.Space != "" {
			name = imscPrefixes[a.Name.Space] + ":" + name
		}
		b.WriteString(" " + name + `="` + attrValue(a.Value) + `"`)
	}
	return b.String()
}

// attrValue escapes an attribute value, whitespace characters too (XML would normalize raw
// ones to spaces).
func attrValue(v string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(v)) // a bytes.Buffer does not fail
	return b.String()
}
