package manifest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// What Validate says of text tracks and captions.
func TestValidateText(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Presentation)
		want   string // empty: valid
	}{
		{"text fixture is valid", func(p *Presentation) {}, ""},
		{"text without codecs is fine", func(p *Presentation) { p.Text[1].Codecs = "" }, ""},
		{"unknown format", func(p *Presentation) { p.Text[0].Format = "srt" }, "text format"},
		{"text among the audio", func(p *Presentation) { p.Audio = append(p.Audio, p.Text[0]); p.Text = p.Text[1:] }, "text track among the media"},
		{"audio among the text", func(p *Presentation) { p.Text = append(p.Text, p.Audio[1]); p.Audio = p.Audio[:1] }, "among the text tracks"},
		{"two default text tracks in one format", func(p *Presentation) { p.Text[0].Default, p.Text[2].Default = true, true }, "second default"},
		{"a default per format is fine", func(p *Presentation) { p.Text[0].Default, p.Text[1].Default = true, true }, ""},
		{"encrypted text", func(p *Presentation) { p.Text[1].Protection = &Protection{Scheme: "cenc"} }, "never encrypted"},
		{"text with parts", func(p *Presentation) { p.Text[0].Segments[0].Parts = []Part{{Duration: 1, URI: "x"}} }, "no parts"},
		{"WebVTT byte range", func(p *Presentation) { p.Text[0].Segments[3].Range = ByteRange{Offset: 10, Length: 20} }, "whole file"},
		{"text gap", func(p *Presentation) { p.Text[0].Segments[4].Start++ }, "gap or overlap"},
		{"text id clashes with audio", func(p *Presentation) { p.Text[0].ID = p.Audio[0].ID }, "used twice"},
		{"forced audio", func(p *Presentation) { p.Audio[0].Forced = true }, "text attributes"},
		{"captions on audio", func(p *Presentation) { p.Audio[0].Captions = fixtureCaptions }, "closed captions on a audio"},
		{"caption channel CC5", func(p *Presentation) { p.Video[0].Captions = []Caption{{Channel: "CC5"}} }, "not CC1"},
		{"caption service 64", func(p *Presentation) { p.Video[0].Captions = []Caption{{Channel: "SERVICE64"}} }, "not CC1"},
		{"caption service 01", func(p *Presentation) { p.Video[0].Captions = []Caption{{Channel: "SERVICE01"}} }, "not CC1"},
		{"caption channel twice", func(p *Presentation) {
			p.Video[0].Captions = []Caption{{Channel: "CC1"}, {Channel: "CC1", Language: "fr"}}
		}, "twice"},
		{"708 service 63", func(p *Presentation) { p.Video[0].Captions = []Caption{{Channel: "SERVICE63"}} }, ""},
	}
	for _, tc := range tests {
		p := withText(fixture(false), fixtureText, fixtureCaptions)
		tc.mutate(p)
		err := p.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// randomText gives p random audio, subtitles (in one format or both) and captions per rung.
func randomText(r *rand.Rand, p *Presentation) {
	langs := []string{"", "en", "fr", "es", "en-GB"}
	p.Audio = p.Audio[:r.IntN(len(p.Audio)+1)]
	var specs []textSpec
	def := -1
	if r.IntN(3) == 0 {
		def = r.IntN(6)
	}
	for i := range r.IntN(6) {
		specs = append(specs, textSpec{id: fmt.Sprintf("text_%d", i), lang: langs[r.IntN(len(langs))],
			name: []string{"", "Subs", "Forced"}[r.IntN(3)], def: i == def, auto: r.IntN(2) == 0,
			forced: r.IntN(3) == 0, sdh: r.IntN(3) == 0})
	}
	withText(p, specs, nil)
	if r.IntN(3) == 0 { // one format only
		p.Text = p.TextTracks([]TextFormat{WebVTT, WVTT}[r.IntN(2)])
	}
	channels := []string{"CC1", "CC2", "CC3", "CC4", "SERVICE1", "SERVICE7"}
	shared := r.IntN(2) == 0
	var caps []Caption
	for _, v := range p.Video {
		if !shared || caps == nil {
			caps = nil
			for _, k := range r.Perm(len(channels))[:r.IntN(3)] {
				caps = append(caps, Caption{Channel: channels[k], Language: langs[r.IntN(len(langs))]})
			}
		}
		v.Captions = caps
	}
}

// Property (RFC 8216 §4.3.4.1.1, §4.3.4.2) over random presentations: every variant names
// groups that exist with the right TYPE, every group is named by a variant, CLOSED-CAPTIONS is
// NONE on all variants or on none, each group has at most one DEFAULT=YES, DEFAULT=YES implies
// AUTOSELECT=YES, AUTOSELECT=YES members have distinct LANGUAGEs, NAMEs are distinct, FORCED is
// on SUBTITLES only and SUBTITLES renditions list exactly the WebVTT tracks; and the MPD has a
// text set for each WVTT track.
func TestTextGroupsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 2026))
	seen := map[string]int{} // the shapes the cases took, so that the property is exercised
	for i := range 300 {
		p := fixture(i%2 == 1)
		randomText(r, p)
		p.CaptionsChecked = r.IntN(4) != 0
		if err := p.Validate(); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		raw := p.HLSMaster()
		pl := parseMaster(t, raw)
		name := fmt.Sprintf("case %d", i)

		// Groups as written, read from the text: hls-m3u8 keeps renditions only as a
		// variant's Alternatives, so one named by no variant would not show there.
		type group struct {
			typ  string
			alts []map[string]string
		}
		groups := map[string]*group{}
		for _, line := range lines(raw, "#EXT-X-MEDIA:") {
			a := attrs(strings.TrimPrefix(line, "#EXT-X-MEDIA:"))
			g := groups[a["GROUP-ID"]]
			if g == nil {
				g = &group{typ: a["TYPE"]}
				groups[a["GROUP-ID"]] = g
			}
			if g.typ != a["TYPE"] {
				t.Fatalf("%s: group %s has TYPE %s and %s", name, a["GROUP-ID"], g.typ, a["TYPE"])
			}
			g.alts = append(g.alts, a)
		}
		named := map[string]bool{}
		var none, quoted int
		for _, v := range pl.Variants {
			if v.Iframe {
				continue
			}
			for typ, id := range map[string]string{"AUDIO": v.Audio, "SUBTITLES": v.Subtitles, "CLOSED-CAPTIONS": v.Captions} {
				if id == "" || (typ == "CLOSED-CAPTIONS" && id == "NONE") {
					continue
				}
				if g := groups[id]; g == nil || g.typ != typ {
					t.Fatalf("%s: %s names %s group %q, which does not exist\n%s", name, v.URI, typ, id, raw)
				}
				named[id] = true
			}
			switch v.Captions {
			case "NONE":
				none++
			case "":
			default:
				quoted++
			}
		}
		for id := range groups {
			if !named[id] {
				t.Errorf("%s: group %s is named by no variant", name, id)
			}
		}
		if none > 0 && (quoted > 0 || none != len(p.Video)) {
			t.Errorf("%s: CLOSED-CAPTIONS=NONE on %d variants, a group on %d, of %d", name, none, quoted, len(p.Video))
		}
		hasCaptions := false
		for _, v := range p.Video {
			hasCaptions = hasCaptions || len(v.Captions) > 0
		}
		if (!hasCaptions && p.CaptionsChecked) != (none > 0) {
			t.Errorf("%s: captions %v, checked %v, but %d NONE", name, hasCaptions, p.CaptionsChecked, none)
		}
		if !hasCaptions && !p.CaptionsChecked && (none > 0 || quoted > 0) {
			t.Errorf("%s: CLOSED-CAPTIONS written without captions, unchecked", name)
		}
		for id, g := range groups {
			defaults, names, autoLangs := 0, map[string]bool{}, map[string]bool{}
			for _, a := range g.alts {
				if a["DEFAULT"] == "YES" {
					defaults++
					if a["AUTOSELECT"] != "YES" {
						t.Errorf("%s: group %s: DEFAULT=YES without AUTOSELECT=YES", name, id)
					}
				}
				if names[a["NAME"]] || a["NAME"] == "" {
					t.Errorf("%s: group %s: NAME %q empty or twice", name, id, a["NAME"])
				}
				names[a["NAME"]] = true
				if a["AUTOSELECT"] == "YES" && a["DEFAULT"] != "YES" {
					if a["LANGUAGE"] == "" || autoLangs[a["LANGUAGE"]] {
						t.Errorf("%s: group %s: AUTOSELECT=YES with LANGUAGE %q empty or taken", name, id, a["LANGUAGE"])
					}
				}
				if a["AUTOSELECT"] == "YES" {
					autoLangs[a["LANGUAGE"]] = true
				}
				if _, ok := a["FORCED"]; ok != (g.typ == "SUBTITLES") {
					t.Errorf("%s: group %s (%s): FORCED present %v", name, id, g.typ, ok)
				}
				if _, ok := a["URI"]; ok == (g.typ == "CLOSED-CAPTIONS") {
					t.Errorf("%s: group %s (%s): URI present %v", name, id, g.typ, ok)
				}
			}
			if defaults > 1 {
				t.Errorf("%s: group %s has %d DEFAULT=YES", name, id, defaults)
			}
		}
		seen[fmt.Sprintf("subs=%v", groups[TextGroupID] != nil)]++
		seen[fmt.Sprintf("none=%v", none > 0)]++
		seen[fmt.Sprintf("cc2=%v", groups[CaptionGroupID+"2"] != nil)]++
		seen[fmt.Sprintf("partial=%v", quoted > 0 && quoted < len(p.Video))]++
		seen[fmt.Sprintf("unchecked=%v", !hasCaptions && !p.CaptionsChecked)]++
		if g, n := groups[TextGroupID], len(p.TextTracks(WebVTT)); (g == nil && n > 0) || (g != nil && len(g.alts) != n) {
			t.Errorf("%s: %d WebVTT tracks, SUBTITLES group %+v", name, n, g)
		}

		m := parseMPD(t, p)
		if got, want := len(textSets(m.Periods[0])), len(p.TextTracks(WVTT)); got != want {
			t.Errorf("%s: %d text sets, %d WVTT tracks", name, got, want)
		}
	}
	for _, k := range []string{"subs=true", "subs=false", "none=true", "none=false", "cc2=true", "partial=true", "unchecked=true"} {
		if seen[k] == 0 {
			t.Errorf("no case with %s: %v", k, seen)
		}
	}
}

// attrs splits an attribute list (RFC 8216 §4.2) into names and unquoted values.
func attrs(list string) map[string]string {
	out := map[string]string{}
	for list != "" {
		k, rest, _ := strings.Cut(list, "=")
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`) + 1
			v, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		out[k] = v
		list = rest
	}
	return out
}

// TestHLSM3U8TextQuirks pins what hls-m3u8 v0.6.5 does with SUBTITLES and CLOSED-CAPTIONS, so
// the workarounds above know why they are there. When an upgrade fixes one, its check fails.
func TestHLSM3U8TextQuirks(t *testing.T) {
	p := withText(fixture(false), fixtureText[:1], fixtureCaptions)
	p.Video[2].Captions = nil // rungs 0 and 1 name "cc", rung 2 names no group
	raw := string(p.HLSMaster())
	// 1. CLOSED-CAPTIONS="NONE" (a group named NONE) and CLOSED-CAPTIONS=NONE read the same:
	//    Variant.Captions is "NONE" for both, so the writers never name a group NONE.
	quoted := parseMaster(t, []byte(strings.Replace(strings.ReplaceAll(raw, `CLOSED-CAPTIONS="cc"`, `CLOSED-CAPTIONS="NONE"`),
		`GROUP-ID="cc"`, `GROUP-ID="NONE"`, -1)))
	if quoted.Variants[0].Captions != "NONE" {
		t.Errorf("quirk 1 changed: a group named NONE reads as %q", quoted.Variants[0].Captions)
	}
	// 2. Renditions are only reachable through the variants that name their group (as
	//    Alternatives, shared pointers): a group no variant names is dropped on reading, which
	//    is why the property test reads the EXT-X-MEDIA lines itself.
	orphan := strings.Replace(raw, `#EXT-X-STREAM-INF`, `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="orphan",NAME="x",URI="x.m3u8"`+"\n#EXT-X-STREAM-INF", 1)
	for _, v := range parseMaster(t, []byte(orphan)).Variants {
		for _, a := range v.Alternatives {
			if a.GroupId == "orphan" {
				t.Error("quirk 2 changed: an unnamed group is attached to a variant")
			}
		}
	}
	// 3. A variant without CLOSED-CAPTIONS reads as "", like one whose group has no member:
	//    the reader does not check that a named group exists (strict mode included).
	pl := parseMaster(t, []byte(strings.Replace(raw, `CLOSED-CAPTIONS="cc"`, `CLOSED-CAPTIONS="missing"`, 1)))
	if pl.Variants[0].Captions != "missing" || pl.Variants[2].Captions != "" {
		t.Errorf("quirk 3 changed: %q %q", pl.Variants[0].Captions, pl.Variants[2].Captions)
	}
}
