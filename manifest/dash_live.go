package manifest

import (
	"fmt"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// dynamic reports whether the presentation renders as a dynamic MPD: a live window that has not
// ended. An ended event is a static MPD of what remains, like a VOD title.
func (p *Presentation) dynamic() bool {
	return p.Live != nil && !p.Live.Ended
}

// dynamicMPD sets the MPD-level attributes of a live window (ISO/IEC 23009-1 §5.3.1.2 table 3,
// §5.4 MPD updates; DASH-IF IOP §4.3 "simple live" with SegmentTimeline, §4.7 timing).
//
// Timing model: one Period starting at PT0S, no presentationTimeOffset, so media time t of any
// track is wall-clock AvailabilityStart + t/timescale, and a segment is available once it has
// ended on that clock. A discontinuity (encoder restart or reconnect) does not start a new
// Period: the packager keeps each track's media timeline continuous across it (Validate checks
// that the listed segments are contiguous), which is all a DASH client needs; the HLS rendering
// marks it with EXT-X-DISCONTINUITY for the decoder reset.
func (p *Presentation) dynamicMPD(maxSeg float64) (*mpd.MPD, error) {
	l := p.Live
	if l.AvailabilityStart.IsZero() || l.PublishTime.IsZero() {
		return nil, fmt.Errorf("live presentation without AvailabilityStart or PublishTime")
	}
	m := mpd.NewMPD(mpd.DYNAMIC_TYPE)
	m.AvailabilityStartTime = dateTime(l.AvailabilityStart)
	m.PublishTime = dateTime(l.PublishTime)

	// A dynamic MPD without minimumUpdatePeriod promises never to change (§5.4), so default to
	// one segment: the MPD changes with every new segment.
	update := l.MinimumUpdatePeriod
	if update <= 0 {
		update = l.TargetDuration
	}
	if update <= 0 {
		update = time.Duration(maxSeg * float64(time.Second))
	}
	m.MinimumUpdatePeriod = durPtr(update)

	// Without a configured DVR depth, the listed window is what clients can seek back into.
	depth := l.TimeShiftBufferDepth
	if depth <= 0 {
		for _, t := range p.Tracks() {
			depth = max(depth, time.Duration(t.DurationSeconds()*float64(time.Second)))
		}
	}
	m.TimeShiftBufferDepth = durPtr(depth)
	// Latency targets follow the segment and part durations; a configured delay only raises
	// them (see latencyTargets).
	// The segment duration is the configured one or the longest listed, whichever is longer.
	segment := max(l.TargetDuration, time.Duration(maxSeg*float64(time.Second)))
	lt := latencyTargets(segment, l.PartTarget)
	m.SuggestedPresentationDelay = durPtr(max(lt.SuggestedPresentationDelay, l.SuggestedPresentationDelay))

	// DASH-IF IOP §4.7.2: a dynamic MPD carries at least one UTCTiming so that clients can
	// compute availability with the server's clock. Without an endpoint, the direct scheme
	// carries the time of this snapshot (as accurate as the MPD is fresh).
	if l.UTCTimingURL != "" {
		m.UTCTimings = []*mpd.DescriptorType{{SchemeIdUri: UTCTimingScheme, Value: l.UTCTimingURL}}
	} else {
		m.UTCTimings = []*mpd.DescriptorType{{SchemeIdUri: "urn:mpeg:dash:utc:direct:2014", Value: string(m.PublishTime)}}
	}

	// Low-latency DASH (DASH-IF "Low-latency Modes for DASH", CR-Low-Latency-Live r8; ISO/IEC
	// 23009-1 Annex K service description): the latency players steer towards, in ms, and how
	// fast they may play to get there.
	if lt.Target > 0 {
		target := max(lt.Target, l.SuggestedPresentationDelay)
		m.ServiceDescription = []*mpd.ServiceDescriptionType{{
			Id: 0,
			Latencies: []*mpd.LatencyType{{ReferenceId: 0,
				Min: millis(lt.Min), Target: millis(target), Max: millis(max(lt.Max, target))}},
			PlaybackRates: []*mpd.PlaybackRateType{{Min: lt.PlaybackRateMin, Max: lt.PlaybackRateMax}},
		}}
	}
	return m, nil
}

// lowLatency marks a live track's segments as chunked (ISO/IEC 23009-1 §5.3.9.5.3 segment
// availability, DASH-IF "Low-latency Modes for DASH"): with Live.PartTarget set, every segment is sent as CMAF
// chunks while it is produced, so it can be requested once its first part exists, that is
// segment duration − part duration before it is complete (availabilityTimeOffset), and it is not
// complete at that time (availabilityTimeComplete=false).
func (p *Presentation) lowLatency(st *mpd.SegmentTemplateType, t *Track) {
	l := p.Live
	if l.PartTarget <= 0 {
		return
	}
	seg := l.TargetDuration
	if seg <= 0 {
		seg = time.Duration(t.MaxSegmentSeconds() * float64(time.Second))
	}
	if offset := seg - l.PartTarget; offset > 0 {
		st.AvailabilityTimeOffset = mpd.FloatInf64(offset.Seconds())
		st.AvailabilityTimeComplete = mpd.Ptr(false)
	}
}

// dateTime writes an xs:dateTime in UTC with milliseconds.
func dateTime(t time.Time) mpd.DateTime {
	return mpd.DateTime(t.UTC().Round(time.Millisecond).Format(pdtLayout))
}

// millis is d in whole milliseconds, rounded up so a target never falls below its rule.
func millis(d time.Duration) *uint32 {
	return mpd.Ptr(uint32((d + time.Millisecond - 1) / time.Millisecond))
}

func durPtr(d time.Duration) *mpd.Duration {
	return mpd.Ptr(mpd.Duration(d))
}
