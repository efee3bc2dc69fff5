package manifest

import (
	"strconv"
	"strings"
)

// Subtitles and closed captions in HLS (RFC 8216 §4.3.4.1 EXT-X-MEDIA, §4.3.4.2
// EXT-X-STREAM-INF; Apple's HLS authoring specification for the choice of attributes):
//
//	#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="Français",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="text_fr/index.m3u8"
//	#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English SDH",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound",URI="text_en/index.m3u8"
//	#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID="CC1"
//	#EXT-X-STREAM-INF:…,AUDIO="audio",SUBTITLES="subs",CLOSED-CAPTIONS="cc"
//
// Rules applied:
//   - One SUBTITLES group holds every WebVTT text track; every variant names it.
//   - At most one DEFAULT=YES per group (Validate), and a DEFAULT=YES rendition is AUTOSELECT=YES
//     (§4.3.4.1: AUTOSELECT MUST be YES when DEFAULT is). Subtitles are off unless a track is
//     marked Default, unlike audio, whose first rendition is the default.
//   - AUTOSELECT=YES only for renditions with a LANGUAGE not already taken by another
//     AUTOSELECT=YES member of the group (§4.3.4.1.1: their LANGUAGEs MUST be unique). The
//     default claims its language first, then the other non-forced tracks, then forced ones: a
//     forced track shares its language with the full subtitles, and players pick it through
//     FORCED=YES (as in Apple's examples: "English" AUTOSELECT=YES, "English (Forced)"
//     AUTOSELECT=NO, FORCED=YES).
//   - FORCED is written on SUBTITLES only, YES or NO (§4.3.4.1: MUST NOT be present otherwise).
//   - SDH tracks carry CHARACTERISTICS with the two accessibility characteristics (Apple's UTIs).
//   - CLOSED-CAPTIONS renditions have INSTREAM-ID and no URI (§4.3.4.1); SERVICEn needs
//     EXT-X-VERSION 7 (§7). DEFAULT=NO: captions are shown at the viewer's request.
//   - CLOSED-CAPTIONS=NONE on every variant when no rung carries captions and the packager looked
//     for them (Presentation.CaptionsChecked; §4.3.4.2: NONE on one variant means NONE on all);
//     else each rung names its caption group, one group per distinct set of captions ("cc",
//     "cc2", …), and a rung without captions leaves the attribute out. Apple's authoring
//     specification asks for the attribute on every variant, but NONE makes players ignore
//     captions in the video (hls.js drops the CEA-608 data of a NONE level), so it is only
//     written when it is known to be true.

// sdhCharacteristics are the media characteristics of subtitles for the deaf and hard of hearing.
const sdhCharacteristics = "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound"

// mediaAttrs are the attributes one EXT-X-MEDIA rendition of a group needs from the others.
type mediaAttrs struct {
	language, name    string
	def, auto, forced bool
}

// settle fixes NAME uniqueness (§4.3.4.1.1, disambiguated with ids) and AUTOSELECT: DEFAULT
// implies it, and AUTOSELECT=YES members have unique LANGUAGEs (see above).
func settle(m []mediaAttrs, ids []string) {
	names := map[string]bool{}
	for i := range m {
		if names[m[i].name] {
			m[i].name += " (" + ids[i] + ")"
		}
		names[m[i].name] = true
	}
	taken := map[string]bool{}
	claim := func(pick func(a mediaAttrs) bool) {
		for i := range m {
			if !pick(m[i]) {
				continue
			}
			if m[i].def || (m[i].auto && m[i].language != "" && !taken[m[i].language]) {
				m[i].auto = true
				taken[m[i].language] = true
			} else {
				m[i].auto = false
			}
		}
	}
	claim(func(a mediaAttrs) bool { return a.def })
	claim(func(a mediaAttrs) bool { return !a.def && !a.forced })
	claim(func(a mediaAttrs) bool { return !a.def && a.forced })
}

// writeSubtitleMedia writes the SUBTITLES group; false when there is none.
func (p *Presentation) writeSubtitleMedia(b *strings.Builder) bool {
	subs := p.TextTracks(WebVTT)
	m := make([]mediaAttrs, len(subs))
	ids := make([]string, len(subs))
	for i, t := range subs {
		m[i] = mediaAttrs{language: t.Language, name: t.displayName(), def: t.Default, auto: t.Autoselect, forced: t.Forced}
		ids[i] = t.ID
	}
	settle(m, ids)
	for i, t := range subs {
		b.WriteString("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=" + quote(TextGroupID))
		if t.Language != "" {
			b.WriteString(",LANGUAGE=" + quote(t.Language))
		}
		b.WriteString(",NAME=" + quote(m[i].name))
		b.WriteString(",DEFAULT=" + yesNo(m[i].def) + ",AUTOSELECT=" + yesNo(m[i].auto) + ",FORCED=" + yesNo(t.Forced))
		if t.SDH {
			b.WriteString(",CHARACTERISTICS=" + quote(sdhCharacteristics))
		}
		b.WriteString(",URI=" + quote(t.ID+"/"+MediaPlaylist) + "\n")
	}
	return len(subs) > 0
}

// captionGroups gives each video track its CLOSED-CAPTIONS group ID ("" for none) and lists the
// groups in order of first use, each with the captions of its first rung.
func (p *Presentation) captionGroups() (byTrack map[*Track]string, groups []string, captions map[string][]Caption) {
	byTrack = map[*Track]string{}
	captions = map[string][]Caption{}
	bySet := map[string]string{}
	for _, v := range p.Video {
		if len(v.Captions) == 0 {
			continue
		}
		var key strings.Builder
		for _, c := range v.Captions {
			key.WriteString(c.Channel + "\x00" + c.Language + "\x00" + c.Name + "\x00")
		}
		id, ok := bySet[key.String()]
		if !ok {
			id = CaptionGroupID
			if len(groups) > 0 {
				id += strconv.Itoa(len(groups) + 1)
			}
			bySet[key.String()] = id
			groups = append(groups, id)
			captions[id] = v.Captions
		}
		byTrack[v] = id
	}
	return byTrack, groups, captions
}

// writeCaptionMedia writes the CLOSED-CAPTIONS groups.
func writeCaptionMedia(b *strings.Builder, groups []string, captions map[string][]Caption) {
	for _, g := range groups {
		cs := captions[g]
		m := make([]mediaAttrs, len(cs))
		ids := make([]string, len(cs))
		for i, c := range cs {
			name := c.Name
			if name == "" {
				name = c.Channel
			}
			m[i] = mediaAttrs{language: c.Language, name: name, auto: true}
			ids[i] = c.Channel
		}
		settle(m, ids)
		for i, c := range cs {
			b.WriteString("#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=" + quote(g))
			if c.Language != "" {
				b.WriteString(",LANGUAGE=" + quote(c.Language))
			}
			b.WriteString(",NAME=" + quote(m[i].name) + ",DEFAULT=NO,AUTOSELECT=" + yesNo(m[i].auto))
			b.WriteString(",INSTREAM-ID=" + quote(c.Channel) + "\n")
		}
	}
}

// usesCEA708 reports whether any rung carries a CEA-708 service (INSTREAM-ID="SERVICEn").
func (p *Presentation) usesCEA708() bool {
	for _, v := range p.Video {
		for _, c := range v.Captions {
			if !c.cea608() {
				return true
			}
		}
	}
	return false
}
