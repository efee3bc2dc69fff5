package live

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/subtitles"
)

// textChannel is a channel with parts, a video track and the text track text_fr, whose first
// three 2 s cells hold a cue crossing the line at 2 s, and whose video has three segments.
func textChannel(t *testing.T) (*Channel, *Server) {
	t.Helper()
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond}, "video")
	hdr := &subtitles.Track{Styles: []string{"::cue { color: lime; }"}}
	init, err := subtitles.WvttInit(hdr, "fr")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddTrack(manifest.Track{ID: "text_fr", Kind: manifest.Text, Timescale: subtitles.WvttTimescale, Language: "fr", Name: "Français"}, init); err != nil {
		t.Fatal(err)
	}
	cues := []subtitles.Cue{{Start: 1500, End: 2500, Text: "À cheval"}}
	for k := range uint64(3) {
		for p := range uint64(4) {
			f := frag(k*2000+p*500, 500, p == 0)
			f.Boundary = p == 3
			if err := c.Append("video", f); err != nil {
				t.Fatal(err)
			}
		}
		appendTextCell(t, c, k, cues)
	}
	s := NewServer(nil)
	s.Add(c)
	return c, s
}

// appendTextCell appends the wvtt segment of the k-th 2 s cell, holding cues, to text_fr.
func appendTextCell(t *testing.T, c *Channel, k uint64, cues []subtitles.Cue) {
	t.Helper()
	var b bytes.Buffer
	if err := subtitles.WriteWvttSegment(&b, uint32(k+1), int64(k*2000), int64(k*2000+2000), cues); err != nil {
		t.Fatal(err)
	}
	if err := c.Append("text_fr", Fragment{Data: b.Bytes(), Decode: k * 2000, Duration: 2000, Independent: true, Boundary: true}); err != nil {
		t.Fatal(err)
	}
}

func get(s http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

// TestTextTrack: a text track's wvtt segments are served as they are under TRACK_wvtt (DASH) and
// as WebVTT under TRACK (HLS, cue times from each segment's start, X-TIMESTAMP-MAP at its media
// time), listed without parts, preload hints or rendition reports though the channel has parts.
func TestTextTrack(t *testing.T) {
	_, s := textChannel(t)
	master := get(s, "/live/ch/master.m3u8").Body.String()
	if !strings.Contains(master, `TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français"`) || !strings.Contains(master, `SUBTITLES="subs"`) {
		t.Errorf("master:\n%s", master)
	}
	pl := get(s, "/live/ch/text_fr/index.m3u8").Body.String()
	for _, no := range []string{"#EXT-X-PART", "PRELOAD-HINT", "RENDITION-REPORT", "#EXT-X-MAP", ".m4s"} {
		if strings.Contains(pl, no) {
			t.Errorf("text playlist has %s:\n%s", no, pl)
		}
	}
	if !strings.Contains(pl, "#EXTINF:2,\nseg_1.vtt") {
		t.Errorf("text playlist:\n%s", pl)
	}
	if rec := get(s, "/live/ch/text_fr/index.m3u8?_HLS_msn=1&_HLS_part=0"); rec.Code != http.StatusBadRequest {
		t.Errorf("_HLS_part on the text playlist: %d", rec.Code)
	}
	rec := get(s, "/live/ch/text_fr/seg_1.vtt")
	want := "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:180000,LOCAL:00:00:00.000\n\nSTYLE\n::cue { color: lime; }\n\n00:00:00.000 --> 00:00:00.500\nÀ cheval\n"
	if rec.Code != 200 || rec.Body.String() != want || rec.Header().Get("Content-Type") != "text/vtt; charset=utf-8" ||
		rec.Header().Get("Cache-Control") != immutable || rec.Header().Get("ETag") == "" {
		t.Errorf("seg_1.vtt: %d %v\n%q\nwant %q", rec.Code, rec.Header(), rec.Body.String(), want)
	}
	if rec := get(s, "/live/ch/text_fr_wvtt/seg_1.m4s"); rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte("vttc")) {
		t.Errorf("seg_1.m4s: %d", rec.Code)
	}
	if rec := get(s, "/live/ch/text_fr_wvtt/init.mp4"); rec.Code != 200 || rec.Header().Get("Content-Type") != "application/mp4" || !bytes.Contains(rec.Body.Bytes(), []byte("wvtt")) {
		t.Errorf("init.mp4: %d %v", rec.Code, rec.Header())
	}
	for _, path := range []string{"/live/ch/text_fr/seg_7.vtt", "/live/ch/text_fr/seg_01.vtt", "/live/ch/text_fr_wvtt/seg_1.0.m4s",
		"/live/ch/text_fr_wvtt/index.m3u8", "/live/ch/text_fr/init.mp4", "/live/ch/video_wvtt/init.mp4"} {
		if rec := get(s, path); rec.Code != 404 {
			t.Errorf("%s: %d, want 404", path, rec.Code)
		}
	}
	mpd := get(s, "/live/ch/manifest.mpd").Body.String()
	if !strings.Contains(mpd, `<Representation id="text_fr_wvtt" bandwidth=`) || strings.Count(mpd, "availabilityTimeOffset") != 1 {
		t.Errorf("MPD (the video alone low-latency):\n%s", mpd)
	}
}

// TestTextTrackRefusals: a text track must be wvtt, and its rendition's name is no other
// track's.
func TestTextTrackRefusals(t *testing.T) {
	c := testChannel(t, Config{}, "video")
	init, _ := subtitles.WvttInit(&subtitles.Track{}, "fr")
	for _, tc := range []struct {
		info manifest.Track
		init []byte
		want string
	}{
		{manifest.Track{ID: "t1", Kind: manifest.Text, Timescale: 1000}, []byte("init"), "wvtt init segment"},
		{manifest.Track{ID: "t2", Kind: manifest.Text, Timescale: 1000, Format: manifest.WebVTT}, init, "stored as wvtt"},
		{manifest.Track{ID: "a_wvtt", Kind: manifest.Video, Codecs: "avc1", Timescale: 1000}, []byte("init"), ""},
		{manifest.Track{ID: "a", Kind: manifest.Text, Timescale: 1000}, init, "its wvtt rendition's name is another track's"},
		{manifest.Track{ID: "text", Kind: manifest.Text, Timescale: 1000}, init, ""},
		{manifest.Track{ID: "text_wvtt", Kind: manifest.Audio, Codecs: "mp4a.40.2", Timescale: 1000}, []byte("init"), "the name of a text track's wvtt rendition"},
	} {
		err := c.AddTrack(tc.info, tc.init)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.info.ID, err, tc.want)
		}
	}
}

// TestTextTrackLate: a text track without a segment yet does not keep the MPD from the media.
func TestTextTrackLate(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second}, "video")
	init, _ := subtitles.WvttInit(&subtitles.Track{}, "fr")
	if err := c.AddTrack(manifest.Track{ID: "text_fr", Kind: manifest.Text, Timescale: 1000}, init); err != nil {
		t.Fatal(err)
	}
	for k := range uint64(2) {
		f := frag(k*2000, 2000, true)
		f.Boundary = true
		if err := c.Append("video", f); err != nil {
			t.Fatal(err)
		}
	}
	s := NewServer(nil)
	s.Add(c)
	if rec := get(s, "/live/ch/manifest.mpd"); rec.Code != 200 || strings.Contains(rec.Body.String(), "text_fr") {
		t.Errorf("MPD %d:\n%s", rec.Code, rec.Body.String())
	}
}

// TestTextTrackCueIdentity: in the WebVTT segments, no identifier names two cues with different
// times — the halves of a cue clipped at a segment boundary, or a looped source's replay of a
// cue, which carry the source's identifier in wvtt. hls.js shows only the first cue it sees
// under an identifier, so the half loaded second (a seek back) and every replay went missing.
func TestTextTrackCueIdentity(t *testing.T) {
	c := testChannel(t, Config{SegmentDuration: 2 * time.Second}, "video")
	init, err := subtitles.WvttInit(&subtitles.Track{}, "fr")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddTrack(manifest.Track{ID: "text_fr", Kind: manifest.Text, Timescale: subtitles.WvttTimescale, Language: "fr"}, init); err != nil {
		t.Fatal(err)
	}
	// "2" from 1.5 to 2.5 s across the line at 2 s, then again from 4.5 s, as a loop replays it.
	cues := []subtitles.Cue{{ID: "2", Start: 1500, End: 2500, Text: "Ce sous-titre"}, {ID: "2", Start: 4500, End: 5000, Text: "Ce sous-titre"}}
	for k := range uint64(3) {
		if err := c.Append("video", frag(k*2000, 2000, true)); err != nil {
			t.Fatal(err)
		}
		appendTextCell(t, c, k, cues)
	}
	s := NewServer(nil)
	s.Add(c)

	type span struct{ start, end int64 }
	var got []span
	byID := map[string]span{}
	for k := range int64(3) {
		path := "/live/ch/text_fr/seg_" + strconv.FormatInt(k, 10) + ".vtt"
		rec := get(s, path)
		tr, err := subtitles.ParseVTT(path, rec.Body.Bytes())
		if rec.Code != 200 || err != nil {
			t.Fatalf("%s: %d %v\n%s", path, rec.Code, err, rec.Body.String())
		}
		for _, cue := range tr.Cues {
			sp := span{k*2000 + cue.Start, k*2000 + cue.End} // cue times count from the segment's start
			got = append(got, sp)
			if prev, ok := byID[cue.ID]; cue.ID != "" && ok && prev != sp {
				t.Errorf("%s: identifier %q names the cue at %v ms and the one at %v ms", path, cue.ID, prev, sp)
			}
			byID[cue.ID] = sp
		}
	}
	if want := []span{{1500, 2000}, {2000, 2500}, {4500, 5000}}; !slices.Equal(got, want) {
		t.Errorf("cues (media ms) %v, want %v", got, want)
	}
}
