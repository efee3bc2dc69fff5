package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/cpix"
)

// CPIXKeys are a channel's keys from a DASH-IF CPIX document (a file, or a key server's URL).
//
// Key periods: the document's ContentKeyPeriod with @index k is key period k, which covers the
// segments numbered k·Rotation to (k+1)·Rotation−1 (DASH-IF CPIX's live use: periods counted,
// not timed). Periods given by @start/@end (wall-clock times) are refused: segment numbers, not
// the clock, decide a segment's key, so that every instance and a restarted one agree. The
// indexes must be contiguous. A document with no periods has one key per track type for the
// channel's life: no rotation.
//
// Keys per track type: the usage rules give video and audio their keys (a document without
// rules holds one key, for both). The DRM systems of each key are signalled with it.
//
// A document covers finitely many periods. When the channel reaches a period it has no key for,
// Key answers ErrNoKey and the channel publishes nothing of that period; from the moment the
// period before it is in use (Key is asked for the next period then), the document is read
// again — the file re-read, the URL re-fetched — with backoff, until it has the period: an
// operator or a key server that adds periods keeps the channel going. A key once known never
// changes: a new document that gives another key for a known period is ignored, and logged.
type CPIXKeys struct {
	src, token string
	rotation   uint64 // 0: no periods, one key for the channel's life
	log        *slog.Logger
	// Scheme is the commonEncryptionScheme the document's keys ask for ("" if none does).
	Scheme string
	// MinBackoff and MaxBackoff bound the wait between two reads of a document that lacks the
	// awaited period (defaults 1 s and 30 s).
	MinBackoff, MaxBackoff time.Duration

	mu      sync.Mutex
	periods map[uint64]cpixPeriod
	want    uint64        // the highest period asked for that the document lacked
	wake    chan struct{} // signals the refresher that want grew (buffered, 1)
}

// cpixPeriod is one key period's keys.
type cpixPeriod struct{ video, audio Key }

// LoadCPIXKeys reads the document at src (cpix.Load: a file, or a URL fetched with token)
// and checks it for a live channel whose key periods are rotation segments long. Its errors
// say what is wrong with the document, never a key.
func LoadCPIXKeys(ctx context.Context, src, token string, rotation uint64, logger *slog.Logger) (*CPIXKeys, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &CPIXKeys{src: src, token: token, rotation: rotation, log: logger,
		MinBackoff: time.Second, MaxBackoff: 30 * time.Second, wake: make(chan struct{}, 1)}
	d, err := cpix.Load(ctx, src, token, nil)
	if err != nil {
		return nil, err
	}
	if c.Scheme, err = d.Scheme(); err != nil {
		return nil, err
	}
	periods, err := livePeriods(d, rotation)
	if err != nil {
		return nil, err
	}
	c.periods = periods
	return c, nil
}

// livePeriods checks d for live use and returns its keys by key period.
func livePeriods(d *cpix.Document, rotation uint64) (map[uint64]cpixPeriod, error) {
	keyOf := func(typ manifest.Kind, period string) (Key, error) {
		ck, err := d.Key(typ, period)
		if err != nil {
			return Key{}, err
		}
		k := Key{ID: ck.KID}
		copy(k.Value[:], ck.Key) // Parse checked it is 16 bytes
		for _, s := range d.SystemsFor(ck.KID) {
			k.Systems = append(k.Systems, manifest.DRMSystem{
				ID: s.SystemID, PSSH: s.PSSH, ContentProtectionData: s.ContentProtectionData,
				KeyURI: s.URIExtXKey, HLSMaster: s.HLSMaster, HLSMedia: s.HLSMedia,
			})
		}
		return k, nil
	}
	both := func(period string) (cpixPeriod, error) {
		v, err := keyOf(manifest.Video, period)
		if err != nil {
			return cpixPeriod{}, err
		}
		a, err := keyOf(manifest.Audio, period)
		return cpixPeriod{v, a}, err
	}
	if len(d.Periods) == 0 {
		if rotation != 0 {
			return nil, errors.New("key rotation asked for, but the document has no ContentKeyPeriodList: its keys hold for the channel's life")
		}
		p, err := both("")
		if err != nil {
			return nil, err
		}
		return map[uint64]cpixPeriod{0: p}, nil
	}
	if rotation == 0 {
		return nil, errors.New("ContentKeyPeriods need the number of segments per key period (--key-rotation N)")
	}
	ps := append([]cpix.Period(nil), d.Periods...)
	for _, p := range ps {
		if p.Index == nil {
			return nil, fmt.Errorf("ContentKeyPeriod %q has @start/@end: reel live takes key periods by @index (period k covers segments k·N to (k+1)·N−1), not by the clock", p.ID)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return *ps[i].Index < *ps[j].Index })
	out := map[uint64]cpixPeriod{}
	for i, p := range ps {
		if i > 0 && *p.Index != *ps[i-1].Index+1 {
			return nil, fmt.Errorf("ContentKeyPeriods are not contiguous: index %d (%q) follows %d (%q)", *p.Index, p.ID, *ps[i-1].Index, ps[i-1].ID)
		}
		kp, err := both(p.ID)
		if err != nil {
			return nil, err
		}
		out[*p.Index] = kp
	}
	return out, nil
}

// Period is n's key period: n / Rotation (0 for a document without periods).
func (c *CPIXKeys) Period(n uint64) uint64 {
	if c.rotation == 0 {
		return 0
	}
	return n / c.rotation
}

// Key is period k's key for kind's tracks; ErrNoKey if the document (as last read) lacks k,
// which has it read again (Run) if k is past what it covers.
func (c *CPIXKeys) Key(k uint64, kind manifest.Kind) (Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.periods[k]
	if !ok {
		if c.rotation != 0 && k > c.want && k > c.lastLocked() {
			c.want = k
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
		return Key{}, fmt.Errorf("key period %d: %w (%s does not cover it)", k, ErrNoKey, c.src)
	}
	if kind == manifest.Audio {
		return p.audio, nil
	}
	return p.video, nil
}

func (c *CPIXKeys) lastLocked() uint64 {
	var last uint64
	for k := range c.periods {
		last = max(last, k)
	}
	return last
}

// Run re-reads the document whenever the channel asks for a period past the last it covers,
// with backoff between reads (MinBackoff doubling to MaxBackoff) until it has that period,
// and returns when ctx is done. Each fetch is bounded by cpix.FetchTimeout.
func (c *CPIXKeys) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		wait := c.MinBackoff
		for attempt := 1; ; attempt++ {
			if c.refresh(ctx, attempt) {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, c.MaxBackoff)
		}
	}
}

// refresh reads the document once and takes the periods it adds; it reports whether the
// awaited period is now known.
func (c *CPIXKeys) refresh(ctx context.Context, attempt int) bool {
	c.mu.Lock()
	want := c.want
	_, have := c.periods[want]
	c.mu.Unlock()
	if have {
		return true
	}
	d, err := cpix.Load(ctx, c.src, c.token, nil)
	var periods map[uint64]cpixPeriod
	if err == nil {
		periods, err = livePeriods(d, c.rotation)
	}
	if err != nil {
		c.log.Warn("live: re-reading the CPIX document for the next key period", "cpix", c.src, "key_period", want, "attempt", attempt, "err", err)
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range periods {
		old, ok := c.periods[k]
		if !ok {
			c.periods[k] = p
			continue
		}
		if !old.same(p) {
			c.log.Error("live: the CPIX document changed the keys of a key period already in use; keeping the first ones", "cpix", c.src, "key_period", k)
		}
	}
	_, have = c.periods[c.want]
	if have {
		c.log.Info("live: CPIX document has the next key period", "cpix", c.src, "key_period", c.want)
	}
	return have
}

func (p cpixPeriod) same(q cpixPeriod) bool {
	return p.video.ID == q.video.ID && p.video.Value == q.video.Value && p.audio.ID == q.audio.ID && p.audio.Value == q.audio.Value
}
