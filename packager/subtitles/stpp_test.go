package subtitles

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// stppSegments writes tr as an stpp track cut every 2 s up to end ms (init segment and one
// segment per cut) and decodes it with mp4ff: the init segment, and the samples in order.
func stppSegments(t *testing.T, tr *Track, lang string, end int64) (*mp4.InitSegment, []mp4.FullSample, [][]byte) {
	t.Helper()
	var starts []int64
	for s := int64(0); s < end; s += 2000 {
		starts = append(starts, s)
	}
	segs, err := Split(tr.Cues, starts, end)
	if err != nil {
		t.Fatal(err)
	}
	init, err := StppInit(lang)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(init))
	if err != nil || f.Init == nil {
		t.Fatalf("init segment does not decode: %v", err)
	}
	var samples []mp4.FullSample
	var docs [][]byte
	for i, cues := range segs {
		s := starts[i]
		e := min(s+2000, end)
		var buf bytes.Buffer
		if err := WriteStppSegment(&buf, tr, lang, uint32(i+1), s, e, cues); err != nil {
			t.Fatal(err)
		}
		sf, err := mp4.DecodeFile(bytes.NewReader(buf.Bytes()))
		if err != nil || len(sf.Segments) != 1 || len(sf.Segments[0].Fragments) != 1 {
			t.Fatalf("segment %d does not decode as one fragment: %v", i, err)
		}
		fs, err := sf.Segments[0].Fragments[0].GetFullSamples(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 1 || fs[0].DecodeTime != uint64(s) || fs[0].Dur != uint32(e-s) {
			t.Fatalf("segment %d: %d samples, want one spanning [%d, %d) ms", i, len(fs), s, e)
		}
		samples = append(samples, fs...)
		docs = append(docs, fs[0].Data)
	}
	return f.Init, samples, docs
}

// TestStppRoundTrip writes the TTML sample as stpp segments and reads it back: every cue with
// its times (exact: both sides are ms), id, WebVTT text and settings, and its TTML; the styles
// and the region come through; the sample entry says IMSC1; an empty segment is a document.
func TestStppRoundTrip(t *testing.T) {
	in, err := ParseTTML("sample.ttml", []byte(ttmlSample))
	if err != nil {
		t.Fatal(err)
	}
	init, samples, docs := stppSegments(t, in, "en", 16000)

	trak := init.Moov.Trak
	if h := trak.Mdia.Hdlr.HandlerType; h != "subt" {
		t.Errorf("handler %q, want subt", h)
	}
	if trak.Mdia.Minf.Sthd == nil {
		t.Errorf("no subtitle media header (sthd)")
	}
	if l := trak.Mdia.Mdhd.GetLanguage(); l != "eng" {
		t.Errorf("mdhd language %q, want eng", l)
	}
	stpp := trak.Mdia.Minf.Stbl.Stsd.Stpp
	if stpp == nil {
		t.Fatal("no stpp sample entry")
	}
	if !strings.HasPrefix(stpp.Namespace, nsTT+" ") {
		t.Errorf("stpp namespace %q does not start with TTML's", stpp.Namespace)
	}
	var mime string
	for _, c := range stpp.Children {
		if m, ok := c.(*mp4.MimeBox); ok {
			mime = m.ContentType
		}
	}
	if mime != StppMimeType {
		t.Errorf("stpp mime %q, want %q", mime, StppMimeType)
	}

	// 8–10 s holds no cue: a document all the same, its body empty.
	empty := string(docs[4])
	if !strings.Contains(empty, `ttp:profile="`+IMSC1TextProfile+`"`) || strings.Contains(empty, "<p") {
		t.Errorf("segment 8–10 s: want an IMSC1 document without <p>:\n%s", empty)
	}
	// The cue 11.5–14.25 s is clipped at 12 s and 14 s, its times on the media timeline.
	if d := string(docs[6]); !strings.Contains(d, `begin="00:00:12.000" end="00:00:14.000"`) {
		t.Errorf("segment 12–14 s lacks the clipped cue:\n%s", d)
	}

	back, err := CuesFromStpp(samples, StppTimescale)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Cues) != len(in.Cues) {
		t.Fatalf("%d cues back, want %d", len(back.Cues), len(in.Cues))
	}
	for i, c := range back.Cues {
		o := in.Cues[i]
		if c.Start != o.Start || c.End != o.End || c.ID != o.ID || c.Text != o.Text || c.Settings != o.Settings || !c.IMSC.equal(o.IMSC) {
			t.Errorf("cue %d back as\n%+v %+v\nwant\n%+v %+v", i, c, c.IMSC, o, o.IMSC)
		}
	}
	// The styled cue keeps its style reference and bold span, and the document its styles and
	// region: what a TTML renderer needs, beyond the WebVTT rendering of them.
	c2 := back.Cues[1]
	if c2.ID != "c2" || !strings.Contains(c2.IMSC.P, `style="it"`) || !strings.Contains(c2.IMSC.Content, `<span tts:fontWeight="bold">bold</span>`) {
		t.Errorf("styled cue back as %+v %+v", c2, c2.IMSC)
	}
	if !strings.HasPrefix(c2.Text, "<i>") {
		t.Errorf("styled cue's WebVTT text %q: want it italic", c2.Text)
	}
	for _, want := range []string{`<style xml:id="it" style="base" tts:fontStyle="italic"/>`,
		`<region xml:id="bottom" tts:origin="10% 80%" tts:extent="80% 10%" tts:displayAlign="after"/>`} {
		if !strings.Contains(back.IMSC.Head, want) {
			t.Errorf("head lacks %s:\n%s", want, back.IMSC.Head)
		}
	}
	if back.IMSC.Lang != "en" || !strings.Contains(back.IMSC.Body, `region="bottom"`) {
		t.Errorf("document back as %+v", back.IMSC)
	}
	if c2.Settings.Line == "" || c2.Settings.Line != in.Cues[1].Settings.Line {
		t.Errorf("region position lost: line %q, want %q", c2.Settings.Line, in.Cues[1].Settings.Line)
	}
}

// TestStppPlainCues: cues of a WebVTT input (no TTML of their own) come out as their text in
// plain <p>s, under the track's language, and read back with their times.
func TestStppPlainCues(t *testing.T) {
	in, err := ParseVTT("sample.vtt", []byte(vttSample))
	if err != nil {
		t.Fatal(err)
	}
	doc := IMSCDocument(in, "fr", 0, 14000, in.Cues)
	if !bytes.Contains(doc, []byte(`xml:lang="fr"`)) {
		t.Errorf("no xml:lang=fr:\n%s", doc)
	}
	back, err := ParseTTML("doc.ttml", doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	var want []Cue
	for _, c := range in.Cues {
		if c.Start < 14000 {
			want = append(want, c)
		}
	}
	if len(back.Cues) != len(want) {
		t.Fatalf("%d cues back, want %d\n%s", len(back.Cues), len(want), doc)
	}
	for i, c := range back.Cues {
		o := want[i]
		if c.Start != o.Start || c.End != min(o.End, 14000) || PlainText(c.Text) != PlainText(o.Text) {
			t.Errorf("cue %d back as %d–%d %q, want %d–%d %q", i, c.Start, c.End, c.Text, o.Start, o.End, o.Text)
		}
	}
}

// TestStppRefusesStrayCue: a document whose cue lies outside its sample is an error, not a
// cue at the wrong time.
func TestStppRefusesStrayCue(t *testing.T) {
	in, err := ParseTTML("sample.ttml", []byte(ttmlSample))
	if err != nil {
		t.Fatal(err)
	}
	doc := IMSCDocument(in, "en", 0, 4000, in.Cues)
	_, err = CuesFromStpp([]mp4.FullSample{{Sample: mp4.Sample{Dur: 2000}, DecodeTime: 2000, Data: doc}}, StppTimescale)
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("got %v, want a cue outside its sample", err)
	}
}

// TestTTMLRegionWarnings: a cue TTML players put in no region (none named while regions are
// declared, a region other than its ancestor's, an undeclared one) is a warning naming the
// file and the <p>'s line; the cue is kept (WebVTT shows it). The samples have none.
func TestTTMLRegionWarnings(t *testing.T) {
	layout := `><head><layout><region xml:id="top" tts:origin="10% 5%" tts:extent="80% 20%"/><region xml:id="bottom" tts:origin="10% 75%" tts:extent="80% 20%"/></layout></head>` + "\n"
	for _, tc := range []struct{ body, want string }{
		{`<body><div region="bottom"><p begin="1s" end="2s">a</p></div><div region="top"><p region="top" begin="2s" end="3s">b</p></div></body>`, ""},
		{`<body><div>` + "\n" + `<p begin="1s" end="2s">a</p></div></body>`, `r.ttml:4: <p> in no region while the document declares regions`},
		{`<body region="bottom"><div>` + "\n" + `<p region="top" begin="1s" end="2s">a</p></div></body>`, `r.ttml:4: <p> in region "top" inside an element of region "bottom": TTML players show it in neither`},
		{`<body><div region="side">` + "\n" + `<p begin="1s" end="2s">a</p></div></body>`, `r.ttml:4: <p> in region "side", which <layout> does not declare`},
	} {
		tr, err := ParseTTML("r.ttml", []byte(ttHead+layout+tc.body+"</tt>"))
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Cues) == 0 {
			t.Errorf("%s: the cue was dropped", tc.body)
		}
		switch {
		case tc.want == "" && len(tr.Warnings) > 0:
			t.Errorf("%s: warnings %q, want none", tc.body, tr.Warnings)
		case tc.want != "" && (len(tr.Warnings) != 1 || !strings.HasPrefix(tr.Warnings[0], tc.want)):
			t.Errorf("%s: warnings %q, want one starting %q", tc.body, tr.Warnings, tc.want)
		}
	}
	for name, data := range map[string]string{"sample.ttml": ttmlSample, "ladder.de.ttml": readSample(t, "ladder.de.ttml")} {
		if tr, err := ParseTTML(name, []byte(data)); err != nil || len(tr.Warnings) > 0 {
			t.Errorf("%s: %v, warnings %q", name, err, tr.Warnings)
		}
	}
}

func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "samples", "subs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
