package edge

import (
	"net/url"
	"strings"
	"testing"

	"github.com/reelvideo/reel/manifest"
)

// TestAddManifestToken: the token goes onto every URI of a playlist or MPD that resolves to the
// edge the manifest came from — relative ones, absolute ones with its scheme and host — keeping
// their query and fragment, and onto none that resolves elsewhere (another host, another
// scheme, data:, skd:), nor one that carries it already. The rest stays byte for byte.
func TestAddManifestToken(t *testing.T) {
	self, _ := url.Parse("http://edge.test:8080/vod/demo/master.m3u8")
	mpdSelf, _ := url.Parse("http://edge.test:8080/vod/demo/manifest.mpd")
	const tok = "exp=1700000000~acl=/vod/demo/*~hmac=ab12"
	const q = "token=exp%3D1700000000~acl%3D%2Fvod%2Fdemo%2F%2A~hmac%3Dab12"
	cases := []struct {
		name    string
		self    *url.URL
		format  manifest.Format
		in, out string
	}{
		{"HLS master", self, manifest.FormatHLSMaster,
			"#EXTM3U\r\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en, main\",URI=\"audio/en.m3u8\"\r\n" +
				"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"v0/iframes.m3u8\"\r\n" +
				"#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key1\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\r\n" +
				"#EXT-X-CONTENT-STEERING:SERVER-URI=\"steer.json\"\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO=\"a\"\r\nv0/index.m3u8\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=2000\r\nhttp://edge.test:8080/vod/demo/v1/index.m3u8?lang=en#frag\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=3000\r\nhttp://cdn.other.test/vod/demo/v2/index.m3u8\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=4000\r\nhttps://edge.test:8080/vod/demo/v3/index.m3u8\r\n",
			"#EXTM3U\r\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en, main\",URI=\"audio/en.m3u8?" + q + "\"\r\n" +
				"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"v0/iframes.m3u8?" + q + "\"\r\n" +
				"#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key1\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\r\n" +
				"#EXT-X-CONTENT-STEERING:SERVER-URI=\"steer.json\"\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO=\"a\"\r\nv0/index.m3u8?" + q + "\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=2000\r\nhttp://edge.test:8080/vod/demo/v1/index.m3u8?lang=en&" + q + "#frag\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=3000\r\nhttp://cdn.other.test/vod/demo/v2/index.m3u8\r\n" +
				"#EXT-X-STREAM-INF:BANDWIDTH=4000\r\nhttps://edge.test:8080/vod/demo/v3/index.m3u8\r\n"},
		{"HLS media with keys, map, data: and byte ranges", self, manifest.FormatHLSMedia,
			"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x01\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.other.test/k\"\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAAA\"\n" +
				"#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"800@0\"\n#EXTINF:2.0,\n#EXT-X-BYTERANGE:1000@800\nall.mp4\n" +
				"#EXTINF:2.0,\n/vod/demo/seg2.m4s?already=1&token=other\n#EXT-X-ENDLIST",
			"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin?" + q + "\",IV=0x01\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.other.test/k\"\n" +
				"#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAAA\"\n" +
				"#EXT-X-MAP:URI=\"init.mp4?" + q + "\",BYTERANGE=\"800@0\"\n#EXTINF:2.0,\n#EXT-X-BYTERANGE:1000@800\nall.mp4?" + q + "\n" +
				"#EXTINF:2.0,\n/vod/demo/seg2.m4s?already=1&token=other\n#EXT-X-ENDLIST"},
		{"LL-HLS", self, manifest.FormatHLSMedia,
			"#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n" +
				"#EXT-X-PART:DURATION=0.5,URI=\"p/seg9.0.m4s\",INDEPENDENT=YES\n" +
				"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p/seg9.1.m4s\"\n" +
				"#EXT-X-RENDITION-REPORT:URI=\"../v1/index.m3u8?_HLS_msn=9\",LAST-MSN=9,LAST-PART=0\n",
			"#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n" +
				"#EXT-X-PART:DURATION=0.5,URI=\"p/seg9.0.m4s?" + q + "\",INDEPENDENT=YES\n" +
				"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p/seg9.1.m4s?" + q + "\"\n" +
				"#EXT-X-RENDITION-REPORT:URI=\"../v1/index.m3u8?_HLS_msn=9&" + q + "\",LAST-MSN=9,LAST-PART=0\n"},
		{"MPD with templates, lists, BaseURLs and other hosts", mpdSelf, manifest.FormatDASH,
			`<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic">
  <Location>manifest.mpd</Location>
  <PatchLocation ttl="60">https://other.test/patch.mpp</PatchLocation>
  <Period id="p0">
    <AdaptationSet mimeType="video/mp4">
      <SegmentTemplate timescale="90000" media="v$RepresentationID$/seg_$Number%05d$.m4s" initialization='v$RepresentationID$/init.mp4'/>
      <Representation id="0" bandwidth="1"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <BaseURL>https://cdn.other.test/audio/</BaseURL>
      <SegmentTemplate media="a_$Number$.m4s" initialization="a_init.mp4"/>
    </AdaptationSet>
    <AdaptationSet mimeType="text/vtt">
      <BaseURL> http://edge.test:8080/subs/?x=1&amp;y=2 </BaseURL>
      <Representation id="s" bandwidth="1">
        <SegmentList><Initialization sourceURL="init.vtt"/><RepresentationIndex sourceURL="https://other.test/idx"/>
          <SegmentURL media="s1.vtt" mediaRange="0-9"/><SegmentURL media="s2.vtt?k=v" index="s2.idx"/></SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>`,
			`<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic">
  <Location>manifest.mpd?` + q + `</Location>
  <PatchLocation ttl="60">https://other.test/patch.mpp</PatchLocation>
  <Period id="p0">
    <AdaptationSet mimeType="video/mp4">
      <SegmentTemplate timescale="90000" media="v$RepresentationID$/seg_$Number%05d$.m4s?` + q + `" initialization='v$RepresentationID$/init.mp4?` + q + `'/>
      <Representation id="0" bandwidth="1"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <BaseURL>https://cdn.other.test/audio/</BaseURL>
      <SegmentTemplate media="a_$Number$.m4s" initialization="a_init.mp4"/>
    </AdaptationSet>
    <AdaptationSet mimeType="text/vtt">
      <BaseURL> http://edge.test:8080/subs/?x=1&amp;y=2&amp;` + q + ` </BaseURL>
      <Representation id="s" bandwidth="1">
        <SegmentList><Initialization sourceURL="init.vtt?` + q + `"/><RepresentationIndex sourceURL="https://other.test/idx"/>
          <SegmentURL media="s1.vtt?` + q + `" mediaRange="0-9"/><SegmentURL media="s2.vtt?k=v&amp;` + q + `" index="s2.idx?` + q + `"/></SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if info, err := manifest.Classify([]byte(tc.in), tc.self); err != nil || info.Format != tc.format {
				t.Fatalf("Classify: %v %v, want %v", info.Format, err, tc.format)
			}
			got, err := addManifestToken([]byte(tc.in), tc.format, tc.self, "token", tok)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.out {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(tc.out, "\n")
				for i := range min(len(gl), len(wl)) {
					if gl[i] != wl[i] {
						t.Errorf("line %d:\n got %q\nwant %q", i+1, gl[i], wl[i])
					}
				}
				if len(gl) != len(wl) {
					t.Errorf("%d lines, want %d", len(gl), len(wl))
				}
			}
		})
	}
	if _, err := addManifestToken([]byte("<MPD><Period></MPD>"), manifest.FormatDASH, mpdSelf, "token", tok); err == nil {
		t.Error("a broken MPD was rewritten without an error")
	}
}
