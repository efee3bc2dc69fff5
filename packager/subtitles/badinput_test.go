package subtitles

import (
	"errors"
	"strings"
	"testing"
)

const ttHead = `<?xml version="1.0"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" xmlns:tts="http://www.w3.org/ns/ttml#styling"`

// TestBadInput: each malformed file is refused with one line naming the file, the line and
// the problem.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"a.vtt", "", `a.vtt:1: missing the WEBVTT signature (first line is "")`},
		{"a.vtt", "WEBVTTX\n\n00:01.000 --> 00:02.000\nhi\n", `a.vtt:1: missing the WEBVTT signature (first line is "WEBVTTX")`},
		{"a.vtt", "1\n00:00:01.000 --> 00:00:02.000\nhi\n", `a.vtt:1: missing the WEBVTT signature (first line is "1")`},
		{"a.vtt", "WEBVTT\n\n00:00:01.5x0 --> 00:00:02.000\nhi\n", `a.vtt:3: timestamp "00:00:01.5x0": bad milliseconds`},
		{"a.vtt", "WEBVTT\n\n00:00:01,000 --> 00:00:02.000\nhi\n", `a.vtt:3: timestamp "00:00:01,000": want a dot and three digits of milliseconds`},
		{"a.vtt", "WEBVTT\n\nid\n00:60:01.000 --> 01:00:02.000\nhi\n", `a.vtt:4: timestamp "00:60:01.000": bad minutes`},
		{"a.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\n0:03.000 --> 00:04.000\nhi\n", `a.vtt:6: timestamp "0:03.000": bad minutes`},
		{"a.vtt", "WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nhi\n", `a.vtt:3: cue ends (00:00:02.000) before it starts (00:00:05.000)`},
		{"a.vtt", "WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhi\n", `a.vtt:3: text outside a cue (no timing line with "-->"): "00:00:01.000 -> 00:00:02.000"`},
		{"a.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000garbage\nhi\n", `a.vtt:3: timestamp "00:00:02.000garbage": bad milliseconds`},
		{"a.vtt", "WEBVTT\n\n00:00:01.000 00:00:02.000 -->\nhi\n", `a.vtt:3: timing "00:00:01.000 00:00:02.000 -->": want "-->" after the start time`},

		{"file.srt", "1\n00:01:02,5x0 --> 00:01:03,000\nhi\n", `file.srt:2: timestamp "00:01:02,5x0": bad milliseconds`},
		{"file.srt", "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:03,00 --> 00:00:04,000\nho\n", `file.srt:6: timestamp "00:00:03,00": bad milliseconds`},
		{"file.srt", "1\n00:00:01 --> 00:00:02\nhi\n", `file.srt:2: timestamp "00:00:01": want a comma and three digits of milliseconds`},
		{"file.srt", "1\nhello\n", `file.srt:2: want a timing line "hh:mm:ss,mmm --> hh:mm:ss,mmm" after cue number 1, got "hello"`},
		{"file.srt", "1\n", `file.srt:2: want a timing line "hh:mm:ss,mmm --> hh:mm:ss,mmm" after cue number 1, got end of file`},
		{"file.srt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n", `file.srt:1: want a cue number or a timing line, got "WEBVTT"`},
		{"file.srt", "\uFEFF\r\n\r\n", `file.srt: no cues`},
		{"file.srt", "1\n00:00:03,000 --> 00:00:01,000\nhi\n", `file.srt:2: cue ends (00:00:01.000) before it starts (00:00:03.000)`},
		{"file.srt", "1\n00:00:01,000 --> 00:00:02,000\nd\xe9j\xe0 vu\n", `file.srt:3: not UTF-8 text (Windows-1252 or Latin-1?): save the file as UTF-8`},

		{"a.ttml", ttHead + ">\n<body>\n<p begin=\"1s\" end=\"2s\">hi</body></tt>", `a.ttml:4: XML: element <p> closed by </body>`},
		{"a.ttml", "<?xml version=\"1.0\"?>\n<html><body/></html>", `a.ttml:2: not a TTML document: the root element is <html>, want <tt> in http://www.w3.org/ns/ttml`},
		{"a.ttml", ttHead + "\n ttp:profile=\"http://www.w3.org/ns/ttml/profile/imsc1/image\">\n<body/></tt>", `a.ttml:3: IMSC1 image profile (subtitles as pictures) is not supported: give the text profile`},
		{"a.ttml", ttHead + " xmlns:smpte=\"http://www.smpte-ra.org/schemas/2052-1/2010/smpte\">\n<body>\n<div begin=\"1s\" end=\"2s\" smpte:backgroundImage=\"#img1\"/>\n</body></tt>", `a.ttml:4: IMSC1 image profile (subtitles as pictures) is not supported: give the text profile`},
		{"a.ttml", ttHead + "\n ttp:contentProfiles=\"http://www.w3.org/ns/ttml/profile/imsc1.1/image\">\n<body/></tt>", `a.ttml:3: IMSC1 image profile (subtitles as pictures) is not supported: give the text profile`},
		{"a.ttml", ttHead + ">\n<body>\n<div>\n<p begin=\"1.2.3s\" end=\"2s\">hi</p></div></body></tt>", `a.ttml:5: <p begin>: time "1.2.3s": want clock time hh:mm:ss.fff or hh:mm:ss:ff, or offset time like 12.5s, 300f, 9000000t`},
		{"a.ttml", ttHead + ">\n<body>\n<p begin=\"1s\">no end</p></body></tt>", `a.ttml:4: <p> has no end: give it (or its <div> or <body>) an end or a dur`},
		{"a.ttml", ttHead + ">\n<body>\n<p begin=\"1s\" end=\"5s\">a <span begin=\"2s\">b</span></p></body></tt>", `a.ttml:4: timing on <span> (begin) is not supported: time the <p>`},
		{"a.ttml", ttHead + " ttp:timeBase=\"smpte\">\n<body/></tt>", `a.ttml:2: ttp:timeBase "smpte" is not supported (only media)`},
		{"a.ttml", ttHead + " ttp:frameRate=\"0\">\n<body/></tt>", `a.ttml:2: ttp:frameRate "0": want a positive integer`},
		{"a.ttml", ttHead + ">\n<body>\n<p begin=\"5s\" end=\"2s\">hi</p></body></tt>", `a.ttml:4: <p> ends (00:00:02.000) before it begins (00:00:05.000)`},
	} {
		_, err := Parse(tc.name, []byte(tc.in))
		if err == nil {
			t.Errorf("%s %q: no error, want %s", tc.name, tc.in, tc.want)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%s %q: error %v is not a *ParseError", tc.name, tc.in, err)
		}
		if err.Error() != tc.want {
			t.Errorf("%s %q:\n got %s\nwant %s", tc.name, tc.in, err, tc.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is more than one line: %q", tc.name, err)
		}
	}
}
