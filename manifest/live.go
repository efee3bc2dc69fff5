package manifest

import "time"

// Live describes a presentation that is still growing: a live channel's current window. The
// live packager builds a Presentation with Live set for every manifest request (manifests are
// rendered on request), so blocking reloads and delta updates are renderings of one snapshot.
//
// In a live presentation every Track.Segments entry is a complete segment, oldest first, with
// Number, ProgramDateTime and, for recent segments when LL-HLS is on, Parts; Track.LiveParts
// holds the parts of the segment being produced (number = last complete + 1).
type Live struct {
	// TargetDuration is the configured segment duration; EXT-X-TARGETDURATION is the longest
	// listed segment rounded to the nearest second (RFC 8216 §4.3.3.1), never below it.
	TargetDuration time.Duration
	// PartTarget is the LL-HLS part target duration (EXT-X-PART-INF); 0 turns LL-HLS off.
	PartTarget time.Duration
	// Ended marks a finished event: HLS gets EXT-X-ENDLIST, DASH becomes static.
	Ended bool

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
	// Reports are the other renditions' live edges.
	Reports []RenditionReport
}
