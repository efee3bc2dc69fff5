package manifest

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Our own writer rather than hls-m3u8's: v0.6.5 caches stale output and drops tags on re-encode
// (see DESIGN.md). Tests parse every playlist back with hls-m3u8 instead.
//
// The HLS writers trust the model: call Validate first.

// hlsFeatures lists the tags and attributes that RFC 8216 §7 ties to a protocol version.
type hlsFeatures struct {
	keyIV             bool // EXT-X-KEY with IV
	floatDurations    bool // EXTINF with a fractional part
	byteRange         bool // EXT-X-BYTERANGE
	iFramesOnly       bool // EXT-X-I-FRAMES-ONLY
	sampleAESKey      bool // EXT-X-KEY with METHOD=SAMPLE-AES, KEYFORMAT or KEYFORMATVERSIONS
	initMap           bool // EXT-X-MAP
	instreamIDService bool // EXT-X-MEDIA INSTREAM-ID="SERVICEn" (Master Playlists)
	skip              bool // EXT-X-SKIP (rfc8216bis-16 §8; the LL-HLS tags need no version)
}

// version returns the lowest EXT-X-VERSION that allows every feature in f (RFC 8216 §7,
// rfc8216bis-16 §8).
func (f hlsFeatures) version() int {
	v := 1
	need := func(ok bool, ver int) {
		if ok {
			v = max(v, ver)
		}
	}
	need(f.keyIV, 2)
	need(f.floatDurations, 3)
	need(f.byteRange || f.iFramesOnly, 4)
	need(f.sampleAESKey || f.initMap, 5)
	need(f.initMap && !f.iFramesOnly, 6)
	need(f.instreamIDService, 7)
	need(f.skip, 9)
	return v
}

// HLSMaster renders the master playlist (RFC 8216 §4.3.4). URIs are relative to the
// presentation root.
func (p *Presentation) HLSMaster() []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n")
	// Only EXT-X-SESSION-KEY (METHOD=SAMPLE-AES and KEYFORMAT need 5) has a §7 version rule
	// here, and an absent EXT-X-VERSION means version 1; computing it keeps a future feature
	// (INSTREAM-ID=SERVICEn needs 7) from being missed.
	keys := p.hlsSessionKeys()
	if v := (hlsFeatures{sampleAESKey: len(keys) > 0 && !p.aes128(), keyIV: p.aes128() && len(p.Protection.IV) > 0,
		instreamIDService: p.usesCEA708()}).version(); v > 1 {
		b.WriteString("#EXT-X-VERSION:" + strconv.Itoa(v) + "\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	// rfc8216bis §4.4.6.5: lets a client fetch the key before it loads a media playlist.
	writeKeys(&b, keys)

	def := p.defaultAudio()
	var audioPeak, audioAvg int
	var audioCodecs []string
	names := map[string]bool{}
	for _, a := range p.Audio {
		audioPeak = max(audioPeak, a.PeakBandwidth)
		audioAvg = max(audioAvg, a.AverageBandwidth)
		audioCodecs = appendCodecs(audioCodecs, a.Codecs)

		b.WriteString("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=" + quote(AudioGroupID))
		if a.Language != "" {
			b.WriteString(",LANGUAGE=" + quote(a.Language))
		}
		// §4.3.4.1.1: NAMEs must differ within a group; IDs are unique, so they disambiguate.
		name := a.displayName()
		if names[name] {
			name += " (" + a.ID + ")"
		}
		names[name] = true
		b.WriteString(",NAME=" + quote(name))
		b.WriteString(",DEFAULT=" + yesNo(a == def) + ",AUTOSELECT=YES")
		if a.Channels > 0 {
			b.WriteString(",CHANNELS=" + quote(strconv.Itoa(a.Channels)))
		}
		b.WriteString(",URI=" + quote(a.ID+"/"+MediaPlaylist) + "\n")
	}
	subs := p.writeSubtitleMedia(&b)
	ccOf, ccGroups, captions := p.captionGroups()
	writeCaptionMedia(&b, ccGroups, captions)

	for _, v := range p.Video {
		// §4.3.4.2: BANDWIDTH is the peak of any playable combination, so pair every rung
		// with the most demanding audio rendition.
		b.WriteString("#EXT-X-STREAM-INF:BANDWIDTH=" + strconv.Itoa(v.PeakBandwidth+audioPeak))
		if v.AverageBandwidth > 0 {
			b.WriteString(",AVERAGE-BANDWIDTH=" + strconv.Itoa(v.AverageBandwidth+audioAvg))
		}
		// §4.3.4.2: CODECS lists every format in any rendition the variant can play.
		codecs := appendCodecs(nil, v.Codecs)
		for _, c := range audioCodecs {
			codecs = appendCodecs(codecs, c)
		}
		b.WriteString(",CODECS=" + quote(strings.Join(codecs, ",")))
		b.WriteString(videoAttrs(v))
		if v.FrameRate.Num > 0 && v.FrameRate.Den > 0 {
			b.WriteString(",FRAME-RATE=" + frameRate3(v.FrameRate))
		}
		if len(p.Audio) > 0 {
			b.WriteString(",AUDIO=" + quote(AudioGroupID))
		}
		if subs {
			b.WriteString(",SUBTITLES=" + quote(TextGroupID))
		}
		switch {
		case len(ccGroups) == 0 && p.CaptionsChecked:
			b.WriteString(",CLOSED-CAPTIONS=NONE")
		case ccOf[v] != "":
			b.WriteString(",CLOSED-CAPTIONS=" + quote(ccOf[v]))
		}
		b.WriteString("\n" + v.ID + "/" + MediaPlaylist + "\n")
	}

	for _, v := range p.Video {
		// A live window has no I-frame playlists (nothing renders them for a live track).
		if len(v.IFrames) == 0 || p.Live != nil {
			continue
		}
		b.WriteString("#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=" + strconv.Itoa(v.IFramePeakBandwidth))
		if v.IFrameAverageBandwidth > 0 {
			b.WriteString(",AVERAGE-BANDWIDTH=" + strconv.Itoa(v.IFrameAverageBandwidth))
		}
		b.WriteString(",CODECS=" + quote(v.Codecs))
		b.WriteString(videoAttrs(v))
		b.WriteString(",URI=" + quote(v.ID+"/"+IFramePlaylist) + "\n")
	}
	return []byte(b.String())
}

// HLSMedia renders t's media playlist (RFC 8216 §4.3.3); URIs are relative to t's folder. For
// a live presentation it is HLSLiveMedia with no options.
func (p *Presentation) HLSMedia(t *Track) []byte {
	if p.Live != nil {
		return p.HLSLiveMedia(t, LiveMediaOptions{})
	}
	durs := make([]uint64, len(t.Segments))
	for i, s := range t.Segments {
		durs[i] = s.Duration
	}
	keys := hlsKeyLines(p.ProtectionOf(t), false)
	f := hlsFeatures{initMap: t.hasInit(), sampleAESKey: len(keys) > 0 && !p.aes128(), keyIV: len(keys) > 0 && p.aes128() && len(p.Protection.IV) > 0}
	for _, s := range t.Segments {
		f.byteRange = f.byteRange || !s.Range.IsWhole()
	}
	var b strings.Builder
	writeMediaHeader(&b, t, durs, f)
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	switch {
	case !t.hasInit():
		// A WebVTT segment stands alone (RFC 8216 §3.5): no EXT-X-MAP, and text is clear.
	case p.aes128():
		// The init segment is clear: EXT-X-MAP first, so that the key applies only to the
		// segments after it (rfc8216bis §4.4.4.5: a key before the map applies to the map;
		// hls.js gives an EXT-X-MAP the keys seen before it).
		writeMap(&b, t)
		writeKeys(&b, keys)
	default:
		writeKeys(&b, keys)
		writeMap(&b, t)
	}
	for _, s := range t.Segments {
		writeEntry(&b, s.Duration, t.Timescale, s.Range, s.URI)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return []byte(b.String())
}

// HLSIFrames renders t's I-frame playlist (RFC 8216 §4.3.3.6): every entry is a byte range
// from a fragment's moof to the end of one sync sample.
func (p *Presentation) HLSIFrames(t *Track) []byte {
	durs := make([]uint64, len(t.IFrames))
	for i, fr := range t.IFrames {
		durs[i] = fr.Duration
	}
	keys := hlsKeyLines(p.ProtectionOf(t), false)
	f := hlsFeatures{initMap: true, iFramesOnly: true, sampleAESKey: len(keys) > 0}
	for _, fr := range t.IFrames {
		f.byteRange = f.byteRange || !fr.Range.IsWhole()
	}
	var b strings.Builder
	writeMediaHeader(&b, t, durs, f)
	b.WriteString("#EXT-X-I-FRAMES-ONLY\n")
	writeKeys(&b, keys) // the I-frames are encrypted as the segments are
	writeMap(&b, t)
	for _, fr := range t.IFrames {
		writeEntry(&b, fr.Duration, t.Timescale, fr.Range, fr.URI)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return []byte(b.String())
}

// writeMediaHeader writes the tags that open a VOD media playlist. The target duration and the
// float-duration feature come from the EXTINF values as printed, since that is what players
// round (RFC 8216 §4.3.3.1).
func writeMediaHeader(b *strings.Builder, t *Track, durs []uint64, f hlsFeatures) {
	var longest int64
	for _, d := range durs {
		u := extinfUnits(d, t.Timescale)
		longest = max(longest, u)
		f.floatDurations = f.floatDurations || u%extinfScale != 0
	}
	v := f.version()
	// Below version 6, clients and tools (hls-m3u8 among them) still apply the older reading
	// that no EXTINF may exceed the target at all; a ceiling satisfies both readings.
	target := (longest + extinfScale/2) / extinfScale
	if v < 6 {
		target = (longest + extinfScale - 1) / extinfScale
	}
	// A target of 0 is legal for sub-second segments, but players derive reload and buffer
	// timings from it.
	target = max(target, 1)
	b.WriteString("#EXTM3U\n")
	if v > 1 {
		b.WriteString("#EXT-X-VERSION:" + strconv.Itoa(v) + "\n")
	}
	b.WriteString("#EXT-X-TARGETDURATION:" + strconv.FormatInt(target, 10) + "\n")
	b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
}

// ErrAES128NoDASH is DASH's answer for an aes-128 presentation: an MPD has no way to signal
// whole-segment encryption (ContentProtection describes CENC only).
var ErrAES128NoDASH = errors.New("DASH cannot signal HLS AES-128 whole-segment encryption")

// aes128 tells whether p is encrypted whole-segment (HLS AES-128) rather than with CENC.
func (p *Presentation) aes128() bool { return p.Protection != nil && p.Protection.Scheme == "aes-128" }

func writeMap(b *strings.Builder, t *Track) {
	b.WriteString("#EXT-X-MAP:URI=" + quote(t.initURI()))
	if !t.InitRange.IsWhole() {
		b.WriteString(",BYTERANGE=" + quote(byteRange(t.InitRange)))
	}
	b.WriteString("\n")
}

func writeEntry(b *strings.Builder, d uint64, timescale uint32, r ByteRange, uri string) {
	b.WriteString("#EXTINF:" + extinf(d, timescale) + ",\n")
	if !r.IsWhole() {
		b.WriteString("#EXT-X-BYTERANGE:" + byteRange(r) + "\n")
	}
	b.WriteString(uri + "\n")
}

// extinfScale is the EXTINF resolution: 10 µs keeps the sum of thousands of segments within a
// frame of the true duration without printing long fractions.
const extinfScale = 100000

// extinfUnits converts a duration to EXTINF units, rounding half up, in integers so that output
// never depends on float formatting.
func extinfUnits(d uint64, timescale uint32) int64 {
	if timescale == 0 {
		return 0
	}
	ts := uint64(timescale)
	q, r := d/ts, d%ts
	return int64(q*extinfScale + (2*r*extinfScale+ts)/(2*ts))
}

// extinf formats a duration for EXTINF: at most five decimals, trailing zeros trimmed.
func extinf(d uint64, timescale uint32) string {
	u := extinfUnits(d, timescale)
	return decimal(u/extinfScale, u%extinfScale, 5)
}

// frameRate3 formats a frame rate rounded to three decimals, as §4.3.4.2 asks for FRAME-RATE.
func frameRate3(r Rational) string {
	n, d := int64(r.Num), int64(r.Den)
	m := (2*n*1000 + d) / (2 * d)
	f := strconv.FormatInt(m%1000, 10)
	return strconv.FormatInt(m/1000, 10) + "." + strings.Repeat("0", 3-len(f)) + f
}

// decimal writes whole.frac with frac zero-padded to digits and trailing zeros trimmed.
func decimal(whole, frac int64, digits int) string {
	s := strconv.FormatInt(whole, 10)
	if frac == 0 {
		return s
	}
	f := strconv.FormatInt(frac, 10)
	f = strings.Repeat("0", digits-len(f)) + f
	return s + "." + strings.TrimRight(f, "0")
}

func byteRange(r ByteRange) string {
	return strconv.FormatInt(r.Length, 10) + "@" + strconv.FormatInt(r.Offset, 10)
}

func videoAttrs(v *Track) string {
	if v.Width <= 0 || v.Height <= 0 {
		return ""
	}
	return ",RESOLUTION=" + strconv.Itoa(v.Width) + "x" + strconv.Itoa(v.Height)
}

// quote makes s a quoted-string (RFC 8216 §4.2), which cannot hold '"', CR or LF.
func quote(s string) string {
	return `"` + strings.NewReplacer(`"`, "'", "\r", " ", "\n", " ").Replace(s) + `"`
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// appendCodecs adds the entries of a comma-separated codecs list that list lacks.
func appendCodecs(list []string, codecs string) []string {
	for _, c := range strings.Split(codecs, ",") {
		c = strings.TrimSpace(c)
		if c != "" && !slices.Contains(list, c) {
			list = append(list, c)
		}
	}
	return list
}

// defaultAudio is the audio track marked Default, else the first: players need exactly one
// DEFAULT=YES per group to start without asking (RFC 8216 §4.3.4.1.1).
func (p *Presentation) defaultAudio() *Track {
	for _, a := range p.Audio {
		if a.Default {
			return a
		}
	}
	if len(p.Audio) > 0 {
		return p.Audio[0]
	}
	return nil
}

// displayName is the menu name; NAME is required and must differ within a group, which the
// unique track ID guarantees when the packager gave no name.
func (t *Track) displayName() string {
	if t.Name != "" {
		return t.Name
	}
	return t.ID
}

// hasInit reports whether t's segments follow an init segment (EXT-X-MAP): all but WebVTT text.
func (t *Track) hasInit() bool { return t.Kind != Text || t.Format != WebVTT }

func (t *Track) initURI() string {
	if t.InitURI != "" {
		return t.InitURI
	}
	return InitSegmentName
}
