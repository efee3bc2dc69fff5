package packager

import (
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
	"github.com/reelvideo/reel/packager/live"
)

// TestLoopCaptions: a looped source's closed captions are signalled in the live manifests as
// in reel package's: the ffmpeg-made 608 sample gets a CLOSED-CAPTIONS group with CC1 on its
// variant and the CEA-608 Accessibility descriptor in the dynamic MPD; the ladder, scanned and
// found without captions, says CLOSED-CAPTIONS=NONE.
func TestLoopCaptions(t *testing.T) {
	sample := testkit.CaptionedMP4(t, t.TempDir(), "LIVE CC", 4, 1)
	cases := []struct {
		name, input       string
		master, notMaster []string
		mpd, notMPD       []string
	}{
		{"captioned", sample.Path,
			[]string{`TYPE=CLOSED-CAPTIONS,GROUP-ID="cc"`, `INSTREAM-ID="CC1"`, `CLOSED-CAPTIONS="cc"`}, []string{"CLOSED-CAPTIONS=NONE"},
			[]string{`schemeIdUri="urn:scte:dash:cc:cea-608:2015"`, `value="CC1=und"`}, nil},
		{"ladder", ladder[2],
			[]string{"CLOSED-CAPTIONS=NONE"}, []string{"TYPE=CLOSED-CAPTIONS"},
			nil, []string{"urn:scte:dash:cc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, srv := newChannel(t, live.Config{SegmentDuration: 2 * time.Second, Window: time.Minute})
			loopUntil(t, ch, LoopOptions{Inputs: []string{c.input}}, 5*time.Second)
			master := get(t, srv, "/live/test/master.m3u8").Body.String()
			mpd := get(t, srv, "/live/test/manifest.mpd").Body.String()
			checkHas(t, "master", master, c.master, c.notMaster)
			checkHas(t, "MPD", mpd, c.mpd, c.notMPD)
		})
	}
}

// checkHas reports what of want doc lacks and what of notWant it has.
func checkHas(t *testing.T, what, doc string, want, notWant []string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(doc, s) {
			t.Errorf("%s lacks %s:\n%s", what, s, doc)
		}
	}
	for _, s := range notWant {
		if strings.Contains(doc, s) {
			t.Errorf("%s has %s:\n%s", what, s, doc)
		}
	}
}
