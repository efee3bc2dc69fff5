package live

import (
	"testing"
	"time"
)

// TestEarlySegmentEndKeepsGrid: an encoder whose audio segments end a few frames before each
// grid line (ffmpeg's DASH muxer copying AAC: 2 s segments of 1024-sample frames end at
// 1.963 s) has each of its segments completed there by Flush, as the ingest does when a
// segment's request ends. The next segment starts just before the grid line and belongs to
// the cell after it: it must run to the grid line after that, not be cut half a second later
// at the line it started in front of (which made 0.5 s + 1.5 s segments and numbers running
// ahead of the video's).
func TestEarlySegmentEndKeepsGrid(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond}, "video", "audio")
	// Video: keyframes every 2 s, 0.5 s fragments. Audio: its encoder's segments end 37 ms
	// before each grid line, cut into fragments of at most 0.5 s.
	for at := uint64(0); at < 10000; at += 500 {
		if err := c.Append("video", frag(at, 500, at%2000 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	at := uint64(0)
	for k := uint64(1); k <= 5; k++ {
		end := k*2000 - 37
		for at < end {
			d := min(500, end-at)
			if err := c.Append("audio", frag(at, d, true)); err != nil {
				t.Fatal(err)
			}
			at += d
		}
		c.Flush("audio")
	}
	p := c.snapshot(time.Now(), "", false)
	videoStart := map[uint64]uint64{}
	for _, s := range p.Video[0].Segments {
		videoStart[s.Number] = s.Start
	}
	for _, tr := range p.Tracks() {
		if tr.ID != "audio" {
			continue
		}
		if len(tr.Segments) < 4 {
			t.Fatalf("%d audio segments, want 5", len(tr.Segments))
		}
		for _, s := range tr.Segments {
			if s.Duration < 1900 || s.Duration > 2100 {
				t.Errorf("audio segment %d: %d ms, want about 2 s", s.Number, s.Duration)
			}
			if v, ok := videoStart[s.Number]; ok && (v > s.Start+100 || s.Start > v+100) {
				t.Errorf("segment %d starts at %d ms in audio, %d ms in video", s.Number, s.Start, v)
			}
		}
	}
}
