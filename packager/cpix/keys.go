package cpix

import (
	"errors"
	"fmt"
	"strings"

	"github.com/reelvideo/reel/manifest"
)

// Track describes a track to find its key: its type, what filters look at, and the key period
// it is in (a Period's ID; "" when the document has no periods, as for VOD).
type Track struct {
	Type     manifest.Kind
	Pixels   uint64 // width × height (video)
	Channels uint64 // audio
	Period   string
}

func (t Track) String() string {
	s := t.Type.String() + " track"
	if t.Period != "" {
		s += " in period " + t.Period
	}
	return s
}

// Key returns the key for a track of type typ in period (see KeyFor), for callers that know
// no more of the track than that, such as live key rotation.
func (d *Document) Key(typ manifest.Kind, period string) (*ContentKey, error) {
	return d.KeyFor(Track{Type: typ, Period: period})
}

// KeyFor returns the content key that protects t. With no usage rules a document must hold
// exactly one key, which then protects every track. Otherwise the rules that match t must all
// name one key: none, or two different ones, is an error (the document does not say which key
// to use). A rule matches when t is in one of its KeyPeriodFilters' periods (if it has any),
// and passes one of its VideoFilters or AudioFilters (if it has any). A rule without either
// kind of filter whose intendedTrackType is VIDEO or AUDIO (any case) is read as an empty
// filter of that kind, as hand-written documents often mean.
func (d *Document) KeyFor(t Track) (*ContentKey, error) {
	if len(d.Rules) == 0 {
		if len(d.Keys) != 1 {
			return nil, fmt.Errorf("%d content keys and no ContentKeyUsageRule: which key protects which track is not said", len(d.Keys))
		}
		return &d.Keys[0], nil
	}
	var kid *KID
	for i := range d.Rules {
		r := &d.Rules[i]
		if !r.matches(t) {
			continue
		}
		if kid != nil && *kid != r.KID {
			return nil, fmt.Errorf("usage rules give two keys for a %s: %s and %s", t, *kid, r.KID)
		}
		kid = &r.KID
	}
	if kid == nil {
		return nil, fmt.Errorf("no ContentKeyUsageRule gives a key for a %s", t)
	}
	for i := range d.Keys {
		if d.Keys[i].KID == *kid {
			return &d.Keys[i], nil
		}
	}
	return nil, fmt.Errorf("no ContentKey %s", *kid) // Parse prevents this
}

func (r *UsageRule) matches(t Track) bool {
	if len(r.PeriodIDs) > 0 {
		in := false
		for _, id := range r.PeriodIDs {
			in = in || id == t.Period
		}
		if !in {
			return false
		}
	}
	video, audio := r.Video, r.Audio
	if len(video) == 0 && len(audio) == 0 {
		switch strings.ToUpper(r.IntendedTrackType) {
		case "VIDEO":
			video = []VideoFilter{{}}
		case "AUDIO":
			audio = []AudioFilter{{}}
		default:
			return true
		}
	}
	if t.Type == manifest.Video {
		for _, f := range video {
			if (f.MinPixels == 0 || t.Pixels >= f.MinPixels) && (f.MaxPixels == 0 || t.Pixels <= f.MaxPixels) {
				return true
			}
		}
		return false
	}
	for _, f := range audio {
		if (f.MinChannels == 0 || t.Channels >= f.MinChannels) && (f.MaxChannels == 0 || t.Channels <= f.MaxChannels) {
			return true
		}
	}
	return false
}

// SystemsFor returns the DRM systems' signalling for kid, in document order.
func (d *Document) SystemsFor(kid KID) []DRMSystem {
	var out []DRMSystem
	for _, s := range d.Systems {
		if s.KID == kid {
			out = append(out, s)
		}
	}
	return out
}

// Scheme returns the commonEncryptionScheme the document's keys agree on, "" when none sets
// one. Keys with different schemes are an error: one presentation uses one scheme.
func (d *Document) Scheme() (string, error) {
	scheme := ""
	for _, k := range d.Keys {
		if k.Scheme == "" {
			continue
		}
		if scheme != "" && k.Scheme != scheme {
			return "", fmt.Errorf("keys ask for different schemes (%s and %s); one presentation uses one", scheme, k.Scheme)
		}
		scheme = k.Scheme
	}
	return scheme, nil
}

// ErrPeriods is returned by VODPeriod for a document with several key periods.
var ErrPeriods = errors.New("several ContentKeyPeriods: key periods (rotation) are for live; reel package takes one key per track")

// VODPeriod returns the period a VOD presentation is in: "" without periods, the one period's
// ID with one, ErrPeriods with more.
func (d *Document) VODPeriod() (string, error) {
	switch len(d.Periods) {
	case 0:
		return "", nil
	case 1:
		return d.Periods[0].ID, nil
	}
	return "", ErrPeriods
}
