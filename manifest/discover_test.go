package manifest

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestDiscover: the URLs hand-written manifests reference, exactly — resolved per RFC 3986,
// each once, in the manifest's order — for every HLS tag and DASH addressing mode Discover reads.
func TestDiscover(t *testing.T) {
	seq := func(format string, from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, fmt.Sprintf(format, i))
		}
		return out
	}
	cat := func(lists ...[]string) []string { return slices.Concat(lists...) }
	cases := []struct {
		name, base, body string
		format           Format
		playlists        []string
		resources        []string
	}{
		{
			// RFC 8216 §4.3.4: variants, renditions (CLOSED-CAPTIONS carry no URI), I-frame
			// playlists; keys and session data are not content.
			name: "HLS master", base: "http://cdn.test/vod/title/master.m3u8", format: FormatHLSMaster,
			body: "\xef\xbb\xbf#EXTM3U\r\n" +
				"#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\r\n" +
				"#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"title.json\"\r\n" +
				"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en/index.m3u8\"\r\n" +
				"#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"fr\",URI=\"../subs/fr.m3u8?v=2\"\r\n" +
				"#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",INSTREAM-ID=\"CC1\"\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aud\"\r\n" +
				"video_480p/index.m3u8\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=500000\r\n" +
				"/vod/title/video_360p/index.m3u8\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=500000,AUDIO=\"other\"\r\n" +
				"video_360p/index.m3u8\r\n" + // the same playlist again: once
				"#EXT-X-STREAM-INF:BANDWIDTH=3000000\r\n" +
				"http://cdn.test/other/video_1080p.m3u8\r\n" +
				"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=80000,URI=\"video_480p/iframes.m3u8\"\r\n",
			playlists: []string{
				"http://cdn.test/vod/title/audio/en/index.m3u8",
				"http://cdn.test/vod/subs/fr.m3u8?v=2",
				"http://cdn.test/vod/title/video_480p/index.m3u8",
				"http://cdn.test/vod/title/video_360p/index.m3u8",
				"http://cdn.test/other/video_1080p.m3u8",
				"http://cdn.test/vod/title/video_480p/iframes.m3u8",
			},
		},
		{
			// §4.3.2: EXT-X-MAP, segments (absolute, relative, with a query), byte ranges of
			// one resource listed once as the whole resource; keys skipped.
			name: "HLS media with byte ranges", base: "http://cdn.test/vod/t/v/index.m3u8", format: FormatHLSMedia,
			body: `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k1"
#EXT-X-MAP:URI="media.mp4",BYTERANGE="800@0"
#EXTINF:4.0,
#EXT-X-BYTERANGE:1000@800
media.mp4
#EXTINF:4.0,
#EXT-X-BYTERANGE:1000
media.mp4
#EXTINF:4.0,
seg/3.m4s?sig=abc
#EXTINF:4.0,
https://other.test/abs/4.m4s
#EXTINF:2.0,
../5.m4s
#EXT-X-ENDLIST
`,
			resources: []string{
				"http://cdn.test/vod/t/v/media.mp4",
				"http://cdn.test/vod/t/v/seg/3.m4s?sig=abc",
				"https://other.test/abs/4.m4s",
				"http://cdn.test/vod/t/5.m4s",
			},
		},
		{
			// rfc8216bis: LL-HLS parts are listed; the preload hint (not yet there) and the
			// rendition reports (playlists of the master) are not.
			name: "LL-HLS media", base: "http://cdn.test/live/ch/v/index.m3u8", format: FormatHLSMedia,
			body: `#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.0,
seg_100.m4s
#EXT-X-PART:DURATION=0.5,URI="seg_101.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="seg_101.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_101.2.m4s"
#EXT-X-RENDITION-REPORT:URI="../a/index.m3u8",LAST-MSN=100,LAST-PART=1
`,
			resources: []string{
				"http://cdn.test/live/ch/v/init.mp4",
				"http://cdn.test/live/ch/v/seg_100.m4s",
				"http://cdn.test/live/ch/v/seg_101.0.m4s",
				"http://cdn.test/live/ch/v/seg_101.1.m4s",
			},
		},
		{
			// §5.3.9.6: SegmentTimeline with r, $Number%05d$ from startNumber; $Time$ from
			// S@t and the durations; $Bandwidth$; the template from the AdaptationSet with the
			// Representation's own @media.
			name: "DASH SegmentTimeline", base: "http://cdn.test/vod/t/manifest.mpd", format: FormatDASH,
			body: `<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT12S">
  <Period>
    <AdaptationSet>
      <SegmentTemplate media="$RepresentationID$/seg_$Number%05d$.m4s" initialization="$RepresentationID$/init.mp4" startNumber="7" timescale="15360">
        <SegmentTimeline><S t="0" d="30720" r="2"/><S d="15360"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v1" bandwidth="800000"/>
      <Representation id="v2" bandwidth="400000">
        <SegmentTemplate media="$RepresentationID$/$Bandwidth$/t_$Time$.m4s"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>`,
			resources: cat(
				[]string{"http://cdn.test/vod/t/v1/init.mp4"},
				seq("http://cdn.test/vod/t/v1/seg_%05d.m4s", 7, 10),
				[]string{"http://cdn.test/vod/t/v2/init.mp4",
					"http://cdn.test/vod/t/v2/400000/t_0.m4s",
					"http://cdn.test/vod/t/v2/400000/t_30720.m4s",
					"http://cdn.test/vod/t/v2/400000/t_61440.m4s",
					"http://cdn.test/vod/t/v2/400000/t_92160.m4s"},
			),
		},
		{
			// S@r=-1 repeats up to the next S@t, and the last one up to the Period's end
			// (Period@duration 10 s at timescale 1000, presentationTimeOffset 5000).
			name: "DASH timeline r=-1", base: "http://cdn.test/m.mpd", format: FormatDASH,
			body: `<MPD type="static"><Period duration="PT10S"><AdaptationSet><Representation id="a">
<SegmentTemplate media="a/$Time$.m4s" timescale="1000" presentationTimeOffset="5000">
  <SegmentTimeline><S t="5000" d="2000" r="-1"/><S t="9000" d="3000" r="-1"/></SegmentTimeline>
</SegmentTemplate></Representation></AdaptationSet></Period></MPD>`,
			// 5000, 7000 (up to 9000); then 9000, 12000 (up to 15000, the end: 5000 + 10 s).
			resources: []string{"http://cdn.test/a/5000.m4s", "http://cdn.test/a/7000.m4s", "http://cdn.test/a/9000.m4s", "http://cdn.test/a/12000.m4s"},
		},
		{
			// §5.3.9.5.3: SegmentTemplate@duration over MPD@mediaPresentationDuration: 9.5 s
			// of 2 s segments from number 0 is 5 segments; $Number$ with a width.
			name: "DASH @duration and startNumber", base: "http://cdn.test/x/m.mpd", format: FormatDASH,
			body: `<MPD type="static" mediaPresentationDuration="PT9.5S"><Period>
<SegmentTemplate media="$RepresentationID$_$Number%03d$.mp4" initialization="$RepresentationID$_init.mp4" duration="4" timescale="2" startNumber="0"/>
<AdaptationSet><Representation id="hi"/></AdaptationSet></Period></MPD>`,
			resources: cat([]string{"http://cdn.test/x/hi_init.mp4"}, seq("http://cdn.test/x/hi_%03d.mp4", 0, 4)),
		},
		{
			// Two Periods: the first's length from the second's start, the second's from
			// the presentation's; BaseURLs nested MPD → Period → AdaptationSet →
			// Representation, an absolute one replacing what is above it.
			name: "DASH multi-period, BaseURL nesting", base: "http://cdn.test/show/m.mpd", format: FormatDASH,
			body: `<MPD type="static" mediaPresentationDuration="PT10S">
<BaseURL>content/</BaseURL>
<Period start="PT0S"><BaseURL>p1/</BaseURL>
  <AdaptationSet><BaseURL>video/</BaseURL>
    <SegmentTemplate media="$Number$.m4s" initialization="init.mp4" duration="2"/>
    <Representation id="r"><BaseURL>r1/</BaseURL></Representation>
  </AdaptationSet>
</Period>
<Period start="PT4S"><BaseURL>https://ads.test/break/</BaseURL>
  <AdaptationSet>
    <SegmentTemplate media="$Number$.m4s" initialization="init.mp4" duration="3"/>
    <Representation id="r"><BaseURL>/abs/</BaseURL></Representation>
  </AdaptationSet>
</Period></MPD>`,
			resources: []string{
				"http://cdn.test/show/content/p1/video/r1/init.mp4",
				"http://cdn.test/show/content/p1/video/r1/1.m4s",
				"http://cdn.test/show/content/p1/video/r1/2.m4s",
				"https://ads.test/abs/init.mp4",
				"https://ads.test/abs/1.m4s",
				"https://ads.test/abs/2.m4s",
			},
		},
		{
			// §5.3.9.3: SegmentList with its Initialization; segments as byte ranges of one
			// resource listed once.
			name: "DASH SegmentList", base: "http://cdn.test/l/m.mpd", format: FormatDASH,
			body: `<MPD><Period duration="PT6S"><AdaptationSet><Representation id="a"><BaseURL>a/</BaseURL>
<SegmentList duration="2"><Initialization sourceURL="init.mp4"/>
  <SegmentURL media="s1.m4s"/><SegmentURL media="s2.m4s"/>
  <SegmentURL media="all.mp4" mediaRange="0-99"/><SegmentURL media="all.mp4" mediaRange="100-199"/>
</SegmentList></Representation>
<Representation id="b"><BaseURL>b/whole.mp4</BaseURL><SegmentList><SegmentURL mediaRange="0-9"/><SegmentURL mediaRange="10-19"/></SegmentList></Representation>
</AdaptationSet></Period></MPD>`,
			// (A SegmentURL without @media is a range of the BaseURL's resource, §5.3.9.3.2.)
			resources: []string{"http://cdn.test/l/a/init.mp4", "http://cdn.test/l/a/s1.m4s", "http://cdn.test/l/a/s2.m4s", "http://cdn.test/l/a/all.mp4", "http://cdn.test/l/b/whole.mp4"},
		},
		{
			// §5.3.9.2: SegmentBase (single file, on-demand profile): the BaseURL's resource,
			// whole, and an initialization named apart.
			name: "DASH SegmentBase", base: "http://cdn.test/od/m.mpd", format: FormatDASH,
			body: `<MPD type="static" mediaPresentationDuration="PT30S"><Period><AdaptationSet>
<Representation id="v"><BaseURL>video/media.mp4</BaseURL><SegmentBase indexRange="800-1200"><Initialization range="0-799"/></SegmentBase></Representation>
<Representation id="a"><BaseURL>audio/media.mp4</BaseURL><SegmentBase><Initialization sourceURL="init.mp4"/></SegmentBase></Representation>
<Representation id="none"><SegmentBase/></Representation>
</AdaptationSet></Period></MPD>`,
			resources: []string{"http://cdn.test/od/video/media.mp4", "http://cdn.test/od/audio/init.mp4", "http://cdn.test/od/audio/media.mp4"},
		},
		{
			// A dynamic MPD with @duration addressing: which segments exist depends on the
			// clock, so only the initialization is listed.
			name: "DASH dynamic @duration", base: "http://cdn.test/live/m.mpd", format: FormatDASH,
			body: `<MPD type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z"><Period start="PT0S"><AdaptationSet>
<SegmentTemplate media="$Number$.m4s" initialization="init.mp4" duration="2"/><Representation id="v"/></AdaptationSet></Period></MPD>`,
			resources: []string{"http://cdn.test/live/init.mp4"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Discover([]byte(tc.body), mustURL(t, tc.base), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if got.Format != tc.format || got.Truncated {
				t.Errorf("format %v truncated %v, want %v", got.Format, got.Truncated, tc.format)
			}
			if !slices.Equal(got.Playlists, tc.playlists) {
				t.Errorf("playlists\n got %q\nwant %q", got.Playlists, tc.playlists)
			}
			if !slices.Equal(got.Resources, tc.resources) {
				t.Errorf("resources\n got %q\nwant %q", got.Resources, tc.resources)
			}
		})
	}
}

// TestDiscoverBounds: the limit holds (and says so), whatever the manifest asks for; what is
// not a manifest, or a playlist both master and media, is an error.
func TestDiscoverBounds(t *testing.T) {
	base := mustURL(t, "http://cdn.test/m")
	huge := `<MPD><Period><AdaptationSet><Representation id="a"><SegmentTemplate media="$Number$.m4s">
<SegmentTimeline><S t="0" d="1" r="9223372036854775806"/></SegmentTimeline></SegmentTemplate></Representation></AdaptationSet></Period></MPD>`
	got, err := Discover([]byte(huge), base, 50)
	if err != nil || len(got.Resources) != 50 || !got.Truncated {
		t.Errorf("r=2^63-2 under a limit of 50: %d resources, truncated %v, %v", len(got.Resources), got.Truncated, err)
	}
	// One URL repeated 2^63 times: the expansions are bounded too.
	same := strings.Replace(huge, "$Number$.m4s", "same.m4s", 1)
	got, err = Discover([]byte(same), base, 50)
	if err != nil || len(got.Resources) != 1 || !got.Truncated {
		t.Errorf("one URL repeated: %q truncated %v, %v", got.Resources, got.Truncated, err)
	}
	hls := "#EXTM3U\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:1,\na\n#EXTINF:1,\nb\n#EXTINF:1,\nc\n"
	got, _ = Discover([]byte(hls), base, 2)
	if !slices.Equal(got.Resources, []string{"http://cdn.test/i.mp4", "http://cdn.test/a"}) || !got.Truncated {
		t.Errorf("HLS under a limit of 2: %+v", got)
	}
	got, _ = Discover([]byte(hls), base, 4)
	if len(got.Resources) != 4 || got.Truncated {
		t.Errorf("HLS at exactly its limit: %+v", got)
	}
	for _, bad := range []string{"", "<html>", "{\"json\":1}", "<MPD", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:1,\ns.ts\n"} {
		if d, err := Discover([]byte(bad), base, 10); err == nil {
			t.Errorf("%q: no error, %+v", bad, d)
		}
	}
	if _, err := Discover([]byte("<html><body>x</body></html>"), base, 10); !errors.Is(err, ErrNotManifest) {
		t.Errorf("HTML: %v", err)
	}
}

// TestDiscoverRendered: what the packager's own manifests reference, as Discover reads the
// renderings of one model — the master's playlists, each media playlist's init and segments,
// and the MPD's — is the model's files, the same from HLS and from DASH; segment files and
// single-file (byte ranges, SegmentBase) alike.
func TestDiscoverRendered(t *testing.T) {
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprint("single file ", single), func(t *testing.T) { testDiscoverRendered(t, fixture(single)) })
	}
}

func testDiscoverRendered(t *testing.T, p *Presentation) {
	base := mustURL(t, "http://cdn.test/vod/")
	master, err := Discover(p.HLSMaster(), base.JoinPath("master.m3u8"), 10000)
	if err != nil || master.Format != FormatHLSMaster || len(master.Resources) != 0 || len(master.Playlists) == 0 {
		t.Fatalf("master: %+v %v", master, err)
	}
	hlsFiles := map[string]bool{}
	for _, pl := range master.Playlists {
		body := hlsPlaylistFor(t, p, strings.TrimPrefix(pl, base.String()))
		d, err := Discover(body, mustURL(t, pl), 10000)
		if err != nil || d.Format != FormatHLSMedia {
			t.Fatalf("%s: %+v %v", pl, d, err)
		}
		for _, r := range d.Resources {
			hlsFiles[r] = true
		}
	}
	mpdBytes, err := p.DASH()
	if err != nil {
		t.Fatal(err)
	}
	dash, err := Discover(mpdBytes, base.JoinPath("manifest.mpd"), 10000)
	if err != nil || dash.Format != FormatDASH {
		t.Fatalf("MPD: %+v %v", dash, err)
	}
	want := map[string]bool{}
	for _, f := range p.files() {
		want[base.String()+f] = true
	}
	dashFiles := map[string]bool{}
	for _, r := range dash.Resources {
		dashFiles[r] = true
	}
	for name, got := range map[string]map[string]bool{"HLS": hlsFiles, "DASH": dashFiles} {
		for f := range want {
			if !got[f] {
				t.Errorf("%s: %s not discovered", name, f)
			}
		}
		for f := range got {
			if !want[f] {
				t.Errorf("%s: %s discovered, not a file of the presentation", name, f)
			}
		}
	}
}

// FuzzDiscover: Discover reads bytes from origins; it must never panic, hang, exceed its
// limit or list a URL twice, whatever it is given (make fuzz).
func FuzzDiscover(f *testing.F) {
	p := fixture(false)
	f.Add(p.HLSMaster())
	if b, err := p.DASH(); err == nil {
		f.Add(b)
	}
	ll := liveFixture(liveSpec{first: 100, complete: 5, inProgress: 2, parts: true})
	f.Add(ll.HLSLiveMedia(ll.Video[0], LiveMediaOptions{PreloadHint: "seg_105.2.m4s"}))
	f.Add([]byte(`<MPD type="static" mediaPresentationDuration="P99999999DT1S"><Period duration="x"><AdaptationSet><SegmentTemplate media="$Time$" duration="1" timescale="18446744073709551615" presentationTimeOffset="18446744073709551615" startNumber="18446744073709551615"><SegmentTimeline><S t="18446744073709551615" d="18446744073709551615" r="-1"/></SegmentTimeline></SegmentTemplate><Representation id="a"/></AdaptationSet></Period></MPD>`))
	f.Add([]byte(`<MPD><Period start="PT1S"/><Period start="PT0S"><AdaptationSet><SegmentList><SegmentURL/></SegmentList><Representation/></AdaptationSet></Period></MPD>`))
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:\n%zz\n#EXT-X-MEDIA:URI=\"\n#EXT-X-MAP:URI=\"a\nb\n"))
	base, _ := url.Parse("http://h/a/b.m3u8")
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 100
		d, err := Discover(data, base, limit)
		if err != nil {
			if d.Format != FormatUnknown || len(d.Playlists)+len(d.Resources) > 0 {
				t.Fatalf("error %v with a discovery %+v", err, d)
			}
			return
		}
		all := slices.Concat(d.Playlists, d.Resources)
		if len(all) > limit {
			t.Fatalf("%d URLs, limit %d", len(all), limit)
		}
		seen := map[string]bool{}
		for _, u := range all {
			if seen[u] {
				t.Fatalf("%q listed twice", u)
			}
			seen[u] = true
		}
		if d.Format == FormatDASH && len(d.Playlists) > 0 {
			t.Fatal("an MPD with playlists")
		}
	})
}

// hlsPlaylistFor renders the playlist of p at path ("<track>/index.m3u8" or
// "<track>/iframes.m3u8").
func hlsPlaylistFor(t *testing.T, p *Presentation, path string) []byte {
	t.Helper()
	id, file, _ := strings.Cut(path, "/")
	for _, tr := range p.AllTracks() {
		if tr.ID != id {
			continue
		}
		switch file {
		case MediaPlaylist:
			return p.HLSMedia(tr)
		case IFramePlaylist:
			return p.HLSIFrames(tr)
		}
	}
	t.Fatalf("no playlist %s in the presentation", path)
	return nil
}

// files are the presentation's files a player fetches, relative to its folder: each track's
// init segment and segments (a single-file track's one file).
func (p *Presentation) files() []string {
	var out []string
	for _, tr := range p.AllTracks() {
		out = append(out, tr.ID+"/"+tr.InitURI)
		for _, s := range tr.Segments {
			out = append(out, tr.ID+"/"+s.URI)
		}
	}
	return out
}
