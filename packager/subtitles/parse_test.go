package subtitles

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseVTT(t *testing.T) {
	tr, err := ParseVTT("ep3.vtt", []byte(vttSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Regions) != 1 || tr.Regions[0] != "id:bill\nwidth:40%\nlines:3\nregionanchor:0%,100%\nviewportanchor:10%,90%\nscroll:up" {
		t.Errorf("regions = %q", tr.Regions)
	}
	if len(tr.Styles) != 1 || tr.Styles[0] != "::cue(.yellow) { color: yellow; }\n::cue(v[voice=\"Esme\"]) { font-style: italic; }" {
		t.Errorf("styles = %q", tr.Styles)
	}
	want := []Cue{
		{ID: "intro", Start: 500, End: 2250, Line: 21, Settings: Settings{Align: "start", Line: "0", Position: "10%,line-left", Size: "80%"},
			Text: "<v Esme>Bonjour, <i>tout</i> le monde&nbsp;!\n<c.yellow>Second line</c> &amp; more"},
		{Start: 2250, End: 5999, Line: 25, Settings: Settings{Region: "bill"}, Text: "No identifier, minutes-only timing"},
		{ID: "long one", Start: 5000, End: 13040, Line: 29, Settings: Settings{Vertical: "rl", Line: "-2"}, Text: "A cue over several segments"},
		{Start: 13040, End: 13760, Line: 32, Settings: Settings{Line: "50%,center"}, Text: "<b>Short</b> <u>under</u> <ruby>漢<rt>kan</rt></ruby>"},
		{Start: 3600000, End: 3601001, Line: 35, Text: "An hour in"},
	}
	checkCues(t, tr.Cues, want)
}

func TestParseVTTLineEndings(t *testing.T) {
	// CR alone, CRLF, no final newline, a cue whose text runs into the next timing line (the
	// WebVTT parser starts a new cue there), a STYLE after a cue (ignored, as the spec says).
	in := "WEBVTT\r\rSTYLE\r::cue { color: red }\r\r00:01.000 --> 00:02.000\r\nfirst\r\n00:02.000 --> 00:03.000\nsecond\n\nSTYLE\n::cue { color: blue }"
	tr, err := ParseVTT("x.vtt", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	checkCues(t, tr.Cues, []Cue{{Start: 1000, End: 2000, Text: "first", Line: 6}, {Start: 2000, End: 3000, Text: "second", Line: 8}})
	if len(tr.Styles) != 1 || tr.Styles[0] != "::cue { color: red }" {
		t.Errorf("styles = %q, want only the one before the cues", tr.Styles)
	}
}

// TestParseVTTNoBlankAfterHeader: a timing line right under WEBVTT is a cue, as the WebVTT
// parser reads it (a header line with "-->" ends the header).
func TestParseVTTNoBlankAfterHeader(t *testing.T) {
	tr, err := ParseVTT("x.vtt", []byte("WEBVTT\n00:01.000 --> 00:02.000\nright away\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkCues(t, tr.Cues, []Cue{{Start: 1000, End: 2000, Text: "right away", Line: 2}})
}

// TestParseSRTMissingBlankLines: cues run together without their blank lines still part at
// each timing line, with or without a counter before it.
func TestParseSRTMissingBlankLines(t *testing.T) {
	in := "1\n00:00:01,000 --> 00:00:02,000\none\n2\n00:00:02,000 --> 00:00:03,000\ntwo\n00:00:03,000 --> 00:00:04,000\n3 apples\n"
	tr, err := ParseSRT("x.srt", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	checkCues(t, tr.Cues, []Cue{
		{Start: 1000, End: 2000, Text: "one", Line: 2},
		{Start: 2000, End: 3000, Text: "two", Line: 5},
		{Start: 3000, End: 4000, Text: "3 apples", Line: 7},
	})
}

func TestParseSRT(t *testing.T) {
	tr, err := ParseSRT("film.srt", []byte(srtSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []Cue{
		{Start: 480, End: 2250, Line: 2, Text: "<i>Where are you going?</i>"},
		{Start: 2250, End: 5000, Line: 6, Text: "To the <b>market</b>,\nthen home."},
		{Start: 5000, End: 6100, Line: 12, Settings: Settings{Line: "0"}, Text: "Signs &amp; wonders &lt;3"},
		{Start: 6100, End: 9876, Line: 15, Text: "<i>Unclosed italics\nover two lines</i>"},
		{Start: 12000, End: 14500, Line: 20, Text: "- Who's there?\n- Me."},
	}
	checkCues(t, tr.Cues, want)
}

func TestParseTTML(t *testing.T) {
	tr, err := ParseTTML("show.ttml", []byte(ttmlSample))
	if err != nil {
		t.Fatal(err)
	}
	bottom := Settings{Align: "center", Line: "90%,end", Position: "10%,line-left", Size: "80%"}
	// 00:00:01:15 at 29.97 fps: 1 s + 15 × 1001/30000 s = 1500.5 ms → 1501 (nearest).
	// 165f: 165 × 1001/30000 s = 5505.5 ms → 5506. 3 s exactly: 00:00:03:00.
	want := []Cue{
		{ID: "c1", Start: 1501, End: 3000, Line: 17, Settings: bottom, Text: "Clock time\nwith frames"},
		{ID: "c2", Start: 3000, End: 5500, Line: 18, Settings: bottom, Text: "<i>Ticks, and a <b>bold</b> word</i>"},
		{Start: 5506, End: 6200, Line: 19, Settings: bottom, Text: "<c.color_yellow>Yellow</c> text, collapsed spaces"},
		{Start: 11500, End: 14250, Line: 23, Settings: bottom, Text: "Offset by the div &amp; escaped &lt;here&gt;"},
	}
	checkCues(t, tr.Cues, want)
	// The TTML kept for stpp: the <p>'s attributes without timing, its content, its <div>
	// (the second one's begin gone: the cue's times are absolute), the head and the body.
	imsc := []IMSCCue{
		{Divs: []string{""}, P: ` xml:id="c1"`, Content: "Clock time<br/>with frames"},
		{Divs: []string{""}, P: ` xml:id="c2" style="it"`, Content: `Ticks, and a <span tts:fontWeight="bold">bold</span> word`},
		{Divs: []string{""}, Content: "<span tts:color=\"yellow\">Yellow</span>   text,\n         collapsed   spaces"},
		{Divs: []string{""}, Content: "Offset by the div &amp; escaped &lt;here&gt;"},
	}
	for i, c := range tr.Cues {
		if i < len(imsc) && !c.IMSC.equal(&imsc[i]) {
			t.Errorf("cue %d TTML %+v, want %+v", i, c.IMSC, imsc[i])
		}
	}
	wantDoc := IMSCDoc{Lang: "en", Body: ` region="bottom" style="base"`,
		Head: `<styling><style xml:id="base" tts:color="white" tts:textAlign="center"/><style xml:id="it" style="base" tts:fontStyle="italic"/></styling>` +
			`<layout><region xml:id="bottom" tts:origin="10% 80%" tts:extent="80% 10%" tts:displayAlign="after"/></layout>`}
	if tr.IMSC == nil || *tr.IMSC != wantDoc {
		t.Errorf("TTML document %+v, want %+v", tr.IMSC, wantDoc)
	}
	if len(tr.Styles) != 1 || tr.Styles[0] != "::cue(.color_yellow) { color: yellow; }" {
		t.Errorf("styles = %q", tr.Styles)
	}
}

func TestTTMLTimeExpressions(t *testing.T) {
	p := ttmlParams{subFrameRate: 2, tickRate: 90000}
	p.frameRate = ratOf(25, 1)
	for in, want := range map[string]int64{
		"00:00:01.5": 1500, "01:02:03.004": 3723004, "00:00:00:12": 480, "00:00:00:12.1": 500,
		"1.5h": 5400000, "2m": 120000, "2.25s": 2250, "40ms": 40, "50f": 2000, "180000t": 2000, "1t": 0,
	} {
		got, err := p.time(in)
		if err != nil || got != want {
			t.Errorf("time(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// checkCues compares cues field by field, saying which cue differs.
func checkCues(t *testing.T, got, want []Cue) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d cues, want %d: %+v", len(got), len(want), got)
	}
	for i := range min(len(got), len(want)) {
		g := got[i]
		g.IMSC = nil // compared by the tests that look at the TTML (TestParseTTML)
		if g != want[i] {
			t.Errorf("cue %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestDuplicateCueIdentifiers: WebVTT requires each cue identifier to be unique (as XML does
// TTML's xml:id), and players keep one cue per identifier (hls.js adds a cue only if its track
// has none with that identifier), so a repeated one would hide every cue after the first under
// it. Later cues get the smallest free "-N" suffix — never one another cue has — and a warning.
func TestDuplicateCueIdentifiers(t *testing.T) {
	vtt := "WEBVTT\n\na\n00:01.000 --> 00:02.000\none\n\na\n00:03.000 --> 00:04.000\ntwo\n\n" +
		"a-2\n00:05.000 --> 00:06.000\nthree\n\nb\n00:00.500 --> 00:00.900\nfour\n\na\n00:07.000 --> 00:08.000\nfive\n"
	tr, err := ParseVTT("dup.vtt", []byte(vtt))
	if err != nil {
		t.Fatal(err)
	}
	checkCues(t, tr.Cues, []Cue{
		{ID: "b", Start: 500, End: 900, Line: 16, Text: "four"},
		{ID: "a", Start: 1000, End: 2000, Line: 4, Text: "one"},
		{ID: "a-3", Start: 3000, End: 4000, Line: 8, Text: "two"},
		{ID: "a-2", Start: 5000, End: 6000, Line: 12, Text: "three"},
		{ID: "a-4", Start: 7000, End: 8000, Line: 20, Text: "five"},
	})
	want := []string{
		`dup.vtt:8: cue identifier "a" is the cue's at line 4 already (players show one cue per identifier): renamed "a-3"`,
		`dup.vtt:20: cue identifier "a" is the cue's at line 4 already (players show one cue per identifier): renamed "a-4"`,
	}
	if !slices.Equal(tr.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(tr.Warnings, "\n"), strings.Join(want, "\n"))
	}

	// Many repeats: every identifier distinct, the warnings bounded (a file of one repeated
	// identifier is neither slow — no quadratic search for a free suffix — nor a flood of log lines).
	var b strings.Builder
	b.WriteString("WEBVTT\n")
	const many = 50000
	for i := range many {
		fmt.Fprintf(&b, "\nx\n%s --> %s\nline\n", FormatTime(int64(i)*10), FormatTime(int64(i)*10+5))
	}
	tr, err = ParseVTT("many.vtt", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range tr.Cues {
		ids[c.ID] = true
	}
	if len(ids) != many || !ids["x"] || !ids["x-2"] || !ids[fmt.Sprintf("x-%d", many)] {
		t.Errorf("%d distinct identifiers among %d cues, want all distinct: x, x-2 … x-%d", len(ids), len(tr.Cues), many)
	}
	if n := len(tr.Warnings); n != maxRenameWarnings+1 || tr.Warnings[n-1] != fmt.Sprintf("many.vtt: %d more cues with a repeated identifier renamed", many-1-maxRenameWarnings) {
		t.Errorf("%d warnings, the last %q", n, tr.Warnings[n-1])
	}

	ttml := `<tt xmlns="http://www.w3.org/ns/ttml"><body><div>
<p xml:id="s1" begin="1s" end="2s">one</p>
<p xml:id="s1" begin="3s" end="4s">two</p>
</div></body></tt>`
	tr, err = ParseTTML("dup.ttml", []byte(ttml))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Cues) != 2 || tr.Cues[0].ID != "s1" || tr.Cues[1].ID != "s1-2" || len(tr.Warnings) != 1 ||
		!strings.HasPrefix(tr.Warnings[0], `dup.ttml:3: cue identifier "s1" is the cue's at line 2 already`) {
		t.Errorf("TTML: cues %+v, warnings %q", tr.Cues, tr.Warnings)
	}
}
