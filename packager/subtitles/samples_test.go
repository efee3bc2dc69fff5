package subtitles

import "strings"

// Real-world-shaped inputs, written for these tests: the quirks each format has in the wild.

// vttSample: a header with metadata, REGION and STYLE blocks, a NOTE, identifiers, every kind of
// cue setting (one invalid, ignored), inline markup, a cue crossing many segments, a cue with
// hours omitted, and a cue with an unknown setting.
const vttSample = "\uFEFFWEBVTT - Episode 3\nKind: captions\nLanguage: fr\n\n" +
	"REGION\nid:bill\nwidth:40%\nlines:3\nregionanchor:0%,100%\nviewportanchor:10%,90%\nscroll:up\n\n" +
	"STYLE\n::cue(.yellow) { color: yellow; }\n::cue(v[voice=\"Esme\"]) { font-style: italic; }\n\n" +
	"NOTE this file was written by hand\nwith two lines of note\n\n" +
	"intro\n00:00:00.500 --> 00:00:02.250 align:start line:0 position:10%,line-left size:80%\n<v Esme>Bonjour, <i>tout</i> le monde&nbsp;!\n<c.yellow>Second line</c> &amp; more\n\n" +
	"00:02.250 --> 00:00:05.999 region:bill\nNo identifier, minutes-only timing\n\n" +
	"long one\n00:00:05.000 --> 00:00:13.040 vertical:rl line:-2 align:bogus\nA cue over several segments\n\n" +
	"00:00:13.040 --> 00:00:13.760 line:50%,center foo:bar\n<b>Short</b> <u>under</u> <ruby>漢<rt>kan</rt></ruby>\n\n" +
	"01:00:00.000 --> 01:00:01.001\nAn hour in\n"

// srtSample: a BOM, CRLF, a dot before the milliseconds once, a one-digit hour, HTML-ish tags
// (<i>, <b>, <font>, an unclosed <i>), an {\an8} override, < and & in text, a missing counter,
// extra blank lines, no final blank line.
var srtSample = "\uFEFF" + strings.ReplaceAll(`1
00:00:00,480 --> 00:00:02,250
<i>Where are you going?</i>

2
00:00:02,250 --> 00:00:05,000
<font color="#ffff00">To the <b>market</b></font>,
then home.


3
00:00:05.000 --> 00:00:06,100
{\an8}Signs & wonders <3

00:00:06,100 --> 00:00:09,876 X1:100 X2:600 Y1:50 Y2:100
<i>Unclosed italics
over two lines

5
0:00:12,000 --> 0:00:14,500
- Who's there?
- Me.`, "\n", "\r\n")

// ttmlSample: IMSC1 text profile with a 30000/1001 frame rate, clock time with frames, offset
// times in ticks, seconds and frames, a <div> offset, dur, styles by reference and inline,
// colour, a region at the bottom, spans and a line break.
const ttmlSample = `<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"
    xmlns:tts="http://www.w3.org/ns/ttml#styling" xmlns:ttm="http://www.w3.org/ns/ttml#metadata"
    ttp:profile="http://www.w3.org/ns/ttml/profile/imsc1/text"
    ttp:frameRate="30" ttp:frameRateMultiplier="1000 1001" ttp:tickRate="10000000" xml:lang="en">
  <head>
    <styling>
      <style xml:id="base" tts:color="white" tts:textAlign="center"/>
      <style xml:id="it" style="base" tts:fontStyle="italic"/>
    </styling>
    <layout>
      <region xml:id="bottom" tts:origin="10% 80%" tts:extent="80% 10%" tts:displayAlign="after"/>
    </layout>
  </head>
  <body region="bottom" style="base">
    <div>
      <p xml:id="c1" begin="00:00:01:15" end="00:00:03:00">Clock time<br/>with frames</p>
      <p xml:id="c2" begin="30000000t" dur="2.5s" style="it">Ticks, and a <span tts:fontWeight="bold">bold</span> word</p>
      <p begin="165f" end="6.2s"><span tts:color="yellow">Yellow</span>   text,
         collapsed   spaces</p>
    </div>
    <div begin="10s">
      <p begin="1.5s" end="00:00:04.25">Offset by the div &amp; escaped &lt;here&gt;</p>
    </div>
  </body>
</tt>
`
