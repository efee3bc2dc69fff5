package manifest

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// DASH renders the presentation as an MPD (ISO/IEC 23009-1) that references the same files as
// the HLS playlists: SegmentTemplate with SegmentTimeline per track, or, in single-file mode,
// one file per track indexed by its sidx (SegmentBase). A VOD title or an ended live event is a
// static MPD; a running live window is a dynamic one (see dynamicMPD).
func (p *Presentation) DASH() ([]byte, error) {
	build := p.dashMPD
	if p.Live != nil && p.Live.Keys != nil {
		build = p.keyedMPD // key rotation: a Period per key period (dash_live_keys.go)
	}
	var cpData []string // CPIX ContentProtectionData, inserted after writing
	m, err := build(&cpData)
	if err != nil {
		return nil, err
	}
	out, err := m.WriteToString("  ", true)
	if err != nil {
		return nil, fmt.Errorf("write MPD: %w", err)
	}
	if out, err = insertCPData(out, cpData); err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// dashMPD builds the MPD that DASH writes; cpData collects what insertCPData puts in.
func (p *Presentation) dashMPD(cpData *[]string) (*mpd.MPD, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.aes128() {
		return nil, ErrAES128NoDASH
	}
	if p.Live != nil {
		for _, t := range append(p.Tracks(), p.dashText()...) {
			if len(t.Segments) == 0 {
				return nil, fmt.Errorf("track %s: %w", t.ID, ErrNoSegmentYet)
			}
		}
	}
	profile := mpd.PROFILE_LIVE
	if p.SingleFile {
		profile = mpd.PROFILE_ONDEMAND
	}
	var maxSeg float64
	for _, t := range p.Tracks() {
		maxSeg = max(maxSeg, t.MaxSegmentSeconds())
	}
	var m *mpd.MPD
	var origin *big.Rat // media time at the period start; nil for zero
	if p.dynamic() {
		var err error
		if m, err = p.dynamicMPD(maxSeg); err != nil {
			return nil, err
		}
	} else {
		m = mpd.NewMPD(mpd.STATIC_TYPE)
		origin = p.earliestStart()
		m.MediaPresentationDuration = mpd.Seconds2DurPtrFloat64(p.span(origin))
	}
	m.Profiles = mpd.ListOfProfilesType(profile).AddProfile(mpd.PROFILE_CMAF)
	// A client that has buffered one whole segment can play on at the signalled bandwidth.
	m.MinBufferTime = mpd.Seconds2DurPtrFloat64(maxSeg)
	period := &mpd.Period{Id: "0", Start: mpd.Seconds2DurPtr(0)}
	m.Periods = []*mpd.Period{period}

	for _, group := range codecFamilies(p.Video) {
		video, err := p.videoSet(uint32(len(period.AdaptationSets)), group, origin)
		if err != nil {
			return nil, err
		}
		p.setProtection(video, group, cpData)
		video.Accessibilities = captionAccessibility(group[0].Captions)
		period.AdaptationSets = append(period.AdaptationSets, video)
	}
	def := p.defaultAudio()
	for _, group := range audioGroups(p.Audio) {
		as := newSet(uint32(len(period.AdaptationSets)), "audio", mpd.MIME_TYPE_AUDIO_MP4, p.SingleFile)
		as.Lang = group[0].Language
		for _, t := range group {
			if t == def {
				as.Roles = []*mpd.DescriptorType{mpd.NewRole("main")}
			}
			r := mpd.NewRepresentationWithID(t.ID, t.Codecs, "", t.PeakBandwidth)
			if t.SampleRate > 0 {
				r.AudioSamplingRate = mpd.Ptr(mpd.UIntVectorType(strconv.Itoa(t.SampleRate)))
			}
			// The 23003-3 channelConfigurationIndex equals the channel count for the standard
			// layouts of 1 to 6 channels; beyond that it depends on a layout we don't know.
			if t.Channels >= 1 && t.Channels <= 6 {
				r.AudioChannelConfigurations = []*mpd.DescriptorType{mpd.NewDescriptor(
					mpd.AUDIO_CHANNEL_CONFIGURATION_MPEG_DASH, strconv.Itoa(t.Channels), "")}
			}
			if err := p.addAddressing(r, t, origin); err != nil {
				return nil, err
			}
			as.Representations = append(as.Representations, r)
		}
		p.setProtection(as, group, cpData)
		period.AdaptationSets = append(period.AdaptationSets, as)
	}
	for _, t := range p.dashText() {
		as, err := p.textSet(uint32(len(period.AdaptationSets)), t, origin)
		if err != nil {
			return nil, err
		}
		period.AdaptationSets = append(period.AdaptationSets, as)
	}
	return m, nil
}

// codecFamilies splits the video ladder into one group per codec family, in ladder order. The
// MPD declares the CMAF profile, under which an AdaptationSet is a CMAF switching set: one
// media profile, seamlessly switchable (ISO/IEC 23000-19 §7.3.4, ISO/IEC 23009-1 §5.3.3.1), so
// AVC and HEVC rungs of one ladder go into two sets and a player picks the one it decodes.
// Rungs that carry different closed captions go into different sets too, since the captions
// are signalled per set.
func codecFamilies(tracks []*Track) [][]*Track {
	var groups [][]*Track
	index := map[string]int{}
	for _, t := range tracks {
		f := codecFamily(t.Codecs) + "\x00" + captionKey(t.Captions)
		if i, ok := index[f]; ok {
			groups[i] = append(groups[i], t)
			continue
		}
		index[f] = len(groups)
		groups = append(groups, []*Track{t})
	}
	return groups
}

// codecFamily names an RFC 6381 codec string's family: the sample entry types of one codec
// (avc1/avc3, hvc1/hev1) are one family, whose rungs differ only in profile and level.
func codecFamily(codecs string) string {
	fourCC, _, _ := strings.Cut(codecs, ".")
	switch fourCC {
	case "avc1", "avc3":
		return "avc"
	case "hvc1", "hev1":
		return "hevc"
	case "dvh1", "dvhe":
		return "dolby-vision"
	}
	return fourCC
}

func (p *Presentation) videoSet(id uint32, tracks []*Track, origin *big.Rat) (*mpd.AdaptationSetType, error) {
	as := newSet(id, "video", mpd.MIME_TYPE_VIDEO_MP4, p.SingleFile)
	var maxRate Rational
	for i, t := range tracks {
		r := mpd.NewVideoRepresentation(t.ID, t.Codecs, "", string(dashRate(t.FrameRate)), t.PeakBandwidth, t.Width, t.Height)
		sar := t.SAR
		if sar.Num <= 0 || sar.Den <= 0 {
			sar = Rational{1, 1}
		}
		r.Sar = mpd.RatioType(ratio(sar.Num, sar.Den))
		// AdaptationSet@par is only true when every Representation has the same picture aspect.
		par := mpd.RatioType(ratio(t.Width*sar.Num, t.Height*sar.Den))
		if i == 0 || as.Par == par {
			as.Par = par
		} else {
			as.Par = ""
		}
		as.MaxWidth = max(as.MaxWidth, uint32(t.Width))
		as.MaxHeight = max(as.MaxHeight, uint32(t.Height))
		if t.FrameRate.Float() > maxRate.Float() {
			maxRate = t.FrameRate
		}
		if err := p.addAddressing(r, t, origin); err != nil {
			return nil, err
		}
		as.Representations = append(as.Representations, r)
	}
	as.MaxFrameRate = string(dashRate(maxRate))
	return as, nil
}

func newSet(id uint32, contentType, mime string, singleFile bool) *mpd.AdaptationSetType {
	as := mpd.NewAdaptationSetWithParams(contentType, mime, true, 1)
	as.Id = mpd.Ptr(id)
	if singleFile {
		// On-demand clients switch at sidx subsegments (ISO/IEC 23009-1 §8.3.2).
		as.SubsegmentAlignment = true
		as.SubsegmentStartsWithSAP = 1
	}
	return as
}

// addAddressing tells the client where t's bytes are, relative to the MPD.
func (p *Presentation) addAddressing(r *mpd.RepresentationType, t *Track, origin *big.Rat) error {
	ts := t.Timescale
	var pto *uint64
	if o := presentationTimeOffset(origin, ts); o > 0 {
		pto = &o
	}
	if p.SingleFile {
		file := t.Segments[0].URI
		for i, s := range t.Segments {
			if s.URI != file {
				return fmt.Errorf("track %s: single-file segment %d is in %q, not %q", t.ID, i, s.URI, file)
			}
		}
		if t.IndexRange.IsWhole() || t.InitRange.IsWhole() {
			return fmt.Errorf("track %s: single-file mode needs the init and sidx byte ranges", t.ID)
		}
		init := &mpd.URLType{Range: dashRange(t.InitRange)}
		if t.initURI() != file {
			init.SourceURL = mpd.AnyURI(t.initURI()) // resolved against the BaseURL's folder
		}
		r.BaseURLs = []*mpd.BaseURLType{mpd.NewBaseURL(t.ID + "/" + file)}
		r.SegmentBase = &mpd.SegmentBaseType{
			Timescale:              &ts,
			PresentationTimeOffset: pto,
			IndexRange:             dashRange(t.IndexRange),
			IndexRangeExact:        true,
			Initialization:         init,
		}
		return nil
	}

	if t.SegmentTemplate == "" {
		return fmt.Errorf("track %s: no segment template", t.ID)
	}
	if t.StartNumber < 0 {
		return fmt.Errorf("track %s: negative start number", t.ID)
	}
	// A live segment carries its own number (EXT-X-MEDIA-SEQUENCE and $Number$ agree).
	number := func(i int) uint64 {
		if p.Live != nil {
			return t.Segments[i].Number
		}
		return uint64(t.StartNumber + i)
	}
	if number(0) > math.MaxUint32 {
		return fmt.Errorf("track %s: start number %d does not fit SegmentTemplate@startNumber", t.ID, number(0))
	}
	// The template must name exactly the files the HLS playlists list, or the two renderings
	// would disagree about the content.
	for i, s := range t.Segments {
		uri, err := expandTemplate(t.SegmentTemplate, t.ID, t.PeakBandwidth, number(i), s.Start)
		if err != nil {
			return fmt.Errorf("track %s: %w", t.ID, err)
		}
		if uri != s.URI {
			return fmt.Errorf("track %s: template %q gives %q for segment %d, not %q", t.ID, t.SegmentTemplate, uri, i, s.URI)
		}
	}
	st := mpd.NewSegmentTemplate()
	st.Initialization = "$RepresentationID$/" + t.initURI()
	st.Media = "$RepresentationID$/" + t.SegmentTemplate
	st.StartNumber = mpd.Ptr(uint32(number(0)))
	st.Timescale = &ts
	st.PresentationTimeOffset = pto
	st.SegmentTimeline = segmentTimeline(t.Segments)
	if p.dynamic() && t.Kind != Text {
		// Text segments are listed once complete: a player reads them whole.
		p.lowLatency(st, t)
	}
	r.SegmentTemplate = st
	return nil
}

// segmentTimeline run-length encodes segment durations (ISO/IEC 23009-1 §5.3.9.6): S@t only
// where the timeline starts or jumps, S@r for repeats of the same duration.
func segmentTimeline(segs []Segment) *mpd.SegmentTimelineType {
	tl := mpd.NewSegmentTimeline()
	var last *mpd.S
	var next uint64
	for i, s := range segs {
		contiguous := i > 0 && s.Start == next
		if contiguous && s.Duration == last.D {
			last.R++
		} else {
			last = &mpd.S{D: s.Duration}
			if !contiguous {
				last.T = mpd.Ptr(s.Start)
			}
			tl.S = append(tl.S, last)
		}
		next = s.Start + s.Duration
	}
	return tl
}

// earliestStart is the earliest first-segment time of all tracks, in seconds.
func (p *Presentation) earliestStart() *big.Rat {
	var earliest *big.Rat
	for _, t := range p.Tracks() {
		s := new(big.Rat).SetFrac(new(big.Int).SetUint64(t.Segments[0].Start), big.NewInt(int64(t.Timescale)))
		if earliest == nil || s.Cmp(earliest) < 0 {
			earliest = s
		}
	}
	return earliest
}

// span is the time from origin to the end of the last track to finish. It equals Duration when
// all tracks start together, and otherwise keeps a late-starting track's tail in the period.
func (p *Presentation) span(origin *big.Rat) float64 {
	end := new(big.Rat)
	for _, t := range p.Tracks() {
		last := t.Segments[len(t.Segments)-1]
		// What the edit list hides at the start is not presented at the end either.
		e := new(big.Rat).SetFrac(new(big.Int).SetUint64(last.Start+last.Duration-min(t.Priming, last.Start+last.Duration)), big.NewInt(int64(t.Timescale)))
		if e.Cmp(end) > 0 {
			end = e
		}
	}
	f, _ := end.Sub(end, origin).Float64()
	return f
}

// presentationTimeOffset maps the common origin into a track's timescale. One origin for all
// tracks moves the period start onto the first media sample while keeping the tracks' relative
// timing, which is what keeps audio and video in sync.
func presentationTimeOffset(origin *big.Rat, timescale uint32) uint64 {
	if origin == nil {
		return 0
	}
	v := new(big.Rat).Mul(origin, new(big.Rat).SetInt64(int64(timescale)))
	return new(big.Int).Quo(v.Num(), v.Denom()).Uint64()
}

// audioGroups puts audio tracks into one AdaptationSet only when they are the same content at
// different bit rates (same language, name, codec and channels): Representations of a set must
// be seamlessly switchable (ISO/IEC 23009-1 §5.3.3.1). Unknown languages are never merged.
func audioGroups(tracks []*Track) [][]*Track {
	var groups [][]*Track
	index := map[string]int{}
	for _, t := range tracks {
		key := strings.Join([]string{t.Language, t.Name, t.Codecs, strconv.Itoa(t.Channels)}, "\x00")
		if i, ok := index[key]; ok && t.Language != "" {
			groups[i] = append(groups[i], t)
			continue
		}
		index[key] = len(groups)
		groups = append(groups, []*Track{t})
	}
	return groups
}

// expandTemplate expands a SegmentTemplate@media value (ISO/IEC 23009-1 §5.3.9.4.4).
func expandTemplate(tmpl, id string, bandwidth int, number, time uint64) (string, error) {
	parts := strings.Split(tmpl, "$")
	if len(parts)%2 == 0 {
		return "", fmt.Errorf("template %q has an unpaired $", tmpl)
	}
	var b strings.Builder
	for i, part := range parts {
		if i%2 == 0 {
			b.WriteString(part)
			continue
		}
		name, format, formatted := strings.Cut(part, "%")
		var v uint64
		switch name {
		case "":
			b.WriteByte('$') // "$$" is an escaped dollar
			continue
		case "RepresentationID":
			if formatted {
				return "", fmt.Errorf("template %q: $RepresentationID$ takes no format", tmpl)
			}
			b.WriteString(id)
			continue
		case "Number":
			v = number
		case "Time":
			v = time
		case "Bandwidth":
			v = uint64(bandwidth)
		default:
			return "", fmt.Errorf("template %q: unknown identifier $%s$", tmpl, part)
		}
		s := strconv.FormatUint(v, 10)
		if formatted {
			// Only %0<width>d is allowed.
			w, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(format, "0"), "d"))
			if err != nil || w < 1 || !strings.HasPrefix(format, "0") || !strings.HasSuffix(format, "d") {
				return "", fmt.Errorf("template %q: bad format %%%s", tmpl, format)
			}
			if len(s) < w {
				s = strings.Repeat("0", w-len(s)) + s
			}
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// dashRate writes a frame rate as DASH's FrameRateType: an integer when it is one, else N/D.
func dashRate(r Rational) mpd.FrameRateType {
	if r.Num <= 0 || r.Den <= 0 {
		return ""
	}
	g := gcd(r.Num, r.Den)
	if r.Den == g {
		return mpd.FrameRateType(strconv.Itoa(r.Num / g))
	}
	return mpd.FrameRateType(strconv.Itoa(r.Num/g) + "/" + strconv.Itoa(r.Den/g))
}

// ratio writes a reduced ratio such as "16:9", empty when either side is unknown.
func ratio(a, b int) string {
	if a <= 0 || b <= 0 {
		return ""
	}
	g := gcd(a, b)
	return strconv.Itoa(a/g) + ":" + strconv.Itoa(b/g)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// dashRange writes a byte range as "first-last" (RFC 9110 §14.1.2 byte positions).
func dashRange(r ByteRange) string {
	return strconv.FormatInt(r.Offset, 10) + "-" + strconv.FormatInt(r.Last(), 10)
}
