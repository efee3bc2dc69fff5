package manifest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Live describes a presentation that is still growing: a live channel's current window. The
// live packager builds a Presentation with Live set for every manifest request (manifests are
// rendered on request), so blocking reloads and delta updates are renderings of one snapshot.
//
// In a live presentation every Track.Segments entry is a complete segment, oldest first, with
// Number, ProgramDateTime and, for recent segments when LL-HLS is on, Parts; Track.LiveParts
// holds the parts of the segment being produced (number = last complete + 1, Track.NextNumber
// when none is complete).
//
// Media time zero of every track is AvailabilityStart on the wall clock (the DASH period starts
// there), so the packager keeps each track's timeline continuous, also across a discontinuity.
type Live struct {
	// TargetDuration is the configured segment duration; EXT-X-TARGETDURATION is the longest
	// listed segment rounded to the nearest second (RFC 8216 §4.3.3.1), never below it.
	TargetDuration time.Duration
	// PartTarget is the LL-HLS part target duration (EXT-X-PART-INF); 0 turns LL-HLS off.
	PartTarget time.Duration
	// Ended marks a finished event: HLS gets EXT-X-ENDLIST, DASH becomes static.
	Ended bool
	// PlaylistType is EXT-X-PLAYLIST-TYPE (RFC 8216 §4.3.3.5): "" for a sliding window,
	// PlaylistEvent for a window that only grows (a DVR of the whole event), which is
	// rendered as VOD once Ended; PlaylistVOD is only valid once Ended.
	PlaylistType string

	// HLS server control (rfc8216bis §4.4.3.8).
	CanBlockReload bool
	HoldBack       time.Duration // 0: the default of three target durations
	PartHoldBack   time.Duration // 0: three part targets
	CanSkipUntil   time.Duration // 0: no delta updates; else at least six target durations

	// DASH (ISO/IEC 23009-1 §5.3.1.2, DASH-IF IOP live).
	AvailabilityStart          time.Time     // wall-clock time of media time zero
	PublishTime                time.Time     // when this snapshot was made
	MinimumUpdatePeriod        time.Duration //
	TimeShiftBufferDepth       time.Duration // the DVR window players may seek back into
	SuggestedPresentationDelay time.Duration
	UTCTimingURL               string // an http-iso or http-xsdate endpoint served by the origin

	// Keys, when set, say that the channel is encrypted with key rotation (see LiveKeys); the
	// presentation's Protection is then unused.
	Keys *LiveKeys
}

// LiveKeys describes a live channel's Common Encryption (ISO/IEC 23001-7) under a key per key
// period: never a key, only its ID and where the period's init segment is. Key periods are runs
// of consecutive segment numbers; a segment belongs to the last period whose FirstNumber is at
// or below its Number.
//
// HLS: the first segment of each period (and the first listed one) is preceded by its EXT-X-KEY
// tags and an EXT-X-MAP naming the period's init segment; so is a preload hint whose part starts
// a new period. DASH: every key period is a Period of its own, with its own
// ContentProtection (cenc:default_KID) and init segment: key rotation by Period, which DASH-IF
// IOP allows and which lets a player learn each new KID from the MPD before it meets it in a
// segment (the alternative, pssh in moof and seig sample groups in one Period, needs players
// to discover new KIDs from the segments themselves).
type LiveKeys struct {
	Scheme string // "cenc" or "cbcs"
	// KeyURI, when set, is an EXT-X-KEY URI with KEYFORMAT="identity" ("{kid}" stands for the
	// period's KID in hex). The ClearKey EXT-X-KEY (KEYFORMAT="org.w3.clearkey", the KID in a
	// data: URI) is written either way.
	KeyURI string
	// Periods cover every listed segment and the one in progress, oldest first (none while
	// nothing is listed); the last one may be the coming period, announced before its first
	// segment.
	Periods []KeyPeriod
}

// KeyPeriod is one key period of a live channel.
type KeyPeriod struct {
	Index       uint64   // the period's number (init-<Index>.mp4)
	FirstNumber uint64   // the Number of its first segment
	KID         [16]byte // the key ID the tracks' tenc carries in this period (video's, see AudioKID)
	// AudioKID, when not zero, is the audio tracks' key ID (a CPIX document's usage rules may
	// protect audio under a key of its own); zero: audio is under KID too.
	AudioKID [16]byte
	// Systems and AudioSystems are the DRM systems that signal KID and AudioKID (from a CPIX
	// document); ClearKey is signalled either way.
	Systems, AudioSystems []DRMSystem
	InitURI               string // its init segment, relative to each track's folder
	// Start is the media time at which the period starts (its earliest first segment), in
	// StartTimescale units; DASH's Period@start. It must not move while the period is listed
	// (a player keeps its Periods by id); StartTimescale 0: the earliest listed segment.
	Start          uint64
	StartTimescale uint32
}

// KIDUUID is the key ID in the UUID form of DASH's cenc:default_KID.
func (k *KeyPeriod) KIDUUID() string {
	pr := Protection{KID: k.KID}
	return pr.KIDUUID()
}

// protection is what kp says of a track of kind kind: its KID and DRM systems under scheme.
func (kp *KeyPeriod) protection(scheme string, kind Kind) *Protection {
	if kind == Audio && kp.AudioKID != ([16]byte{}) {
		return &Protection{Scheme: scheme, KID: kp.AudioKID, Systems: kp.AudioSystems}
	}
	return &Protection{Scheme: scheme, KID: kp.KID, Systems: kp.Systems}
}

// period is the key period of segment number n, nil if none covers it.
func (k *LiveKeys) period(n uint64) *KeyPeriod {
	for i := len(k.Periods) - 1; i >= 0; i-- {
		if k.Periods[i].FirstNumber <= n {
			return &k.Periods[i]
		}
	}
	return nil
}

func (k *LiveKeys) validate() error {
	if k.Scheme != "cenc" && k.Scheme != "cbcs" {
		return fmt.Errorf("live encryption scheme %q is not cenc or cbcs", k.Scheme)
	}
	for i, kp := range k.Periods {
		if kp.InitURI == "" || strings.ContainsAny(kp.InitURI, "/\\\"\r\n") {
			return fmt.Errorf("key period %d: init URI %q is not a plain file name", kp.Index, kp.InitURI)
		}
		if i > 0 && (kp.FirstNumber <= k.Periods[i-1].FirstNumber || kp.Index <= k.Periods[i-1].Index) {
			return fmt.Errorf("key period %d does not follow period %d", kp.Index, k.Periods[i-1].Index)
		}
	}
	if strings.ContainsAny(k.KeyURI, "\"\r\n") {
		return errors.New("key URI holds a double quote or a line break")
	}
	return nil
}

// Live.PlaylistType values.
const (
	PlaylistEvent = "EVENT"
	PlaylistVOD   = "VOD"
)

// ErrNoSegmentYet is returned by DASH for a live presentation in which a track has no complete
// segment yet: a SegmentTimeline needs at least one S element (ISO/IEC 23009-1 §5.3.9.6), so
// there is no valid MPD to serve until then (the origin answers 503 or 404 with no-store).
var ErrNoSegmentYet = errors.New("live track has no complete segment yet")

// UTCTimingScheme is the DASH UTCTiming scheme written with Live.UTCTimingURL: the origin
// answers that URL with the current time as an ISO 8601 UTC date-time, such as
// "2026-11-21T23:18:34.123Z" (ISO/IEC 23009-1 §5.8.5.7, DASH-IF IOP §4.7).
const UTCTimingScheme = "urn:mpeg:dash:utc:http-iso:2014"

func (l *Live) validate(singleFile bool) error {
	switch {
	case singleFile:
		return fmt.Errorf("live presentation in single-file mode")
	case l.PlaylistType != "" && l.PlaylistType != PlaylistEvent && l.PlaylistType != PlaylistVOD:
		return fmt.Errorf("live playlist type %q is not %q, %q or empty", l.PlaylistType, PlaylistEvent, PlaylistVOD)
	case l.PlaylistType == PlaylistVOD && !l.Ended:
		return fmt.Errorf("live playlist type VOD before the event has ended")
	case l.TargetDuration < 0 || l.PartTarget < 0 || l.HoldBack < 0 || l.PartHoldBack < 0 || l.CanSkipUntil < 0:
		return fmt.Errorf("negative live duration setting")
	}
	if l.Keys != nil {
		return l.Keys.validate()
	}
	return nil
}

// validateTrack checks what the live writers add to the VOD invariants.
func (l *Live) validateTrack(t *Track) error {
	if l.Keys != nil && t.Kind != Text && (len(t.Segments) > 0 || len(t.LiveParts) > 0) {
		first := t.liveNext()
		if len(t.Segments) > 0 {
			first = t.Segments[0].Number
		}
		if l.Keys.period(first) == nil {
			return fmt.Errorf("segment %d is in no key period", first)
		}
	}
	if n := len(t.Segments); n > 0 && t.NextNumber != 0 && t.NextNumber != t.Segments[n-1].Number+1 {
		return fmt.Errorf("segment in progress is number %d, expected %d", t.NextNumber, t.Segments[n-1].Number+1)
	}
	for i, s := range t.Segments {
		if s.ProgramDateTime.IsZero() {
			return fmt.Errorf("segment %d has no program date-time", s.Number)
		}
		if s.URI == "" || !s.Range.IsWhole() {
			return fmt.Errorf("segment %d: a live segment is a whole file with a URI", s.Number)
		}
		if len(s.Parts) == 0 {
			continue
		}
		// rfc8216bis-16 §3.2: a Parent Segment and its Partial Segments hold the same samples.
		var sum uint64
		for _, part := range s.Parts {
			sum += part.Duration
		}
		if sum != s.Duration {
			return fmt.Errorf("segment %d: parts last %d, the segment %d", s.Number, sum, s.Duration)
		}
		if err := l.validateParts(s.Parts); err != nil {
			return fmt.Errorf("segment %d (index %d): %w", s.Number, i, err)
		}
	}
	if err := l.validateParts(t.LiveParts); err != nil {
		return fmt.Errorf("segment in progress: %w", err)
	}
	return nil
}

func (l *Live) validateParts(parts []Part) error {
	if len(parts) > 0 && l.PartTarget <= 0 {
		return fmt.Errorf("parts listed but Live.PartTarget is 0")
	}
	for i, part := range parts {
		if part.Duration == 0 || part.URI == "" {
			return fmt.Errorf("part %d has no duration or no URI", i)
		}
	}
	return nil
}

// LiveEdge returns what an EXT-X-RENDITION-REPORT says about t (rfc8216bis-16 §4.4.5.4): the
// Media Sequence Number of its last segment, or of its last part when it has parts, and that
// part's index (-1 without parts). ok is false for a track with nothing listed yet.
func (p *Presentation) LiveEdge(t *Track) (msn uint64, part int, ok bool) {
	parts := p.Live != nil && p.Live.PartTarget > 0
	if parts && len(t.LiveParts) > 0 && !p.Live.Ended {
		return t.liveNext(), len(t.LiveParts) - 1, true
	}
	n := len(t.Segments)
	if n == 0 {
		return 0, -1, false
	}
	last := t.Segments[n-1]
	if parts && len(last.Parts) > 0 {
		return last.Number, len(last.Parts) - 1, true
	}
	return last.Number, -1, true
}

// RenditionReports returns the EXT-X-RENDITION-REPORT entries for t's media playlist: one for
// every other track with something listed (rfc8216bis-16 Appendix B.1), with URIs relative to
// t's playlist ("../<id>/index.m3u8").
func (p *Presentation) RenditionReports(t *Track) []RenditionReport {
	var out []RenditionReport
	for _, o := range p.Tracks() {
		if o == t {
			continue
		}
		if msn, part, ok := p.LiveEdge(o); ok {
			out = append(out, RenditionReport{URI: "../" + o.ID + "/" + MediaPlaylist, LastMSN: msn, LastPart: part})
		}
	}
	return out
}

// Part is an LL-HLS partial segment (rfc8216bis §4.4.4.9): a CMAF chunk of its segment.
type Part struct {
	Duration    uint64 // in the track's timescale
	URI         string // relative to the track's folder, like Segment.URI
	Independent bool   // starts with a sync sample (EXT-X-PART INDEPENDENT=YES)
}

// RenditionReport is what a media playlist says about another rendition's live edge
// (EXT-X-RENDITION-REPORT, rfc8216bis §4.4.5.4), so players can switch without a reload.
type RenditionReport struct {
	URI      string // the other rendition's media playlist, relative to this one
	LastMSN  uint64 // its last media sequence number (the segment in progress when parts are on)
	LastPart int    // its last part index in LastMSN, -1 when parts are off
}

// LiveMediaOptions vary one rendering of a live media playlist.
type LiveMediaOptions struct {
	// Skip renders a delta update (_HLS_skip=YES): segments older than Live.CanSkipUntil from the
	// end of the playlist are replaced by EXT-X-SKIP (rfc8216bis §4.4.5.2).
	Skip bool
	// PreloadHint is the URI of the next part, announced with EXT-X-PRELOAD-HINT; "" for none.
	PreloadHint string
	// PreloadHintNumber is the Number of the segment the hinted part belongs to: with Live.Keys,
	// a hint that opens a new key period comes after that period's EXT-X-KEY and EXT-X-MAP.
	PreloadHintNumber uint64
	// Reports are the other renditions' live edges.
	Reports []RenditionReport
}
