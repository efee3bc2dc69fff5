package manifest

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// TestHLSKeySignalling: with a key URI, every media and I-frame playlist of an encrypted
// presentation carries the identity EXT-X-KEY and the ClearKey one before its EXT-X-MAP, and the
// master the same as EXT-X-SESSION-KEYs, with METHOD SAMPLE-AES for cbcs (SAMPLE-AES-CTR for
// cenc); hls-m3u8 parses them back. Apart from those lines (and the master's EXT-X-VERSION:5
// that KEYFORMAT needs) the playlists are byte for byte the clear ones.
func TestHLSKeySignalling(t *testing.T) {
	const uri = "https://keys.example/k?id=1&v=2"
	for scheme, method := range map[string]string{"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"} {
		t.Run(scheme, func(t *testing.T) {
			clear := fixture(false)
			p := fixture(false)
			p.Protection = &Protection{Scheme: scheme, KID: [16]byte{1, 2, 3}, KeyURI: uri}
			wantKeys := []m3u8.Key{
				{Method: method, URI: uri, Keyformat: "identity"},
				{Method: method, URI: "data:text/plain;base64,AQIDAAAAAAAAAAAAAAAAAA==", Keyformat: "org.w3.clearkey", Keyformatversions: "1"},
			}
			lines := []string{`METHOD=` + method + `,URI="` + uri + `",KEYFORMAT="identity"`,
				`METHOD=` + method + `,URI="data:text/plain;base64,AQIDAAAAAAAAAAAAAAAAAA==",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`}

			raw := p.HLSMaster()
			master := parseMaster(t, raw)
			if len(master.SessionKeys) != 2 || *master.SessionKeys[0] != wantKeys[0] || *master.SessionKeys[1] != wantKeys[1] {
				t.Errorf("master: session keys %+v, want %+v", master.SessionKeys, wantKeys)
			}
			if minV, reason := master.CalcMinVersion(); master.Version() != 5 || minV > 5 {
				t.Errorf("master: EXT-X-VERSION %d, hls-m3u8 minimum %d (%s); want 5", master.Version(), minV, reason)
			}
			checkOnlyKeyLines(t, "master", raw, clear.HLSMaster(), "#EXT-X-SESSION-KEY:"+lines[0], "#EXT-X-SESSION-KEY:"+lines[1], "#EXT-X-VERSION:5")

			check := func(name string, raw, clearRaw []byte, nSegs int) {
				t.Helper()
				pl, segs := parseMedia(t, raw)
				if !slices.Equal(pl.Keys, wantKeys) {
					t.Errorf("%s: keys %+v, want %+v", name, pl.Keys, wantKeys)
				}
				if len(segs) != nSegs || !slices.Equal(segs[0].Keys, wantKeys) {
					t.Errorf("%s: %d segments (want %d), the first with keys %+v", name, len(segs), nSegs, segs[0].Keys)
				}
				k, m := bytes.LastIndex(raw, []byte("#EXT-X-KEY:")), bytes.Index(raw, []byte("#EXT-X-MAP:"))
				if k < 0 || m < 0 || k > m {
					t.Errorf("%s: EXT-X-KEY at %d, EXT-X-MAP at %d: want the keys first", name, k, m)
				}
				checkOnlyKeyLines(t, name, raw, clearRaw, "#EXT-X-KEY:"+lines[0], "#EXT-X-KEY:"+lines[1])
			}
			for i, tr := range p.Tracks() {
				ct := clear.Tracks()[i]
				check(tr.ID, p.HLSMedia(tr), clear.HLSMedia(ct), len(tr.Segments))
			}
			for i, tr := range p.Video {
				check(tr.ID+"/"+IFramePlaylist, p.HLSIFrames(tr), clear.HLSIFrames(clear.Video[i]), len(tr.IFrames))
			}
		})
	}
}

// TestHLSClearKeyWithoutURI: an encrypted presentation without a key URI or DRM systems still
// signals ClearKey (the KID as a data URI), the one key tag it has.
func TestHLSClearKeyWithoutURI(t *testing.T) {
	clear := fixture(false)
	p := fixture(false)
	p.Protection = &Protection{Scheme: "cbcs", KID: [16]byte{1}}
	line := `METHOD=SAMPLE-AES,URI="data:text/plain;base64,AQAAAAAAAAAAAAAAAAAAAA==",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`
	checkOnlyKeyLines(t, "master", p.HLSMaster(), clear.HLSMaster(), "#EXT-X-SESSION-KEY:"+line, "#EXT-X-VERSION:5")
	for i, tr := range p.Tracks() {
		checkOnlyKeyLines(t, tr.ID, p.HLSMedia(tr), clear.HLSMedia(clear.Tracks()[i]), "#EXT-X-KEY:"+line)
	}
}

// checkOnlyKeyLines asserts that raw is clearRaw plus exactly the lines extra, once each.
func checkOnlyKeyLines(t *testing.T, name string, raw, clearRaw []byte, extra ...string) {
	t.Helper()
	var kept []string
	seen := map[string]int{}
	for _, l := range strings.SplitAfter(string(raw), "\n") {
		if l2 := strings.TrimSuffix(l, "\n"); contains(extra, l2) {
			seen[l2]++
			continue
		}
		kept = append(kept, l)
	}
	for _, e := range extra {
		if seen[e] != 1 {
			t.Errorf("%s: %q appears %d times, want once", name, e, seen[e])
		}
	}
	if got := strings.Join(kept, ""); got != string(clearRaw) {
		t.Errorf("%s: without the key lines\n%s\nwant the clear playlist\n%s", name, got, clearRaw)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
