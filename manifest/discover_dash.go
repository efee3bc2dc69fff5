package manifest

import (
	"encoding/xml"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// The MPD elements and attributes Discover reads (ISO/IEC 23009-1 §5.3). Numbers are read as
// strings and parsed here: one malformed attribute must not make the whole MPD unreadable.
type (
	dMPD struct {
		XMLName  xml.Name
		Type     string    `xml:"type,attr"`
		Duration string    `xml:"mediaPresentationDuration,attr"`
		BaseURL  []string  `xml:"BaseURL"`
		Periods  []dPeriod `xml:"Period"`
	}
	dPeriod struct {
		Start    string `xml:"start,attr"`
		Duration string `xml:"duration,attr"`
		dSegmentInfo
		AdaptationSets []dAdaptSet `xml:"AdaptationSet"`
	}
	dAdaptSet struct {
		dSegmentInfo
		Representations []dRep `xml:"Representation"`
	}
	dRep struct {
		ID        string `xml:"id,attr"`
		Bandwidth string `xml:"bandwidth,attr"`
		dSegmentInfo
	}
	// dSegmentInfo is what every level from the Period down may carry (§5.3.9.1).
	dSegmentInfo struct {
		BaseURL         []string      `xml:"BaseURL"`
		SegmentBase     *dSegmentBase `xml:"SegmentBase"`
		SegmentList     *dSegmentList `xml:"SegmentList"`
		SegmentTemplate *dTemplate    `xml:"SegmentTemplate"`
	}
	dURL struct {
		SourceURL string `xml:"sourceURL,attr"`
	}
	dSegmentBase struct {
		Initialization      *dURL `xml:"Initialization"`
		RepresentationIndex *dURL `xml:"RepresentationIndex"`
	}
	dSegmentList struct {
		Initialization *dURL `xml:"Initialization"`
		SegmentURLs    []struct {
			Media string `xml:"media,attr"`
			Index string `xml:"index,attr"`
		} `xml:"SegmentURL"`
	}
	dTemplate struct {
		Media                  string `xml:"media,attr"`
		Initialization         string `xml:"initialization,attr"`
		Index                  string `xml:"index,attr"`
		Timescale              string `xml:"timescale,attr"`
		Duration               string `xml:"duration,attr"`
		StartNumber            string `xml:"startNumber,attr"`
		EndNumber              string `xml:"endNumber,attr"`
		PresentationTimeOffset string `xml:"presentationTimeOffset,attr"`
		InitializationElement  *dURL  `xml:"Initialization"`
		Timeline               *struct {
			S []struct {
				T string `xml:"t,attr"`
				D string `xml:"d,attr"`
				R string `xml:"r,attr"`
			} `xml:"S"`
		} `xml:"SegmentTimeline"`
	}
)

// dash lists an MPD's URLs (see Discover).
func (d *discoverer) dash(data []byte, base *url.URL) error {
	var m dMPD
	if err := xml.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("MPD: %w", err)
	}
	if m.XMLName.Local != "MPD" {
		return ErrNotManifest
	}
	d.out.Format = FormatDASH
	docBase := withBase(base, m.BaseURL)
	total, totalOK := parseDuration(m.Duration)
	// Period start and duration (§5.3.2.1): @start, else the previous Period's end (0 for the
	// first of a static MPD); @duration, else up to the next one's start, else up to the
	// presentation's end.
	var prevEnd time.Duration
	prevEndOK := true
	for i, p := range m.Periods {
		if d.full() {
			d.out.Truncated = true
			return nil
		}
		start, startOK := parseDuration(p.Start)
		if !startOK {
			start, startOK = prevEnd, prevEndOK
		}
		length, lengthOK := parseDuration(p.Duration)
		if !lengthOK && i+1 < len(m.Periods) {
			if next, ok := parseDuration(m.Periods[i+1].Start); ok && startOK && next > start {
				length, lengthOK = next-start, true
			}
		}
		if !lengthOK && i+1 == len(m.Periods) && totalOK && startOK && total > start {
			length, lengthOK = total-start, true
		}
		prevEnd, prevEndOK = start+length, startOK && lengthOK
		if !lengthOK {
			length = -1
		}
		pBase := withBase(docBase, p.BaseURL)
		for _, as := range p.AdaptationSets {
			asBase := withBase(pBase, as.BaseURL)
			for _, rep := range as.Representations {
				d.representation(rep, withBase(asBase, rep.BaseURL), base, length, []*dSegmentInfo{&rep.dSegmentInfo, &as.dSegmentInfo, &p.dSegmentInfo})
			}
		}
	}
	return nil
}

// representation lists one Representation's URLs under the addressing mode its levels
// (lowest first) give, base being its BaseURL and mpdURL the MPD's own; length is its Period's
// duration, negative when unknown.
func (d *discoverer) representation(rep dRep, base, mpdURL *url.URL, length time.Duration, levels []*dSegmentInfo) {
	bw := 0
	if n, err := strconv.ParseUint(strings.TrimSpace(rep.Bandwidth), 10, 64); err == nil {
		bw = int(min(n, math.MaxInt32))
	}
	var tmpls []*dTemplate
	var list *dSegmentList
	var sb *dSegmentBase
	for _, l := range levels {
		if l.SegmentTemplate != nil {
			tmpls = append(tmpls, l.SegmentTemplate)
		}
		if l.SegmentList != nil && list == nil {
			list = l.SegmentList
		}
		if l.SegmentBase != nil && sb == nil {
			sb = l.SegmentBase
		}
	}
	switch {
	case len(tmpls) > 0:
		d.template(mergeDTemplates(tmpls), rep.ID, bw, base, length)
	case list != nil:
		if list.Initialization != nil {
			d.add(base, list.Initialization.SourceURL, false)
		}
		for _, s := range list.SegmentURLs {
			if d.full() {
				d.out.Truncated = true
				return
			}
			d.add(base, s.Index, false)
			if strings.TrimSpace(s.Media) == "" {
				d.addBase(base, mpdURL) // no @media: the BaseURL's resource (§5.3.9.3.2)
			} else {
				d.add(base, s.Media, false)
			}
		}
	default:
		// SegmentBase or nothing: the Representation is one resource, its BaseURL (§5.3.9.2),
		// with an initialization and index of their own when they name one.
		if sb != nil {
			if sb.Initialization != nil {
				d.add(base, sb.Initialization.SourceURL, false)
			}
			if sb.RepresentationIndex != nil {
				d.add(base, sb.RepresentationIndex.SourceURL, false)
			}
		}
		d.addBase(base, mpdURL)
	}
}

// addBase lists a Representation's BaseURL resource, unless it is the MPD itself (no
// BaseURL anywhere).
func (d *discoverer) addBase(base, mpdURL *url.URL) {
	if base == nil || (mpdURL != nil && base.String() == mpdURL.String()) {
		return
	}
	d.add(nil, base.String(), false)
}

// mergeDTemplates is the SegmentTemplate in force: each attribute from the lowest level that
// sets it (§5.3.9.1), levels lowest first.
func mergeDTemplates(levels []*dTemplate) *dTemplate {
	out := *levels[0]
	for _, t := range levels[1:] {
		for _, f := range []struct {
			dst *string
			src string
		}{
			{&out.Media, t.Media}, {&out.Initialization, t.Initialization}, {&out.Index, t.Index},
			{&out.Timescale, t.Timescale}, {&out.Duration, t.Duration}, {&out.StartNumber, t.StartNumber},
			{&out.EndNumber, t.EndNumber}, {&out.PresentationTimeOffset, t.PresentationTimeOffset},
		} {
			if *f.dst == "" {
				*f.dst = f.src
			}
		}
		if out.InitializationElement == nil {
			out.InitializationElement = t.InitializationElement
		}
		if out.Timeline == nil {
			out.Timeline = t.Timeline
		}
	}
	return &out
}

// template lists a SegmentTemplate's initialization, index and media segments (§5.3.9.4).
// A template that can't be expanded ($…$ unknown or unpaired) lists nothing of what it shapes.
func (d *discoverer) template(st *dTemplate, id string, bw int, base *url.URL, length time.Duration) {
	expandAdd := func(tmpl string, number, t uint64) bool {
		s, err := expandTemplate(tmpl, id, bw, number, t)
		if err != nil {
			return false
		}
		d.add(base, s, false)
		return true
	}
	if st.InitializationElement != nil {
		d.add(base, st.InitializationElement.SourceURL, false)
	}
	if strings.TrimSpace(st.Initialization) != "" {
		expandAdd(st.Initialization, 0, 0)
	}
	if strings.TrimSpace(st.Index) != "" {
		expandAdd(st.Index, 0, 0)
	}
	if strings.TrimSpace(st.Media) == "" {
		return
	}
	timescale := parseUint(st.Timescale, 1)
	if timescale == 0 {
		timescale = 1
	}
	number := parseUint(st.StartNumber, 1) // §5.3.9.5.3: startNumber defaults to 1
	endNumber := parseUint(st.EndNumber, math.MaxUint64)
	pto := parseUint(st.PresentationTimeOffset, 0)
	// The Period's end on the media timeline, in timescale units (ok: known and representable).
	var periodEnd uint64
	periodEndOK := false
	if length >= 0 {
		if e := float64(pto) + length.Seconds()*float64(timescale); e < math.MaxUint64/2 {
			periodEnd, periodEndOK = uint64(math.Ceil(e)), true
		}
	}
	segment := func(t uint64) bool { // lists number's segment, starting at t; false: stop
		// Expansions are counted, not only the URLs they give: a template without $Number$
		// or $Time$ repeated 2^63 times gives one URL.
		d.expanded++
		if d.full() || d.expanded > 2*d.limit+1024 {
			d.out.Truncated = true
			return false
		}
		if number > endNumber || !expandAdd(st.Media, number, t) {
			return false
		}
		if number == math.MaxUint64 {
			return false
		}
		number++
		return true
	}

	if st.Timeline != nil {
		var t uint64
		ss := st.Timeline.S
		for i, s := range ss {
			dur := parseUint(s.D, 0)
			if dur == 0 {
				continue
			}
			if s.T != "" {
				t = parseUint(s.T, t)
			}
			r, err := strconv.ParseInt(strings.TrimSpace(s.R), 10, 64)
			if err != nil {
				r = 0
			}
			// S@r=-1: repeated up to the next S@t, else the end of the Period (§5.3.9.6).
			if r < 0 {
				end, endOK := periodEnd, periodEndOK
				if i+1 < len(ss) && ss[i+1].T != "" {
					end, endOK = parseUint(ss[i+1].T, 0), true
				}
				r = 0
				if endOK && end > t {
					r = int64(min((end-t+dur-1)/dur, math.MaxInt64)) - 1
				}
			}
			for k := int64(0); k <= r; k++ {
				if !segment(t) {
					return
				}
				if t > math.MaxUint64-dur {
					return
				}
				t += dur
			}
		}
		return
	}
	dur := parseUint(st.Duration, 0)
	if dur == 0 {
		// No timeline and no duration: one segment (§5.3.9.2), if the template names one
		// without $Number$ or $Time$.
		if !strings.Contains(st.Media, "$Number") && !strings.Contains(st.Media, "$Time") {
			segment(pto)
		}
		return
	}
	if !periodEndOK {
		return // a dynamic MPD's list depends on the clock: not listed
	}
	count := uint64(math.Ceil((float64(periodEnd-min(pto, periodEnd)) / float64(dur)) - 1e-9))
	t := pto
	for range count {
		if !segment(t) || t > math.MaxUint64-dur {
			return
		}
		t += dur
	}
}

// parseUint reads a non-negative integer attribute; def when absent or malformed.
func parseUint(s string, def uint64) uint64 {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return def
	}
	return n
}

// parseDuration reads an xs:duration attribute (not negative); false when absent or malformed.
func parseDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	d, err := mpd.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}
