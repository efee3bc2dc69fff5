package live

import (
	"time"

	"github.com/reelvideo/reel/manifest"
)

// snapshot is the channel's presentation at one instant: what every manifest of one request
// renders. c.mu is held.
// A dvr view lists the whole DVR window instead of the live window, for players that seek back.
func (c *Channel) snapshot(now time.Time, timeURL string, dvr bool) *manifest.Presentation {
	window := c.cfg.Window
	if dvr {
		window = c.cfg.DVR
	}
	p := &manifest.Presentation{Live: &manifest.Live{
		TargetDuration:       c.cfg.SegmentDuration,
		PartTarget:           c.cfg.PartDuration,
		Ended:                c.ended,
		CanBlockReload:       true,
		CanSkipUntil:         max(6*c.cfg.SegmentDuration, c.cfg.Window/2),
		AvailabilityStart:    c.start,
		PublishTime:          now,
		MinimumUpdatePeriod:  c.cfg.SegmentDuration,
		TimeShiftBufferDepth: window,
		// No SuggestedPresentationDelay: the MPD writer derives it, and the low-latency
		// targets, from the segment and part durations (manifest/latency.go); a delay set here
		// would only raise them (three segments raised LL-DASH's 3.5 s target to 6 s).
		UTCTimingURL: timeURL,
	}, CaptionsChecked: c.captionsChecked}
	if c.cfg.PartDuration > 0 {
		p.Live.HoldBack = 3 * c.cfg.SegmentDuration
		p.Live.PartHoldBack = 3 * c.cfg.PartDuration
	}
	if dvr {
		// The DVR view of an event none of whose segments has expired is the whole event: an
		// EVENT playlist (segments only added), which becomes VOD when the event ends.
		whole := true
		for _, t := range c.tracks {
			whole = whole && !t.expired
		}
		if whole {
			p.Live.PlaylistType = manifest.PlaylistEvent
		}
	}
	if p.Live.CanSkipUntil >= window {
		p.Live.CanSkipUntil = 0 // a window too short for delta updates to save anything
	}
	for _, t := range c.tracks {
		mt := t.info // a copy: the snapshot is rendered without the lock
		if mt.PeakBandwidth == 0 {
			mt.PeakBandwidth = t.peakBits
			mt.AverageBandwidth = t.peakBits
		}
		var partReach uint64
		if c.cfg.PartDuration > 0 && t.text == nil { // text has no parts
			partReach = c.partReach(t)
		}
		mt.Segments, mt.DiscontinuitySequence = t.window(window, partReach)
		if t.cur != nil {
			mt.NextNumber, mt.NextProgramDateTime, mt.NextDiscontinuity = t.cur.number, t.cur.pdt, t.cur.disc
			if c.cfg.PartDuration > 0 && t.text == nil {
				for i, pt := range t.cur.parts {
					mt.LiveParts = append(mt.LiveParts, manifest.Part{Duration: pt.duration, URI: partName(t.cur.number, i), Independent: pt.independent})
				}
			}
		} else if last := t.lastNumber(); last != nil {
			mt.NextNumber = *last + 1
		}
		switch mt.Kind {
		case manifest.Video:
			p.Video = append(p.Video, &mt)
		case manifest.Text:
			vtt, wvtt := textViews(mt)
			p.Text = append(p.Text, vtt, wvtt)
		default:
			mt.Default = len(p.Audio) == 0 // the first audio rendition added
			p.Audio = append(p.Audio, &mt)
		}
	}
	if c.cfg.Encryption != nil {
		keys, err := c.liveKeys(p)
		if err != nil {
			// Never signalled as clear: without periods the manifests fail to validate.
			c.cfg.Logger.Error("live: key periods", "channel", c.cfg.Name, "err", err)
			keys = &manifest.LiveKeys{Scheme: c.cfg.Encryption.Scheme}
		}
		p.Live.Keys = keys
	}
	return p
}

// window returns the complete segments within the live window (ending no more than w before
// the live edge), with their parts for those ending less than partReach before it, and the
// discontinuity sequence number of the first one.
func (t *track) window(w time.Duration, partReach uint64) ([]manifest.Segment, uint64) {
	reach := uint64(w.Seconds() * float64(t.info.Timescale))
	first := len(t.segs)
	for first > 0 && t.pos-t.segs[first-1].endPos < reach {
		first--
	}
	disc := t.discDropped
	for _, s := range t.segs[:first] {
		if s.disc {
			disc++
		}
	}
	out := make([]manifest.Segment, 0, len(t.segs)-first)
	for _, s := range t.segs[first:] {
		ms := manifest.Segment{
			Start: s.start, Duration: s.duration, URI: segmentName(s.number), Size: s.size,
			Number: s.number, ProgramDateTime: s.pdt, Discontinuity: s.disc,
		}
		if partReach > 0 && t.pos-s.endPos <= partReach {
			for i, pt := range s.parts {
				ms.Parts = append(ms.Parts, manifest.Part{Duration: pt.duration, URI: partName(s.number, i), Independent: pt.independent})
			}
		}
		out = append(out, ms)
	}
	return out, disc
}
