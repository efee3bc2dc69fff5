package manifest

import (
	"bytes"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// Every playlist is parsed back with hls-m3u8 in strict mode, so the assertions are about what
// a player reads, not about our strings.

func parseMaster(t *testing.T, b []byte) *m3u8.MasterPlaylist {
	t.Helper()
	pl, typ, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
	if err != nil || typ != m3u8.MASTER {
		t.Fatalf("master playlist does not parse (type %v): %v\n%s", typ, err, b)
	}
	return pl.(*m3u8.MasterPlaylist)
}

func parseMedia(t *testing.T, b []byte) (*m3u8.MediaPlaylist, []*m3u8.MediaSegment) {
	t.Helper()
	pl, typ, err := m3u8.DecodeFrom(bytes.NewReader(b), true)
	if err != nil || typ != m3u8.MEDIA {
		t.Fatalf("media playlist does not parse (type %v): %v\n%s", typ, err, b)
	}
	media := pl.(*m3u8.MediaPlaylist)
	return media, media.Segments[:media.Count()]
}

// RFC 8216 §7: each feature needs a minimum EXT-X-VERSION.
func TestHLSVersion(t *testing.T) {
	tests := []struct {
		name string
		f    hlsFeatures
		want int
	}{
		{"nothing", hlsFeatures{}, 1},
		{"IV attribute", hlsFeatures{keyIV: true}, 2},
		{"float EXTINF", hlsFeatures{floatDurations: true}, 3},
		{"EXT-X-BYTERANGE", hlsFeatures{floatDurations: true, byteRange: true}, 4},
		{"EXT-X-I-FRAMES-ONLY", hlsFeatures{iFramesOnly: true}, 4},
		{"SAMPLE-AES", hlsFeatures{sampleAESKey: true}, 5},
		{"EXT-X-MAP in I-frames-only", hlsFeatures{initMap: true, iFramesOnly: true, byteRange: true}, 5},
		{"EXT-X-MAP in media playlist", hlsFeatures{initMap: true}, 6},
		{"EXT-X-MAP, byte ranges, floats", hlsFeatures{initMap: true, byteRange: true, floatDurations: true}, 6},
		{"INSTREAM-ID SERVICE", hlsFeatures{instreamIDService: true, keyIV: true}, 7},
	}
	for _, tc := range tests {
		if got := tc.f.version(); got != tc.want {
			t.Errorf("%s: version %d, want %d", tc.name, got, tc.want)
		}
	}
}

// RFC 8216 §4.3.2.1 (EXTINF decimal-floating-point): no exponent, no locale, bounded digits.
func TestExtinfFormat(t *testing.T) {
	tests := []struct {
		d    uint64
		ts   uint32
		want string
	}{
		{180180, 30000, "6.006"},
		{100100, 30000, "3.33667"},
		{287744, 48000, "5.99467"},
		{540000, 90000, "6"},
		{1, 3, "0.33333"},
		{2, 3, "0.66667"},
		{5, 1000000, "0.00001"}, // rounds half up
		{4, 1000000, "0"},
		{1 << 40, 90000, "12216795.86418"},
	}
	for _, tc := range tests {
		if got := extinf(tc.d, tc.ts); got != tc.want {
			t.Errorf("extinf(%d/%d) = %q, want %q", tc.d, tc.ts, got, tc.want)
		}
	}
}

// RFC 8216 §4.3.4.2: FRAME-RATE is rounded to three decimal places.
func TestFrameRate3(t *testing.T) {
	tests := []struct {
		r    Rational
		want string
	}{
		{Rational{30000, 1001}, "29.970"},
		{Rational{24000, 1001}, "23.976"},
		{Rational{60000, 1001}, "59.940"},
		{Rational{25, 1}, "25.000"},
		{Rational{50, 2}, "25.000"},
		{Rational{1, 3}, "0.333"},
	}
	for _, tc := range tests {
		if got := frameRate3(tc.r); got != tc.want {
			t.Errorf("frameRate3(%v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

type wantVariant struct {
	uri, codecs, resolution string
	bandwidth, average      uint32
}

// RFC 8216 §4.3.4.1 (EXT-X-MEDIA), §4.3.4.2 (EXT-X-STREAM-INF), §4.3.4.3
// (EXT-X-I-FRAME-STREAM-INF).
func TestHLSMaster(t *testing.T) {
	p := fixture(false)
	raw := p.HLSMaster()
	pl := parseMaster(t, raw)

	// §4.3.1.2: nothing in a master playlist of ours needs more than version 1.
	if bytes.Contains(raw, []byte("EXT-X-VERSION")) {
		t.Error("master has EXT-X-VERSION; none of its features needs one")
	}
	if !pl.IndependentSegments() {
		t.Error("EXT-X-INDEPENDENT-SEGMENTS missing")
	}
	// BANDWIDTH: video peak + the 400 kb/s E-AC-3 peak, the most demanding combination.
	// AVERAGE-BANDWIDTH: video average + the highest audio average (384 kb/s).
	wantStreams := []wantVariant{
		{"video_1080p/index.m3u8", "avc1.640028,mp4a.40.2,ec-3", "1920x1080", 6_400_000, 4_884_000},
		{"video_720p/index.m3u8", "avc1.64001f,mp4a.40.2,ec-3", "1280x720", 3_600_000, 2_784_000},
		{"video_360p/index.m3u8", "avc1.64001e,mp4a.40.2,ec-3", "640x360", 1_300_000, 1_084_000},
	}
	wantIFrames := []wantVariant{
		{"video_1080p/iframes.m3u8", "avc1.640028", "1920x1080", 1_100_000, 800_000},
		{"video_720p/iframes.m3u8", "avc1.64001f", "1280x720", 600_000, 420_000},
		{"video_360p/iframes.m3u8", "avc1.64001e", "640x360", 180_000, 120_000},
	}
	var streams, iframes []*m3u8.Variant
	for _, v := range pl.Variants {
		if v.Iframe {
			iframes = append(iframes, v)
		} else {
			streams = append(streams, v)
		}
	}
	checkVariants(t, "EXT-X-STREAM-INF", streams, wantStreams)
	checkVariants(t, "EXT-X-I-FRAME-STREAM-INF", iframes, wantIFrames)
	if !bytes.Contains(raw, []byte(",FRAME-RATE=29.970,")) {
		t.Error("FRAME-RATE not written with three decimals")
	}
	for _, v := range streams {
		if math.Abs(v.FrameRate-29.97) > 1e-9 || v.Audio != AudioGroupID {
			t.Errorf("%s: FRAME-RATE %v AUDIO %q, want 29.97 and %q", v.URI, v.FrameRate, v.Audio, AudioGroupID)
		}
		if len(v.Alternatives) != 2 {
			t.Fatalf("%s: %d audio renditions attached, want 2", v.URI, len(v.Alternatives))
		}
		eng, fra := v.Alternatives[0], v.Alternatives[1]
		checkAlt(t, eng, "en", "English", "audio_eng/index.m3u8", true, 2)
		checkAlt(t, fra, "fr", "Français 5.1", "audio_fra/index.m3u8", false, 6)
	}
	for _, v := range iframes {
		if v.Audio != "" || v.FrameRate != 0 {
			t.Errorf("%s: I-frame stream carries AUDIO %q / FRAME-RATE %v, which §4.3.4.3 excludes", v.URI, v.Audio, v.FrameRate)
		}
	}
}

func checkVariants(t *testing.T, tag string, got []*m3u8.Variant, want []wantVariant) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d %s, want %d", len(got), tag, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.URI != w.uri || g.Codecs != w.codecs || g.Resolution != w.resolution ||
			g.Bandwidth != w.bandwidth || g.AverageBandwidth != w.average {
			t.Errorf("%s %d = {%s %s %s %d %d}, want %+v", tag, i, g.URI, g.Codecs, g.Resolution,
				g.Bandwidth, g.AverageBandwidth, w)
		}
	}
}

func checkAlt(t *testing.T, a *m3u8.Alternative, lang, name, uri string, def bool, channels int) {
	t.Helper()
	if a.Type != "AUDIO" || a.GroupId != AudioGroupID || a.Language != lang || a.Name != name ||
		a.URI != uri || a.Default != def || !a.Autoselect || a.Channels == nil || a.Channels.Amount != channels {
		t.Errorf("EXT-X-MEDIA %+v (channels %+v), want lang %q name %q uri %q default %v channels %d",
			*a, a.Channels, lang, name, uri, def, channels)
	}
}

// Variations of the model that change what the master playlist must say.
func TestHLSMasterVariations(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Presentation)
		check  func(t *testing.T, pl *m3u8.MasterPlaylist, raw string)
	}{
		{"no audio: video alone is the combination", func(p *Presentation) { p.Audio = nil },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				v := pl.Variants[0]
				if v.Bandwidth != 6_000_000 || v.AverageBandwidth != 4_500_000 || v.Codecs != "avc1.640028" || v.Audio != "" {
					t.Errorf("got BANDWIDTH %d AVERAGE %d CODECS %q AUDIO %q", v.Bandwidth, v.AverageBandwidth, v.Codecs, v.Audio)
				}
				if strings.Contains(raw, "EXT-X-MEDIA") {
					t.Error("EXT-X-MEDIA written without audio")
				}
			}},
		{"Default flag wins over order", func(p *Presentation) { p.Audio[0].Default, p.Audio[1].Default = false, true },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				alts := pl.Variants[0].Alternatives
				if alts[0].Default || !alts[1].Default {
					t.Errorf("DEFAULT = %v, %v; want NO, YES", alts[0].Default, alts[1].Default)
				}
			}},
		{"no Default flag: the first is the default", func(p *Presentation) { p.Audio[0].Default = false },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				if n := strings.Count(raw, "DEFAULT=YES"); n != 1 || !pl.Variants[0].Alternatives[0].Default {
					t.Errorf("%d DEFAULT=YES, first default %v; want exactly the first", n, pl.Variants[0].Alternatives[0].Default)
				}
			}},
		{"unknown language and name", func(p *Presentation) { p.Audio[1].Language, p.Audio[1].Name = "", "" },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				a := pl.Variants[0].Alternatives[1]
				if a.Language != "" || a.Name != "audio_fra" || strings.Count(raw, "LANGUAGE=") != 1 {
					t.Errorf("LANGUAGE %q NAME %q; want LANGUAGE omitted and the ID as NAME", a.Language, a.Name)
				}
			}},
		// §4.3.4.1.1: NAMEs must differ within a group.
		{"duplicate names", func(p *Presentation) { p.Audio[1].Name = p.Audio[0].Name },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				alts := pl.Variants[0].Alternatives
				if alts[0].Name == alts[1].Name {
					t.Errorf("both renditions are named %q", alts[0].Name)
				}
			}},
		// §4.2: a quoted-string cannot hold '"' or line breaks; a name must not inject lines.
		{"name with quote and newline", func(p *Presentation) { p.Audio[0].Name = "Eng \"dub\"\n#EXT-X-ENDLIST" },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				if got := pl.Variants[0].Alternatives[0].Name; got != "Eng 'dub' #EXT-X-ENDLIST" {
					t.Errorf("NAME = %q", got)
				}
				if strings.Contains(raw, "\n#EXT-X-ENDLIST") {
					t.Error("the name injected a line")
				}
			}},
		{"same audio codec twice is listed once", func(p *Presentation) { p.Audio[1].Codecs = "mp4a.40.2" },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				if got := pl.Variants[0].Codecs; got != "avc1.640028,mp4a.40.2" {
					t.Errorf("CODECS = %q", got)
				}
			}},
		{"rung without I-frames has no I-frame stream", func(p *Presentation) { p.Video[1].IFrames = nil },
			func(t *testing.T, pl *m3u8.MasterPlaylist, raw string) {
				var uris []string
				for _, v := range pl.Variants {
					if v.Iframe {
						uris = append(uris, v.URI)
					}
				}
				if strings.Join(uris, " ") != "video_1080p/iframes.m3u8 video_360p/iframes.m3u8" {
					t.Errorf("I-frame streams %v", uris)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := fixture(false)
			tc.mutate(p)
			raw := p.HLSMaster()
			tc.check(t, parseMaster(t, raw), string(raw))
		})
	}
}

// RFC 8216 §4.3.3 (media playlist tags), §4.3.2 (segment tags), §7 (version).
func TestHLSMedia(t *testing.T) {
	for _, single := range []bool{false, true} {
		p := fixture(single)
		for _, tr := range p.Tracks() {
			raw := p.HLSMedia(tr)
			pl, segs := parseMedia(t, raw)
			name := tr.ID
			if single {
				name += " (single file)"
			}
			// hls-m3u8 computes the minimum version on its own: a second opinion on §7.
			if minV, reason := pl.CalcMinVersion(); pl.Version() != 6 || minV != 6 {
				t.Errorf("%s: EXT-X-VERSION %d, hls-m3u8 minimum %d (%s); want 6", name, pl.Version(), minV, reason)
			}
			if pl.MediaType != m3u8.VOD || !pl.Closed || pl.Iframe || !pl.IndependentSegments() || pl.SeqNo != 0 {
				t.Errorf("%s: type %v closed %v iframe %v independent %v seq %d", name, pl.MediaType, pl.Closed,
					pl.Iframe, pl.IndependentSegments(), pl.SeqNo)
			}
			checkMap(t, name, pl.Map, single)
			if len(segs) != len(tr.Segments) {
				t.Fatalf("%s: %d segments, want %d", name, len(segs), len(tr.Segments))
			}
			var sum float64
			for i, s := range segs {
				m := tr.Segments[i]
				want := float64(m.Duration) / float64(tr.Timescale)
				if math.Abs(s.Duration-want) > 5e-6 || s.URI != m.URI || s.Limit != m.Range.Length || s.Offset != m.Range.Offset {
					t.Errorf("%s segment %d: %v %q %d@%d, want %v %q %d@%d", name, i, s.Duration, s.URI, s.Limit,
						s.Offset, want, m.URI, m.Range.Length, m.Range.Offset)
				}
				sum += s.Duration
			}
			if math.Abs(sum-tr.DurationSeconds()) > float64(len(segs))*5e-6 {
				t.Errorf("%s: EXTINF sum %v, model %v", name, sum, tr.DurationSeconds())
			}
			checkTarget(t, name, raw, segs, pl.Version(), 6)
		}
		// Cross-check the fixture's totals against hand-computed figures, so that a fixture
		// bug can't silently agree with itself: 9×180180 + 100100 ticks at 30 kHz, and
		// 2755584 AAC samples at 48 kHz.
		if v, a := p.Video[0].DurationSeconds(), p.Audio[0].DurationSeconds(); math.Abs(v-57.390667) > 1e-6 || a != 57.408 {
			t.Errorf("fixture durations %v / %v", v, a)
		}
	}
}

func checkMap(t *testing.T, name string, m *m3u8.Map, single bool) {
	t.Helper()
	want := m3u8.Map{URI: "init.mp4"}
	if single {
		want = m3u8.Map{URI: "media.mp4", Limit: initSize, Offset: 0}
	}
	if m == nil || *m != want {
		t.Errorf("%s: EXT-X-MAP %+v, want %+v", name, m, want)
	}
}

// checkTarget applies §4.3.3.1: every EXTINF rounded to the nearest integer is at most the
// target duration (below version 6, every EXTINF as is). want pins the value, since a huge
// target would also satisfy the rule. The target is read from the text because hls-m3u8
// recomputes TargetDuration from the segments while parsing.
func checkTarget(t *testing.T, name string, raw []byte, segs []*m3u8.MediaSegment, version uint8, want uint) {
	t.Helper()
	var target uint
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "#EXT-X-TARGETDURATION:"); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				t.Fatalf("%s: EXT-X-TARGETDURATION %q: %v", name, v, err)
			}
			target = uint(n)
		}
	}
	for i, s := range segs {
		d := math.Round(s.Duration)
		if version < 6 {
			d = s.Duration
		}
		if d > float64(target) {
			t.Errorf("%s: segment %d EXTINF %v exceeds EXT-X-TARGETDURATION %d", name, i, s.Duration, target)
		}
	}
	if target != want {
		t.Errorf("%s: EXT-X-TARGETDURATION %d, want %d", name, target, want)
	}
}

// RFC 8216 §4.3.3.1: the target is computed from the durations as printed, since that is what
// players round; I-frame playlists (version 5) take the ceiling.
func TestHLSTargetDuration(t *testing.T) {
	tests := []struct {
		name      string
		timescale uint32
		durs      []uint64
		iframes   bool
		want      uint
	}{
		{"whole seconds", 90000, []uint64{540000, 540000}, false, 6},
		{"just under half", 90000, []uint64{584999}, false, 6},
		{"exactly half rounds up", 90000, []uint64{585000}, false, 7},
		{"printed value reaches .5", 1000000, []uint64{2499996}, false, 3},
		{"printed value stays below .5", 1000000, []uint64{2499994}, false, 2},
		{"longest segment is not the first", 30000, []uint64{100100, 180180, 210210}, false, 7},
		{"sub-second segments still target 1", 48000, []uint64{1024, 1024}, false, 1},
		{"I-frames: ceiling", 90000, []uint64{540000, 540900}, true, 7},
		{"I-frames: whole seconds", 90000, []uint64{540000}, true, 6},
	}
	for _, tc := range tests {
		tr := &Track{ID: "v", Codecs: "avc1.64001f", Timescale: tc.timescale}
		var start uint64
		for i, d := range tc.durs {
			uri := "s" + strconv.Itoa(i)
			tr.Segments = append(tr.Segments, Segment{Start: start, Duration: d, URI: uri})
			tr.IFrames = append(tr.IFrames, IFrame{Start: start, Duration: d, URI: uri, Range: ByteRange{0, 1000}})
			start += d
		}
		p := &Presentation{Video: []*Track{tr}}
		raw := p.HLSMedia(tr)
		if tc.iframes {
			raw = p.HLSIFrames(tr)
		}
		pl, segs := parseMedia(t, raw)
		checkTarget(t, tc.name, raw, segs, pl.Version(), tc.want)
	}
}

// RFC 8216 §4.3.3.6 (EXT-X-I-FRAMES-ONLY), §4.3.2.2 (EXT-X-BYTERANGE), §7 (version 4 for
// I-frames-only, 5 for EXT-X-MAP in an I-frames-only playlist).
func TestHLSIFrames(t *testing.T) {
	for _, single := range []bool{false, true} {
		p := fixture(single)
		for _, tr := range p.Video {
			raw := p.HLSIFrames(tr)
			pl, segs := parseMedia(t, raw)
			name := tr.ID + "/" + IFramePlaylist
			if minV, reason := pl.CalcMinVersion(); pl.Version() != 5 || minV != 5 {
				t.Errorf("%s: EXT-X-VERSION %d, hls-m3u8 minimum %d (%s); want 5", name, pl.Version(), minV, reason)
			}
			if !pl.Iframe || !pl.Closed || pl.MediaType != m3u8.VOD {
				t.Errorf("%s: iframe %v closed %v type %v", name, pl.Iframe, pl.Closed, pl.MediaType)
			}
			checkMap(t, name, pl.Map, single)
			if len(segs) != len(tr.IFrames) {
				t.Fatalf("%s: %d entries, want %d", name, len(segs), len(tr.IFrames))
			}
			for i, s := range segs {
				f := tr.IFrames[i]
				if s.URI != f.URI || s.Limit != f.Range.Length || s.Offset != f.Range.Offset || s.Limit == 0 {
					t.Errorf("%s entry %d: %q %d@%d, want %q %d@%d", name, i, s.URI, s.Limit, s.Offset,
						f.URI, f.Range.Length, f.Range.Offset)
				}
				if math.Abs(s.Duration-float64(f.Duration)/float64(tr.Timescale)) > 5e-6 {
					t.Errorf("%s entry %d: EXTINF %v", name, i, s.Duration)
				}
			}
			// Version 5: 6.006 s I-frame intervals need a ceiling of 7.
			checkTarget(t, name, raw, segs, pl.Version(), 7)
		}
	}
}

// The master playlist's relative URIs resolve to the playlists the other writers produce, and
// those playlists' URIs resolve inside the track folder (RFC 8216 §4.1, RFC 3986 §5).
func TestHLSURIsResolve(t *testing.T) {
	base, _ := url.Parse("https://cdn.example/title/" + MasterPlaylist)
	p := fixture(false)
	pl := parseMaster(t, p.HLSMaster())
	want := map[string]bool{}
	for _, tr := range p.Tracks() {
		want["https://cdn.example/title/"+tr.ID+"/"+MediaPlaylist] = true
	}
	for _, tr := range p.Video {
		want["https://cdn.example/title/"+tr.ID+"/"+IFramePlaylist] = true
	}
	got := map[string]bool{}
	for _, v := range pl.Variants {
		got[resolve(t, base, v.URI)] = true
		for _, a := range v.Alternatives {
			got[resolve(t, base, a.URI)] = true
		}
	}
	if len(got) != len(want) {
		t.Errorf("master references %d playlists, want %d: %v", len(got), len(want), got)
	}
	for u := range want {
		if !got[u] {
			t.Errorf("master does not reference %s", u)
		}
	}
	media, _ := url.Parse("https://cdn.example/title/video_720p/" + MediaPlaylist)
	_, segs := parseMedia(t, p.HLSMedia(p.Video[1]))
	if u := resolve(t, media, segs[2].URI); u != "https://cdn.example/title/video_720p/seg_00003.m4s" {
		t.Errorf("third 720p segment resolves to %s", u)
	}
}

func resolve(t *testing.T, base *url.URL, ref string) string {
	t.Helper()
	u, err := url.Parse(ref)
	if err != nil {
		t.Fatalf("URI %q: %v", ref, err)
	}
	return base.ResolveReference(u).String()
}
