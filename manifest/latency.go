package manifest

import (
	"time"
)

// LatencyTargets are the live latencies a dynamic MPD advises: suggestedPresentationDelay for
// every client, and for low-latency DASH the ServiceDescription's Latency and PlaybackRate
// (ISO/IEC 23009-1 Annex K; DASH-IF "Low-latency Modes for DASH").
type LatencyTargets struct {
	SuggestedPresentationDelay time.Duration
	// Low-latency DASH only (zero without parts).
	Min, Target, Max time.Duration
	// PlaybackRateMin and PlaybackRateMax bound the speed a client may use to steer towards
	// Target (1 is real time).
	PlaybackRateMin, PlaybackRateMax float64
}

// Catch-up speeds: ±4% is not heard as a pitch change and gains a second in 25 s.
const (
	catchUpRateMin = 0.96
	catchUpRateMax = 1.04
)

// latencyTargets derives the targets from the segment duration and the part (chunk) duration
// (0: no low latency). The rule the numbers follow: a client can only ask for segments the
// SegmentTimeline lists, and Reel's timeline lists complete segments only (the one being
// produced is fetched early through availabilityTimeOffset once the MPD names it).
//
//   - Without parts: three segments (DASH-IF IOP §4.3.3.2.2), room for one segment being
//     produced, one in flight and one buffered.
//   - With parts: Min = segment + part, below which the segment under the playhead is not
//     listed yet even in a fresh MPD; Target = segment + 3 parts, the margin LL-HLS gives with
//     PART-HOLD-BACK (three part targets) on top of the one-segment floor; Max = Target + 2
//     segments, beyond which a client should jump back rather than speed up.
//     suggestedPresentationDelay equals Target for clients that ignore the ServiceDescription.
//
// With 2 s segments and 0.5 s parts: Min 2.5 s, Target 3.5 s, Max 7.5 s (was 1.5 s, under a
// segment, and clients stalled at every segment boundary).
func latencyTargets(segment, part time.Duration) LatencyTargets {
	if part <= 0 || segment <= 0 {
		return LatencyTargets{SuggestedPresentationDelay: 3 * segment}
	}
	part = min(part, segment)
	target := segment + 3*part
	return LatencyTargets{
		SuggestedPresentationDelay: target,
		Min:                        segment + part,
		Target:                     target,
		Max:                        target + 2*segment,
		PlaybackRateMin:            catchUpRateMin,
		PlaybackRateMax:            catchUpRateMax,
	}
}
