package manifest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// Format is the kind of manifest Classify found.
type Format int

const (
	// FormatUnknown: not a playlist or MPD Classify could read.
	FormatUnknown Format = iota
	// FormatHLSMaster: an HLS master (multivariant) playlist (RFC 8216 §4.3.4).
	FormatHLSMaster
	// FormatHLSMedia: an HLS media playlist (RFC 8216 §4.3.3).
	FormatHLSMedia
	// FormatDASH: a DASH MPD (ISO/IEC 23009-1).
	FormatDASH
)

func (f Format) String() string {
	switch f {
	case FormatHLSMaster:
		return "hls-master"
	case FormatHLSMedia:
		return "hls-media"
	case FormatDASH:
		return "dash"
	}
	return "unknown"
}

// Info is a manifest as a cache sees it: whether it is live (it will change, and how often)
// and what it lists that a player will ask for next. Classify fills it.
type Info struct {
	Format Format
	// Live: an HLS media playlist that may still grow — no EXT-X-ENDLIST and no
	// EXT-X-PLAYLIST-TYPE:VOD (RFC 8216 §4.3.3.4, §4.3.3.5, §6.2.1; an EVENT playlist without
	// ENDLIST is live) — or a DASH MPD with type="dynamic" (ISO/IEC 23009-1 §5.3.1.2, §5.4).
	// Master playlists, ended or VOD playlists and static MPDs are not.
	Live bool
	// Target is how often a live manifest changes, at most: HLS EXT-X-TARGETDURATION
	// (RFC 8216 §4.3.3.1); DASH minimumUpdatePeriod, else maxSegmentDuration, else the longest
	// segment listed. 0 when the manifest does not say.
	Target time.Duration
	// PartTarget is EXT-X-PART-INF's PART-TARGET (rfc8216bis §4.4.3.7): an LL-HLS playlist
	// changes with every part. 0 without parts.
	PartTarget time.Duration
	// CanBlockReload: EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD=YES (rfc8216bis §4.4.3.8).
	CanBlockReload bool
	// Media lists the media segments, as absolute URLs resolved against the manifest's URL,
	// oldest first, at most the newest MaxListed of each list: one list for an HLS media
	// playlist (not segments that are byte ranges), one per Representation for an MPD
	// (SegmentTemplate with a SegmentTimeline; other addressing modes are not listed).
	Media [][]string
	// Chunked: an MPD's segments are announced while they are produced
	// (SegmentTemplate@availabilityTimeComplete="false", low-latency DASH, ISO/IEC 23009-1
	// §5.3.9.5.3): the newest of each list may be in progress.
	Chunked bool
	// Init lists the initialization segments (EXT-X-MAP, SegmentTemplate@initialization).
	Init []string
	// PreloadHint is the URL of an EXT-X-PRELOAD-HINT TYPE=PART without a byte range
	// (rfc8216bis §4.4.5.3): the part a player asks for before it exists.
	PreloadHint string
}

// MaxListed bounds Info.Media's lists: a DVR playlist may list hours of segments, a cache
// only wants the newest.
const MaxListed = 32

// ErrNotManifest is returned for bytes that are neither an HLS playlist nor an MPD.
var ErrNotManifest = errors.New("not an HLS playlist or a DASH MPD")

// Classify reads an HLS playlist or a DASH MPD (told apart by their first bytes: "#EXTM3U",
// or '<') and tells what a cache needs to know about it. base is the manifest's own URL,
// against which the URIs it lists are resolved. Classify reads outside bytes: it never
// panics, and bounds the work and memory any input can cost.
func Classify(data []byte, base *url.URL) (info Info, err error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte("#EXTM3U")):
		return classifyHLS(trimmed, base)
	case bytes.HasPrefix(trimmed, []byte("<")):
		return classifyDASH(trimmed, base)
	}
	return Info{}, ErrNotManifest
}

// classifyHLS is a line scan (RFC 8216 §4.1: lines end with LF or CRLF; tags start with
// "#EXT"; every other non-blank line not starting with '#' is a URI). It reads only the tags
// a cache needs, so none of a full parser's strictness (or, for hls-m3u8, its LL-HLS bugs:
// manifest/hlsm3u8_quirks_test.go) can misclassify a playlist.
func classifyHLS(data []byte, base *url.URL) (Info, error) {
	info := Info{}
	var master, media, ended, vod, byteRange bool
	var longest time.Duration
	var segs []string
	for line := range playlistLines(data) {
		if line[0] != '#' {
			// A segment that is a byte range of a larger resource (EXT-X-BYTERANGE, §4.3.2.2)
			// is not listed: fetching its URI would fetch the whole resource.
			if u, ok := resolveRef(base, string(line)); ok && !byteRange {
				segs = appendBounded(segs, u)
			}
			byteRange = false
			continue
		}
		tag, value, _ := strings.Cut(string(line), ":")
		switch tag {
		case "#EXT-X-STREAM-INF", "#EXT-X-I-FRAME-STREAM-INF":
			master = true
		case "#EXT-X-TARGETDURATION":
			media = true
			if n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32); err == nil {
				info.Target = secondsDuration(float64(n))
			}
		case "#EXTINF":
			media = true
			d, _, _ := strings.Cut(value, ",")
			if f, err := strconv.ParseFloat(strings.TrimSpace(d), 64); err == nil {
				longest = max(longest, secondsDuration(f))
			}
		case "#EXT-X-BYTERANGE":
			byteRange = true
		case "#EXT-X-ENDLIST":
			ended = true
		case "#EXT-X-PLAYLIST-TYPE":
			vod = strings.TrimSpace(value) == "VOD"
		case "#EXT-X-PART-INF":
			if f, err := strconv.ParseFloat(attr(value, "PART-TARGET"), 64); err == nil {
				info.PartTarget = secondsDuration(f)
			}
		case "#EXT-X-SERVER-CONTROL":
			info.CanBlockReload = attr(value, "CAN-BLOCK-RELOAD") == "YES"
		case "#EXT-X-MAP":
			if u, ok := resolveRef(base, attr(value, "URI")); ok && len(info.Init) < MaxListed {
				info.Init = append(info.Init, u)
			}
		case "#EXT-X-PRELOAD-HINT":
			if attr(value, "TYPE") == "PART" && attr(value, "BYTERANGE-START") == "" {
				if u, ok := resolveRef(base, attr(value, "URI")); ok {
					info.PreloadHint = u
				}
			}
		}
	}
	switch {
	case master && media:
		return Info{}, fmt.Errorf("playlist has both master and media tags (RFC 8216 §4.1)")
	case master:
		return Info{Format: FormatHLSMaster}, nil
	}
	info.Format = FormatHLSMedia
	if info.Target == 0 {
		info.Target = longest // a playlist without the required tag: its longest segment
	}
	info.Live = !ended && !vod
	if len(segs) > 0 {
		info.Media = [][]string{segs}
	}
	return info, nil
}

// appendBounded appends u keeping only the newest MaxListed.
func appendBounded(list []string, u string) []string {
	if len(list) == MaxListed {
		copy(list, list[1:])
		list = list[:MaxListed-1]
	}
	return append(list, u)
}

// secondsDuration converts a count of seconds to a Duration, saturating (and NaN, ∞ or negative → 0).
func secondsDuration(f float64) time.Duration {
	switch {
	case f != f || f <= 0:
		return 0
	case f >= float64(math.MaxInt64)/float64(time.Second):
		return math.MaxInt64
	}
	return time.Duration(math.Round(f * float64(time.Second)))
}

// attr returns an attribute's value from an HLS attribute list (RFC 8216 §4.2), unquoted; ""
// when it is absent.
func attr(list, name string) string {
	for list != "" {
		var key string
		key, list, _ = strings.Cut(list, "=")
		key = strings.TrimSpace(key)
		var val string
		if strings.HasPrefix(list, `"`) {
			end := strings.IndexByte(list[1:], '"')
			if end < 0 {
				return ""
			}
			val, list = list[1:1+end], list[2+end:]
			_, list, _ = strings.Cut(list, ",")
		} else {
			val, list, _ = strings.Cut(list, ",")
		}
		if key == name {
			return val
		}
	}
	return ""
}

// resolveRef resolves a URI reference found in a manifest against base (RFC 3986 §5).
func resolveRef(base *url.URL, ref string) (string, bool) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", false
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	if base != nil {
		u = base.ResolveReference(u)
	}
	return u.String(), true
}

// classifyDASH reads the few MPD elements a cache needs with encoding/xml. (Not with
// dash-mpd: v0.17.0 decodes with its own copy of encoding/xml, which answers some documents
// — malformed ones, and some the standard library reads fine — with empty tokens forever, so
// mpd.MPDFromBytes never returns: TestDashMPDXMLQuirk. Outside bytes must not hang a cache.)
// Segment URLs are listed for SegmentTemplate with a SegmentTimeline (ISO/IEC 23009-1
// §5.3.9.4, §5.3.9.6), the template's attributes taken from the Representation, then the
// AdaptationSet, then the Period (§5.3.9.1), and BaseURLs applied from the MPD down (§5.6.4).
func classifyDASH(data []byte, base *url.URL) (Info, error) {
	var m xmlMPD
	if err := xml.Unmarshal(data, &m); err != nil {
		return Info{}, fmt.Errorf("MPD: %w", err)
	}
	if m.XMLName.Local != "MPD" {
		return Info{}, ErrNotManifest
	}
	info := Info{Format: FormatDASH, Live: strings.TrimSpace(m.Type) == "dynamic"} // §5.3.1.2: default static
	var longest time.Duration
	docBase := withBase(base, m.BaseURL)
	for _, p := range m.Periods {
		pBase := withBase(docBase, p.BaseURL)
		for _, as := range p.AdaptationSets {
			asBase := withBase(pBase, as.BaseURL)
			for _, rep := range as.Representations {
				st := mergeTemplates(rep.SegmentTemplate, as.SegmentTemplate, p.SegmentTemplate)
				if st == nil {
					continue
				}
				repBase := withBase(asBase, rep.BaseURL)
				info.Chunked = info.Chunked || strings.TrimSpace(st.AvailabilityTimeComplete) == "false"
				segs, d := timelineURLs(st, rep, repBase)
				longest = max(longest, d)
				if len(segs) > 0 && len(info.Media) < MaxListed {
					info.Media = append(info.Media, segs)
				}
				if st.Initialization != "" && len(info.Init) < MaxListed {
					if s, err := expandTemplate(st.Initialization, rep.ID, bandwidth(rep), 0, 0); err == nil {
						if u, ok := resolveRef(repBase, s); ok {
							info.Init = append(info.Init, u)
						}
					}
				}
			}
		}
	}
	if d, err := mpd.ParseDuration(strings.TrimSpace(m.MinimumUpdatePeriod)); err == nil && d > 0 {
		info.Target = d
	} else if d, err := mpd.ParseDuration(strings.TrimSpace(m.MaxSegmentDuration)); err == nil && d > 0 {
		info.Target = d
	} else {
		info.Target = longest
	}
	return info, nil
}

// The MPD elements and attributes classifyDASH reads (ISO/IEC 23009-1 §5.3).
type (
	xmlMPD struct {
		XMLName             xml.Name
		Type                string      `xml:"type,attr"`
		MinimumUpdatePeriod string      `xml:"minimumUpdatePeriod,attr"`
		MaxSegmentDuration  string      `xml:"maxSegmentDuration,attr"`
		BaseURL             []string    `xml:"BaseURL"`
		Periods             []xmlPeriod `xml:"Period"`
	}
	xmlPeriod struct {
		BaseURL         []string      `xml:"BaseURL"`
		SegmentTemplate *xmlTemplate  `xml:"SegmentTemplate"`
		AdaptationSets  []xmlAdaptSet `xml:"AdaptationSet"`
	}
	xmlAdaptSet struct {
		BaseURL         []string     `xml:"BaseURL"`
		SegmentTemplate *xmlTemplate `xml:"SegmentTemplate"`
		Representations []xmlRep     `xml:"Representation"`
	}
	xmlRep struct {
		ID              string       `xml:"id,attr"`
		Bandwidth       uint64       `xml:"bandwidth,attr"`
		BaseURL         []string     `xml:"BaseURL"`
		SegmentTemplate *xmlTemplate `xml:"SegmentTemplate"`
	}
	xmlTemplate struct {
		Media          string  `xml:"media,attr"`
		Initialization string  `xml:"initialization,attr"`
		Timescale      *uint64 `xml:"timescale,attr"`
		// "false": chunked, announced before complete
		AvailabilityTimeComplete string       `xml:"availabilityTimeComplete,attr"`
		StartNumber              *uint64      `xml:"startNumber,attr"`
		Timeline                 *xmlTimeline `xml:"SegmentTimeline"`
	}
	xmlTimeline struct {
		S []xmlS `xml:"S"`
	}
	xmlS struct {
		T *uint64 `xml:"t,attr"`
		D uint64  `xml:"d,attr"`
		R int64   `xml:"r,attr"`
	}
)

func bandwidth(r xmlRep) int { return int(min(r.Bandwidth, math.MaxInt32)) }

// withBase applies the first of an element's BaseURLs to base.
func withBase(base *url.URL, list []string) *url.URL {
	if len(list) == 0 {
		return base
	}
	u, err := url.Parse(strings.TrimSpace(list[0]))
	if err != nil {
		return base
	}
	if base == nil {
		return u
	}
	return base.ResolveReference(u)
}

// mergeTemplates is the SegmentTemplate in force for a Representation: each attribute from
// the lowest level that sets it.
func mergeTemplates(levels ...*xmlTemplate) *xmlTemplate {
	var out *xmlTemplate
	for _, t := range levels {
		if t == nil {
			continue
		}
		if out == nil {
			c := *t
			out = &c
			continue
		}
		if out.Media == "" {
			out.Media = t.Media
		}
		if out.Initialization == "" {
			out.Initialization = t.Initialization
		}
		if out.Timescale == nil {
			out.Timescale = t.Timescale
		}
		if out.StartNumber == nil {
			out.StartNumber = t.StartNumber
		}
		if out.Timeline == nil {
			out.Timeline = t.Timeline
		}
		if out.AvailabilityTimeComplete == "" {
			out.AvailabilityTimeComplete = t.AvailabilityTimeComplete
		}
	}
	return out
}

// timelineURLs expands the newest MaxListed segments of a SegmentTimeline, and returns the
// longest segment duration listed.
func timelineURLs(st *xmlTemplate, rep xmlRep, base *url.URL) ([]string, time.Duration) {
	if st.Media == "" || st.Timeline == nil {
		return nil, 0
	}
	timescale := uint64(1)
	if st.Timescale != nil && *st.Timescale > 0 {
		timescale = *st.Timescale
	}
	number := uint64(1) // §5.3.9.5.3: startNumber defaults to 1
	if st.StartNumber != nil {
		number = *st.StartNumber
	}
	type seg struct{ number, time uint64 }
	var ring [MaxListed]seg
	n := 0
	var t, longest uint64
	for _, s := range st.Timeline.S {
		if s.D == 0 {
			continue
		}
		if s.T != nil {
			t = *s.T
		}
		if s.R < 0 {
			// "Until the next S or the end of the Period": that needs the clock, and this
			// segment's successors aren't known here. Stop listing.
			break
		}
		longest = max(longest, s.D)
		// Only the newest MaxListed can be kept: the rest are counted, not expanded, so a
		// huge S@r costs nothing.
		reps := uint64(s.R) + 1
		if reps > MaxListed {
			skip := reps - MaxListed
			number += skip
			t += skip * s.D
			reps = MaxListed
		}
		for range reps {
			ring[n%MaxListed] = seg{number, t}
			n++
			number++
			t += s.D
		}
	}
	var out []string
	for i := max(0, n-MaxListed); i < n; i++ {
		s := ring[i%MaxListed]
		p, err := expandTemplate(st.Media, rep.ID, bandwidth(rep), s.number, s.time)
		if err != nil {
			return nil, 0
		}
		if u, ok := resolveRef(base, p); ok {
			out = append(out, u)
		}
	}
	return out, secondsDuration(float64(longest) / float64(timescale))
}

// playlistLines yields the lines of an HLS playlist that are not blank, without their line
// ending (LF or CRLF, RFC 8216 §4.1) and trailing blanks.
func playlistLines(data []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for rest := data; len(rest) > 0; {
			var line []byte
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				line, rest = rest, nil
			}
			if line = bytes.TrimRight(line, "\r \t"); len(line) > 0 && !yield(line) {
				return
			}
		}
	}
}
