package manifest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// TestHLSM3U8LiveQuirks pins what hls-m3u8 v0.6.5 gets wrong when reading LL-HLS playlists
// that are valid per rfc8216bis-16, so that the workarounds in these tests (and anyone using
// the library to read live playlists, such as the edge) know about them. When an upgrade fixes
// one, its check fails: drop the workaround then.
func TestHLSM3U8LiveQuirks(t *testing.T) {
	decode := func(raw []byte) (*m3u8.MediaPlaylist, error) {
		pl, _, err := m3u8.DecodeFrom(bytes.NewReader(raw), true)
		if err != nil {
			return nil, err
		}
		return pl.(*m3u8.MediaPlaylist), nil
	}

	// 1. Parts before the first EXTINF (a channel's first segment in progress, bis §3.2) fail
	//    the whole decode with ErrPlaylistEmpty, strict or not.
	p := liveFixture(liveSpec{first: 0, inProgress: 2, parts: true})
	raw := p.HLSLiveMedia(p.Video[0], LiveMediaOptions{})
	if _, err := decode(raw); !errors.Is(err, m3u8.ErrPlaylistEmpty) {
		t.Errorf("quirk 1 (parts before the first segment rejected) changed: %v", err)
	}

	p = liveFixture(liveSpec{first: 100, complete: 20, inProgress: 2, parts: true})
	tr := p.Video[0]
	raw = p.HLSLiveMedia(tr, LiveMediaOptions{Skip: true, Reports: p.RenditionReports(tr)})
	pl, err := decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	segs := pl.Segments[:pl.Count()]

	// 2. EXT-X-RENDITION-REPORT is not read at all (reportDecoder reads it in these tests).
	if pl.Custom != nil && len(pl.Custom) > 0 {
		t.Errorf("quirk 2 (rendition reports ignored) changed: %v", pl.Custom)
	}

	// 3. After EXT-X-SKIP the first segment is numbered EXT-X-MEDIA-SEQUENCE, not
	//    EXT-X-MEDIA-SEQUENCE + SKIPPED-SEGMENTS (RFC 8216 §4.3.3.2, bis §4.4.5.2).
	if pl.SkippedSegments() != 14 || segs[0].URI != "seg_114.m4s" || segs[0].SeqId != 100 {
		t.Errorf("quirk 3 (numbering after EXT-X-SKIP) changed: skipped %d, first %s numbered %d",
			pl.SkippedSegments(), segs[0].URI, segs[0].SeqId)
	}

	// 4. An EXT-X-PROGRAM-DATE-TIME before a segment's parts (where bis §4.4.4.9 puts it) goes
	//    to a part once the playlist has parts, and the segment has none.
	last := segs[len(segs)-1]
	if last.URI != "seg_119.m4s" || !last.ProgramDateTime.IsZero() {
		t.Errorf("quirk 4 (PDT before parts lost) changed: %s has PDT %v", last.URI, last.ProgramDateTime)
	}
	want := tr.Segments[19].ProgramDateTime.Round(time.Millisecond)
	if got := parsedPDT(pl, last, 119); !got.Equal(want) {
		t.Errorf("PDT of seg_119 found on its part: %v, want %v", got, want)
	}

	// 5. Parts of segments more than three numbers older than the last complete one read so
	//    far are dropped while decoding (so at most four segments keep their parts), even when
	//    the playlist lists more: bis §6.2.2 removes them after three target durations, which
	//    is more segments when segments are shorter than the target.
	p = liveFixture(liveSpec{first: 100, complete: 20, parts: true})
	p.Live.TargetDuration = 4 * time.Second // parts listed for segments ending within 12 s: 6
	raw = p.HLSLiveMedia(p.Video[0], LiveMediaOptions{})
	if pl, err = decode(raw); err != nil {
		t.Fatal(err)
	}
	if n, listed := len(pl.PartialSegments), len(lines(raw, "#EXT-X-PART:")); listed != 6*4 || n != 4*4 {
		t.Errorf("quirk 5 (old parts dropped) changed: %d of %d parts kept", n, listed)
	}
}
