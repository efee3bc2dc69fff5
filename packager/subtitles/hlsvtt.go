package subtitles

import (
	"fmt"
	"io"
	"strings"
)

// WriteHLSSegment writes one segment of an HLS WebVTT subtitle playlist: the header with
// X-TIMESTAMP-MAP=MPEGTS:<mpegts>,LOCAL:00:00:00.000, the track's REGION and STYLE blocks,
// then the cues as they are (not clipped; Split gives each segment every cue it overlaps).
// The blocks come from t alone; pass a Track without them to leave them out (ffmpeg 5.1's
// WebVTT reader, for one, stops at the first STYLE or REGION block; hls.js skips them).
//
// mpegts is the media time, on a 90 kHz clock (RFC 8216 §3.5), that cue time 0 corresponds
// to. For Reel's CMAF media, whose timeline starts at 0 with cue times measured from the same
// origin, that is 0. hls.js places a cue at cue time + (MPEGTS − initPTS)/90000 − LOCAL, where
// initPTS is the media time at playlist time 0 (hls.js's passthrough remuxer: the first
// fragment's start less its playlist offset), so with media starting at 0, MPEGTS 0 puts a
// cue at its own time; a timeline that starts later (live, tfdt from the wall clock) gives
// that start in 90 kHz modulo 2^33 here, and the cues stay in step. The value 900000 (10 s)
// often seen in the wild is MPEG-TS's customary start offset and would be 10 s off for fMP4
// media starting at 0.
func WriteHLSSegment(w io.Writer, t *Track, cues []Cue, mpegts uint64) error {
	var b strings.Builder
	b.WriteString(t.Header(fmt.Sprintf("X-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:00:00:00.000", mpegts%(1<<33))))
	for _, c := range cues {
		b.WriteByte('\n')
		writeCue(&b, c)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCue writes one WebVTT cue block (without the blank line before it).
func writeCue(b *strings.Builder, c Cue) {
	if id := cueID(c.ID); id != "" {
		b.WriteString(id)
		b.WriteByte('\n')
	}
	b.WriteString(FormatTime(c.Start))
	b.WriteString(" --> ")
	b.WriteString(FormatTime(c.End))
	if s := c.Settings.String(); s != "" {
		b.WriteByte(' ')
		b.WriteString(s)
	}
	b.WriteByte('\n')
	if t := cueText(c.Text); t != "" {
		b.WriteString(t)
		b.WriteByte('\n')
	}
}

// cueID is an identifier WebVTT can carry: one line, no "-->".
func cueID(id string) string {
	id = strings.ReplaceAll(id, "\n", " ")
	return strings.ReplaceAll(id, "-->", "--")
}

// cueText is text WebVTT can carry: no empty line (it would end the cue), no "-->" (it would
// start one).
func cueText(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.ReplaceAll(l, "-->", "--&gt;"))
		}
	}
	return strings.Join(out, "\n")
}
