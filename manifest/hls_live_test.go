package manifest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// Spec references: RFC 8216, and draft-pantos-hls-rfc8216bis-16 ("bis") for the low-latency
// tags. Every playlist that hls-m3u8 v0.6.5 can read is parsed back with it in strict mode.

// bis §4.4.3.7, §4.4.3.8, §4.4.4.9, §4.4.5.3, §4.4.5.4; RFC 8216 §4.3.2.3, §4.3.2.6,
// §4.3.3.2-3: the whole text of one LL-HLS snapshot, checked line by line.
func TestHLSLiveGolden(t *testing.T) {
	p := liveFixture(liveSpec{first: 7, complete: 3, inProgress: 1, parts: true,
		disc: map[uint64]bool{8: true}, discSeq: 1, pdtJump: 3 * time.Second})
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	tr := p.Video[1]
	got := string(p.HLSLiveMedia(tr, LiveMediaOptions{PreloadHint: "seg_10.1.m4s", Reports: p.RenditionReports(tr)}))
	parts := func(n int) string {
		return fmt.Sprintf(`#EXT-X-PART:DURATION=0.5005,URI="seg_%[1]d.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5005,URI="seg_%[1]d.1.m4s"
#EXT-X-PART:DURATION=0.5005,URI="seg_%[1]d.2.m4s"
#EXT-X-PART:DURATION=0.5005,URI="seg_%[1]d.3.m4s"
`, n)
	}
	// 7 × 2.002 s = 14.014 s after the epoch; the discontinuity before 8 adds 3 s of outage.
	// PART-HOLD-BACK is 3 × the audio rendition's 0.512 s part target (bis §4.4.3.8).
	want := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.536
#EXT-X-PART-INF:PART-TARGET=0.5005
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:14.014Z
` + parts(7) + `#EXTINF:2.002,
seg_7.m4s
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:19.016Z
` + parts(8) + `#EXTINF:2.002,
seg_8.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:21.018Z
` + parts(9) + `#EXTINF:2.002,
seg_9.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:23.020Z
#EXT-X-PART:DURATION=0.5005,URI="seg_10.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_10.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../video_720p/index.m3u8",LAST-MSN=10,LAST-PART=0
#EXT-X-RENDITION-REPORT:URI="../audio_eng/index.m3u8",LAST-MSN=10,LAST-PART=0
`
	diffLines(t, "LL-HLS snapshot", got, want)

	// An ended EVENT without parts: VOD type, ENDLIST, HOLD-BACK raised to 3 target durations
	// (bis §4.4.3.8), and the skip and hint of a live request ignored (bis §6.2.5.1, §4.4.5.3).
	p = liveFixture(liveSpec{first: 0, complete: 2})
	p.Live.Ended, p.Live.PlaylistType = true, PlaylistEvent
	p.Live.CanBlockReload, p.Live.CanSkipUntil, p.Live.HoldBack = false, 0, 5*time.Second
	got = string(p.HLSLiveMedia(p.Video[0], LiveMediaOptions{Skip: true, PreloadHint: "seg_2.0.m4s"}))
	want = `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:HOLD-BACK=6
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:00.000Z
#EXTINF:2.002,
seg_0.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-21T23:00:02.002Z
#EXTINF:2.002,
seg_1.m4s
#EXT-X-ENDLIST
`
	diffLines(t, "ended event", got, want)
}

func diffLines(t *testing.T, name, got, want string) {
	t.Helper()
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("%s: line %d is\n\t%s\nwant\n\t%s\nwhole playlist:\n%s", name, i+1, gl, wl, got)
			return
		}
	}
}

// The snapshots a live channel goes through, parsed back with hls-m3u8: media sequence (RFC
// 8216 §4.3.3.2), discontinuity sequence (§4.3.3.3), PDT (§4.3.2.6), parts, preload hint, skip
// and rendition reports (bis §4.4.4.9, §4.4.5.2-4), ENDLIST (§4.3.3.4).
func TestHLSLiveSnapshots(t *testing.T) {
	type want struct {
		version  uint8
		seq      uint64
		discSeq  uint64
		numbers  []uint64 // segments listed (after any skip)
		parts    int      // EXT-X-PART lines
		hint     string
		skipped  uint64
		reports  int
		ended    bool
		discs    []uint64 // segments listed with EXT-X-DISCONTINUITY
		firstPDT string
	}
	tests := []struct {
		name  string
		spec  liveSpec
		setup func(p *Presentation)
		opt   func(p *Presentation, tr *Track) LiveMediaOptions
		want  want
		// hls-m3u8 v0.6.5 rejects parts listed before the first EXTINF (ErrPlaylistEmpty),
		// which bis §3.2 allows; those playlists are checked from their lines only.
		unparsable bool
	}{
		{
			name: "channel start, no segment, no parts",
			spec: liveSpec{first: 0},
			want: want{version: 6, seq: 0},
		},
		{
			name: "channel start, parts of the first segment only",
			spec: liveSpec{first: 42, inProgress: 3, parts: true},
			opt: func(p *Presentation, tr *Track) LiveMediaOptions {
				return LiveMediaOptions{PreloadHint: "seg_42.3.m4s"}
			},
			want:       want{version: 6, seq: 42, parts: 3, hint: "seg_42.3.m4s"},
			unparsable: true,
		},
		{
			name: "window without parts",
			spec: liveSpec{first: 1000, complete: 15},
			want: want{version: 6, seq: 1000, numbers: seq(1000, 1014), firstPDT: "2026-11-21T23:33:22.000Z"},
		},
		{
			name: "window with parts and a preload hint",
			spec: liveSpec{first: 1000, complete: 15, inProgress: 2, parts: true},
			opt: func(p *Presentation, tr *Track) LiveMediaOptions {
				return LiveMediaOptions{PreloadHint: "seg_1015.2.m4s"}
			},
			// Parts for the 3 segments ending within 3 × 2 s of the end, then 2 in progress.
			want: want{version: 6, seq: 1000, numbers: seq(1000, 1014), parts: 3*4 + 2, hint: "seg_1015.2.m4s", firstPDT: "2026-11-21T23:33:22.000Z"},
		},
		{
			name: "segment just completed: hint for the next one's first part",
			spec: liveSpec{first: 1000, complete: 15, parts: true},
			opt: func(p *Presentation, tr *Track) LiveMediaOptions {
				return LiveMediaOptions{PreloadHint: "seg_1015.0.m4s"}
			},
			want: want{version: 6, seq: 1000, numbers: seq(1000, 1014), parts: 3 * 4, hint: "seg_1015.0.m4s", firstPDT: "2026-11-21T23:33:22.000Z"},
		},
		{
			name: "a discontinuity in the window and one in progress",
			spec: liveSpec{first: 500, complete: 10, inProgress: 1, parts: true, disc: map[uint64]bool{503: true},
				discSeq: 4, pdtJump: 7 * time.Second, nextDisc: true},
			want: want{version: 6, seq: 500, discSeq: 4, numbers: seq(500, 509), parts: 3*4 + 1, discs: []uint64{503},
				firstPDT: "2026-11-21T23:16:41.000Z"},
		},
		{
			name: "delta update",
			spec: liveSpec{first: 1000, complete: 15, inProgress: 2, parts: true, disc: map[uint64]bool{1002: true}, discSeq: 9},
			opt:  func(p *Presentation, tr *Track) LiveMediaOptions { return LiveMediaOptions{Skip: true} },
			// 12 s skip boundary: segments ending more than 12 s before the end of 1014 are
			// 1000..1008 (1008 ends 6 × 2.002 = 12.012 s before); the discontinuity sequence
			// stays the full playlist's (bis §4.4.5.2).
			want: want{version: 9, seq: 1000, discSeq: 9, numbers: seq(1009, 1014), parts: 3*4 + 2, skipped: 9,
				firstPDT: "2026-11-21T23:33:40.018Z"},
		},
		{
			name: "rendition reports",
			spec: liveSpec{first: 1000, complete: 15, inProgress: 2, parts: true},
			opt: func(p *Presentation, tr *Track) LiveMediaOptions {
				return LiveMediaOptions{Reports: p.RenditionReports(tr)}
			},
			want: want{version: 6, seq: 1000, numbers: seq(1000, 1014), parts: 3*4 + 2, reports: 2, firstPDT: "2026-11-21T23:33:22.000Z"},
		},
		{
			name:  "ended",
			spec:  liveSpec{first: 1000, complete: 15, inProgress: 2, parts: true},
			setup: func(p *Presentation) { p.Live.Ended = true },
			opt: func(p *Presentation, tr *Track) LiveMediaOptions {
				return LiveMediaOptions{Skip: true, PreloadHint: "seg_1015.2.m4s"}
			},
			// No in-progress parts, no hint, no skip; the last segments keep their parts.
			want: want{version: 6, seq: 1000, numbers: seq(1000, 1014), parts: 3 * 4, ended: true, firstPDT: "2026-11-21T23:33:22.000Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := liveFixture(tc.spec)
			if tc.setup != nil {
				tc.setup(p)
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			tr := p.Video[0]
			var opt LiveMediaOptions
			if tc.opt != nil {
				opt = tc.opt(p, tr)
			}
			raw := p.HLSLiveMedia(tr, opt)
			w := tc.want

			// (a) The key lines, as text.
			if got := lines(raw, "#EXT-X-MEDIA-SEQUENCE:"); len(got) != 1 || got[0] != fmt.Sprintf("#EXT-X-MEDIA-SEQUENCE:%d", w.seq) {
				t.Errorf("media sequence lines %q, want %d", got, w.seq)
			}
			if got := lines(raw, "#EXT-X-VERSION:"); len(got) != 1 || got[0] != fmt.Sprintf("#EXT-X-VERSION:%d", w.version) {
				t.Errorf("version lines %q, want %d", got, w.version)
			}
			if got := len(lines(raw, "#EXTINF:")); got != len(w.numbers) {
				t.Errorf("%d EXTINF lines, want %d", got, len(w.numbers))
			}
			if got := len(lines(raw, "#EXT-X-PART:")); got != w.parts {
				t.Errorf("%d EXT-X-PART lines, want %d", got, w.parts)
			}
			if got := lines(raw, "#EXT-X-PRELOAD-HINT:"); (w.hint == "") != (len(got) == 0) ||
				w.hint != "" && (len(got) != 1 || got[0] != `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="`+w.hint+`"`) {
				t.Errorf("preload hint lines %q, want %q", got, w.hint)
			}
			if got := len(lines(raw, "#EXT-X-DISCONTINUITY-SEQUENCE:")); got != min(1, int(w.discSeq)) {
				t.Errorf("%d EXT-X-DISCONTINUITY-SEQUENCE lines, want it only when non-zero", got)
			}
			if tc.spec.parts != (len(lines(raw, "#EXT-X-PART-INF:")) == 1) {
				t.Errorf("EXT-X-PART-INF present %v, want %v", !tc.spec.parts, tc.spec.parts)
			}
			if w.ended != (len(lines(raw, "#EXT-X-ENDLIST")) == 1) {
				t.Errorf("EXT-X-ENDLIST present %v, want %v", !w.ended, w.ended)
			}
			// bis §4.4.5.3: the hint is for a part yet to come, right after the last part or
			// the last segment.
			if before, _, ok := strings.Cut(string(raw), "\n#EXT-X-PRELOAD-HINT"); ok {
				prev := before[strings.LastIndex(before, "\n")+1:]
				if !strings.HasPrefix(prev, "#EXT-X-PART:") && strings.HasPrefix(prev, "#") {
					t.Errorf("preload hint does not follow the last part or segment:\n%s", raw)
				}
			}
			// One EXT-X-DISCONTINUITY per flagged segment listed, plus one before the parts of
			// a segment in progress that follows a discontinuity (bis §4.4.4.9).
			wantDiscs := len(w.discs)
			if tc.spec.nextDisc && tc.spec.inProgress > 0 && !w.ended {
				wantDiscs++
				if !strings.Contains(string(raw), fmt.Sprintf("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:%s\n#EXT-X-PART:DURATION=0.5005,URI=\"seg_%d.0.m4s\"",
					tr.NextProgramDateTime.Format(pdtLayout), tr.NextNumber)) {
					t.Errorf("no discontinuity before the parts in progress:\n%s", raw)
				}
			}
			if got := strings.Count(string(raw), "#EXT-X-DISCONTINUITY\n"); got != wantDiscs {
				t.Errorf("%d EXT-X-DISCONTINUITY lines, want %d", got, wantDiscs)
			}
			checkPartsBeforeEntries(t, raw)
			if tc.unparsable {
				return
			}

			// (b) What a player reads.
			pl, segs, reports := parseLive(t, raw)
			if pl.SeqNo != w.seq || pl.DiscontinuitySeq != w.discSeq || uint8(pl.Version()) != w.version {
				t.Errorf("parsed seq %d disc seq %d version %d, want %d %d %d", pl.SeqNo, pl.DiscontinuitySeq, pl.Version(), w.seq, w.discSeq, w.version)
			}
			if pl.SkippedSegments() != w.skipped {
				t.Errorf("parsed EXT-X-SKIP %d, want %d", pl.SkippedSegments(), w.skipped)
			}
			if pl.Closed != w.ended {
				t.Errorf("parsed closed %v, want %v", pl.Closed, w.ended)
			}
			if len(segs) != len(w.numbers) {
				t.Fatalf("parsed %d segments, want %d", len(segs), len(w.numbers))
			}
			var discs []uint64
			for i, s := range segs {
				n := w.numbers[i]
				m := tr.Segments[n-tc.spec.first]
				if s.URI != m.URI || math.Abs(s.Duration-2.002) > 5e-6 {
					t.Errorf("segment %d: %q %v, want %q 2.002", n, s.URI, s.Duration, m.URI)
				}
				if s.Discontinuity {
					discs = append(discs, n)
				}
				if pdt := parsedPDT(pl, s, n); !pdt.Equal(m.ProgramDateTime.Round(time.Millisecond)) {
					t.Errorf("segment %d: PDT %v, want %v", n, pdt, m.ProgramDateTime)
				}
			}
			if !slices.Equal(discs, w.discs) {
				t.Errorf("discontinuities before %v, want %v", discs, w.discs)
			}
			if len(segs) > 0 {
				if got := segs[0].ProgramDateTime.UTC().Format(pdtLayout); got != w.firstPDT {
					t.Errorf("first PDT %s, want %s", got, w.firstPDT)
				}
			}
			if len(pl.PartialSegments) != w.parts {
				t.Errorf("parsed %d parts, want %d", len(pl.PartialSegments), w.parts)
			}
			if tc.spec.parts {
				if pl.PartTargetDuration != 0.5005 || pl.ServerControl == nil || pl.ServerControl.PartHoldBack != 1.536 ||
					!pl.ServerControl.CanBlockReload || pl.ServerControl.CanSkipUntil != 12 {
					t.Errorf("parsed PART-TARGET %v, server control %+v", pl.PartTargetDuration, pl.ServerControl)
				}
			}
			if w.hint == "" && pl.PreloadHints != nil || w.hint != "" && (pl.PreloadHints == nil || *pl.PreloadHints != m3u8.PreloadHint{Type: "PART", URI: w.hint}) {
				t.Errorf("parsed preload hint %+v, want %q", pl.PreloadHints, w.hint)
			}
			if len(reports) != w.reports {
				t.Errorf("parsed %d rendition reports, want %d", len(reports), w.reports)
			}
			if w.reports > 0 {
				want := []RenditionReport{
					{URI: "../video_360p/index.m3u8", LastMSN: 1015, LastPart: 1},
					{URI: "../audio_eng/index.m3u8", LastMSN: 1015, LastPart: 1},
				}
				if !slices.Equal(reports, want) {
					t.Errorf("parsed rendition reports %+v, want %+v", reports, want)
				}
			}
		})
	}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

// parsedPDT is the PDT hls-m3u8 read for segment n. v0.6.5 hands an EXT-X-PROGRAM-DATE-TIME
// that precedes EXT-X-PART lines to the next part that arrives once the playlist already has
// a part (so the second part of the first segment with parts, the first part of later ones)
// instead of to the segment; the segment's own value is then found on that part.
func parsedPDT(pl *m3u8.MediaPlaylist, s *m3u8.MediaSegment, n uint64) time.Time {
	if !s.ProgramDateTime.IsZero() {
		return s.ProgramDateTime
	}
	for _, part := range pl.PartialSegments {
		if strings.HasPrefix(part.URI, fmt.Sprintf("seg_%d.", n)) && !part.ProgramDateTime.IsZero() {
			return part.ProgramDateTime
		}
	}
	return time.Time{}
}

// checkPartsBeforeEntries applies bis §3.2 and §4.4.4.9: a segment's parts come right before
// its EXTINF, and EXT-X-DISCONTINUITY and EXT-X-PROGRAM-DATE-TIME before its first part.
func checkPartsBeforeEntries(t *testing.T, raw []byte) {
	t.Helper()
	ls := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	for i, l := range ls {
		if !strings.HasPrefix(l, "#EXT-X-PART:") {
			continue
		}
		uri := between(l, `URI="`, `"`)
		num, idx, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(uri, "seg_"), ".m4s"), ".")
		if idx == "0" {
			// Every complete segment has a PDT; the one in progress only when the model has it.
			complete := slices.Contains(ls[i:], "seg_"+num+".m4s")
			if complete && (i < 1 || !strings.HasPrefix(ls[i-1], "#EXT-X-PROGRAM-DATE-TIME:")) {
				t.Errorf("line %d: first part of %s without a PDT right before it", i+1, num)
			}
			continue
		}
		if i < 1 || !strings.Contains(ls[i-1], fmt.Sprintf(`URI="seg_%s.`, num)) {
			t.Errorf("line %d: part %s not right after the previous part of its segment", i+1, uri)
		}
		// The line after a segment's last part is its EXTINF, or another part, or the hint.
		if i+1 < len(ls) && strings.HasPrefix(ls[i+1], "#EXTINF:") && ls[i+2] != "seg_"+num+".m4s" {
			t.Errorf("line %d: parts of %s followed by segment %s", i+1, num, ls[i+2])
		}
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

// bis §4.4.3.7 and §4.4.3.8: the part target covers every part, and the server-control
// values respect their floors (HOLD-BACK ≥ 3 × target, PART-HOLD-BACK ≥ 3 × the largest part
// target of any rendition as the SHOULD, CAN-SKIP-UNTIL ≥ 6 × target). The audio track's AAC parts (up to 24 frames =
// 0.512 s) are longer than the configured 0.5005 s.
func TestHLSLiveServerControl(t *testing.T) {
	tests := []struct {
		name     string
		parts    bool
		audio    bool
		set      func(l *Live)
		control  string // "" for no tag
		partInfo string
	}{
		{"nothing configured", false, false, func(l *Live) { l.CanBlockReload, l.CanSkipUntil = false, 0 }, "", ""},
		{"blocking reload only", false, false, func(l *Live) { l.CanSkipUntil = 0 }, "CAN-BLOCK-RELOAD=YES", ""},
		{"hold-back below 3 targets is raised", false, false, func(l *Live) { l.HoldBack = 4 * time.Second },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6", ""},
		{"hold-back above the floor is kept", false, false, func(l *Live) { l.HoldBack = 7500 * time.Millisecond },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=7.5", ""},
		{"skip boundary below 6 targets is raised", false, false, func(l *Live) { l.CanSkipUntil = 5 * time.Second },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12", ""},
		{"skip boundary kept", false, false, func(l *Live) { l.CanSkipUntil = 24 * time.Second },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24", ""},
		// The audio's parts are up to 0.512 s, so PART-HOLD-BACK is at least 1.536 s for all.
		{"parts: default part hold-back", true, false, func(l *Live) {},
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.536", "PART-TARGET=0.5005"},
		{"parts: part hold-back below 3 part targets is raised", true, false, func(l *Live) { l.PartHoldBack = time.Second },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.536", "PART-TARGET=0.5005"},
		{"parts: part hold-back kept", true, false, func(l *Live) { l.PartHoldBack = 2 * time.Second },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=2", "PART-TARGET=0.5005"},
		{"parts: PART-HOLD-BACK even without anything else", true, false, func(l *Live) { l.CanBlockReload, l.CanSkipUntil = false, 0 },
			"PART-HOLD-BACK=1.536", "PART-TARGET=0.5005"},
		{"parts: part target raised to the longest part", true, true, func(l *Live) {},
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.536", "PART-TARGET=0.512"},
		{"parts: configured part target rounds up", true, false, func(l *Live) { l.PartTarget = 333333333 },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.536", "PART-TARGET=0.5005"},
		{"parts: configured part target above the parts", true, false, func(l *Live) { l.PartTarget = 666666666 },
			"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=2.00001", "PART-TARGET=0.66667"},
	}
	for _, tc := range tests {
		p := liveFixture(liveSpec{first: 10, complete: 5, inProgress: 1, parts: tc.parts})
		tc.set(p.Live)
		tr := p.Video[0]
		if tc.audio {
			tr = p.Audio[0]
		}
		raw := p.HLSLiveMedia(tr, LiveMediaOptions{})
		wantLines := func(prefix, v string) []string {
			if v == "" {
				return nil
			}
			return []string{prefix + v}
		}
		if got := lines(raw, "#EXT-X-SERVER-CONTROL:"); !slices.Equal(got, wantLines("#EXT-X-SERVER-CONTROL:", tc.control)) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.control)
		}
		if got := lines(raw, "#EXT-X-PART-INF:"); !slices.Equal(got, wantLines("#EXT-X-PART-INF:", tc.partInfo)) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.partInfo)
		}
		if tc.parts {
			// Every part fits the target as printed (bis §4.4.4.9).
			pl, _, _ := parseLive(t, raw)
			for _, part := range pl.PartialSegments {
				if part.Duration > pl.PartTargetDuration {
					t.Errorf("%s: part %s lasts %v, above PART-TARGET %v", tc.name, part.URI, part.Duration, pl.PartTargetDuration)
				}
			}
		}
	}
}

// RFC 8216 §4.3.3.1 (rounded to the nearest integer from version 6): the longest segment,
// skipped ones included, never below the configured target, never 0.
func TestHLSLiveTargetDuration(t *testing.T) {
	tests := []struct {
		name   string
		target time.Duration
		durs   []uint64 // at 90 kHz
		skip   bool
		want   string
	}{
		{"empty window: the configured target", 4 * time.Second, nil, false, "4"},
		{"configured target rounds to nearest", 2499 * time.Millisecond, nil, false, "2"},
		{"configured target .5 rounds up", 2500 * time.Millisecond, nil, false, "3"},
		{"no configured target, empty window", 0, nil, false, "1"},
		{"longest segment above the target", 2 * time.Second, []uint64{180000, 315000, 180000}, false, "4"},
		{"longest segment rounds down", 2 * time.Second, []uint64{180000, 224999}, false, "2"},
		{"sub-second segments", 0, []uint64{45000, 45000}, false, "1"},
		// The 4.5 s segment makes the target 5 and so the skip boundary 30 s; 16 × 2 s follow.
		{"skipped long segment still counts", 2 * time.Second, append([]uint64{405000}, slices.Repeat([]uint64{180000}, 16)...), true, "5"},
	}
	for _, tc := range tests {
		tr := &Track{ID: "v", Codecs: "avc1.64001f", Timescale: 90000, InitURI: "init.mp4", NextNumber: 5}
		var start uint64
		for i, d := range tc.durs {
			tr.Segments = append(tr.Segments, Segment{Start: start, Duration: d, URI: fmt.Sprintf("s%d.m4s", i),
				Number: uint64(i), ProgramDateTime: liveEpoch})
			start += d
		}
		tr.NextNumber = uint64(len(tc.durs))
		p := &Presentation{Video: []*Track{tr}, Live: &Live{TargetDuration: tc.target, CanSkipUntil: time.Second}}
		if err := p.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		raw := p.HLSLiveMedia(tr, LiveMediaOptions{Skip: tc.skip})
		if got := lines(raw, "#EXT-X-TARGETDURATION:"); len(got) != 1 || got[0] != "#EXT-X-TARGETDURATION:"+tc.want {
			t.Errorf("%s: %q, want %s", tc.name, got, tc.want)
		}
		if tc.skip && len(lines(raw, "#EXT-X-SKIP:")) != 1 {
			t.Errorf("%s: no EXT-X-SKIP:\n%s", tc.name, raw)
		}
		pl, segs, _ := parseLive(t, raw)
		checkTarget(t, tc.name, raw, segs, pl.Version(), 0+uint(mustAtoi(tc.want)))
	}
}

func mustAtoi(s string) int {
	var n int
	fmt.Sscanf(s, "%d", &n)
	return n
}

// RFC 8216 §4.3.3.5 and §6.2.1: EVENT playlists only grow; an ended EVENT is a VOD playlist.
func TestHLSLivePlaylistType(t *testing.T) {
	tests := []struct {
		typ   string
		ended bool
		want  m3u8.MediaType
		line  string
	}{
		{"", false, 0, ""},
		{"", true, 0, ""},
		{PlaylistEvent, false, m3u8.EVENT, "#EXT-X-PLAYLIST-TYPE:EVENT"},
		{PlaylistEvent, true, m3u8.VOD, "#EXT-X-PLAYLIST-TYPE:VOD"},
		{PlaylistVOD, true, m3u8.VOD, "#EXT-X-PLAYLIST-TYPE:VOD"},
	}
	for _, tc := range tests {
		p := liveFixture(liveSpec{first: 0, complete: 4})
		p.Live.PlaylistType, p.Live.Ended = tc.typ, tc.ended
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		raw := p.HLSLiveMedia(p.Video[0], LiveMediaOptions{})
		pl, _, _ := parseLive(t, raw)
		got := lines(raw, "#EXT-X-PLAYLIST-TYPE:")
		if pl.MediaType != tc.want || strings.Join(got, "") != tc.line || pl.Closed != tc.ended {
			t.Errorf("type %q ended %v: %q (parsed %v, closed %v), want %q", tc.typ, tc.ended, got, pl.MediaType, pl.Closed, tc.line)
		}
	}
}

// bis §6.2.5.1 and §4.4.5.2: a delta update is the full playlist with the segments beyond the
// skip boundary replaced by EXT-X-SKIP. A client that merges it with its previous copy gets the
// full playlist back: same media sequence, discontinuity sequence and target; the remaining
// segments are the full playlist's last ones, with their own tags.
func TestHLSLiveDeltaUpdate(t *testing.T) {
	tests := []struct {
		name     string
		until    time.Duration
		complete int
		ended    bool
		want     int // skipped
	}{
		{"short window: nothing to skip", 12 * time.Second, 6, false, 0},
		{"first segment just beyond the boundary", 12 * time.Second, 7, false, 1},
		{"long window", 12 * time.Second, 60, false, 54},
		{"boundary at exactly 6 segment ends is not skipped", 12012 * time.Millisecond, 10, false, 3},
		{"larger boundary", 30 * time.Second, 60, false, 45},
		{"ended: never a delta", 12 * time.Second, 60, true, 0},
		{"skip not offered", 0, 60, false, 0},
	}
	for _, tc := range tests {
		p := liveFixture(liveSpec{first: 300, complete: tc.complete, inProgress: 1, parts: true,
			disc: map[uint64]bool{301: true, 330: true}, discSeq: 2, pdtJump: time.Second})
		p.Live.CanSkipUntil, p.Live.Ended = tc.until, tc.ended
		for _, tr := range p.Tracks() {
			full := p.HLSLiveMedia(tr, LiveMediaOptions{})
			delta := p.HLSLiveMedia(tr, LiveMediaOptions{Skip: true})
			fpl, fsegs, _ := parseLive(t, full)
			dpl, dsegs, _ := parseLive(t, delta)
			name := tc.name + " " + tr.ID
			if got := int(dpl.SkippedSegments()); got != tc.want || len(dsegs) != len(fsegs)-tc.want {
				t.Errorf("%s: skipped %d, %d segments left of %d; want %d skipped", name, got, len(dsegs), len(fsegs), tc.want)
				continue
			}
			wantVersion := uint8(6)
			if tc.want > 0 {
				wantVersion = 9 // bis §8
			}
			if dpl.SeqNo != fpl.SeqNo || dpl.DiscontinuitySeq != fpl.DiscontinuitySeq || dpl.Version() != wantVersion ||
				strings.Join(lines(delta, "#EXT-X-TARGETDURATION"), "") != strings.Join(lines(full, "#EXT-X-TARGETDURATION"), "") {
				t.Errorf("%s: delta seq %d disc %d version %d, full seq %d disc %d", name, dpl.SeqNo, dpl.DiscontinuitySeq,
					dpl.Version(), fpl.SeqNo, fpl.DiscontinuitySeq)
			}
			// hls-m3u8 numbers the first segment after EXT-X-SKIP as SeqNo, not SeqNo + skipped,
			// so compare by position.
			for i, s := range dsegs {
				f := fsegs[tc.want+i]
				n := uint64(300 + tc.want + i)
				if s.URI != f.URI || s.Duration != f.Duration || s.Discontinuity != f.Discontinuity ||
					!parsedPDT(dpl, s, n).Equal(parsedPDT(fpl, f, n)) {
					t.Errorf("%s: delta segment %d %+v, full %+v", name, i, s, f)
				}
			}
			if dpl.Map == nil || dpl.Map.URI != "init.mp4" {
				t.Errorf("%s: delta without EXT-X-MAP for the remaining segments", name)
			}
			if tc.want > 0 && !strings.Contains(string(delta), fmt.Sprintf("#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n#EXT-X-MAP:", tc.want)) {
				t.Errorf("%s: EXT-X-SKIP not followed by EXT-X-MAP:\n%s", name, delta)
			}
			if n := len(lines(delta, "#EXT-X-SKIP")); n > 1 || (n == 1) != (tc.want > 0) {
				t.Errorf("%s: %d EXT-X-SKIP tags", name, n)
			}
		}
	}
}

// bis §4.4.5.4: LAST-MSN is the last part's segment when there are parts, LAST-PART its index.
func TestLiveEdge(t *testing.T) {
	tests := []struct {
		name  string
		spec  liveSpec
		ended bool
		msn   uint64
		part  int
		ok    bool
	}{
		{"nothing listed", liveSpec{first: 5}, false, 0, -1, false},
		{"no parts", liveSpec{first: 5, complete: 3}, false, 7, -1, true},
		{"parts in progress", liveSpec{first: 5, complete: 3, inProgress: 2, parts: true}, false, 8, 1, true},
		{"only parts, no segment yet", liveSpec{first: 5, inProgress: 1, parts: true}, false, 5, 0, true},
		{"segment just completed", liveSpec{first: 5, complete: 3, parts: true}, false, 7, 3, true},
		{"ended", liveSpec{first: 5, complete: 3, inProgress: 2, parts: true}, true, 7, 3, true},
	}
	for _, tc := range tests {
		p := liveFixture(tc.spec)
		p.Live.Ended = tc.ended
		msn, part, ok := p.LiveEdge(p.Video[0])
		if msn != tc.msn || part != tc.part || ok != tc.ok {
			t.Errorf("%s: LiveEdge = %d, %d, %v; want %d, %d, %v", tc.name, msn, part, ok, tc.msn, tc.part, tc.ok)
		}
		reports := p.RenditionReports(p.Video[0])
		if !tc.ok && len(reports) != 0 || tc.ok && len(reports) != 2 {
			t.Errorf("%s: %d reports", tc.name, len(reports))
		}
	}
	p := liveFixture(liveSpec{first: 5, complete: 3, inProgress: 2, parts: true})
	got := p.RenditionReports(p.Audio[0])
	want := []RenditionReport{{"../video_720p/index.m3u8", 8, 1}, {"../video_360p/index.m3u8", 8, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("audio reports %+v, want %+v", got, want)
	}
	// Without parts the report has no LAST-PART (bis §4.4.5.4: only with partial segments).
	raw := p.HLSLiveMedia(p.Video[0], LiveMediaOptions{Reports: []RenditionReport{{"../a/index.m3u8", 9, -1}}})
	if got := lines(raw, "#EXT-X-RENDITION-REPORT:"); !slices.Equal(got, []string{`#EXT-X-RENDITION-REPORT:URI="../a/index.m3u8",LAST-MSN=9`}) {
		t.Errorf("report without parts: %q", got)
	}
}

// RFC 8216 §7 and bis §8: the LL-HLS tags need no version; EXT-X-SKIP needs 9.
func TestHLSLiveVersion(t *testing.T) {
	if v := (hlsFeatures{initMap: true, skip: true}).version(); v != 9 {
		t.Errorf("EXT-X-SKIP: version %d, want 9", v)
	}
	p := liveFixture(liveSpec{first: 0, complete: 20, inProgress: 1, parts: true})
	pl, _, _ := parseLive(t, p.HLSLiveMedia(p.Video[0], LiveMediaOptions{PreloadHint: "x"}))
	if minV, reason := pl.CalcMinVersion(); pl.Version() != 6 || minV > 6 {
		t.Errorf("version %d, hls-m3u8 minimum %d (%s); want 6", pl.Version(), minV, reason)
	}
}

// RFC 8216 §4.3.4: the master playlist of a live channel, before any segment is complete.
// I-frame playlists are VOD-only here, so none is listed even if the model has I-frames.
func TestHLSLiveMaster(t *testing.T) {
	p := liveFixture(liveSpec{first: 0})
	p.Video[0].IFrames = []IFrame{{Start: 0, Duration: 1, URI: "x", Range: ByteRange{0, 10}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	raw := p.HLSMaster()
	pl := parseMaster(t, raw)
	var uris []string
	for _, v := range pl.Variants {
		if v.Iframe {
			t.Errorf("I-frame variant %s in a live master playlist", v.URI)
		}
		uris = append(uris, v.URI)
		if v.Bandwidth == 0 || v.Codecs == "" || v.Audio != AudioGroupID {
			t.Errorf("variant %+v", v.VariantParams)
		}
	}
	if !slices.Equal(uris, []string{"video_720p/index.m3u8", "video_360p/index.m3u8"}) {
		t.Errorf("variants %v", uris)
	}
	if strings.Contains(string(raw), "I-FRAME") {
		t.Errorf("I-frame lines:\n%s", raw)
	}
	// HLSMedia of a live presentation is the live playlist, not a VOD one.
	if got := string(p.HLSMedia(p.Video[0])); got != string(p.HLSLiveMedia(p.Video[0], LiveMediaOptions{})) || strings.Contains(got, "ENDLIST") {
		t.Errorf("HLSMedia on a live presentation:\n%s", got)
	}
}

func TestValidateLive(t *testing.T) {
	tests := []struct {
		name   string
		spec   liveSpec
		mutate func(p *Presentation)
		want   string // empty: valid
	}{
		{"window with parts", liveSpec{first: 3, complete: 5, inProgress: 2, parts: true}, func(p *Presentation) {}, ""},
		{"no complete segment yet", liveSpec{first: 3, inProgress: 2, parts: true}, func(p *Presentation) {}, ""},
		{"nothing at all yet", liveSpec{first: 0}, func(p *Presentation) {}, ""},
		{"next number may be left 0", liveSpec{first: 3, complete: 5}, func(p *Presentation) { p.Video[0].NextNumber = 0 }, ""},
		{"still checks ids", liveSpec{first: 3}, func(p *Presentation) { p.Audio[0].ID = "a b" }, "plain folder name"},
		{"still checks duplicate ids", liveSpec{first: 3}, func(p *Presentation) { p.Audio[0].ID = "video_720p" }, "used twice"},
		{"still checks codecs", liveSpec{first: 3}, func(p *Presentation) { p.Video[1].Codecs = "" }, "codec"},
		{"still checks timescales", liveSpec{first: 3}, func(p *Presentation) { p.Audio[0].Timescale = 0 }, "timescale"},
		{"gap in time", liveSpec{first: 3, complete: 5}, func(p *Presentation) { p.Video[0].Segments[2].Start++ }, "gap or overlap"},
		{"gap in numbers", liveSpec{first: 3, complete: 5}, func(p *Presentation) {
			for i := 2; i < 5; i++ {
				p.Video[0].Segments[i].Number++
			}
		}, "consecutive"},
		{"numbers going back", liveSpec{first: 3, complete: 5}, func(p *Presentation) { p.Audio[0].Segments[4].Number = 3 }, "consecutive"},
		{"next number disagrees", liveSpec{first: 3, complete: 5}, func(p *Presentation) { p.Video[0].NextNumber = 9 }, "in progress"},
		{"no PDT", liveSpec{first: 3, complete: 5}, func(p *Presentation) { p.Video[1].Segments[1].ProgramDateTime = time.Time{} }, "program date-time"},
		{"parts do not add up", liveSpec{first: 3, complete: 5, parts: true}, func(p *Presentation) { p.Video[0].Segments[1].Parts[2].Duration-- }, "parts last"},
		{"parts without a part target", liveSpec{first: 3, complete: 1, inProgress: 1, parts: true}, func(p *Presentation) {
			p.Live.PartTarget = 0
		}, "PartTarget"},
		{"part without URI", liveSpec{first: 3, complete: 1, inProgress: 1, parts: true}, func(p *Presentation) { p.Audio[0].LiveParts[0].URI = "" }, "no URI"},
		{"byte-range segment", liveSpec{first: 3, complete: 2}, func(p *Presentation) { p.Video[0].Segments[0].Range = ByteRange{0, 10} }, "whole file"},
		{"single file", liveSpec{first: 3, complete: 2}, func(p *Presentation) { p.SingleFile = true }, "single-file"},
		{"VOD type while live", liveSpec{first: 3, complete: 2}, func(p *Presentation) { p.Live.PlaylistType = PlaylistVOD }, "VOD"},
		{"unknown type", liveSpec{first: 3, complete: 2}, func(p *Presentation) { p.Live.PlaylistType = "event" }, "playlist type"},
		{"negative setting", liveSpec{first: 3, complete: 2}, func(p *Presentation) { p.Live.HoldBack = -time.Second }, "negative"},
	}
	for _, tc := range tests {
		p := liveFixture(tc.spec)
		tc.mutate(p)
		err := p.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}
