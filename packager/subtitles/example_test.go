package subtitles_test

import (
	"fmt"
	"os"

	"github.com/reelvideo/reel/packager/subtitles"
)

// The packager's path for a sidecar file: parse, split at the media's segment starts (from
// their tfdt), write each segment; a cue crossing a boundary is in both segments.
func Example() {
	srt := "1\r\n00:00:01,500 --> 00:00:02,500\r\n<i>Hello</i> & welcome\r\n"
	tr, err := subtitles.Parse("film.srt", []byte(srt))
	if err != nil {
		fmt.Println(err) // film.srt:2: timestamp "…": bad milliseconds, and the like
		return
	}
	starts := []int64{0, subtitles.MsFromTimescale(180180, 90000)} // 0 and 2.002 s
	segs, err := subtitles.Split(tr.Cues, starts, 4004)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, seg := range segs {
		if err := subtitles.WriteHLSSegment(os.Stdout, tr, seg, 0); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// WEBVTT
	// X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000
	//
	// 00:00:01.500 --> 00:00:02.500
	// <i>Hello</i> &amp; welcome
	// WEBVTT
	// X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000
	//
	// 00:00:01.500 --> 00:00:02.500
	// <i>Hello</i> &amp; welcome
}
