package live

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/reelvideo/reel/manifest"
)

// box is an ISO BMFF box of type typ around payload.
func box(typ, payload string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(payload)))
	return append(append(b, typ...), payload...)
}

// cmafFrag is a fragment of 500 ms at media time at (ms) shaped like a CMAF chunk: a moof
// naming its time and an mdat holding media.
func cmafFrag(at uint64, media string) Fragment {
	data := append(box("moof", fmt.Sprintf("tfdt=%d", at)), box("mdat", media)...)
	return Fragment{Data: data, Decode: at, Duration: 500, Independent: at%2000 == 0}
}

// etagChannel is a channel in dir with one video track, fed fragments up to (not including)
// media time until; media(at) gives each fragment's mdat.
func etagChannel(t *testing.T, dir string, until uint64, media func(at uint64) string) (*Channel, *Server) {
	t.Helper()
	c, err := NewChannel(Config{Name: "ch", Dir: dir, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.AddTrack(manifest.Track{ID: "video", Kind: manifest.Video, Codecs: "avc1.64001f", Timescale: ts}, box("moov", "init")); err != nil {
		t.Fatal(err)
	}
	c.SetStart(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for at := c.ResumeAt("video"); at < until; at += 500 {
		if err := c.Append("video", cmafFrag(at, media(at))); err != nil {
			t.Fatal(err)
		}
	}
	s := NewServer(nil)
	if err := s.Add(c); err != nil {
		t.Fatal(err)
	}
	return c, s
}

// segETag asks s for segment n's ETag. If-None-Match: * answers at once (304) even for the
// segment in progress, which a GET would stream until complete.
func segETag(t *testing.T, s *Server, n int) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/live/ch/video/seg_%d.m4s", n), nil)
	req.Header.Set("If-None-Match", "*")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	etag := rec.Header().Get("ETag")
	if rec.Code != http.StatusNotModified || len(etag) < 3 || etag[0] != '"' {
		t.Fatalf("segment %d: status %d, ETag %q", n, rec.Code, etag)
	}
	return etag
}

func sameMedia(at uint64) string { return fmt.Sprintf("frame@%d", at) }

// TestSegmentETagNamesContent: two channels (two origins, or one before and after a restart)
// producing the same content at the same position give its segments the same ETags, in
// progress and complete; other content at the same position gets another ETag.
func TestSegmentETagNamesContent(t *testing.T) {
	// Segments 0 and 1 complete, segment 2 in progress (4 s → 4.5 s).
	_, a := etagChannel(t, filepath.Join(t.TempDir(), "ch"), 4500, sameMedia)
	cb, b := etagChannel(t, filepath.Join(t.TempDir(), "ch"), 4500, sameMedia)
	for n := range 3 {
		if ea, eb := segETag(t, a, n), segETag(t, b, n); ea != eb {
			t.Errorf("segment %d: ETag %s on one origin, %s on the other", n, ea, eb)
		}
	}

	inProgress := segETag(t, b, 2)
	for at := uint64(4500); at < 6500; at += 500 {
		if err := cb.Append("video", cmafFrag(at, sameMedia(at))); err != nil {
			t.Fatal(err)
		}
	}
	if complete := segETag(t, b, 2); complete != inProgress {
		t.Errorf("segment 2: ETag %s while in progress, %s complete", inProgress, complete)
	}

	// Other media in segment 1's first fragment.
	_, c := etagChannel(t, filepath.Join(t.TempDir(), "ch"), 4500, func(at uint64) string {
		if at == 2000 {
			return "another frame"
		}
		return sameMedia(at)
	})
	if e0a, e0c := segETag(t, a, 0), segETag(t, c, 0); e0a != e0c {
		t.Errorf("segment 0, same bytes: ETags %s and %s", e0a, e0c)
	}
	if e1a, e1c := segETag(t, a, 1), segETag(t, c, 1); e1a == e1c {
		t.Errorf("segment 1, other bytes: both ETag %s", e1a)
	}
}

// TestSegmentETagAfterRestart: a channel restarted on its folder serves the segments it reads
// back from disk with the ETags they were served with before.
func TestSegmentETagAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ch")
	first, s := etagChannel(t, dir, 6500, sameMedia)
	before := map[int]string{}
	for n := range 3 {
		before[n] = segETag(t, s, n)
	}
	first.End()
	first.Close() // the folder's one writer lets go of it, as a stopped process does

	_, s = etagChannel(t, dir, 0, sameMedia)
	for n := range 3 {
		if after := segETag(t, s, n); after != before[n] {
			t.Errorf("segment %d: ETag %s before the restart, %s after", n, before[n], after)
		}
	}
}
