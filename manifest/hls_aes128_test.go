package manifest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/Eyevinn/hls-m3u8/m3u8"
)

// TestHLSAES128: an aes-128 presentation's media playlists carry EXT-X-KEY:METHOD=AES-128 with
// the URI (and IV=0x… when fixed, no KEYFORMAT) right after EXT-X-MAP, so that the init segment
// stays clear; the master an EXT-X-SESSION-KEY with the same attributes. Apart from those lines
// the playlists are the clear ones (the EXT-X-VERSION is unchanged: EXT-X-MAP already needs 6,
// and the master's IV needs 2). hls-m3u8 parses them back. DASH refuses with ErrAES128NoDASH.
func TestHLSAES128(t *testing.T) {
	const uri = "https://keys.example/k?id=1&v=2"
	for _, tc := range []struct {
		name string
		iv   []byte
		line string
	}{
		{"sequence iv", nil, `METHOD=AES-128,URI="` + uri + `"`},
		{"fixed iv", []byte{0: 0xa0, 15: 0x0f}, `METHOD=AES-128,URI="` + uri + `",IV=0xa000000000000000000000000000000f`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clear := fixture(false)
			p := fixture(false)
			p.Protection = &Protection{Scheme: "aes-128", KeyURI: uri, IV: tc.iv}
			wantKey := m3u8.Key{Method: "AES-128", URI: uri}
			if tc.iv != nil {
				wantKey.IV = "0xa000000000000000000000000000000f"
			}
			raw := p.HLSMaster()
			master := parseMaster(t, raw)
			if len(master.SessionKeys) != 1 || *master.SessionKeys[0] != wantKey {
				t.Errorf("master: session keys %+v, want one %+v", master.SessionKeys, wantKey)
			}
			extra := []string{"#EXT-X-SESSION-KEY:" + tc.line}
			if tc.iv != nil {
				extra = append(extra, "#EXT-X-VERSION:2")
			}
			checkOnlyKeyLines(t, "master", raw, clear.HLSMaster(), extra...)
			for i, tr := range p.Tracks() {
				raw := p.HLSMedia(tr)
				pl, segs := parseMedia(t, raw)
				if len(pl.Keys) != 1 || pl.Keys[0] != wantKey || len(segs) != len(tr.Segments) || len(segs[0].Keys) != 1 {
					t.Errorf("%s: keys %+v, want one %+v on the first segment", tr.ID, pl.Keys, wantKey)
				}
				m, k := bytes.Index(raw, []byte("#EXT-X-MAP:")), bytes.Index(raw, []byte("#EXT-X-KEY:"))
				if m < 0 || k < 0 || k < m || !bytes.Contains(raw, []byte("\n#EXT-X-KEY:"+tc.line+"\n#EXTINF:")) {
					t.Errorf("%s: EXT-X-MAP at %d, EXT-X-KEY at %d: want the key after the map, before the first segment\n%s", tr.ID, m, k, raw)
				}
				if minV, reason := pl.CalcMinVersion(); int(pl.Version()) < int(minV) {
					t.Errorf("%s: EXT-X-VERSION %d below hls-m3u8's minimum %d (%s)", tr.ID, pl.Version(), minV, reason)
				}
				checkOnlyKeyLines(t, tr.ID, raw, clear.HLSMedia(clear.Tracks()[i]), "#EXT-X-KEY:"+tc.line)
			}
			if _, err := p.DASH(); !errors.Is(err, ErrAES128NoDASH) {
				t.Errorf("DASH: %v, want ErrAES128NoDASH", err)
			}
		})
	}
}
