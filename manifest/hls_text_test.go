package manifest

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// A presentation without text or captions renders what it did before text existed, byte for
// byte; once the packager says it looked for captions (CaptionsChecked), every variant also
// says CLOSED-CAPTIONS=NONE (Apple's authoring specification asks for the attribute; RFC 8216
// §4.3.4.2). The files in testdata/notext are the output of the writers before issue 16,
// verbatim.
func TestNoTextUnchanged(t *testing.T) {
	golden := func(name string) string {
		t.Helper()
		b, err := os.ReadFile("testdata/notext/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, single := range []bool{false, true} {
		suffix := ""
		if single {
			suffix = "-single"
		}
		p := fixture(single)
		diffLines(t, "master"+suffix, string(p.HLSMaster()), golden("master.m3u8"))
		p.CaptionsChecked = true
		master := string(p.HLSMaster())
		if n, want := strings.Count(master, ",CLOSED-CAPTIONS=NONE\n"), strings.Count(master, "#EXT-X-STREAM-INF:"); n != want || n == 0 {
			t.Errorf("%d of %d variants end with CLOSED-CAPTIONS=NONE", n, want)
		}
		diffLines(t, "checked master"+suffix, strings.ReplaceAll(master, ",CLOSED-CAPTIONS=NONE\n", "\n"), golden("master.m3u8"))
		diffLines(t, "media"+suffix, string(p.HLSMedia(p.Video[1])), golden("video_720p"+suffix+".m3u8"))
		mpd, err := p.DASH()
		if err != nil {
			t.Fatal(err)
		}
		diffLines(t, "MPD"+suffix, string(mpd), golden("manifest"+suffix+".mpd"))
	}
	p := liveFixture(liveSpec{first: 100, complete: 20, inProgress: 2, parts: true})
	diffLines(t, "live master", string(p.HLSMaster()), golden("live-master.m3u8"))
	diffLines(t, "live media", string(p.HLSLiveMedia(p.Video[0], LiveMediaOptions{Skip: true, Reports: p.RenditionReports(p.Video[0])})),
		golden("live-video_720p.m3u8"))
	mpd, err := p.DASH()
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, "live MPD", string(mpd), golden("live.mpd"))
}

// RFC 8216 §4.3.4.1 (EXT-X-MEDIA TYPE=SUBTITLES and CLOSED-CAPTIONS), §4.3.4.2 (SUBTITLES and
// CLOSED-CAPTIONS on EXT-X-STREAM-INF): the exact lines, then what hls-m3u8 reads of them.
func TestHLSMasterText(t *testing.T) {
	p := withText(fixture(false), fixtureText, fixtureCaptions)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	raw := p.HLSMaster()
	want := []string{
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="text_en/index.m3u8"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English SDH",DEFAULT=NO,AUTOSELECT=NO,FORCED=NO,CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound",URI="text_en_sdh/index.m3u8"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="text_fr/index.m3u8"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français (forcé)",DEFAULT=NO,AUTOSELECT=NO,FORCED=YES,URI="text_fr_forced/index.m3u8"`,
		`#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID="CC1"`,
		`#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="es",NAME="Español",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID="CC3"`,
		`#EXT-X-STREAM-INF:BANDWIDTH=6400000,AVERAGE-BANDWIDTH=4884000,CODECS="avc1.640028,mp4a.40.2,ec-3",RESOLUTION=1920x1080,FRAME-RATE=29.970,AUDIO="audio",SUBTITLES="subs",CLOSED-CAPTIONS="cc"`,
	}
	got := lines(raw, "#EXT-X-MEDIA:TYPE=SUBTITLES")
	got = append(got, lines(raw, "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS")...)
	got = append(got, lines(raw, "#EXT-X-STREAM-INF:")[0])
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The WVTT tracks are DASH's: the master names none of them.
	if bytes.Contains(raw, []byte("_wvtt")) {
		t.Errorf("master lists a WVTT track:\n%s", raw)
	}
	// CC1–CC4 need no EXT-X-VERSION (§7); the rest of the master needs none either.
	if bytes.Contains(raw, []byte("EXT-X-VERSION")) {
		t.Error("EXT-X-VERSION written for CEA-608 captions")
	}
	if n := strings.Count(string(raw), ",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"\n"); n != len(p.Video) {
		t.Errorf("%d variants name both groups, want %d", n, len(p.Video))
	}

	pl := parseMaster(t, raw)
	for _, v := range pl.Variants {
		if v.Iframe {
			if v.Subtitles != "" || v.Captions != "" {
				t.Errorf("%s: I-frame stream has SUBTITLES %q CLOSED-CAPTIONS %q (§4.3.4.3 excludes them)", v.URI, v.Subtitles, v.Captions)
			}
			continue
		}
		if v.Subtitles != TextGroupID || v.Captions != CaptionGroupID {
			t.Errorf("%s: SUBTITLES %q CLOSED-CAPTIONS %q", v.URI, v.Subtitles, v.Captions)
		}
		var subs, ccs []*m3u8.Alternative
		for _, a := range v.Alternatives {
			switch a.Type {
			case "SUBTITLES":
				subs = append(subs, a)
			case "CLOSED-CAPTIONS":
				ccs = append(ccs, a)
			}
		}
		if len(subs) != 4 || len(ccs) != 2 {
			t.Fatalf("%s: %d subtitle and %d caption renditions attached, want 4 and 2", v.URI, len(subs), len(ccs))
		}
		sdh, forced := subs[1], subs[3]
		if sdh.Characteristics != sdhCharacteristics || sdh.Forced || !forced.Forced || forced.Autoselect || forced.Language != "fr" {
			t.Errorf("SDH %+v\nforced %+v", *sdh, *forced)
		}
		if ccs[0].InstreamId != "CC1" || ccs[1].InstreamId != "CC3" || ccs[1].Language != "es" || ccs[0].URI != "" || ccs[0].Default {
			t.Errorf("captions %+v %+v", *ccs[0], *ccs[1])
		}
	}
}

// The rules of §4.3.4.1.1 and §4.3.4.2 on variations of the text model.
func TestHLSMasterTextRules(t *testing.T) {
	tests := []struct {
		name     string
		text     []textSpec
		captions func(p *Presentation)
		want     []string // lines that must be there
		absent   []string // substrings that must not
	}{
		{name: "default subtitles are autoselect, and take their language first",
			text: []textSpec{{id: "a", lang: "en", name: "English"}, {id: "b", lang: "en", name: "English 2", def: true}},
			want: []string{
				`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=NO,FORCED=NO,URI="a/index.m3u8"`,
				`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English 2",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="b/index.m3u8"`}},
		{name: "a forced track alone in its language keeps AUTOSELECT",
			text: []textSpec{{id: "f", lang: "de", name: "Deutsch (erzwungen)", auto: true, forced: true}},
			want: []string{`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="de",NAME="Deutsch (erzwungen)",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES,URI="f/index.m3u8"`}},
		{name: "no language: no AUTOSELECT, the id as name",
			text: []textSpec{{id: "text_1", auto: true}},
			want: []string{`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="text_1",DEFAULT=NO,AUTOSELECT=NO,FORCED=NO,URI="text_1/index.m3u8"`}},
		{name: "duplicate names get the id",
			text: []textSpec{{id: "a", lang: "en", name: "English"}, {id: "b", lang: "en-GB", name: "English"}},
			want: []string{`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en-GB",NAME="English (b)",DEFAULT=NO,AUTOSELECT=NO,FORCED=NO,URI="b/index.m3u8"`}},
		{name: "a name cannot inject a line",
			text:   []textSpec{{id: "a", lang: "en", name: "Eng \"x\"\n#EXT-X-ENDLIST"}},
			want:   []string{`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="Eng 'x' #EXT-X-ENDLIST",DEFAULT=NO,AUTOSELECT=NO,FORCED=NO,URI="a/index.m3u8"`},
			absent: []string{"\n#EXT-X-ENDLIST"}},
		{name: "CEA-708 services need version 7",
			captions: func(p *Presentation) {
				for _, v := range p.Video {
					v.Captions = []Caption{{Channel: "SERVICE1", Language: "en"}, {Channel: "CC1", Language: "en"}}
				}
			},
			want: []string{"#EXT-X-VERSION:7",
				`#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="SERVICE1",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID="SERVICE1"`,
				`#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="CC1",DEFAULT=NO,AUTOSELECT=NO,INSTREAM-ID="CC1"`}},
		{name: "rungs with different captions: a group each, none named by a rung without",
			captions: func(p *Presentation) {
				p.Video[0].Captions = []Caption{{Channel: "CC1", Language: "en", Name: "English"}}
				p.Video[1].Captions = []Caption{{Channel: "CC1", Language: "fr", Name: "Français"}}
			},
			want: []string{
				`#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID="CC1"`,
				`#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc2",LANGUAGE="fr",NAME="Français",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID="CC1"`,
				`#EXT-X-STREAM-INF:BANDWIDTH=6400000,AVERAGE-BANDWIDTH=4884000,CODECS="avc1.640028,mp4a.40.2,ec-3",RESOLUTION=1920x1080,FRAME-RATE=29.970,AUDIO="audio",CLOSED-CAPTIONS="cc"`,
				`#EXT-X-STREAM-INF:BANDWIDTH=3600000,AVERAGE-BANDWIDTH=2784000,CODECS="avc1.64001f,mp4a.40.2,ec-3",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="audio",CLOSED-CAPTIONS="cc2"`,
				`#EXT-X-STREAM-INF:BANDWIDTH=1300000,AVERAGE-BANDWIDTH=1084000,CODECS="avc1.64001e,mp4a.40.2,ec-3",RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO="audio"`},
			absent: []string{"NONE", "SUBTITLES"}},
		{name: "only WVTT text: no SUBTITLES group in HLS",
			text:   []textSpec{{id: "a", lang: "en"}},
			absent: []string{"SUBTITLES", "text"},
			captions: func(p *Presentation) {
				p.Text = p.TextTracks(WVTT)
				p.CaptionsChecked = true
			},
			want: []string{`#EXT-X-STREAM-INF:BANDWIDTH=1300000,AVERAGE-BANDWIDTH=1084000,CODECS="avc1.64001e,mp4a.40.2,ec-3",RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO="audio",CLOSED-CAPTIONS=NONE`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := withText(fixture(false), tc.text, nil)
			if tc.captions != nil {
				tc.captions(p)
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			raw := p.HLSMaster()
			parseMaster(t, raw)
			all := "\n" + string(raw)
			for _, w := range tc.want {
				if !strings.Contains(all, "\n"+w+"\n") {
					t.Errorf("no line\n\t%s\nin\n%s", w, raw)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(all, a) {
					t.Errorf("%q written:\n%s", a, raw)
				}
			}
		})
	}
}

// A WebVTT media playlist (RFC 8216 §3.5, §4.3.3): no EXT-X-MAP, no key, version 3 for the
// fractional EXTINFs, and entries that line up with the video's.
func TestHLSTextMedia(t *testing.T) {
	for _, single := range []bool{false, true} {
		p := withText(fixture(single), fixtureText[:1], nil)
		// Text stays clear when the media is encrypted.
		p.Protection = &Protection{Scheme: "cbcs", KID: [16]byte{1}, KeyURI: "https://keys.example/k"}
		tr := p.Text[0]
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		raw := p.HLSMedia(tr)
		want := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
			strings.Repeat("#EXTINF:6.006,\n", 1) + "seg_00001.vtt\n"
		if !strings.HasPrefix(string(raw), want) || !strings.HasSuffix(string(raw), "#EXTINF:3.33667,\nseg_00010.vtt\n#EXT-X-ENDLIST\n") {
			t.Errorf("single %v: playlist\n%s", single, raw)
		}
		for _, tag := range []string{"EXT-X-MAP", "EXT-X-KEY", "EXT-X-BYTERANGE"} {
			if bytes.Contains(raw, []byte(tag)) {
				t.Errorf("single %v: %s in a WebVTT playlist", single, tag)
			}
		}
		pl, segs := parseMedia(t, raw)
		if minV, reason := pl.CalcMinVersion(); pl.Version() != 3 || minV != 3 {
			t.Errorf("EXT-X-VERSION %d, hls-m3u8 minimum %d (%s); want 3", pl.Version(), minV, reason)
		}
		// Version 3: the target is the ceiling, as writeMediaHeader does below version 6.
		checkTarget(t, tr.ID, raw, segs, pl.Version(), 7)
		_, vsegs := parseMedia(t, p.HLSMedia(p.Video[0]))
		if len(segs) != len(vsegs) {
			t.Fatalf("%d text segments, %d video", len(segs), len(vsegs))
		}
		for i := range segs {
			if math.Abs(segs[i].Duration-vsegs[i].Duration) > 1e-9 || pl.Map != nil || len(segs[i].Keys) > 0 {
				t.Errorf("segment %d: text %v video %v, map %v keys %v", i, segs[i].Duration, vsegs[i].Duration, pl.Map, segs[i].Keys)
			}
		}
	}
}

// A live WebVTT playlist (RFC 8216 §6.2.2, rfc8216bis §4.4.3.8): the window of the video, the
// same media sequence and program date-times, no parts or part target even when the video has
// them, no EXT-X-MAP, and no key under key rotation.
func TestHLSLiveText(t *testing.T) {
	p := withText(liveFixture(liveSpec{first: 7, complete: 3, inProgress: 1, parts: true,
		disc: map[uint64]bool{8: true}, discSeq: 1, pdtJump: 3 * time.Second}), fixtureText[:1], nil)
	for _, tr := range p.Text {
		tr.DiscontinuitySequence = 1
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := p.Text[0]
	got := string(p.HLSLiveMedia(tr, LiveMediaOptions{}))
	want := `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:14.014Z
#EXTINF:2.002,
seg_00001.vtt
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:19.016Z
#EXTINF:2.002,
seg_00002.vtt
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:21.018Z
#EXTINF:2.002,
seg_00003.vtt
`
	diffLines(t, "live WebVTT", got, want)
	pl, segs := parseMedia(t, []byte(got))
	if pl.SeqNo != 7 || len(segs) != 3 || !segs[1].Discontinuity {
		t.Errorf("hls-m3u8 reads sequence %d, %d segments", pl.SeqNo, len(segs))
	}

	// Under key rotation the media get EXT-X-KEY and a period's EXT-X-MAP; text gets neither.
	p.Live.Keys = &LiveKeys{Scheme: "cbcs", Periods: []KeyPeriod{{Index: 1, FirstNumber: 0, KID: [16]byte{7}, InitURI: "init-1.mp4"}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := string(p.HLSLiveMedia(tr, LiveMediaOptions{})); strings.Contains(got, "EXT-X-KEY") || strings.Contains(got, "EXT-X-MAP") {
		t.Errorf("keyed text playlist:\n%s", got)
	}
	if got := string(p.HLSLiveMedia(p.Video[0], LiveMediaOptions{})); !strings.Contains(got, "#EXT-X-KEY:") {
		t.Error("the video lost its key")
	}
	// The WVTT rendering of the same cues, if a player were given it, is fMP4 with its init.
	if got := string(p.HLSLiveMedia(p.Text[1], LiveMediaOptions{})); !strings.Contains(got, "#EXT-X-MAP:URI=\"init.mp4\"\n") || strings.Contains(got, "EXT-X-KEY") {
		t.Errorf("WVTT playlist:\n%s", got)
	}
	// The master of the live window links the text group as the VOD one does.
	if m := string(p.HLSMaster()); !strings.Contains(m, `,AUDIO="audio",SUBTITLES="subs"`+"\n") {
		t.Errorf("live master:\n%s", m)
	}
}

// Text in milliseconds against 29.97 fps video, as the packager makes it: valid, each EXTINF
// within a millisecond of the video's and no drift at the end, and the MPD's text timeline in
// milliseconds with the video's numbers.
func TestTextInMilliseconds(t *testing.T) {
	p := withText(fixture(false), fixtureText[:1], nil)
	inMilliseconds(p)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	_, text := parseMedia(t, p.HLSMedia(p.Text[0]))
	_, video := parseMedia(t, p.HLSMedia(p.Video[0]))
	var sumText, sumVideo float64
	for i := range text {
		if d := math.Abs(text[i].Duration - video[i].Duration); d > 0.001+1e-9 {
			t.Errorf("segment %d: EXTINF %v, video %v", i, text[i].Duration, video[i].Duration)
		}
		sumText += text[i].Duration
		sumVideo += video[i].Duration
	}
	if math.Abs(sumText-sumVideo) > 0.0005+1e-9 {
		t.Errorf("text ends at %v s, video at %v s", sumText, sumVideo)
	}
	m := parseMPD(t, p)
	st := representations(m)["text_en_wvtt"].SegmentTemplate
	entries := expandTimeline(t, st)
	if *st.Timescale != 1000 || len(entries) != len(video) || entries[1].t != 6006 || entries[9].t != 54054 || entries[9].d != 3337 {
		t.Errorf("text timeline in %d Hz: %+v", *st.Timescale, entries)
	}
}
