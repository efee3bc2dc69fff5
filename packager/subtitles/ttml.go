package subtitles

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// TTML's namespaces (TTML1 §5.1; IMSC1's image profile is told by SMPTE-TT's).
const (
	nsTT    = "http://www.w3.org/ns/ttml"
	nsTTP   = "http://www.w3.org/ns/ttml#parameter"
	nsTTS   = "http://www.w3.org/ns/ttml#styling"
	nsSMPTE = "http://www.smpte-ra.org/schemas/2052-1/2010/smpte"
	nsXML   = "http://www.w3.org/XML/1998/namespace"
)

// node is one TTML element, with the line its start tag ends on.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	kids     []any // *node or string (character data)
	line     int
	parent   *node
	preserve bool // xml:space="preserve" here or inherited
}

func (n *node) attr(space, local string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Local == local && (a.Name.Space == space || space == nsXML && a.Name.Space == "xml") {
			return a.Value, true
		}
	}
	return "", false
}

// ttmlParams are the ttp: parameters that give frames and ticks their meaning (TTML1 §6.2).
type ttmlParams struct {
	frameRate    *big.Rat // effective: ttp:frameRate × ttp:frameRateMultiplier
	subFrameRate int64
	tickRate     int64
}

// ParseTTML reads a TTML document of the IMSC1 text profile: <p> elements (their times
// relative to their <div>s and <body>, clock time hh:mm:ss(.fff|:ff) or offset time with h, m,
// s, ms, f and t, frames and ticks by ttp:frameRate, ttp:frameRateMultiplier, ttp:subFrameRate
// and ttp:tickRate), <span> and <br>. The styling WebVTT can say is carried: italic, bold,
// underline and colour as inline markup (colours by a class and a STYLE block), tts:textAlign
// as the align setting, a region's tts:origin/tts:extent/tts:displayAlign in percent as the
// line, position and size settings, tts:writingMode as vertical. All of the styling, and the
// regions, are also kept as TTML (Track.IMSC, Cue.IMSC; see imsc.go) for the IMSC1 documents
// of DASH's stpp track. The image profile (pictures, not text) is refused, as are a time base
// other than media and timing on a <span>.
func ParseTTML(name string, data []byte) (*Track, error) {
	root, err := readTTMLTree(name, data)
	if err != nil {
		return nil, err
	}
	if root.name.Space != nsTT || root.name.Local != "tt" {
		return nil, errAt(name, root.line, "not a TTML document: the root element is <%s>, want <tt> in %s", root.name.Local, nsTT)
	}
	if err := refuseImageProfile(name, root); err != nil {
		return nil, err
	}
	if tb, ok := root.attr(nsTTP, "timeBase"); ok && tb != "media" {
		return nil, errAt(name, root.line, "ttp:timeBase %q is not supported (only media)", tb)
	}
	params, err := readParams(name, root)
	if err != nil {
		return nil, err
	}
	p := &ttmlParser{name: name, params: params, styles: map[string]*node{}, regions: map[string]*node{}, colorClass: map[string]string{}}
	var body *node
	for _, k := range root.kids {
		n, ok := k.(*node)
		if !ok || n.name.Space != nsTT {
			continue
		}
		switch n.name.Local {
		case "head":
			p.readHead(n)
		case "body":
			body = n
		}
	}
	t := &Track{IMSC: imscDoc(root, body)}
	if body != nil {
		if err := p.walk(body, 0, -1, t); err != nil {
			return nil, err
		}
	}
	for _, c := range p.colors {
		t.Styles = append(t.Styles, fmt.Sprintf("::cue(.%s) { color: %s; }", p.colorClass[c], c))
	}
	t.finish(name)
	return t, nil
}

func readTTMLTree(name string, data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var root, cur *node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, errAt(name, se.Line, "XML: %s", se.Msg)
			}
			line, _ := d.InputPos()
			return nil, errAt(name, line, "XML: %v", err)
		}
		line, _ := d.InputPos()
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name, attrs: slices.Clone(tok.Attr), line: line, parent: cur}
			if cur != nil {
				n.preserve = cur.preserve
				cur.kids = append(cur.kids, n)
			} else if root == nil {
				root = n
			}
			if v, ok := n.attr(nsXML, "space"); ok {
				n.preserve = v == "preserve"
			}
			cur = n
		case xml.EndElement:
			cur = cur.parent
		case xml.CharData:
			if cur != nil {
				cur.kids = append(cur.kids, string(tok))
			}
		}
	}
	if root == nil {
		return nil, errAt(name, 0, "not a TTML document: no root element")
	}
	return root, nil
}

// refuseImageProfile finds IMSC1's image profile: the profile designator, or SMPTE-TT's
// backgroundImage/image, or TTML2's <image>.
func refuseImageProfile(name string, root *node) error {
	var found *node
	var walk func(n *node)
	walk = func(n *node) {
		if found != nil {
			return
		}
		for _, a := range []string{"profile", "contentProfiles"} {
			if v, ok := n.attr(nsTTP, a); ok && strings.Contains(v, "image") {
				found = n
			}
		}
		if n.name.Space == nsTTP && n.name.Local == "profile" {
			if v, ok := n.attr("", "use"); ok && strings.Contains(v, "image") {
				found = n
			}
		}
		if _, ok := n.attr(nsSMPTE, "backgroundImage"); ok || n.name.Space == nsSMPTE && n.name.Local == "image" || n.name.Space == nsTT && n.name.Local == "image" {
			found = n
		}
		for _, k := range n.kids {
			if c, ok := k.(*node); ok {
				walk(c)
			}
		}
	}
	walk(root)
	if found != nil {
		return errAt(name, found.line, "IMSC1 image profile (subtitles as pictures) is not supported: give the text profile")
	}
	return nil
}

func readParams(name string, root *node) (ttmlParams, error) {
	p := ttmlParams{frameRate: big.NewRat(30, 1), subFrameRate: 1}
	num := func(local string, def int64) (int64, bool, error) {
		v, ok := root.attr(nsTTP, local)
		if !ok {
			return def, false, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n <= 0 {
			return 0, true, errAt(name, root.line, "ttp:%s %q: want a positive integer", local, v)
		}
		return n, true, nil
	}
	fr, frSet, err := num("frameRate", 30)
	if err != nil {
		return p, err
	}
	p.frameRate = big.NewRat(fr, 1)
	if v, ok := root.attr(nsTTP, "frameRateMultiplier"); ok {
		f := strings.Fields(v)
		var a, b int64
		if len(f) == 2 {
			a, _ = strconv.ParseInt(f[0], 10, 64)
			b, _ = strconv.ParseInt(f[1], 10, 64)
		}
		if a <= 0 || b <= 0 {
			return p, errAt(name, root.line, "ttp:frameRateMultiplier %q: want two positive integers", v)
		}
		p.frameRate.Mul(p.frameRate, big.NewRat(a, b))
	}
	if p.subFrameRate, _, err = num("subFrameRate", 1); err != nil {
		return p, err
	}
	// Without ttp:tickRate, ticks are frames × sub-frames when a frame rate is given, else
	// seconds (TTML1 §6.2.10).
	def := int64(1)
	if frSet {
		def = fr * p.subFrameRate
	}
	if p.tickRate, _, err = num("tickRate", def); err != nil {
		return p, err
	}
	return p, nil
}

var (
	clockTime  = regexp.MustCompile(`^(\d{2,}):(\d{2}):(\d{2})(?:(\.\d+)|:(\d{2,})(?:\.(\d+))?)?$`)
	offsetTime = regexp.MustCompile(`^(\d+(?:\.\d+)?)(h|ms|m|s|f|t)$`)
)

// time reads a TTML time expression as milliseconds (rounded to the nearest).
func (p ttmlParams) time(s string) (int64, error) {
	s = strings.TrimSpace(s)
	r := new(big.Rat)
	if m := clockTime.FindStringSubmatch(s); m != nil {
		h, _ := strconv.ParseInt(m[1], 10, 64)
		mi, _ := strconv.ParseInt(m[2], 10, 64)
		sec, _ := strconv.ParseInt(m[3], 10, 64)
		if mi > 59 || sec > 60 {
			return 0, fmt.Errorf("time %q: minutes or seconds out of range", clip(s))
		}
		r.SetInt64((h*60+mi)*60 + sec)
		if m[4] != "" {
			f, _ := new(big.Rat).SetString("0" + m[4])
			r.Add(r, f)
		}
		if m[5] != "" {
			fr, _ := new(big.Rat).SetString(m[5])
			if m[6] != "" {
				sf, _ := new(big.Rat).SetString(m[6])
				fr.Add(fr, sf.Quo(sf, big.NewRat(p.subFrameRate, 1)))
			}
			r.Add(r, fr.Quo(fr, p.frameRate))
		}
	} else if m := offsetTime.FindStringSubmatch(s); m != nil {
		v, _ := new(big.Rat).SetString(m[1])
		switch m[2] {
		case "h":
			v.Mul(v, big.NewRat(3600, 1))
		case "m":
			v.Mul(v, big.NewRat(60, 1))
		case "ms":
			v.Quo(v, big.NewRat(1000, 1))
		case "f":
			v.Quo(v, p.frameRate)
		case "t":
			v.Quo(v, big.NewRat(p.tickRate, 1))
		}
		r = v
	} else {
		return 0, fmt.Errorf("time %q: want clock time hh:mm:ss.fff or hh:mm:ss:ff, or offset time like 12.5s, 300f, 9000000t", clip(s))
	}
	r.Mul(r, big.NewRat(1000, 1))
	ms := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(r.Num(), big.NewInt(2)), r.Denom()), new(big.Int).Mul(r.Denom(), big.NewInt(2)))
	if !ms.IsInt64() || ms.Int64() > 1<<50 {
		return 0, fmt.Errorf("time %q: too large", clip(s))
	}
	return ms.Int64(), nil
}

type ttmlParser struct {
	name       string
	params     ttmlParams
	styles     map[string]*node
	regions    map[string]*node
	colorClass map[string]string
	colors     []string
}

func (p *ttmlParser) readHead(head *node) {
	headElements(head, func(section string, n *node) {
		id, _ := n.attr(nsXML, "id")
		switch {
		case section == "styling" && n.name.Local == "style" && id != "":
			p.styles[id] = n
		case section == "layout" && n.name.Local == "region" && id != "":
			p.regions[id] = n
		}
	})
}

// headElements calls f with each TTML element of head's sections (styling, layout, …) and the
// section's name, in document order.
func headElements(head *node, f func(section string, n *node)) {
	for _, k := range head.kids {
		sec, ok := k.(*node)
		if !ok || sec.name.Space != nsTT {
			continue
		}
		for _, k := range sec.kids {
			if n, ok := k.(*node); ok && n.name.Space == nsTT {
				f(sec.name.Local, n)
			}
		}
	}
}

// style resolves one tts: property of n: its own attribute, then the styles it references
// (in order, then theirs), depth-bounded against reference loops.
func (p *ttmlParser) style(n *node, local string, depth int) (string, bool) {
	if v, ok := n.attr(nsTTS, local); ok {
		return strings.TrimSpace(v), true
	}
	if depth > 8 {
		return "", false
	}
	if refs, ok := n.attr("", "style"); ok {
		for _, id := range strings.Fields(refs) {
			if s := p.styles[id]; s != nil {
				if v, ok := p.style(s, local, depth+1); ok {
					return v, true
				}
			}
		}
	}
	return "", false
}

// inherited resolves a tts: property of n or, failing that, of its ancestors up to <body>,
// then of its region (TTML's inheritance, as far as WebVTT can use it).
func (p *ttmlParser) inherited(n *node, local string) (string, bool) {
	for m := n; m != nil && m.name.Local != "tt"; m = m.parent {
		if v, ok := p.style(m, local, 0); ok {
			return v, true
		}
	}
	if r := p.region(n); r != nil {
		return p.style(r, local, 0)
	}
	return "", false
}

// regionProblem says why TTML players (imsc.js in dash.js, among others) will not show the
// <p> n: once a document declares regions, content is presented only in the region it names
// or inherits, and an element naming another region than its ancestor's is in neither
// (TTML1 §9.3.2–9.3.3). "" when they will. WebVTT, which has the cue at the <p>'s region or
// at the bottom, shows it all the same: this is a warning, not an error.
func (p *ttmlParser) regionProblem(n *node) string {
	if len(p.regions) == 0 {
		return "" // the default region holds everything
	}
	var named []string // region attributes from n up
	for m := n; m != nil; m = m.parent {
		if id, ok := m.attr("", "region"); ok {
			named = append(named, id)
		}
	}
	if len(named) == 0 {
		return "<p> in no region while the document declares regions: TTML players show it nowhere (give it, its <div> or the <body> a region)"
	}
	for _, id := range named[1:] {
		if id != named[0] {
			return fmt.Sprintf("<p> in region %q inside an element of region %q: TTML players show it in neither (put the region on the <div>s)", clip(named[0]), clip(id))
		}
	}
	if p.regions[named[0]] == nil {
		return fmt.Sprintf("<p> in region %q, which <layout> does not declare: TTML players show it nowhere", clip(named[0]))
	}
	return ""
}

func (p *ttmlParser) region(n *node) *node {
	for m := n; m != nil; m = m.parent {
		if id, ok := m.attr("", "region"); ok {
			return p.regions[id]
		}
	}
	return nil
}

// walk times n (begin and end relative to its parent's begin, TTML's par container) and turns
// each <p> into a cue. end < 0 is "unbounded".
func (p *ttmlParser) walk(n *node, parentBegin, parentEnd int64, t *Track) error {
	begin, end, err := p.interval(n, parentBegin, parentEnd)
	if err != nil {
		return err
	}
	if n.name.Local == "p" {
		return p.cue(n, begin, end, t)
	}
	for _, k := range n.kids {
		if c, ok := k.(*node); ok && c.name.Space == nsTT && (c.name.Local == "div" || c.name.Local == "p") {
			if err := p.walk(c, begin, end, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *ttmlParser) interval(n *node, parentBegin, parentEnd int64) (int64, int64, error) {
	if tc, ok := n.attr("", "timeContainer"); ok && tc != "par" {
		return 0, 0, errAt(p.name, n.line, "<%s timeContainer=%q> is not supported (only par)", n.name.Local, tc)
	}
	at := func(local string) (int64, bool, error) {
		v, ok := n.attr("", local)
		if !ok {
			return 0, false, nil
		}
		ms, err := p.params.time(v)
		if err != nil {
			return 0, true, errAt(p.name, n.line, "<%s %s>: %v", n.name.Local, local, err)
		}
		return ms, true, nil
	}
	b, _, err := at("begin")
	if err != nil {
		return 0, 0, err
	}
	begin := parentBegin + b
	end := parentEnd
	if e, ok, err := at("end"); err != nil {
		return 0, 0, err
	} else if ok {
		end = parentBegin + e
	} else if d, ok, err := at("dur"); err != nil {
		return 0, 0, err
	} else if ok {
		end = begin + d
	}
	if parentEnd >= 0 && (end < 0 || end > parentEnd) {
		end = parentEnd
	}
	if end >= 0 && end < begin {
		return 0, 0, errAt(p.name, n.line, "<%s> ends (%s) before it begins (%s)", n.name.Local, FormatTime(end), FormatTime(begin))
	}
	return begin, end, nil
}

func (p *ttmlParser) cue(n *node, begin, end int64, t *Track) error {
	var b strings.Builder
	if err := p.inline(n, &b, true); err != nil {
		return err
	}
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		if !n.preserve {
			l = strings.TrimFunc(l, isXMLSpace)
		}
		if strings.TrimSpace(PlainText(l)) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil
	}
	if end < 0 {
		return errAt(p.name, n.line, "<p> has no end: give it (or its <div> or <body>) an end or a dur")
	}
	c := Cue{Start: begin, End: end, Line: n.line, Text: strings.Join(lines, "\n")}
	c.ID, _ = n.attr(nsXML, "id")
	c.Settings = p.settings(n)
	c.IMSC = imscCue(n)
	if w := p.regionProblem(n); w != "" {
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s:%d: %s", p.name, n.line, w))
	}
	t.Cues = append(t.Cues, c)
	return nil
}

// inline writes n's content as WebVTT cue text, its own styling as markup around it.
func (p *ttmlParser) inline(n *node, b *strings.Builder, isP bool) error {
	var open, close []string
	wrap := func(cond bool, tag string) {
		if cond {
			open = append(open, "<"+tag+">")
			close = append([]string{"</" + strings.Fields(strings.SplitN(tag, ".", 2)[0])[0] + ">"}, close...)
		}
	}
	// A <p>'s styling is everything inherited down to it; a <span>'s only what it adds.
	get := func(local string) (string, bool) {
		if isP {
			return p.inherited(n, local)
		}
		return p.style(n, local, 0)
	}
	v, _ := get("fontStyle")
	wrap(v == "italic" || v == "oblique", "i")
	v, _ = get("fontWeight")
	wrap(v == "bold", "b")
	v, _ = get("textDecoration")
	wrap(strings.Contains(v, "underline") && !strings.Contains(v, "noUnderline"), "u")
	if v, ok := get("color"); ok {
		if cls := p.colorClassFor(v); cls != "" {
			wrap(true, "c."+cls)
		}
	}
	for _, o := range open {
		b.WriteString(o)
	}
	for _, k := range n.kids {
		switch k := k.(type) {
		case string:
			s := k
			if !n.preserve {
				s = strings.Join(strings.FieldsFunc(s, isXMLSpace), " ")
				if strings.TrimFunc(k, isXMLSpace) != k && s != "" {
					// Keep one space where the source had whitespace around words.
					if k[0] == ' ' || k[0] == '\t' || k[0] == '\n' || k[0] == '\r' {
						s = " " + s
					}
					if last := k[len(k)-1]; last == ' ' || last == '\t' || last == '\n' || last == '\r' {
						s += " "
					}
				} else if s == "" && k != "" {
					s = " "
				}
			}
			b.WriteString(escapeText(s))
		case *node:
			if k.name.Space != nsTT {
				continue
			}
			switch k.name.Local {
			case "br":
				b.WriteString("\n")
			case "span":
				for _, a := range []string{"begin", "end", "dur"} {
					if _, ok := k.attr("", a); ok {
						return errAt(p.name, k.line, "timing on <span> (%s) is not supported: time the <p>", a)
					}
				}
				if err := p.inline(k, b, false); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range close {
		b.WriteString(c)
	}
	return nil
}

// isXMLSpace: the whitespace that xml:space="default" collapses (XML 1.0 §2.3 S), not a
// no-break space, which is text.
func isXMLSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$`)

// colorClassFor names a WebVTT class for a TTML colour (a named colour or #rrggbb[aa]); the
// track's STYLE block gives the class its colour. White, the default, needs none.
func (p *ttmlParser) colorClassFor(c string) string {
	c = strings.ToLower(c)
	if c == "white" || c == "#ffffff" || c == "#ffffffff" {
		return ""
	}
	if !hexColor.MatchString(c) && !namedColor(c) {
		return ""
	}
	if cls, ok := p.colorClass[c]; ok {
		return cls
	}
	cls := "color_" + strings.TrimPrefix(c, "#")
	p.colorClass[c] = cls
	p.colors = append(p.colors, c)
	return cls
}

func namedColor(c string) bool {
	return oneOf(c, "black", "silver", "gray", "maroon", "red", "purple", "fuchsia", "magenta",
		"green", "lime", "olive", "yellow", "navy", "blue", "teal", "aqua", "cyan")
}

// settings maps the <p>'s alignment, writing mode and region to WebVTT cue settings.
func (p *ttmlParser) settings(n *node) Settings {
	var st Settings
	if v, ok := p.inherited(n, "textAlign"); ok && oneOf(v, "start", "center", "end", "left", "right") {
		st.Align = v
	}
	if v, ok := p.inherited(n, "writingMode"); ok {
		switch v {
		case "tbrl", "tb":
			st.Vertical = "rl"
		case "tblr":
			st.Vertical = "lr"
		}
	}
	r := p.region(n)
	if r == nil || st.Vertical != "" {
		return st
	}
	origin, ok1 := p.style(r, "origin", 0)
	extent, ok2 := p.style(r, "extent", 0)
	x, y, okO := percentPair(origin)
	w, h, okE := percentPair(extent)
	if !ok1 || !ok2 || !okO || !okE {
		return st
	}
	da, _ := p.style(r, "displayAlign", 0)
	switch da {
	case "after":
		st.Line = pct(y+h) + ",end"
	case "center":
		st.Line = pct(y+h/2) + ",center"
	default: // before, TTML's default
		st.Line = pct(y) + ",start"
	}
	st.Position = pct(x) + ",line-left"
	st.Size = pct(w)
	return st
}

func percentPair(s string) (float64, float64, bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	var v [2]float64
	for i, x := range f {
		n, ok := strings.CutSuffix(x, "%")
		if !ok {
			return 0, 0, false
		}
		p, err := strconv.ParseFloat(n, 64)
		if err != nil || p < 0 || p > 100 {
			return 0, 0, false
		}
		v[i] = p
	}
	return v[0], v[1], true
}

func pct(v float64) string {
	v = min(max(v, 0), 100)
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64) + "%"
}

func ratOf(a, b int64) *big.Rat { return big.NewRat(a, b) }
