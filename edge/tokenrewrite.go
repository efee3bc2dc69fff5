package edge

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/reelvideo/reel/manifest"
)

// Carrying a query token into a manifest (tokenrespond.go serves it): a player resolves the
// URIs a playlist or MPD lists against the manifest's URL, and a relative URI drops that URL's
// query — so a token given as ?token=… would reach the master and no further. These functions
// add the token to every URI of a manifest that resolves to the edge the manifest came from,
// and to none that resolves elsewhere: the token must not leak to another host.

// addManifestToken returns body, a manifest of format f fetched as self (absolute: scheme,
// host, path), with param=tok added to the query of every URI that resolves to self's scheme
// and host. URIs that already carry param are left as they are.
func addManifestToken(body []byte, f manifest.Format, self *url.URL, param, tok string) ([]byte, error) {
	c := tokenCarrier{self: self, param: param, value: url.QueryEscape(tok)}
	switch f {
	case manifest.FormatHLSMaster, manifest.FormatHLSMedia:
		return c.hls(body), nil
	case manifest.FormatDASH:
		return c.mpd(body)
	}
	return nil, fmt.Errorf("not a manifest (%v)", f)
}

type tokenCarrier struct {
	self  *url.URL
	param string
	value string // the token, query-escaped
}

// carry returns ref with the token added when ref, resolved against base, is on self's scheme
// and host (ok false: ref is left as it is).
func (c tokenCarrier) carry(ref string, base *url.URL) (string, bool) {
	if ref == "" || !c.ours(ref, base) {
		return ref, false
	}
	path, frag, hasFrag := strings.Cut(ref, "#")
	sep := "?"
	if _, q, hasQuery := strings.Cut(path, "?"); hasQuery {
		for _, pair := range strings.Split(q, "&") {
			if name, _, _ := strings.Cut(pair, "="); name == c.param {
				return ref, false
			}
		}
		sep = "&"
		if q == "" || strings.HasSuffix(q, "&") {
			sep = ""
		}
	}
	out := path + sep + c.param + "=" + c.value
	if hasFrag {
		out += "#" + frag
	}
	return out, true
}

// dashIdentifier is a DASH template identifier ($Number$, $Time%08d$, $$): resolution sees a
// plain path segment in its place.
var dashIdentifier = regexp.MustCompile(`\$[A-Za-z]*(%[0-9]*[dxXo])?\$`)

// ours reports whether ref, resolved against base, is on self's scheme and host.
func (c tokenCarrier) ours(ref string, base *url.URL) bool {
	u, err := url.Parse(dashIdentifier.ReplaceAllString(strings.TrimSpace(ref), "0"))
	if err != nil {
		return false // what can't be read can't be shown to be ours
	}
	abs := base.ResolveReference(u)
	return strings.EqualFold(abs.Scheme, c.self.Scheme) && strings.EqualFold(abs.Host, c.self.Host)
}

// hls adds the token to a playlist's URI lines and to the URI attribute of every tag
// (EXT-X-MAP, EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-PART, EXT-X-PRELOAD-HINT,
// EXT-X-RENDITION-REPORT, EXT-X-KEY, EXT-X-SESSION-KEY, EXT-X-SESSION-DATA…). Line endings
// and everything else are kept byte for byte. HLS has no base element: every URI resolves
// against the playlist's own URL (RFC 8216 §4.1).
func (c tokenCarrier) hls(body []byte) []byte {
	out := make([]byte, 0, len(body)+len(body)/8)
	for rest := body; len(rest) > 0; {
		line := rest
		var eol []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, eol, rest = rest[:i], rest[i:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line, eol = line[:n-1], append([]byte("\r"), eol...)
		}
		text := string(line)
		trimmed := strings.TrimSpace(text)
		switch {
		case trimmed == "":
		case trimmed[0] != '#':
			if s, ok := c.carry(trimmed, c.self); ok {
				text = strings.Replace(text, trimmed, s, 1)
			}
		case strings.HasPrefix(trimmed, "#EXT"):
			text = c.hlsTag(text)
		}
		out = append(out, text...)
		out = append(out, eol...)
	}
	return out
}

// hlsTag adds the token to a tag's URI="…" attribute (RFC 8216 §4.2: an attribute list is
// NAME=VALUE pairs separated by commas, quoted strings holding no '"').
func (c tokenCarrier) hlsTag(line string) string {
	colon := strings.IndexByte(line, ':')
	if colon < 0 {
		return line
	}
	var b strings.Builder
	b.WriteString(line[:colon+1])
	rest := line[colon+1:]
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			b.WriteString(rest)
			break
		}
		name := rest[:eq]
		b.WriteString(rest[:eq+1])
		rest = rest[eq+1:]
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				b.WriteString(rest) // unterminated: leave the rest alone
				break
			}
			value, rest = rest[:end+2], rest[end+2:]
			if strings.TrimSpace(name) == "URI" {
				if s, ok := c.carry(value[1:len(value)-1], c.self); ok {
					value = `"` + s + `"`
				}
			}
		} else if comma := strings.IndexByte(rest, ','); comma >= 0 {
			value, rest = rest[:comma], rest[comma:]
		} else {
			value, rest = rest, ""
		}
		b.WriteString(value)
		if strings.HasPrefix(rest, ",") {
			b.WriteByte(',')
			rest = rest[1:]
		}
	}
	return b.String()
}

// mpdURIAttrs are the attributes holding URIs, by element (ISO/IEC 23009-1 §5.3.9).
var mpdURIAttrs = map[string][]string{
	"SegmentTemplate":     {"media", "initialization", "index"},
	"SegmentURL":          {"media", "index"},
	"Initialization":      {"sourceURL"},
	"RepresentationIndex": {"sourceURL"},
}

// mpdURIText are the elements whose text is a URI: BaseURL resolves against the enclosing
// element's base, Location and PatchLocation against the MPD's own URL.
var mpdURIText = map[string]bool{"BaseURL": true, "Location": true, "PatchLocation": true}

// mpdEdit replaces body[start:end] with text.
type mpdEdit struct {
	start, end int
	text       string
}

// mpd adds the token to an MPD's URIs, walking its elements to know each one's base (the
// MPD's URL, then each level's first BaseURL, §5.6.4) and splicing the changed values into the
// original bytes, so that everything else — namespaces, comments, formatting — is kept.
func (c tokenCarrier) mpd(body []byte) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	type level struct {
		base    *url.URL
		baseSet bool // a BaseURL child has set base
	}
	stack := []level{{base: c.self}}
	var edits []mpdEdit
	// The text of the URI element being read: its span and its content.
	var textElem string
	var textStart, textEnd int
	var text strings.Builder
	for {
		start := int(d.InputOffset())
		t, err := d.RawToken()
		if err == io.EOF {
			if len(stack) != 1 {
				return nil, errors.New("MPD ends inside an element")
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the MPD: %w", err)
		}
		end := int(d.InputOffset())
		if len(stack) > 256 {
			return nil, errors.New("MPD nested too deep")
		}
		switch t := t.(type) {
		case xml.StartElement:
			top := stack[len(stack)-1]
			stack = append(stack, level{base: top.base})
			if mpdURIText[t.Name.Local] {
				textElem, textStart, textEnd = t.Name.Local, end, end
				text.Reset()
			}
			if names := mpdURIAttrs[t.Name.Local]; names != nil {
				edits = append(edits, c.mpdAttrs(body[start:end], start, t, names, top.base)...)
			}
		case xml.CharData:
			if textElem != "" {
				if text.Len() == 0 {
					textStart = start
				}
				textEnd = end
				text.Write(t)
			}
		case xml.EndElement:
			if len(stack) < 2 {
				return nil, errors.New("MPD has an end tag without a start")
			}
			if textElem != "" && t.Name.Local == textElem {
				parent := &stack[len(stack)-2]
				base := parent.base
				if textElem != "BaseURL" {
					base = c.self
				}
				raw := text.String()
				ref := strings.TrimSpace(raw)
				if s, ok := c.carry(ref, base); ok {
					var esc bytes.Buffer
					xml.EscapeText(&esc, []byte(strings.Replace(raw, ref, s, 1)))
					edits = append(edits, mpdEdit{textStart, textEnd, esc.String()})
				}
				if textElem == "BaseURL" && !parent.baseSet {
					if u, err := url.Parse(dashIdentifier.ReplaceAllString(ref, "0")); err == nil {
						parent.base, parent.baseSet = base.ResolveReference(u), true
					}
				}
				textElem = ""
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(edits) == 0 {
		return body, nil
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	out := make([]byte, 0, len(body)+len(edits)*(len(c.param)+len(c.value)+2))
	at := 0
	for _, e := range edits {
		out = append(out, body[at:e.start]...)
		out = append(out, e.text...)
		at = e.end
	}
	return append(out, body[at:]...), nil
}

// mpdAttrs returns the edits that add the token to the named attributes of one start tag (raw,
// at offset in the body), found by scanning the tag: the decoder gives values, not places.
func (c tokenCarrier) mpdAttrs(raw []byte, offset int, t xml.StartElement, names []string, base *url.URL) []mpdEdit {
	want := map[string]string{}
	for _, a := range t.Attr {
		for _, n := range names {
			if a.Name.Space == "" && a.Name.Local == n {
				want[n] = a.Value
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	var edits []mpdEdit
	i := bytes.IndexAny(raw, " \t\r\n") // past "<name"
	for i > 0 && i < len(raw) {
		for i < len(raw) && strings.IndexByte(" \t\r\n", raw[i]) >= 0 {
			i++
		}
		eq := bytes.IndexByte(raw[i:], '=')
		if eq < 0 {
			break
		}
		name := string(bytes.TrimSpace(raw[i : i+eq]))
		j := i + eq + 1
		for j < len(raw) && strings.IndexByte(" \t\r\n", raw[j]) >= 0 {
			j++
		}
		if j >= len(raw) || (raw[j] != '"' && raw[j] != '\'') {
			break
		}
		q := raw[j]
		close := bytes.IndexByte(raw[j+1:], q)
		if close < 0 {
			break
		}
		vStart, vEnd := j+1, j+1+close
		if v, ok := want[name]; ok {
			if s, ok := c.carry(v, base); ok {
				var esc bytes.Buffer
				xml.EscapeText(&esc, []byte(s))
				edits = append(edits, mpdEdit{offset + vStart, offset + vEnd, esc.String()})
			}
		}
		i = vEnd + 1
	}
	return edits
}
