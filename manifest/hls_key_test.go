package manifest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// TestHLSKeySignalling: with a key URI, every media and I-frame playlist of an encrypted
// presentation carries one EXT-X-KEY before its EXT-X-MAP, and the master one EXT-X-SESSION-KEY,
// with METHOD SAMPLE-AES for cbcs (SAMPLE-AES-CTR for cenc), the URI and KEYFORMAT "identity";
// hls-m3u8 parses them back. Apart from those lines (and the master's EXT-X-VERSION:5 that
// KEYFORMAT needs) the playlists are byte for byte the clear ones.
func TestHLSKeySignalling(t *testing.T) {
	const uri = "https://keys.example/k?id=1&v=2"
	for scheme, method := range map[string]string{"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"} {
		t.Run(scheme, func(t *testing.T) {
			clear := fixture(false)
			p := fixture(false)
			p.Protection = &Protection{Scheme: scheme, KID: [16]byte{1, 2, 3}, KeyURI: uri}
			wantKey := m3u8.Key{Method: method, URI: uri, Keyformat: "identity"}
			line := `METHOD=` + method + `,URI="` + uri + `",KEYFORMAT="identity"`

			raw := p.HLSMaster()
			master := parseMaster(t, raw)
			if len(master.SessionKeys) != 1 || *master.SessionKeys[0] != wantKey {
				t.Errorf("master: session keys %+v, want one %+v", master.SessionKeys, wantKey)
			}
			if minV, reason := master.CalcMinVersion(); master.Version() != 5 || minV > 5 {
				t.Errorf("master: EXT-X-VERSION %d, hls-m3u8 minimum %d (%s); want 5", master.Version(), minV, reason)
			}
			checkOnlyKeyLines(t, "master", raw, clear.HLSMaster(), "#EXT-X-SESSION-KEY:"+line, "#EXT-X-VERSION:5")

			check := func(name string, raw, clearRaw []byte, nSegs int) {
				t.Helper()
				pl, segs := parseMedia(t, raw)
				if len(pl.Keys) != 1 || pl.Keys[0] != wantKey {
					t.Errorf("%s: keys %+v, want one %+v", name, pl.Keys, wantKey)
				}
				if len(segs) != nSegs || len(segs[0].Keys) != 1 || segs[0].Keys[0] != wantKey {
					t.Errorf("%s: %d segments (want %d), the first with keys %+v", name, len(segs), nSegs, segs[0].Keys)
				}
				k, m := bytes.Index(raw, []byte("#EXT-X-KEY:")), bytes.Index(raw, []byte("#EXT-X-MAP:"))
				if k < 0 || m < 0 || k > m {
					t.Errorf("%s: EXT-X-KEY at %d, EXT-X-MAP at %d: want the key first", name, k, m)
				}
				checkOnlyKeyLines(t, name, raw, clearRaw, "#EXT-X-KEY:"+line)
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

// TestHLSKeyNotSignalledWithoutURI: an encrypted presentation without a key URI has exactly the
// clear playlists (DASH alone signals it), as before HLS signalling existed.
func TestHLSKeyNotSignalledWithoutURI(t *testing.T) {
	clear := fixture(false)
	p := fixture(false)
	p.Protection = &Protection{Scheme: "cbcs", KID: [16]byte{1}}
	if !bytes.Equal(p.HLSMaster(), clear.HLSMaster()) {
		t.Error("master differs from the clear one")
	}
	for i, tr := range p.Tracks() {
		if !bytes.Equal(p.HLSMedia(tr), clear.HLSMedia(clear.Tracks()[i])) {
			t.Errorf("%s: media playlist differs from the clear one", tr.ID)
		}
	}
	for i, tr := range p.Video {
		if !bytes.Equal(p.HLSIFrames(tr), clear.HLSIFrames(clear.Video[i])) {
			t.Errorf("%s: I-frame playlist differs from the clear one", tr.ID)
		}
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
