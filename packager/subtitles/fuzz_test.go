package subtitles

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// checkParsed is what every parser promises for any input: an error that is one *ParseError
// line naming the file, or cues in order with sane times that come back the same through the
// segmented WebVTT writer and ParseVTT, and that the wvtt writer takes.
func checkParsed(t *testing.T, name string, tr *Track, err error) {
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), name+":") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("error %q: want one line starting %q, a *ParseError", err, name+":")
		}
		return
	}
	var end int64
	ids := map[string]bool{}
	for i, c := range tr.Cues {
		if c.Start < 0 || c.End < c.Start || i > 0 && c.Start < tr.Cues[i-1].Start {
			t.Fatalf("cue %d: %d–%d (previous starts %d)", i, c.Start, c.End, tr.Cues[max(i-1, 0)].Start)
		}
		if c.ID != "" && ids[c.ID] {
			t.Fatalf("cue %d: identifier %q names an earlier cue too", i, c.ID)
		}
		ids[c.ID] = true
		end = max(end, c.End)
	}
	var buf bytes.Buffer
	if err := WriteHLSSegment(&buf, tr, tr.Cues, 0); err != nil {
		t.Fatal(err)
	}
	back, err := ParseVTT("back.vtt", buf.Bytes())
	if err != nil {
		t.Fatalf("our WebVTT does not read back: %v\n%s", err, buf.String())
	}
	if len(back.Cues) != len(tr.Cues) {
		t.Fatalf("%d cues read back, want %d\n%s", len(back.Cues), len(tr.Cues), buf.String())
	}
	for i, c := range back.Cues {
		o := tr.Cues[i]
		if c.Start != o.Start || c.End != o.End || c.Text != cueText(o.Text) || c.ID != cueID(o.ID) || c.Settings != o.Settings {
			t.Fatalf("cue %d read back as %+v, want %+v", i, c, o)
		}
	}
	segEnd := min(end+1, math.MaxUint32) // one sample lasts at most 2^32-1 ms (WriteWvttSegment refuses more)
	buf.Reset()
	if err := WriteWvttSegment(&buf, 1, 0, segEnd, tr.Cues); err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := f.Segments[0].Fragments[0].GetFullSamples(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CuesFromWvtt(fs, WvttTimescale); err != nil {
		t.Fatal(err)
	}
	checkIMSC(t, tr, end+1)
}

// checkIMSC: the IMSC1 document the stpp writer makes of any parsed track reads back with
// ParseTTML as the same cues — times, ids, WebVTT text and settings, and (from TTML) the
// same TTML.
func checkIMSC(t *testing.T, tr *Track, end int64) {
	doc := IMSCDocument(tr, "en", 0, end, tr.Cues)
	back, err := ParseTTML("back.ttml", doc)
	if err != nil {
		t.Fatalf("our IMSC1 document does not read back: %v\n%s", err, doc)
	}
	// A cue of another format as the writer takes it: the words of each line (TTML collapses
	// spaces; a tag left open ends with its line; what XML cannot hold is U+FFFD). One whose
	// text is all markup shows nothing, and TTML has no cue then.
	words := func(text string) string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			out = append(out, strings.Fields(xmlChars(PlainText(l)))...)
		}
		return strings.Join(out, " ")
	}
	want := slices.DeleteFunc(slices.Clone(tr.Cues), func(c Cue) bool { return c.IMSC == nil && words(c.Text) == "" })
	if len(back.Cues) != len(want) {
		t.Fatalf("%d cues read back, want %d\n%s", len(back.Cues), len(want), doc)
	}
	for i, c := range back.Cues {
		o := want[i]
		if c.Start != o.Start || c.End != o.End {
			t.Fatalf("cue %d read back at %d–%d, want %d–%d\n%s", i, c.Start, c.End, o.Start, o.End, doc)
		}
		if tr.IMSC == nil {
			if words(c.Text) != words(o.Text) {
				t.Fatalf("cue %d read back as %q, want %q\n%s", i, c.Text, o.Text, doc)
			}
			continue
		}
		if c.ID != o.ID || c.Text != o.Text || c.Settings != o.Settings || !c.IMSC.equal(o.IMSC) {
			t.Fatalf("cue %d read back as\n%+v %+v\nwant\n%+v %+v\n%s", i, c, c.IMSC, o, o.IMSC, doc)
		}
	}
}

func FuzzParseVTT(f *testing.F) {
	f.Add([]byte(vttSample))
	f.Add([]byte("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n"))
	f.Add([]byte("WEBVTT\r\rid\r00:00:01.000 --> 00:00:02.000 line:0 align:end\r<i>x</i>\r\r"))
	f.Add([]byte("WEBVTT\n\na\n00:01.000 --> 00:02.000\none\n\na\n00:01.000 --> 00:02.000\ntwo\n\na-2\n00:03.000 --> 00:04.000\nthree\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseVTT("f.vtt", data)
		checkParsed(t, "f.vtt", tr, err)
	})
}

func FuzzParseSRT(f *testing.F) {
	f.Add([]byte(srtSample))
	f.Add([]byte("1\n00:00:01,000 --> 00:00:02,000\n<i>hi</b>\n"))
	f.Add([]byte("00:00:01.000 --> 00:00:02,000\n{\\an8}<font color=red>x</font> & <y>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseSRT("f.srt", data)
		checkParsed(t, "f.srt", tr, err)
	})
}

func FuzzParseTTML(f *testing.F) {
	f.Add([]byte(ttmlSample))
	f.Add([]byte(ttHead + ` ttp:tickRate="90000"><body dur="10s"><div begin="1s"><p begin="900t" end="00:00:02:10">a<br/>b <span tts:fontStyle="italic">c</span></p></div></body></tt>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTTML("f.ttml", data)
		checkParsed(t, "f.ttml", tr, err)
	})
}

// FuzzStpp feeds any bytes to the stpp reader as a sample: an error or cues inside the sample,
// which the writer writes back as the same cues.
func FuzzStpp(f *testing.F) {
	tr, err := ParseTTML("seed.ttml", []byte(ttmlSample))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(IMSCDocument(tr, "en", 0, 20000, tr.Cues))
	f.Add(IMSCDocument(tr, "en", 4000, 6000, tr.Cues))
	f.Add([]byte(ttHead + `><body><div><p begin="1s" end="2s">a</p></div></body></tt>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		back, err := CuesFromStpp([]mp4.FullSample{{Sample: mp4.Sample{Dur: 20000}, Data: data}}, StppTimescale)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is more than one line", err)
			}
			return
		}
		for _, c := range back.Cues {
			if c.Start < 0 || c.End > 20000 || c.End < c.Start {
				t.Fatalf("cue %d–%d outside the sample [0, 20000)", c.Start, c.End)
			}
		}
		checkIMSC(t, back, 20000)
	})
}

// xmlChars is s with each character XML 1.0 cannot hold (§2.2 Char), and each byte of
// invalid UTF-8, as U+FFFD.
func xmlChars(s string) string {
	var b strings.Builder
	for _, r := range s { // an invalid byte comes as utf8.RuneError, U+FFFD
		if !(r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			r = '\uFFFD'
		}
		b.WriteRune(r)
	}
	return b.String()
}
