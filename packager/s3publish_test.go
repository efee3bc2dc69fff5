package packager

import (
	"strings"
	"testing"
)

func TestParseS3URL(t *testing.T) {
	for _, c := range []struct {
		in     string
		ok     bool
		bucket string
		prefix string
		bad    bool
	}{
		{in: "out/vod"},
		{in: "/abs/s3://x"},
		{in: "s3://b", ok: true, bucket: "b"},
		{in: "s3://b/", ok: true, bucket: "b"},
		{in: "s3://b/vod/title/", ok: true, bucket: "b", prefix: "vod/title"},
		{in: "s3://", ok: true, bad: true},
		{in: "s3:///x", ok: true, bad: true},
		{in: "s3://b/a//c", ok: true, bad: true},
		{in: "s3://b/a/../c", ok: true, bad: true},
		{in: "s3://b/.reel-tmp/c", ok: true, bad: true},
		{in: "s3://b/a?x=1", ok: true, bad: true},
		{in: `s3://b/a\c`, ok: true, bad: true},
	} {
		loc, ok, err := ParseS3URL(c.in)
		if ok != c.ok || (err != nil) != c.bad || (!c.bad && (loc.Bucket != c.bucket || loc.Prefix != c.prefix)) {
			t.Errorf("ParseS3URL(%q) = %+v, %v, %v", c.in, loc, ok, err)
		}
	}
	if got := (S3Location{Bucket: "b", Prefix: "p/q"}).key("v-1/a.m4s"); got != "p/q/v-1/a.m4s" {
		t.Errorf("key: %s", got)
	}
	if got := (S3Location{Bucket: "b"}).key("master.m3u8"); got != "master.m3u8" {
		t.Errorf("key at the bucket's root: %s", got)
	}
}

func TestRebaseHLS(t *testing.T) {
	in := strings.Join([]string{
		"#EXTM3U",
		`#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key42",KEYFORMAT="com.apple.streamingkeydelivery"`,
		`#EXT-X-SESSION-KEY:METHOD=AES-128,URI="https://keys.example/k1"`,
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Main",URI="audio/index.m3u8"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="fr",URI="/abs/index.m3u8"`,
		"#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.64001f\"",
		"video_720p/index.m3u8",
		`#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="video_720p/iframes.m3u8"`,
		"https://cdn.example/other/index.m3u8",
		"",
	}, "\n")
	want := strings.Join([]string{
		"#EXTM3U",
		`#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI="skd://key42",KEYFORMAT="com.apple.streamingkeydelivery"`,
		`#EXT-X-SESSION-KEY:METHOD=AES-128,URI="https://keys.example/k1"`,
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Main",URI="v-1/audio/index.m3u8"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="fr",URI="/abs/index.m3u8"`,
		"#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.64001f\"",
		"v-1/video_720p/index.m3u8",
		`#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI="v-1/video_720p/iframes.m3u8"`,
		"https://cdn.example/other/index.m3u8",
		"",
	}, "\n")
	if got := string(rebaseHLS([]byte(in), "v-1/")); got != want {
		t.Errorf("rebaseHLS:\n%s\nwant\n%s", got, want)
	}
}

func TestRebaseMPD(t *testing.T) {
	in := "<?xml version=\"1.0\"?>\n<MPD type=\"static\">\n  <ProgramInformation></ProgramInformation>\n  <Period id=\"0\">\n  </Period>\n</MPD>\n"
	want := "<?xml version=\"1.0\"?>\n<MPD type=\"static\">\n  <ProgramInformation></ProgramInformation>\n  <BaseURL>v-1/</BaseURL>\n  <Period id=\"0\">\n  </Period>\n</MPD>\n"
	got, err := rebaseMPD([]byte(in), "v-1/")
	if err != nil || string(got) != want {
		t.Errorf("rebaseMPD: %v\n%s\nwant\n%s", err, got, want)
	}
	if _, err := rebaseMPD([]byte("<MPD><BaseURL>x/</BaseURL><Period/></MPD>"), "v-1/"); err == nil {
		t.Error("an MPD with a BaseURL of its own: no error")
	}
	if _, err := rebaseMPD([]byte("<MPD></MPD>"), "v-1/"); err == nil {
		t.Error("an MPD without a Period: no error")
	}
}
