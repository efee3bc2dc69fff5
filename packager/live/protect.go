package live

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"sort"

	"github.com/reelvideo/reel/manifest"
)

// trackKeys is one encrypted track's key state (guarded by Channel.mu).
type trackKeys struct {
	prot TrackProtector
	// inits are the protected init segments made in this run, by key period: the current
	// period's and the next one's, and a few before (older ones are served from disk).
	inits map[uint64][]byte
	// waiting is set while the track's fragments are withheld because the key of the period
	// they are in is not known: nothing of that period is published until it is.
	waiting bool
	// dropped says fragments were withheld: the track resumes with a discontinuity.
	dropped bool
}

// errWithheld is protect's answer for a fragment that is not published because its key is not
// known (or, once it is, because the fragment does not start a segment): Append drops it and
// tells the source nothing is wrong.
var errWithheld = errors.New("fragment withheld: its key period's key is not known")

// setupTrack prepares t's encryption, before resume checks what a previous run left. c.mu is
// not needed: t is not on the channel yet.
func (c *Channel) setupTrack(t *track, clearInit []byte) error {
	e := c.cfg.Encryption
	if e == nil || t.info.Kind == manifest.Text {
		return nil // text is never encrypted
	}
	prot, err := e.Protector.Track(t.info.ID, clearInit)
	if err != nil {
		return err
	}
	t.keys = &trackKeys{prot: prot, inits: map[uint64][]byte{}}
	return nil
}

// protect encrypts f's data for the segment it joins, making the init segments of that
// segment's key period and of the next one (when its key is known) first, so that both exist
// before any segment of theirs is listed. c.mu is held; on error nothing has changed, except
// that a fragment whose key is not known (errWithheld) completes the segment in progress (the
// last of its period) when it would have started the next one.
func (c *Channel) protect(t *track, f *Fragment) error {
	e := c.cfg.Encryption
	n, first := t.numberFor(*f)
	k := e.Keys.Period(n)
	key, err := e.Keys.Key(k, t.info.Kind)
	if errors.Is(err, ErrNoKey) {
		c.withhold(t, k, first)
		return errWithheld
	}
	if err != nil {
		return fmt.Errorf("track %s: key of period %d: %w", t.info.ID, k, err)
	}
	if t.keys.waiting {
		if !f.Independent {
			return errWithheld // a segment starts with a sync sample
		}
		c.resume(t, k)
	}
	if err := c.publishInit(t, k); err != nil {
		return err
	}
	if next, _, ok := nextPeriod(e.Keys, n); ok {
		// The next period's init is published as soon as its key is known; until then
		// the manifests do not announce it (announced).
		if err := c.publishInit(t, next); err != nil && !errors.Is(err, ErrNoKey) {
			return err
		}
	}
	data, err := t.keys.prot.Fragment(f.Data, n, first, key)
	if err != nil {
		return err
	}
	f.Data = data
	return nil
}

// withhold stops t publishing: a fragment of key period k, whose key is not known, arrived;
// first says it would start a segment, so the segment in progress (of the period before) is
// complete and is published. The channel's first stalled track logs it, once. c.mu is held.
func (c *Channel) withhold(t *track, k uint64, first bool) {
	if first && t.cur != nil {
		c.completed(t, []*segment{t.finish()})
		c.wake()
	}
	t.keys.dropped = true
	if t.keys.waiting {
		return
	}
	t.keys.waiting = true
	c.cfg.Metrics.keyMissing(c.cfg.Name, t.info.ID, true)
	if c.keyWaiting++; c.keyWaiting == 1 {
		c.cfg.Logger.Error("live: the key of the next key period is not known: publishing stalls until the key source has it",
			"channel", c.cfg.Name, "key_period", k)
	}
}

// resume ends t's wait for key period k's key: its next segment starts with this fragment,
// after a discontinuity (the withheld media is not published). c.mu is held.
func (c *Channel) resume(t *track, k uint64) {
	t.keys.waiting = false
	if t.keys.dropped && (t.cur != nil || len(t.segs) > 0) {
		t.discPending = true
		if t.cur != nil {
			t.cur.forceEnd = true
		}
	}
	t.keys.dropped = false
	c.cfg.Metrics.keyMissing(c.cfg.Name, t.info.ID, false)
	if c.keyWaiting--; c.keyWaiting == 0 {
		c.cfg.Logger.Info("live: key known: publishing resumes", "channel", c.cfg.Name, "key_period", k)
	}
}

// publishInit writes key period k's init segment of t (init-<k>.mp4) unless this run has.
// c.mu is held.
func (c *Channel) publishInit(t *track, k uint64) error {
	if _, ok := t.keys.inits[k]; ok {
		return nil
	}
	key, err := c.cfg.Encryption.Keys.Key(k, t.info.Kind)
	if err != nil {
		return fmt.Errorf("track %s: key of period %d: %w", t.info.ID, k, err)
	}
	init, err := t.keys.prot.Init(key)
	if err != nil {
		return err
	}
	if err := writeOnce(filepath.Join(t.dir, initName(k)), init); err != nil {
		return fmt.Errorf("track %s: %w", t.info.ID, err)
	}
	if len(t.keys.inits) >= 4 {
		for old := range t.keys.inits {
			if old+1 < k {
				delete(t.keys.inits, old)
			}
		}
	}
	t.keys.inits[k] = init
	return nil
}

// initBytes is key period k's init segment of t, from memory or disk; nil if the channel has
// not published it. c.mu is held.
func (t *track) initBytes(k uint64) []byte {
	if b, ok := t.keys.inits[k]; ok {
		return b
	}
	b, err := os.ReadFile(filepath.Join(t.dir, initName(k)))
	if err != nil {
		return nil
	}
	return b
}

// numberFor is the number of the segment f will join, and whether f starts it (what
// track.append will do with it).
func (t *track) numberFor(f Fragment) (n uint64, first bool) {
	if s := t.cur; s != nil {
		if f.Independent && (s.forceEnd || f.Decode+t.slack() >= s.gridEnd) {
			return s.number + 1, true
		}
		return s.number, false
	}
	return t.nextNumber(f.Decode), true
}

// nextPeriod is the key period after segment n's and the number of its first segment; ok is
// false when no later segment changes period (one key for the channel's life). KeySource
// periods never decrease, so the first segment is found by bisection.
func nextPeriod(ks KeySource, n uint64) (k, first uint64, ok bool) {
	cur := ks.Period(n)
	if n == math.MaxUint64 || ks.Period(math.MaxUint64) == cur {
		return 0, 0, false
	}
	lo, hi := n, uint64(math.MaxUint64) // Period(lo) == cur < Period(hi)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if ks.Period(mid) == cur {
			lo = mid
		} else {
			hi = mid
		}
	}
	return ks.Period(hi), hi, true
}

// firstOfPeriod is the number of the first segment of segment n's key period.
func firstOfPeriod(ks KeySource, n uint64) uint64 {
	k := ks.Period(n)
	lo, hi := uint64(0), n // the answer is in [lo, hi]
	if ks.Period(0) == k {
		return 0
	}
	for hi-lo > 1 { // Period(lo) < k == Period(hi)
		mid := lo + (hi-lo)/2
		if ks.Period(mid) == k {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// liveKeys says what the manifests of snapshot p need of the channel's keys: every key period
// of a listed segment or of a segment in progress, and the next period once its init segment is
// published. c.mu is held.
func (c *Channel) liveKeys(p *manifest.Presentation) (*manifest.LiveKeys, error) {
	e := c.cfg.Encryption
	lk := &manifest.LiveKeys{Scheme: e.Scheme, KeyURI: e.KeyURI}
	periods := map[uint64]uint64{} // period → a segment number in it
	note := func(n uint64) { periods[e.Keys.Period(n)] = n }
	var last uint64
	have := false
	for _, mt := range p.Tracks() {
		for _, s := range mt.Segments {
			note(s.Number)
		}
		n := mt.NextNumber
		if len(mt.Segments) > 0 {
			n = mt.Segments[len(mt.Segments)-1].Number + 1
		}
		if t := c.byID[mt.ID]; t != nil && (t.cur != nil || len(t.segs) > 0) {
			note(n) // the segment in progress, or the next (a preload hint names it)
			if !have || n > last {
				last, have = n, true
			}
		}
	}
	if have {
		if k, first, ok := nextPeriod(e.Keys, last); ok && c.announced(k) {
			periods[k] = first
		}
	}
	ks := make([]uint64, 0, len(periods))
	for k := range periods {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	for _, k := range ks {
		kp, err := e.keyPeriod(k, firstOfPeriod(e.Keys, periods[k]))
		if errors.Is(err, ErrNoKey) {
			continue // only the next segment's period, whose key is awaited: nothing of it is out
		}
		if err != nil {
			return nil, fmt.Errorf("key of period %d: %w", k, err)
		}
		kp.Start, kp.StartTimescale = c.periodStart(kp.FirstNumber, periods[k])
		lk.Periods = append(lk.Periods, kp)
	}
	return lk, nil
}

// announced reports whether every track has published key period k's init segment. c.mu is
// held.
func (c *Channel) announced(k uint64) bool {
	n := 0
	for _, t := range c.tracks {
		if t.keys == nil {
			continue // text: clear, no key periods
		}
		if _, ok := t.keys.inits[k]; !ok {
			return false
		}
		n++
	}
	return n > 0
}

// periodStart is the media time of the earliest first segment of the key period whose
// segments are numbered from first (within is one of them), in that track's timescale: the
// period's start on every track, which stays put as segments leave the window (it moves only
// if the period's first segments leave the DVR window too). Timescale 0 when no track has a
// segment there yet. c.mu is held.
func (c *Channel) periodStart(first, within uint64) (uint64, uint32) {
	var best *big.Rat
	var start uint64
	var ts uint32
	k := c.cfg.Encryption.Keys.Period(within)
	for _, t := range c.tracks {
		if t.keys == nil {
			continue // text does not start key periods
		}
		s := t.firstAtOrAfter(first)
		if s == nil || c.cfg.Encryption.Keys.Period(s.number) != k {
			continue
		}
		if s.start > math.MaxInt64 {
			continue
		}
		r := big.NewRat(int64(s.start), int64(t.info.Timescale))
		if best == nil || r.Cmp(best) < 0 {
			best, start, ts = r, s.start, t.info.Timescale
		}
	}
	return start, ts
}

// firstAtOrAfter is t's first segment (complete or in progress) numbered n or later.
func (t *track) firstAtOrAfter(n uint64) *segment {
	i := sort.Search(len(t.segs), func(i int) bool { return t.segs[i].number >= n })
	if i < len(t.segs) {
		return t.segs[i]
	}
	if t.cur != nil && t.cur.number >= n {
		return t.cur
	}
	return nil
}

// checkResumedKeys keeps what a previous run left for an encrypted track only if it was
// encrypted the same way: the init segment of its last segment's key period must be the one
// this run makes (same scheme, KID and constant IV). A clear track drops segments an encrypted
// run left. Run by AddTrack after resume, before the track is on the channel.
func (c *Channel) checkResumedKeys(t *track) error {
	if len(t.segs) == 0 {
		return nil
	}
	e := c.cfg.Encryption
	if e == nil || t.keys == nil {
		if inits, _ := filepath.Glob(filepath.Join(t.dir, "init-*.mp4")); len(inits) > 0 {
			t.reset()
		}
		return nil
	}
	k := e.Keys.Period(t.segs[len(t.segs)-1].number)
	key, err := e.Keys.Key(k, t.info.Kind)
	if errors.Is(err, ErrNoKey) {
		t.reset() // its key is gone from the source: what it encrypted cannot be checked
		return nil
	}
	if err != nil {
		return err
	}
	want, err := t.keys.prot.Init(key)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(filepath.Join(t.dir, initName(k)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !bytes.Equal(old, want) {
		t.reset()
	}
	return nil
}

// keyAwaited reports whether segment n of t is in a key period whose key is not known: no
// preload hint names it (a player would load it under the KEY tag in force). c.mu is held.
func (c *Channel) keyAwaited(t *track, n uint64) bool {
	e := c.cfg.Encryption
	if e == nil {
		return false
	}
	_, err := e.Keys.Key(e.Keys.Period(n), t.info.Kind)
	return err != nil
}
