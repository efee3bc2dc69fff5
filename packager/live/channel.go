// Package live is Reel's live packager: CMAF fragments from a source (a looped file, an fMP4
// pipe, an encoder's HTTP ingest) are appended to a Channel, which cuts them into segments and
// LL-HLS parts, keeps the live window in memory and the DVR window on disk, and renders HLS,
// LL-HLS and DASH on request from one snapshot of its presentation model.
//
// Segments are cut on a time grid shared by every track: segment k covers media time
// [k·T, (k+1)·T) from the channel's time origin, starting at the first independent fragment
// at or after the grid line. Renditions encoded with aligned keyframes (what an ABR ladder
// needs anyway) therefore get the same segment numbers for the same media time, without the
// tracks having to wait for each other.
package live

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/reelvideo/reel/internal/atomicfile"
	"github.com/reelvideo/reel/manifest"
)

// Config configures a channel.
type Config struct {
	Name string
	// Dir holds the channel's segments on disk (the DVR window), one folder per track.
	Dir string
	// SegmentDuration is the segment target (default 2 s); PartDuration the LL-HLS part target
	// (0 turns parts off; a source cuts its fragments to it).
	SegmentDuration time.Duration
	PartDuration    time.Duration
	// Window is how far back live playlists and MPDs reach (default 30 s); DVR how long
	// segments stay on disk for players that seek back (default 2 h, at least Window).
	Window time.Duration
	DVR    time.Duration
	Logger *slog.Logger
	// NumberByClock numbers the segments of a track that has no history in the folder (a new
	// channel, a wiped folder, a lost log) from the wall clock — see clockNumber — instead of
	// from zero, so that its URLs never name segments a previous run published. A track that
	// resumes from its log continues its numbers either way.
	NumberByClock bool
	// Epoch, when set, anchors the channel's timeline on the wall clock (a deterministic source:
	// the looped one): media time zero is Epoch (DASH availabilityStartTime), a segment's
	// program date-time is Epoch plus its media time, and its number is its grid cell since
	// Epoch (media time ÷ segment duration) — so that every channel fed the same media on the
	// same anchored timeline, a redundant instance or a restarted one, publishes the same
	// numbers with the same bytes. It replaces NumberByClock. A track's history in the folder
	// is kept only if it lies on this timeline (see onTimeline); it then continues without a
	// discontinuity, its source resuming exactly where the log ends.
	Epoch time.Time
	// Metrics, when set, count the channel's fragments, segments and blocking reloads.
	Metrics *Metrics
	// Encryption, when set, encrypts every track with Common Encryption, a key per key period
	// (see keys.go). Keys never reach the folder, a manifest or a response.
	Encryption *Encryption
}

func (c *Config) defaults() {
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = 2 * time.Second
	}
	if c.Window <= 0 {
		c.Window = 30 * time.Second
	}
	if c.DVR < c.Window {
		c.DVR = max(c.Window, 2*time.Hour)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Fragment is one CMAF chunk of a track (moof+mdat), as a source delivers it.
type Fragment struct {
	Data        []byte
	Decode      uint64 // baseMediaDecodeTime, in the track's timescale
	Duration    uint64
	Independent bool // starts with a sync sample
	// Boundary says the next fragment will start with a sync sample, so a segment may end
	// after this one (sources that know their stream's structure set it).
	Boundary bool
}

// Errors a source gets back from Append; the channel keeps going and nothing published changes.
var (
	ErrUnknownTrack = errors.New("unknown track")
	ErrBackwards    = errors.New("fragment starts before the end of the previous one")
	ErrEnded        = errors.New("channel has ended")
)

// Channel is one live presentation being produced.
type Channel struct {
	cfg Config

	mu      sync.Mutex
	tracks  []*track
	byID    map[string]*track
	start   time.Time // wall-clock time of media time zero (DASH availabilityStartTime)
	started bool
	ended   bool
	// captionsChecked: the source looked for closed captions in every video track (a looped
	// file does; an ingest can't know what a feed will carry), so manifests may say
	// CLOSED-CAPTIONS=NONE when none were found.
	captionsChecked bool
	// keyWaiting counts the tracks whose publishing stalls for want of a key (protect.go).
	keyWaiting int
	changed    chan struct{} // closed (and replaced) on every change, to wake blocked requests
	lock       *folderLock   // held for the channel's life: one writer per folder
}

// NewChannel makes an empty channel; tracks are added with AddTrack before fragments arrive.
func NewChannel(cfg Config) (*Channel, error) {
	cfg.defaults()
	if cfg.Name == "" || !validName(cfg.Name) {
		return nil, fmt.Errorf("channel name %q: use letters, digits, '-' and '_'", cfg.Name)
	}
	if cfg.Dir == "" {
		return nil, errors.New("channel " + cfg.Name + ": no storage folder")
	}
	if cfg.PartDuration >= cfg.SegmentDuration {
		return nil, fmt.Errorf("channel %s: part duration %v must be shorter than the segment duration %v", cfg.Name, cfg.PartDuration, cfg.SegmentDuration)
	}
	if cfg.Encryption != nil {
		if err := cfg.Encryption.check(); err != nil {
			return nil, fmt.Errorf("channel %s: %w", cfg.Name, err)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("channel %s: %w", cfg.Name, err)
	}
	lock, err := lockFolder(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", cfg.Name, err)
	}
	c := &Channel{cfg: cfg, byID: map[string]*track{}, changed: make(chan struct{}), lock: lock}
	if !cfg.Epoch.IsZero() {
		c.start, c.started = cfg.Epoch, true
	}
	return c, nil
}

// anchored says the channel's timeline is anchored at Config.Epoch.
func (c *Channel) anchored() bool { return !c.cfg.Epoch.IsZero() }

// DVR is how long segments stay on disk.
func (c *Channel) DVR() time.Duration { return c.cfg.DVR }

// Window is how far back live playlists and MPDs reach.
func (c *Channel) Window() time.Duration { return c.cfg.Window }

// Close stops the channel producing (further fragments get ErrEnded, the segment in progress
// is dropped, as when the process stops) and releases its folder for another writer. A
// process that runs a channel until it exits need not call it: the lock goes with the process.
func (c *Channel) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	c.lock.release()
	c.wake()
}

// Name is the channel's name (its URL path element).
func (c *Channel) Name() string { return c.cfg.Name }

// SegmentDuration and PartDuration are the channel's targets (PartDuration 0: no parts).
func (c *Channel) SegmentDuration() time.Duration { return c.cfg.SegmentDuration }
func (c *Channel) PartDuration() time.Duration    { return c.cfg.PartDuration }

// AddTrack registers a rendition: its description (ID, kind, codecs, timescale, resolution,
// bandwidth…) and its init segment.
func (c *Channel) AddTrack(info manifest.Track, init []byte) error {
	if !validName(info.ID) || info.Timescale == 0 || len(init) == 0 {
		return fmt.Errorf("channel %s: bad track %q (timescale %d, init %d bytes)", c.cfg.Name, info.ID, info.Timescale, len(init))
	}
	dir := filepath.Join(c.cfg.Dir, info.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("channel %s: %w", c.cfg.Name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.byID[info.ID]; dup {
		return fmt.Errorf("channel %s: track %q added twice", c.cfg.Name, info.ID)
	}
	info.InitURI = manifest.InitSegmentName
	info.SegmentTemplate = "seg_$Number$.m4s"
	t := &track{info: info, init: init, dir: dir, grid: gridUnits(c.cfg.SegmentDuration, info.Timescale)}
	if info.Kind == manifest.Text {
		if err := c.setupText(t); err != nil {
			return fmt.Errorf("channel %s: track %s: %w", c.cfg.Name, info.ID, err)
		}
		if c.byID[info.ID+WvttSuffix] != nil {
			return fmt.Errorf("channel %s: track %q: its wvtt rendition's name is another track's", c.cfg.Name, info.ID)
		}
	} else if c.textTrackFor(info.ID) != nil {
		return fmt.Errorf("channel %s: track %q: the name of a text track's wvtt rendition", c.cfg.Name, info.ID)
	}
	t.anchored = c.anchored()
	if c.cfg.NumberByClock && !t.anchored {
		t.firstNumber = clockNumber(time.Now(), c.cfg.SegmentDuration)
	}
	if err := c.setupTrack(t, init); err != nil {
		return fmt.Errorf("channel %s: track %s: %w", c.cfg.Name, info.ID, err)
	}
	if err := t.resume(init); err != nil {
		return fmt.Errorf("channel %s: track %s: %w", c.cfg.Name, info.ID, err)
	}
	if t.anchored {
		if len(t.segs) > 0 && !c.onTimeline(t) {
			c.cfg.Logger.Warn("live: the track's history is not on the channel's anchored timeline (another epoch, segment duration or an older reel); starting afresh",
				"channel", c.cfg.Name, "track", info.ID, "segments", len(t.segs))
			t.reset()
		}
		// The source resumes exactly where the log ends: no discontinuity, the same dates.
		t.discPending = false
		t.anchorMedia, t.anchorPDT = 0, c.cfg.Epoch
	}
	if err := c.checkResumedKeys(t); err != nil {
		return fmt.Errorf("channel %s: track %s: %w", c.cfg.Name, info.ID, err)
	}
	if t.text != nil && len(t.segs) == 0 && !t.anchored {
		c.alignText(t)
	}
	if err := atomicfile.Write(filepath.Join(dir, manifest.InitSegmentName), init, 0o644); err != nil {
		return fmt.Errorf("channel %s: %w", c.cfg.Name, err)
	}
	if len(t.segs) > 0 {
		c.cfg.Logger.Info("live: resumed", "channel", c.cfg.Name, "track", info.ID, "segments", len(t.segs),
			"next", t.segs[len(t.segs)-1].number+1)
	}
	c.tracks = append(c.tracks, t)
	c.byID[info.ID] = t
	return nil
}

// onTimeline says t's resumed history lies on the anchored timeline: its last segment has the
// number of its grid cell since the epoch and the date the epoch gives its media time (a run
// with another epoch or segment duration, or one numbered by the clock, has neither).
func (c *Channel) onTimeline(t *track) bool {
	s := t.segs[len(t.segs)-1]
	want := t.pdtFrom(0, c.cfg.Epoch, s.start)
	d := s.pdt.Sub(want)
	return s.number == (s.start+t.slack())/t.grid && d < time.Millisecond && d > -time.Millisecond
}

// Forget drops what track id resumed from the folder (its segments, files and log): the
// source starts it afresh. A looped source calls it when the history is older than the DVR
// window, rather than regenerate all the media since.
func (c *Channel) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.byID[id]; t != nil && t.cur == nil {
		t.reset()
		if c.anchored() {
			t.anchorMedia, t.anchorPDT = 0, c.cfg.Epoch
		}
	}
}

// CaptionsChecked records that the source scanned every video track of the channel for closed
// captions and put what it found in the tracks' Captions.
func (c *Channel) CaptionsChecked() {
	c.mu.Lock()
	c.captionsChecked = true
	c.mu.Unlock()
}

// SetStart fixes the wall-clock time of media time zero. Sources that know it (the looped
// source, an encoder with producer reference times) call it before the first Append;
// otherwise the first fragment's arrival sets it.
func (c *Channel) SetStart(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.start, c.started = t, true
	}
}

// Append adds a fragment to a track. Fragments must follow each other in time; a fragment that
// starts before the previous one ended is refused (ErrBackwards) and nothing changes.
func (c *Channel) Append(trackID string, f Fragment) error {
	err := c.appendFragment(trackID, f)
	c.cfg.Metrics.fragment(c.cfg.Name, trackID, err)
	if errors.Is(err, errWithheld) {
		return nil // the source goes on: the channel publishes again once the key comes
	}
	return err
}

func (c *Channel) appendFragment(trackID string, f Fragment) error {
	if f.Duration == 0 || len(f.Data) == 0 {
		return fmt.Errorf("track %s: empty fragment", trackID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return ErrEnded
	}
	t := c.byID[trackID]
	if t == nil {
		return fmt.Errorf("%w %q", ErrUnknownTrack, trackID)
	}
	if !c.started {
		c.start = time.Now().Add(-time.Duration(float64(f.Decode) / float64(t.info.Timescale) * float64(time.Second)))
		c.started = true
	}
	if t.lastNumber() != nil && f.Decode < t.end && !t.discPending {
		// After a discontinuity time may restart; otherwise going back would rewrite the past.
		return fmt.Errorf("track %s: %w (%d < %d)", trackID, ErrBackwards, f.Decode, t.end)
	}
	if t.keys != nil { // encrypted; text never is
		if err := c.protect(t, &f); err != nil {
			return err // errWithheld: Append tells the source all is well
		}
	}
	if t.anchorPDT.IsZero() {
		t.anchorPDT = c.start
	}
	complete, err := t.append(f, time.Now())
	if err != nil {
		return err
	}
	if t.text != nil {
		c.textPDT(t)
	}
	if s := t.cur; f.Boundary && s != nil && t.end+t.slack() >= s.gridEnd {
		// The source says a keyframe follows and the segment has reached its grid line: it is
		// complete now, not one fragment later.
		complete = append(complete, t.finish())
	}
	c.completed(t, complete)
	c.wake()
	return nil
}

// completed stores newly completed segments. c.mu is held.
func (c *Channel) completed(t *track, segs []*segment) {
	for _, s := range segs {
		if err := c.store(t, s); err != nil {
			c.cfg.Logger.Error("live: storing segment", "channel", c.cfg.Name, "track", t.info.ID, "segment", s.number, "err", err)
			if errors.Is(err, ErrPublished) {
				s.data = nil // its URL keeps naming the bytes published first (served from disk)
			}
		}
		c.checkGrid(t, s)
		c.cfg.Metrics.segment(c.cfg.Name, t.info.ID, s.number)
	}
	if len(segs) > 0 {
		c.expire(t)
	}
}

// checkGrid reports a video segment that ran past its grid line: the rendition had no keyframe
// there, so its segment was extended to the next keyframe (no media is dropped, nothing is
// re-timed: EXTINF, PDT and the DASH timeline carry its real duration). Its next segment
// then starts later than the other renditions' segment of that number, and if whole grid cells
// passed without a keyframe its numbers run behind theirs from then on. Players that switch
// renditions by time (PDT, the MPD's timeline) keep playing; the operator is told, once per
// such segment, so the encoder's GOP can be fixed. c.mu is held.
func (c *Channel) checkGrid(t *track, s *segment) {
	end := s.start + s.duration
	if t.info.Kind != manifest.Video || s.forceEnd || end <= s.gridEnd+t.slack() {
		return
	}
	late := end - s.gridEnd
	secs := func(u uint64) time.Duration {
		return time.Duration(float64(u) / float64(t.info.Timescale) * float64(time.Second)).Round(time.Millisecond)
	}
	c.cfg.Logger.Warn("live: no keyframe at the segment grid line; segment extended to the next keyframe",
		"channel", c.cfg.Name, "track", t.info.ID, "segment", s.number,
		"grid_line", secs(s.gridEnd), "extended_by", secs(late), "grid_lines_missed", (late-t.slack()-1)/t.grid+1)
	c.cfg.Metrics.unalignedSegment(c.cfg.Name, t.info.ID)
}

// Flush completes track id's segment in progress if it has reached its grid line: a source
// whose input is cut into segments (an HTTP ingest sending one request per segment) knows a
// segment ended when its request does.
func (c *Channel) Flush(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.byID[id]
	if t == nil || t.cur == nil || t.end+t.slack() < t.cur.gridEnd {
		return
	}
	c.completed(t, []*segment{t.finish()})
	c.wake()
}

// Discontinuity marks that the next fragments don't continue the previous ones (an encoder
// reconnected, a source restarted): every track starts a new segment, flagged
// EXT-X-DISCONTINUITY.
func (c *Channel) Discontinuity() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tracks {
		t.discPending = true
		if t.cur != nil {
			t.cur.forceEnd = true
		}
	}
	c.wake()
}

// TrackDiscontinuity is Discontinuity for one track: a sender of that track alone reconnected
// (HTTP ingest sends each track on its own).
func (c *Channel) TrackDiscontinuity(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.byID[id]
	if t == nil {
		return fmt.Errorf("%w %q", ErrUnknownTrack, id)
	}
	t.discPending = true
	if t.cur != nil {
		t.cur.forceEnd = true
	}
	c.wake()
	return nil
}

// End finishes the event: the segment in progress is completed and manifests get
// EXT-X-ENDLIST / a static MPD.
func (c *Channel) End() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended = true
	for _, t := range c.tracks {
		if s := t.finish(); s != nil {
			c.completed(t, []*segment{s})
		}
	}
	c.wake()
}

// wake releases every request blocked on a change. c.mu is held.
func (c *Channel) wake() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// store writes a complete segment to disk (the DVR copy) and keeps its bytes in memory while it
// is in the live window. c.mu is held; the write is small (one segment), atomic and never
// replaces a file already published under that name (writeOnce).
func (c *Channel) store(t *track, s *segment) error {
	if err := writeOnce(filepath.Join(t.dir, segmentName(s.number)), s.data); err != nil {
		return err
	}
	return t.logSegment(s)
}

// expire drops the bytes of parts too old to be listed (the segment holds them), segment bytes
// older than the live window from memory, and segments older than the DVR window from disk
// (their parts go with them). c.mu is held.
func (c *Channel) expire(t *track) {
	ts := uint64(t.info.Timescale)
	partKeep := c.partReach(t)
	memKeep := uint64((c.cfg.Window + 2*c.cfg.SegmentDuration).Seconds() * float64(ts))
	dvrKeep := uint64(c.cfg.DVR.Seconds() * float64(ts))
	drop := 0
	for i, s := range t.segs {
		age := t.pos - s.endPos
		if age > partKeep {
			for j := range s.parts {
				s.parts[j].data = nil
			}
		}
		if age > memKeep {
			s.data = nil
		}
		if age > dvrKeep {
			os.Remove(filepath.Join(t.dir, segmentName(s.number)))
			drop = i + 1
		}
	}
	if drop > 0 && t.keys != nil {
		// The init segment of a key period none of whose segments is left goes with them.
		ks := c.cfg.Encryption.Keys
		gone := ks.Period(t.segs[drop-1].number)
		switch {
		case drop < len(t.segs) && ks.Period(t.segs[drop].number) == gone:
		case drop == len(t.segs) && t.cur != nil && ks.Period(t.cur.number) == gone:
		default:
			os.Remove(filepath.Join(t.dir, initName(gone)))
		}
	}
	if drop > 0 {
		t.expired = true
		for _, s := range t.segs[:drop] {
			if s.disc {
				t.discDropped++
			}
		}
		t.segs = append(t.segs[:0:0], t.segs[drop:]...)
	}
}

// partReach is how far back (in t's timescale, on the pos scale) parts are listed and kept in
// memory: a little more than the three target durations playlists list them for.
func (c *Channel) partReach(t *track) uint64 {
	return uint64(4 * c.cfg.SegmentDuration.Seconds() * float64(t.info.Timescale))
}

// numberEpoch is where clock numbering starts: recent, so that numbers stay below DASH's
// 32-bit @startNumber for a long time (until 2038 with one-second segments, 2052 with two).
var numberEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// clockNumber is the first segment number of a track without history, started at now: the
// number of tenths of a segment duration since numberEpoch. A real-time source publishes
// segment k of a run started at t0 no earlier than t0 + k·d, numbered clockNumber(t0) + k:
// the clock has meanwhile advanced 10·k numbers, so a run started after any of that run's
// publications starts above all of them. (A counter advancing one per segment duration
// would not do: a restart within the same duration would reuse the number of the segment the
// previous run had in progress, whose parts were already published.)
func clockNumber(now time.Time, segment time.Duration) uint64 {
	if d := now.Sub(numberEpoch); d > 0 && segment >= 10 {
		return uint64(d / (segment / 10))
	}
	return 0
}

func segmentName(n uint64) string { return "seg_" + strconv.FormatUint(n, 10) + ".m4s" }

func partName(n uint64, p int) string {
	return "seg_" + strconv.FormatUint(n, 10) + "." + strconv.Itoa(p) + ".m4s"
}

func gridUnits(d time.Duration, timescale uint32) uint64 {
	return uint64(d.Seconds()*float64(timescale) + 0.5)
}

// validName allows names that are safe as one URL path element and one folder name.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
