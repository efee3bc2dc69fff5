package manifest

import (
	"math/big"
	"strconv"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
)

// keyedMPD renders a live presentation with key rotation (Live.Keys): one Period per key
// period, each with the mp4protection and ClearKey ContentProtection of its KID and its own init
// segment, so a player creates the key session of a new KID from the MPD, before the Period's
// first segment (DASH-IF IOP, key rotation by Period). The MPD-level attributes are those of
// the whole window.
//
// Period@id is "key-<index>", stable across updates; Period@start is the period's start
// (KeyPeriod.Start; in a static MPD, its first listed segment), and each SegmentTemplate's presentationTimeOffset is that start in its
// track's timescale, so segment times stay media times, as in a single-Period MPD. A key
// period is listed only once every track has a segment in it: a Period whose audio appeared
// an update later would not be played with audio.
func (p *Presentation) keyedMPD(cpData *[]string) (*mpd.MPD, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	keys := p.Live.Keys
	whole := p.withLive(func(l *Live) { l.Keys = nil })
	m, err := whole.dashMPD(cpData)
	if err != nil {
		return nil, err
	}
	var origin *big.Rat // a static MPD (an ended event) starts at the earliest media time
	if !p.dynamic() {
		origin = p.earliestStart()
	}
	m.Periods = nil
	for i := range keys.Periods {
		kp := &keys.Periods[i]
		end := uint64(1<<64 - 1)
		if i+1 < len(keys.Periods) {
			end = keys.Periods[i+1].FirstNumber
		}
		sub := p.keyPeriodView(kp, end)
		if sub == nil {
			continue
		}
		sm, err := sub.dashMPD(cpData)
		if err != nil {
			return nil, err
		}
		start := sub.earliestStart()
		// A static MPD (an ended event) is not updated: its Periods start where their
		// listed segments do, the first at zero.
		if kp.StartTimescale > 0 && p.dynamic() {
			start = new(big.Rat).SetFrac(new(big.Int).SetUint64(kp.Start), big.NewInt(int64(kp.StartTimescale)))
		}
		period := sm.Periods[0]
		period.Id = "key-" + strconv.FormatUint(kp.Index, 10)
		at := new(big.Rat).Set(start)
		if origin != nil {
			at.Sub(at, origin)
		}
		period.Start = durPtr(ratDuration(at))
		for _, as := range period.AdaptationSets {
			for _, r := range as.Representations {
				if st := r.SegmentTemplate; st != nil && st.Timescale != nil {
					st.PresentationTimeOffset = nil
					if o := presentationTimeOffset(start, *st.Timescale); o > 0 {
						st.PresentationTimeOffset = &o
					}
				}
			}
		}
		m.Periods = append(m.Periods, period)
	}
	if len(m.Periods) == 0 {
		return nil, ErrNoSegmentYet
	}
	return m, nil
}

// keyPeriodView is p reduced to the segments numbered from kp.FirstNumber to end−1, with kp's
// init segment and KID, and no key rotation: what one Period of the keyed MPD renders. Nil if a
// track has no segment there.
func (p *Presentation) keyPeriodView(kp *KeyPeriod, end uint64) *Presentation {
	q := p.withLive(func(l *Live) { l.Keys = nil })
	q.Protection = kp.protection(p.Live.Keys.Scheme, Video)
	// Text is clear: it keeps its own init segment in every period.
	view := func(tracks []*Track) ([]*Track, bool) {
		out := make([]*Track, 0, len(tracks))
		for _, t := range tracks {
			c := *t
			c.Segments = nil
			for _, s := range t.Segments {
				if s.Number >= kp.FirstNumber && s.Number < end {
					c.Segments = append(c.Segments, s)
				}
			}
			if len(c.Segments) == 0 {
				return nil, false
			}
			if c.Kind != Text {
				c.InitURI = kp.InitURI
			}
			if c.Kind == Audio && kp.AudioKID != ([16]byte{}) {
				c.Protection = kp.protection(p.Live.Keys.Scheme, Audio)
			}
			c.LiveParts, c.NextNumber = nil, 0
			out = append(out, &c)
		}
		return out, true
	}
	var ok bool
	if q.Video, ok = view(p.Video); !ok {
		return nil
	}
	if q.Audio, ok = view(p.Audio); !ok {
		return nil
	}
	if q.Text, ok = view(p.dashText()); !ok {
		return nil
	}
	return q
}

// withLive is a shallow copy of p whose Live is a copy changed by edit.
func (p *Presentation) withLive(edit func(*Live)) *Presentation {
	q := *p
	l := *p.Live
	edit(&l)
	q.Live = &l
	return &q
}

// ratDuration is seconds as a time.Duration, rounded down to the nanosecond.
func ratDuration(secs *big.Rat) time.Duration {
	ns := new(big.Rat).Mul(secs, big.NewRat(int64(time.Second), 1))
	return time.Duration(new(big.Int).Quo(ns.Num(), ns.Denom()).Int64())
}
