// Package manifest holds Reel's presentation model and renders it as HLS playlists and DASH MPDs.
//
// The model is the single source of truth: the packager fills a Presentation once, and the HLS
// and DASH writers are two renderings of it that reference the very same segment files.
package manifest

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind says what a track carries.
type Kind int

const (
	Video Kind = iota
	Audio
	Text // subtitles: a sidecar text track, never encrypted
)

func (k Kind) String() string {
	switch k {
	case Audio:
		return "audio"
	case Text:
		return "text"
	}
	return "video"
}

// TextFormat is how a text track's segments are stored. HLS and DASH players read different
// forms of the same cues, so the packager writes one text Track per format, and each writer lists
// the tracks in the formats its players read: the HLS master the WebVTT ones, the MPD the WVTT
// and IMSC1 ones.
type TextFormat string

const (
	// WebVTT segments are WebVTT files (RFC 8216 §3.5), each with an X-TIMESTAMP-MAP header that
	// maps cue times onto the media timeline; no init segment. HLS only.
	WebVTT TextFormat = "webvtt"
	// WVTT segments are CMAF WebVTT fragments (ISO/IEC 14496-30, sample entry wvtt) after an init
	// segment, addressed like media segments. DASH only.
	WVTT TextFormat = "wvtt"
	// IMSC1 segments are CMAF TTML fragments (ISO/IEC 14496-30, sample entry stpp), each sample
	// an IMSC1 text profile document, after an init segment, addressed like media segments.
	// DASH only.
	IMSC1 TextFormat = "stpp"
)

// codecs is the RFC 6381 codec string of f, as DASH's Representation@codecs takes it.
func (f TextFormat) codecs() string {
	switch f {
	case WVTT:
		return "wvtt"
	case IMSC1:
		// The sample entry, then the MIME subtype and the IMSC1 text profile (ISO/IEC 23000-19
		// §11.3, DASH-IF IOP v4.3 §6.4.4).
		return "stpp.ttml.im1t"
	}
	return ""
}

// Caption is one closed-caption service carried in a video track's SEI (CEA-608 in ATSC A/53
// user data, or CEA-708): players decode it from the video itself, so it has no files.
type Caption struct {
	// Channel is the HLS INSTREAM-ID: "CC1" to "CC4" for CEA-608, "SERVICE1" to "SERVICE63" for
	// CEA-708 (RFC 8216 §4.3.4.1).
	Channel  string
	Language string // BCP 47; empty when unknown
	Name     string // human-readable name for players' menus; empty: derived from Channel
}

// cea608 reports whether c is a CEA-608 channel (CC1–CC4) rather than a CEA-708 service.
func (c Caption) cea608() bool { return strings.HasPrefix(c.Channel, "CC") }

// service is c's CEA-708 service number, 0 for a CEA-608 channel or a malformed one.
func (c Caption) service() int {
	n, err := strconv.Atoi(strings.TrimPrefix(c.Channel, "SERVICE"))
	if err != nil || !strings.HasPrefix(c.Channel, "SERVICE") || n < 1 || n > 63 {
		return 0
	}
	return n
}

func (c Caption) valid() bool {
	switch c.Channel {
	case "CC1", "CC2", "CC3", "CC4":
		return true
	}
	return c.service() > 0 && c.Channel == "SERVICE"+strconv.Itoa(c.service())
}

// Rational is an exact ratio such as a frame rate (30000/1001) or a sample aspect ratio.
type Rational struct {
	Num, Den int
}

// Float returns the ratio as a float, 0 for an empty ratio.
func (r Rational) Float() float64 {
	if r.Den == 0 {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

// ByteRange addresses part of a file. Length 0 means the whole file.
type ByteRange struct {
	Offset, Length int64
}

// IsWhole reports whether the range stands for the whole file.
func (b ByteRange) IsWhole() bool { return b.Length == 0 }

// Last returns the offset of the range's last byte (inclusive), as DASH and HTTP write it.
func (b ByteRange) Last() int64 { return b.Offset + b.Length - 1 }

// Segment is one media segment of a track. Times are in the track's timescale.
type Segment struct {
	// Start is the segment's earliest presentation time (equal to its decode time: every
	// segment starts with a sync sample whose composition offset is zero after edit-list
	// mapping).
	Start    uint64
	Duration uint64
	// URI is relative to the track's folder (e.g. "seg_00001.m4s" or, in single-file mode,
	// "media.mp4" for every segment).
	URI string
	// Range is the segment's bytes in URI (whole file unless single-file).
	Range ByteRange
	// Size is the segment's size in bytes (its Range length in single-file mode).
	Size int64

	// Live only (see Live).
	Number          uint64    // media sequence number (EXT-X-MEDIA-SEQUENCE, DASH $Number$)
	ProgramDateTime time.Time // wall-clock time of the segment's first sample
	Discontinuity   bool      // a discontinuity comes before this segment (restart, reconnect)
	// Parts are the segment's LL-HLS parts, oldest first; their durations sum to Duration. The
	// HLS writer lists them only for segments that end within three target durations of the
	// last segment's end (rfc8216bis-16 §6.2.2), so the packager may keep them on every segment.
	Parts []Part
}

// IFrame is one independently decodable frame, addressed as a byte range from the start of its
// fragment's moof to the end of the frame's sample data (RFC 8216 §4.3.3.6).
type IFrame struct {
	Start    uint64
	Duration uint64
	URI      string
	Range    ByteRange
}

// Track is one rendition: a video rung of the ladder, one audio language or one text track in
// one TextFormat.
type Track struct {
	// ID names the track's folder under the presentation root and is the DASH
	// Representation@id (e.g. "video_720p", "audio_eng").
	ID        string
	Kind      Kind
	Codecs    string // RFC 6381 codec string taken from the bitstream, e.g. "avc1.64001f"
	Timescale uint32
	// Priming is the media time at the track's start that its init segment's edit list keeps
	// out of the presentation (AAC encoder priming), in Timescale units. Segment times stay
	// media times; the track's presentation ends Priming before its last segment does.
	Priming uint64

	// Video only.
	Width, Height int
	SAR           Rational // sample aspect ratio, 1:1 for square pixels
	FrameRate     Rational
	// Captions are the closed captions carried in the video's SEI, in channel order.
	Captions []Caption

	// Audio only.
	SampleRate int
	Channels   int

	// Audio and text.
	Language string // BCP 47, e.g. "en"; empty when unknown
	Name     string // human-readable name for players' menus
	Default  bool   // audio: the one to play; text: shown without the user asking (rarely wanted)

	// Text only. Codecs may stay empty for a text track: Format says what the segments are.
	Format TextFormat
	// Forced: only the cues essential to the story (foreign dialogue, signs), shown even with
	// subtitles off (HLS FORCED=YES, DASH Role forced-subtitle).
	Forced bool
	// SDH: subtitles for the deaf and hard of hearing, which transcribe dialogue and describe
	// music and sound (HLS CHARACTERISTICS, DASH Role caption).
	SDH bool
	// Autoselect lets a player pick the track from the viewer's language and accessibility
	// settings (HLS AUTOSELECT=YES). A Default track is always autoselectable.
	Autoselect bool

	// Measured over the packaged segments, in bits per second.
	PeakBandwidth    int
	AverageBandwidth int
	// Measured over the I-frame byte ranges (video only).
	IFramePeakBandwidth    int
	IFrameAverageBandwidth int

	// Init is the initialization segment: its file (relative to the track folder) and, in
	// single-file mode, the byte range of ftyp+moov in that file.
	InitURI   string
	InitRange ByteRange
	// IndexRange is the sidx box's byte range (single-file mode only).
	IndexRange ByteRange

	// SegmentTemplate is the DASH media template (relative to the presentation root after
	// $RepresentationID$ expansion) that expands to every Segment.URI, e.g.
	// "seg_$Number%05d$.m4s". Empty in single-file mode.
	SegmentTemplate string
	StartNumber     int

	Segments []Segment
	IFrames  []IFrame

	// Protection, when set, is this track's encryption; nil: the presentation's (ProtectionOf).
	Protection *Protection

	// Live only (see Live): the parts of the segment in progress, and how many
	// discontinuities have left the window (EXT-X-DISCONTINUITY-SEQUENCE).
	LiveParts             []Part
	DiscontinuitySequence uint64

	// Live only: the segment in progress, to which LiveParts belong. NextNumber is its Number:
	// it must be the last complete segment's Number + 1 (0 stands for that too), and it is the
	// media sequence number of an empty window. NextProgramDateTime and NextDiscontinuity are
	// its EXT-X-PROGRAM-DATE-TIME and EXT-X-DISCONTINUITY, written before its first part
	// (rfc8216bis-16 §4.4.4.9): a segment after an encoder reconnect must carry the
	// discontinuity from its first listed part on, not only once it is complete.
	NextNumber          uint64
	NextProgramDateTime time.Time
	NextDiscontinuity   bool
}

// liveNext is the Number of t's segment in progress.
func (t *Track) liveNext() uint64 {
	if n := len(t.Segments); n > 0 {
		return t.Segments[n-1].Number + 1
	}
	return t.NextNumber
}

// DurationSeconds is the sum of the track's segment durations in seconds.
func (t *Track) DurationSeconds() float64 {
	var d uint64
	for _, s := range t.Segments {
		d += s.Duration
	}
	if t.Timescale == 0 {
		return 0
	}
	return float64(d) / float64(t.Timescale)
}

// PresentedSeconds is DurationSeconds less the Priming the edit list hides.
func (t *Track) PresentedSeconds() float64 {
	if t.Timescale == 0 {
		return 0
	}
	return t.DurationSeconds() - float64(t.Priming)/float64(t.Timescale)
}

// MaxSegmentSeconds is the longest segment duration in seconds.
func (t *Track) MaxSegmentSeconds() float64 {
	var m uint64
	for _, s := range t.Segments {
		m = max(m, s.Duration)
	}
	if t.Timescale == 0 {
		return 0
	}
	return float64(m) / float64(t.Timescale)
}

// Presentation is one packaged title: a video ladder, its audio renditions and its text tracks.
// With Live set it is one snapshot of a live channel's window.
type Presentation struct {
	Video []*Track // ordered from the highest to the lowest bandwidth
	Audio []*Track // the first is the default
	// Text are the text tracks in menu order, each in one Format: the packager adds one per
	// format for each subtitle input (e.g. "text_fr" in WebVTT and "text_fr_wvtt" in WVTT, or
	// "text_fr_stpp" in IMSC1 for a TTML input), with
	// the same Language, Name and flags, and segments aligned with the video's. Tracks() leaves
	// them out: they are clear, have no parts and take no part in bandwidth or duration.
	Text []*Track
	// CaptionsChecked says that the packager looked for closed captions in every video track,
	// so that a video track without Captions has none: HLS then says CLOSED-CAPTIONS=NONE, which
	// makes players (hls.js, Safari) ignore captions in the video. Leave it false when captions
	// were not looked for: players then still find them in the SEI.
	CaptionsChecked bool
	// SingleFile is true when every track is one fragmented MP4 with a sidx.
	SingleFile bool
	// Live is set for a live channel's window; nil for VOD.
	Live *Live
	// Protection is set when every track is encrypted with Common Encryption; nil when clear.
	// A track's own Protection, when set, takes its place for that track (tracks under
	// different keys, e.g. video and audio).
	Protection *Protection
}

// Protection describes the Common Encryption (ISO/IEC 23001-7) of a track, as far as manifests
// signal it: never a key, only what identifies it and how players get it.
type Protection struct {
	Scheme string   // "cenc" or "cbcs"; or "aes-128": HLS whole-segment encryption, no MPD
	KID    [16]byte // the default key ID the track's tenc carries (not for aes-128)
	// IV is aes-128's fixed IV (EXT-X-KEY IV=0x…); empty: each segment's media sequence number.
	IV []byte
	// KeyURI is where an HLS client gets the key itself (EXT-X-KEY KEYFORMAT="identity"; for
	// aes-128 the key's URI); empty: no identity key is signalled.
	KeyURI string
	// Systems are the DRM systems that signal this key (from a CPIX document), in the order
	// given. ClearKey is signalled whether or not it is among them.
	Systems []DRMSystem
	// ClearKeyLicense is the URL of a ClearKey license server (DASH-IF IOP dashif:Laurl);
	// empty: players are given the key some other way.
	ClearKeyLicense string
}

// DRMSystem is one DRM system's signalling for one key. Fields left empty are generated from
// the others where the system has a known form (see the HLS and DASH writers).
type DRMSystem struct {
	ID [16]byte // system ID, e.g. SystemWidevine
	// PSSH is a whole pssh box: cenc:pssh in the MPD, and the Widevine and PlayReady HLS URIs.
	PSSH []byte
	// ContentProtectionData is XML that goes as given inside the system's ContentProtection.
	ContentProtectionData string
	// KeyURI is the URI of the system's EXT-X-KEY (FairPlay's skd://…).
	KeyURI string
	// HLSMaster and HLSMedia, when set, are the system's EXT-X-SESSION-KEY and EXT-X-KEY lines,
	// written as given instead of generated ones.
	HLSMaster, HLSMedia string
}

// Well-known DRM system IDs (dashif.org/identifiers/content_protection).
var (
	SystemWidevine  = [16]byte{0xed, 0xef, 0x8b, 0xa9, 0x79, 0xd6, 0x4a, 0xce, 0xa3, 0xc8, 0x27, 0xdc, 0xd5, 0x1d, 0x21, 0xed}
	SystemPlayReady = [16]byte{0x9a, 0x04, 0xf0, 0x79, 0x98, 0x40, 0x42, 0x86, 0xab, 0x92, 0xe6, 0x5b, 0xe0, 0x88, 0x5f, 0x95}
	SystemFairPlay  = [16]byte{0x94, 0xce, 0x86, 0xfb, 0x07, 0xff, 0x4f, 0x43, 0xad, 0xb8, 0x93, 0xd2, 0xfa, 0x96, 0x8c, 0xa2}
	SystemClearKey  = [16]byte{0xe2, 0x71, 0x9d, 0x58, 0xa9, 0x85, 0xb3, 0xc9, 0x78, 0x1a, 0xb0, 0x30, 0xaf, 0x78, 0xd3, 0x0e}
	SystemW3CCommon = [16]byte{0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b}
)

// KIDUUID is the key ID in the UUID form that DASH's cenc:default_KID uses.
func (p *Protection) KIDUUID() string { return uuid(p.KID) }

func uuid(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ProtectionOf is t's protection: its own, else the presentation's; nil when t is clear, as a
// text track always is.
func (p *Presentation) ProtectionOf(t *Track) *Protection {
	if t.Kind == Text {
		return nil
	}
	if t.Protection != nil {
		return t.Protection
	}
	return p.Protection
}

// File names used inside a presentation, so that the packager, the origin and tests agree.
const (
	MasterPlaylist  = "master.m3u8"
	DASHManifest    = "manifest.mpd"
	MediaPlaylist   = "index.m3u8"   // inside each track folder
	IFramePlaylist  = "iframes.m3u8" // inside each video track folder
	AudioGroupID    = "audio"
	TextGroupID     = "subs" // EXT-X-MEDIA TYPE=SUBTITLES
	CaptionGroupID  = "cc"   // EXT-X-MEDIA TYPE=CLOSED-CAPTIONS (then "cc2"… when rungs differ)
	InitSegmentName = "init.mp4"
)

// Duration is the presentation's duration in seconds: the longest track, less what its edit
// list hides.
func (p *Presentation) Duration() float64 {
	var d float64
	for _, t := range p.Tracks() {
		d = max(d, t.PresentedSeconds())
	}
	return d
}

// Tracks returns video then audio tracks: the media tracks, without text.
func (p *Presentation) Tracks() []*Track {
	out := make([]*Track, 0, len(p.Video)+len(p.Audio))
	return append(append(out, p.Video...), p.Audio...)
}

// AllTracks returns video, audio, then text tracks: every folder of the presentation.
func (p *Presentation) AllTracks() []*Track {
	return append(p.Tracks(), p.Text...)
}

// TextTracks returns the text tracks in format f, in order.
func (p *Presentation) TextTracks(f TextFormat) []*Track {
	var out []*Track
	for _, t := range p.Text {
		if t.Format == f {
			out = append(out, t)
		}
	}
	return out
}

// Validate checks the invariants the writers rely on, so that a packager bug shows up as an
// error instead of as a manifest that players choke on.
//
// A live presentation (Live set) may have tracks without a complete segment yet; its listed
// segments must be contiguous in time and in Number, carry a program date-time, and any parts
// must add up to their segment.
func (p *Presentation) Validate() error {
	if len(p.Video) == 0 {
		return fmt.Errorf("presentation has no video track")
	}
	if p.Live != nil {
		if err := p.Live.validate(p.SingleFile); err != nil {
			return err
		}
	}
	defaults := map[TextFormat]bool{}
	for _, t := range p.Text {
		switch {
		case t.Kind != Text:
			return fmt.Errorf("track %s: a %s track among the text tracks", t.ID, t.Kind)
		case t.Default && defaults[t.Format]:
			return fmt.Errorf("track %s: a second default text track in %s", t.ID, t.Format)
		}
		defaults[t.Format] = defaults[t.Format] || t.Default
	}
	for _, t := range p.Tracks() {
		if t.Kind == Text {
			return fmt.Errorf("track %s: a text track among the media tracks", t.ID)
		}
	}
	seen := map[string]bool{}
	for _, t := range p.AllTracks() {
		if err := t.validateKind(); err != nil {
			return fmt.Errorf("track %s: %w", t.ID, err)
		}
		switch {
		case t.ID == "" || strings.ContainsAny(t.ID, "/\\ \"") || t.ID == "." || t.ID == "..":
			return fmt.Errorf("track id %q is not a plain folder name", t.ID)
		case seen[t.ID]:
			return fmt.Errorf("track id %q used twice", t.ID)
		case t.Timescale == 0:
			return fmt.Errorf("track %s: timescale is 0", t.ID)
		case len(t.Segments) == 0 && p.Live == nil:
			return fmt.Errorf("track %s: no segments", t.ID)
		case t.Codecs == "" && t.Kind != Text:
			return fmt.Errorf("track %s: no codec string", t.ID)
		}
		seen[t.ID] = true
		for i, s := range t.Segments {
			if i > 0 {
				prev := t.Segments[i-1]
				// A live stream may jump forward after a discontinuity (an encoder that was away);
				// otherwise segments follow each other exactly.
				if next := prev.Start + prev.Duration; s.Start != next && !(p.Live != nil && s.Discontinuity && s.Start > next) {
					return fmt.Errorf("track %s: segment %d starts at %d, expected %d (gap or overlap)", t.ID, i, s.Start, next)
				}
				if p.Live != nil && s.Number != prev.Number+1 {
					return fmt.Errorf("track %s: segment %d is number %d, expected %d (numbers must be consecutive)", t.ID, i, s.Number, prev.Number+1)
				}
			}
			if s.Duration == 0 {
				return fmt.Errorf("track %s: segment %d has zero duration", t.ID, i)
			}
		}
		if p.Live != nil {
			if err := p.Live.validateTrack(t); err != nil {
				return fmt.Errorf("track %s: %w", t.ID, err)
			}
		}
	}
	return nil
}

// validateKind checks what t's Kind allows: text where text belongs, captions on video.
func (t *Track) validateKind() error {
	if len(t.Captions) > 0 && t.Kind != Video {
		return fmt.Errorf("closed captions on a %s track", t.Kind)
	}
	channels := map[string]bool{}
	for _, c := range t.Captions {
		if !c.valid() {
			return fmt.Errorf("caption channel %q is not CC1–CC4 or SERVICE1–SERVICE63", c.Channel)
		}
		if channels[c.Channel] {
			return fmt.Errorf("caption channel %s listed twice", c.Channel)
		}
		channels[c.Channel] = true
	}
	if t.Kind != Text {
		if t.Format != "" || t.Forced || t.SDH {
			return fmt.Errorf("text attributes on a %s track", t.Kind)
		}
		return nil
	}
	if t.Format != WebVTT && t.Format != WVTT && t.Format != IMSC1 {
		return fmt.Errorf("text format %q is not %q, %q or %q", t.Format, WebVTT, WVTT, IMSC1)
	}
	if t.Protection != nil {
		return fmt.Errorf("a text track is never encrypted")
	}
	if len(t.LiveParts) > 0 || len(t.IFrames) > 0 {
		return fmt.Errorf("a text track has no parts and no I-frames")
	}
	for i, s := range t.Segments {
		if len(s.Parts) > 0 {
			return fmt.Errorf("segment %d: a text track has no parts", i)
		}
		// A WebVTT segment is a whole file with its own header: a byte range of one is not a
		// WebVTT file.
		if t.Format == WebVTT && !s.Range.IsWhole() {
			return fmt.Errorf("segment %d: a WebVTT segment is a whole file", i)
		}
	}
	return nil
}
