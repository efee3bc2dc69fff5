package manifest

import (
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// videoSets lists the MPD's video AdaptationSets as "codecs,codecs…" per set, in order.
func videoSets(m *mpd.MPD) []string {
	var out []string
	for _, as := range m.Periods[0].AdaptationSets {
		if as.ContentType != "video" {
			continue
		}
		var codecs []string
		for _, r := range as.Representations {
			codecs = append(codecs, r.Codecs)
		}
		out = append(out, strings.Join(codecs, ","))
	}
	return out
}

// ISO/IEC 23000-19 §7.3.4 and ISO/IEC 23009-1 §5.3.3.1: with the CMAF profile declared, an
// AdaptationSet is a switching set of one codec family, so AVC and HEVC rungs of one ladder get
// a set each (VOD, single-file and live), every set id stays unique, and the HLS master, which
// groups nothing by codec, still lists every rung.
func TestDASHCodecFamilySets(t *testing.T) {
	mixed := func(p *Presentation) *Presentation {
		p.Video[1].Codecs = "hvc1.1.6.L93.B0" // the middle rung (or the second of two) is HEVC
		return p
	}
	for name, p := range map[string]*Presentation{
		"vod":         mixed(fixture(false)),
		"single-file": mixed(fixture(true)),
		"live":        mixed(liveFixture(liveSpec{complete: 3, parts: true})),
	} {
		t.Run(name, func(t *testing.T) {
			var m *mpd.MPD
			if p.Live != nil {
				m, _ = parseLiveMPD(t, p)
			} else {
				m = parseMPD(t, p)
			}
			sets := videoSets(m)
			var avc, hevc []string
			for _, v := range p.Video {
				if strings.HasPrefix(v.Codecs, "hvc1") {
					hevc = append(hevc, v.Codecs)
				} else {
					avc = append(avc, v.Codecs)
				}
			}
			want := []string{strings.Join(avc, ","), strings.Join(hevc, ",")}
			if strings.Join(sets, " | ") != strings.Join(want, " | ") {
				t.Errorf("video AdaptationSets %q, want %q", sets, want)
			}
			ids := map[uint32]bool{}
			for _, as := range m.Periods[0].AdaptationSets {
				if as.Id == nil || ids[*as.Id] {
					t.Fatalf("AdaptationSet id missing or repeated")
				}
				ids[*as.Id] = true
			}
			if len(representations(m)) != len(p.Tracks()) {
				t.Errorf("%d Representations for %d tracks", len(representations(m)), len(p.Tracks()))
			}
			master := string(p.HLSMaster())
			if n := strings.Count(master, "#EXT-X-STREAM-INF:"); n < len(p.Video) {
				t.Errorf("HLS master lists %d variants for %d rungs", n, len(p.Video))
			}
		})
	}
}

func TestCodecFamily(t *testing.T) {
	for codecs, want := range map[string]string{
		"avc1.64001f": "avc", "avc3.640028": "avc", "hvc1.1.6.L93.B0": "hevc", "hev1.2.4.L120.B0": "hevc",
		"av01.0.08M.08": "av01", "vp09.00.10.08": "vp09", "dvh1.05.06": "dolby-vision",
	} {
		if got := codecFamily(codecs); got != want {
			t.Errorf("codecFamily(%q) = %q, want %q", codecs, got, want)
		}
	}
}
