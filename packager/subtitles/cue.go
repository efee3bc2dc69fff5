// Package subtitles reads text tracks (WebVTT, SRT, TTML/IMSC1 text profile) into one cue
// model, splits the cues along the media's segment boundaries, and writes them as segmented
// WebVTT for HLS and as CMAF wvtt segments for DASH (ISO/IEC 14496-30) or, for a TTML input,
// as CMAF stpp segments of IMSC1 text profile documents that keep its styling and regions.
//
// Times are integer milliseconds on the presentation timeline. WebVTT and SRT, the inputs
// nearly everyone has, and WebVTT, the only text format HLS carries, are millisecond-exact, so
// milliseconds lose nothing for them; a TTML time in frames or ticks is rounded to the nearest
// millisecond, at most 0.5 ms off — a thirtieth of a frame at 60 fps. The wvtt track uses the
// timescale 1000 (WvttTimescale) so its sample times are the cue times exactly. A rational of
// the media timescale would carry TTML's frames exactly but every writer would round it anyway.
package subtitles

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Cue is one timed piece of text.
type Cue struct {
	ID       string   // WebVTT cue identifier (SRT's counter is not kept: it is only an index)
	Start    int64    // ms
	End      int64    // ms, >= Start
	Settings Settings // WebVTT cue settings
	// Text is WebVTT cue text: inline markup (<i>, <b>, <u>, <c.x>, <v Name>, <ruby>, <lang>,
	// timestamps) kept as written, &amp; &lt; &gt; escaped, lines separated by "\n", no empty line.
	Text string
	Line int // the input line of the cue's timing (for messages about it later)
	// IMSC is the cue as TTML, for the IMSC1 documents of DASH's stpp track: set by ParseTTML,
	// nil for the other formats (the stpp writer then makes plain text of Text).
	IMSC *IMSCCue
}

// Settings are WebVTT cue settings, each the value as written after the colon (for example
// Line "0" or "10%,start", Position "50%,center"), empty when absent or invalid (the WebVTT
// parser ignores an invalid setting, and so do we).
type Settings struct {
	Vertical string // "rl" or "lr"
	Line     string
	Position string
	Size     string
	Align    string // start, center, end, left, right
	Region   string // a REGION's id
}

// String renders the settings as they follow the timing on a WebVTT cue line.
func (s Settings) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+":"+v)
		}
	}
	add("vertical", s.Vertical)
	add("line", s.Line)
	add("position", s.Position)
	add("size", s.Size)
	add("align", s.Align)
	add("region", s.Region)
	return strings.Join(parts, " ")
}

// Track is a parsed text track: its cues in input order (sorted by start time, stable) and
// the WebVTT header blocks that every output must carry for the cues to look as intended.
type Track struct {
	Regions []string // REGION blocks' settings lines, e.g. "id:fred width:40% lines:3"
	Styles  []string // STYLE blocks' CSS, without the STYLE line
	Cues    []Cue
	// IMSC is the TTML document's styling, regions and parameters (ParseTTML only; nil
	// otherwise): what IMSC1 documents carry and WebVTT cannot.
	IMSC *IMSCDoc
	// Warnings are what the input says that players will not show as meant, one line each,
	// "file:line: problem" (ParseTTML: a cue TTML players put in no region).
	Warnings []string
}

// finish ends every parser: it puts the cues in time order (input order among equal starts)
// and makes their identifiers unique, as WebVTT requires (and TTML's xml:id). Parsers accept a
// repeated identifier, but players keep one cue per identifier — hls.js adds a cue only if its
// track has none with the same one — so every cue after the first under it would never show.
// Such a cue gets the identifier with the smallest "-N" suffix no other cue has, and a warning.
func (t *Track) finish(name string) {
	taken := make(map[string]bool, len(t.Cues))
	for _, c := range t.Cues {
		if c.ID != "" {
			taken[c.ID] = true
		}
	}
	first := make(map[string]int, len(taken)) // identifier → the line of its first cue
	next := map[string]int{}                  // identifier → the suffix to try next (linear, not quadratic, in repeats)
	renamed := 0
	for i := range t.Cues {
		c := &t.Cues[i]
		if c.ID == "" {
			continue
		}
		line, seen := first[c.ID]
		if !seen {
			first[c.ID] = c.Line
			continue
		}
		id := c.ID
		for n := max(2, next[c.ID]); ; n++ {
			if id = c.ID + "-" + strconv.Itoa(n); !taken[id] {
				next[c.ID] = n + 1
				break
			}
		}
		taken[id] = true
		if renamed++; renamed <= maxRenameWarnings {
			t.Warnings = append(t.Warnings, fmt.Sprintf("%s:%d: cue identifier %q is the cue's at line %d already (players show one cue per identifier): renamed %q",
				name, c.Line, c.ID, line, id))
		}
		c.ID = id
	}
	if renamed > maxRenameWarnings {
		t.Warnings = append(t.Warnings, fmt.Sprintf("%s: %d more cues with a repeated identifier renamed", name, renamed-maxRenameWarnings))
	}
	slices.SortStableFunc(t.Cues, func(a, b Cue) int { return cmpInt(a.Start, b.Start) })
}

// maxRenameWarnings is how many renamed identifiers are named one by one; the rest are counted.
const maxRenameWarnings = 10

// Header is the WebVTT file header with the track's REGION and STYLE blocks: what precedes the
// cues of every HLS segment and what a wvtt sample entry's vttC box holds. extra lines (such
// as X-TIMESTAMP-MAP) go right after the WEBVTT line, where header metadata belongs.
func (t *Track) Header(extra ...string) string {
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	for _, e := range extra {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	for _, r := range t.Regions {
		b.WriteString("\nREGION\n")
		b.WriteString(r)
		b.WriteByte('\n')
	}
	for _, s := range t.Styles {
		b.WriteString("\nSTYLE\n")
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// PlainText is the cue text without markup and with entities decoded: what a viewer reads,
// and what tests compare with other tools' output.
func PlainText(text string) string {
	var b strings.Builder
	for i := 0; i < len(text); {
		switch c := text[i]; c {
		case '<':
			j := strings.IndexByte(text[i:], '>')
			if j < 0 {
				i = len(text)
				continue
			}
			i += j + 1
		case '&':
			done := false
			for ent, r := range entities {
				if strings.HasPrefix(text[i:], ent) {
					b.WriteString(r)
					i += len(ent)
					done = true
					break
				}
			}
			if !done {
				b.WriteByte(c)
				i++
			}
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

var entities = map[string]string{
	"&amp;": "&", "&lt;": "<", "&gt;": ">", "&lrm;": "\u200e", "&rlm;": "\u200f", "&nbsp;": "\u00a0",
}

// escapeText makes plain text safe as WebVTT cue text.
func escapeText(s string) string {
	return textEscaper.Replace(s)
}

var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
