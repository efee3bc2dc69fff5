package packager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/packager/live"
	"github.com/reelvideo/reel/packager/subtitles"
)

// LoopOptions configure a looped live source.
type LoopOptions struct {
	// Inputs form the ladder, chosen as Package chooses: the first video track of each file,
	// audio from the first file with video and audio, and every audio-only file.
	Inputs    []string
	Languages []string
	// Loops is how many times the inputs play before the event ends (0: until ctx ends).
	Loops int
	// FragmentDuration is the length of the fragments appended (default: the channel's part
	// duration, or its segment duration when parts are off).
	FragmentDuration time.Duration
	Logger           *slog.Logger
	// Clock paces the source; nil means the wall clock. Tests pass a faster one.
	Clock func() time.Time
	Sleep func(context.Context, time.Duration) error
	// Subtitles are sidecar files (as Options.Subtitles) looped with the media: a cue at t in
	// the file shows at t in every loop; one past the loop's end is cut there. Each is a text
	// track of the channel (live_text.go), clear whatever the channel's encryption.
	Subtitles []Subtitle
	// Epoch, when set, places the loop on the wall clock as if it had been playing since Epoch
	// (the channel's Config.Epoch must be the same): media time zero is Epoch, the loop's
	// position at any instant is the same whenever the source started, and so are the
	// fragments' bytes (their sequence numbers come from their media time). Two sources on the
	// same files and epoch — redundant origins, or a restarted one — publish the same segments
	// under the same numbers. A fresh track joins at the first segment grid line at or after
	// now where the video has a keyframe; a track with history continues where it ended,
	// producing what it missed at once (history older than the DVR window is dropped).
	Epoch time.Time
	// Backfill starts a fresh track of an anchored loop a live window and a segment before now,
	// that interval made at once, so that its live playlists and MPD list what an instance
	// that has run longer lists (placeOnEpoch). Only for a channel every run of which had the
	// same files and settings: those numbers may have been published before, and a run with
	// other settings (a wiped folder) would publish other bytes under them.
	Backfill bool
}

// loopTrack is one rendition of the looped ladder with its samples in memory (a few tens of
// bytes each: a two-hour file is a few megabytes of metadata).
type loopTrack struct {
	src     *inputTrack
	id      string
	samples []sample
	period  uint64 // the loop length in this track's timescale
	restart int    // the sample every loop after the first starts with (see trimTo)
	base    uint64 // media time of the first loop (where a resumed channel left off)
	next    int    // index of the next sample to send within the current loop
	loop    uint64 // loops completed
	seq     uint32
	// fragUnits is the fragment duration in this track's timescale, when the loop is anchored
	// at an epoch: a fragment's sequence number comes from its media time (fragSeq).
	fragUnits uint64
	// captions are the closed-caption channels found in a video track's SEI (captionScan).
	captions []string
}

// Looper is a looped live source, prepared: its inputs are open and checked, and its tracks
// are on the channel. Run plays it; Close closes the inputs.
type Looper struct {
	ch     *live.Channel
	opt    LoopOptions
	frag   time.Duration
	inputs []*inputFile
	tracks []*loopTrack
	texts  []*loopText
	loop   time.Duration // the loop length (for the log)
}

// Loop replays the inputs on ch as a live ladder in real time until ctx ends (or opt.Loops
// loops are done, which ends the event): NewLoop, then Run.
func Loop(ctx context.Context, ch *live.Channel, opt LoopOptions) error {
	l, err := NewLoop(ctx, ch, opt)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Run(ctx)
}

// NewLoop opens and checks the inputs — what Package refuses, a ladder whose GOPs don't
// align included, is refused here with the same error — and adds their tracks to ch.
func NewLoop(ctx context.Context, ch *live.Channel, opt LoopOptions) (_ *Looper, err error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.Sleep == nil {
		opt.Sleep = sleepCtx
	}
	l := &Looper{ch: ch, opt: opt, frag: opt.FragmentDuration}
	if l.frag <= 0 {
		l.frag = ch.PartDuration()
	}
	if l.frag <= 0 {
		l.frag = ch.SegmentDuration()
	}
	if len(opt.Inputs) == 0 {
		return nil, errors.New("no input files to loop")
	}
	// Subtitle files are read first: a malformed one fails with its file:line before any input
	// is opened or any track is on the channel.
	subs, err := parseSubtitles(opt.Subtitles)
	if err != nil {
		return nil, err
	}
	langs, err := parseLanguages(opt.Languages)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.inputs, err = openInputs(ctx, opt.Inputs); err != nil {
		return nil, err
	}
	videos, audios, err := selectTracks(l.inputs)
	if err != nil {
		return nil, err
	}
	for i, lang := range langs {
		if i < len(audios) && lang != "" {
			audios[i].language = lang
		}
	}
	// A ladder whose rungs can't switch at segment boundaries is refused as Package refuses it.
	if err := checkAligned(videos, ch.SegmentDuration()); err != nil {
		return nil, err
	}
	l.tracks, err = loadLoopTracks(append(append([]*inputTrack{}, videos...), audios...))
	if err != nil {
		return nil, err
	}
	// The loop length: the reference video track's duration, in every track's timescale.
	ref := l.tracks[0]
	var refDur uint64
	if n := len(ref.samples); n > 0 {
		refDur = ref.samples[n-1].dts + uint64(ref.samples[n-1].dur)
	}
	if refDur == 0 {
		return nil, inputErr(ref.src.in.path, errors.New("video track has no duration"))
	}
	l.loop = time.Duration(float64(refDur) / float64(ref.src.timescale) * float64(time.Second))
	for _, t := range l.tracks {
		t.period = (refDur*uint64(t.src.timescale) + uint64(ref.src.timescale)/2) / uint64(ref.src.timescale)
		t.trimTo(t.period, t.src.priming(t.samples[0]))
		info, init, err := t.describe()
		if err != nil {
			return nil, inputErr(t.src.in.path, err)
		}
		if err := ch.AddTrack(info, init); err != nil {
			return nil, err
		}
	}
	ch.CaptionsChecked() // every video track was scanned above
	textIDs := ids{}
	for _, in := range subs {
		id := textID(textIDs, in.sub)
		init, err := subtitles.WvttInit(in.track, in.sub.Language)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.sub.File, err)
		}
		if err := ch.AddTrack(textTrackInfo(id, in.sub), init); err != nil {
			return nil, err
		}
		l.texts = append(l.texts, &loopText{liveText: newLiveText(id, ch.SegmentDuration()), file: in.track.Cues})
	}
	return l, nil
}

// loopStartMs is where loop k starts on the media timeline, in ms: on the reference video
// track's timeline, as the media's loops are.
func (l *Looper) loopStartMs(k uint64) int64 {
	ref := l.tracks[0]
	return subtitles.MsFromTimescale(ref.base+k*ref.period, ref.src.timescale)
}

// appendText appends the text cells complete at upTo ms.
func (l *Looper) appendText(upTo int64) error {
	last := int64(-1) // the end of the last loop
	if l.opt.Loops > 0 {
		last = l.loopStartMs(uint64(l.opt.Loops))
	}
	for _, t := range l.texts {
		t.fill(upTo+t.grid, l.loopStartMs, l.opt.Loops)
		if err := t.appendUpTo(l.ch, upTo, last); err != nil {
			return fmt.Errorf("channel %s: %w", l.ch.Name(), err)
		}
	}
	return nil
}

// Close closes the inputs.
func (l *Looper) Close() {
	for _, in := range l.inputs {
		in.Close()
	}
	l.inputs = nil
}

// Run plays the loop in real time until ctx ends or the loops are done. Fragments are cut on a
// grid of the fragment duration and appended when their media time is due, re-timed so that
// each loop continues the previous: the loop length is the first video track's duration, and
// every track is trimmed or left short to it, so audio and video never drift apart however
// long the channel runs.
func (l *Looper) Run(ctx context.Context) error {
	ch, opt, frag, tracks := l.ch, l.opt, l.frag, l.tracks
	var start time.Time
	var first uint64 // the first fragment interval to append
	if opt.Epoch.IsZero() {
		// A channel resumed after a restart continues its media timeline where the last run
		// ended (the players see a discontinuity, not time going back).
		var resume time.Duration
		for _, t := range tracks {
			resume = max(resume, toDuration(ch.ResumeAt(t.id), t.src.timescale))
		}
		for _, t := range l.texts {
			resume = max(resume, time.Duration(ch.ResumeAt(t.id))*time.Millisecond)
		}
		for _, t := range tracks {
			t.base = uint64(resume.Seconds()*float64(t.src.timescale) + 0.5)
		}
		for _, t := range l.texts {
			t.next = l.loopStartMs(0)
		}
		start = opt.Clock().Add(-resume)
		first = uint64(resume / frag)
	} else {
		var err error
		if first, err = l.placeOnEpoch(); err != nil {
			return err
		}
		start = opt.Epoch
	}
	ch.SetStart(start)
	opt.Logger.Info("live: looping", "channel", ch.Name(), "inputs", len(opt.Inputs), "tracks", len(tracks),
		"loop", l.loop.Round(time.Millisecond), "anchored", !opt.Epoch.IsZero())
	for j := first + 1; ; j++ {
		// Part j-1 covers media time [(j-1)·frag, j·frag); it is complete, hence appended, at j·frag.
		due := start.Add(time.Duration(j) * frag)
		if err := opt.Sleep(ctx, due.Sub(opt.Clock())); err != nil {
			return nil // stopped: the channel stays as it is (a restart continues it)
		}
		end := time.Duration(j) * frag
		finished := true
		for _, t := range tracks {
			if opt.Loops > 0 && t.loop >= uint64(opt.Loops) {
				continue
			}
			finished = false
			limit := uint64(end.Seconds()*float64(t.src.timescale) + 0.5)
			// Everything due goes now: a fragment stops at the loop point, and the rest of the
			// interval follows at once as a fragment of its own (left for the next tick, it
			// would make a fragment of two intervals, and with fragments as long as segments
			// the segment there would miss its grid line — its numbers then falling behind the
			// other tracks'). Each call takes at least one sample below limit, or returns nil.
			for {
				f, err := t.fragment(limit, opt.Loops)
				if err != nil {
					return inputErr(t.src.in.path, err)
				}
				if f == nil {
					break
				}
				if err := ch.Append(t.id, *f); err != nil {
					return fmt.Errorf("channel %s: %w", ch.Name(), err)
				}
			}
		}
		if finished {
			// The last cells of text, to the end of the last loop, before the event ends.
			if err := l.appendText(l.loopStartMs(uint64(opt.Loops))); err != nil {
				return err
			}
			ch.End()
			return nil
		}
		if err := l.appendText(int64(end / time.Millisecond)); err != nil {
			return err
		}
	}
}

// placeOnEpoch places every track on the loop anchored at opt.Epoch and returns the first
// fragment interval to append: a track with history continues where its log ends (the
// intervals since are appended at once, as fast as they are made), a new one starts at the
// first grid line at or after now (anchoredStart) — or, with opt.Backfill, after a live window
// and a segment before now.
//
// Starting after now is what keeps a number from ever naming other bytes: nothing before now
// is known not to have been published by an earlier run (a wiped folder keeps no record). The
// backfill gives that up for redundant instances whose manifests should be the same from the
// start, not only their segments: a live playlist lists the segments ending within the
// window, and an instance started later than another lists fewer until it has run a window.
// The DVR view (?dvr=1) still reaches only as far back as the instance has run: making
// --dvr's two hours at start would hold its playlists back by the time that takes.
func (l *Looper) placeOnEpoch() (uint64, error) {
	ch, opt := l.ch, l.opt
	if opt.Loops > 0 {
		return 0, fmt.Errorf("channel %s: a loop anchored at an epoch plays forever (Loops %d)", ch.Name(), opt.Loops)
	}
	now := opt.Clock().Sub(opt.Epoch)
	if now < 0 {
		return 0, fmt.Errorf("channel %s: the loop's epoch %s is in the future", ch.Name(), opt.Epoch.Format(time.RFC3339))
	}
	at := now
	if opt.Backfill {
		at = max(0, now-ch.Window()-ch.SegmentDuration())
	}
	x := l.anchoredStart(at)
	from := x
	// resumeAt is where a track with history continues (ok), or nothing when it has none, or
	// none recent enough to catch up with (then forgotten).
	resumeAt := func(id string, at time.Duration) (time.Duration, bool) {
		if at == 0 {
			return 0, false
		}
		if now-at > ch.DVR() {
			ch.Forget(id)
			return 0, false
		}
		return at, true
	}
	for _, t := range l.tracks {
		t.fragUnits = max(1, uint64(l.frag.Seconds()*float64(t.src.timescale)+0.5))
		pos := units(x, t.src.timescale)
		if _, ok := resumeAt(t.id, toDuration(ch.ResumeAt(t.id), t.src.timescale)); ok {
			pos = ch.ResumeAt(t.id)
		}
		t.loop, t.next = t.seek(pos)
		from = min(from, toDuration(pos, t.src.timescale))
	}
	ref := l.tracks[0]
	for _, t := range l.texts {
		t.seqByCell = true
		t.next = x.Milliseconds()
		if at, ok := resumeAt(t.id, time.Duration(ch.ResumeAt(t.id))*time.Millisecond); ok {
			t.next = at.Milliseconds()
		}
		from = min(from, time.Duration(t.next)*time.Millisecond)
		// Cues are added from the loop that t.next is in.
		k := units(time.Duration(t.next)*time.Millisecond, ref.src.timescale) / ref.period
		for k > 0 && l.loopStartMs(k) > t.next {
			k--
		}
		for l.loopStartMs(k+1) <= t.next {
			k++
		}
		t.loops = k
	}
	return uint64(from / l.frag), nil
}

// anchoredStart is where a fresh track joins the anchored loop: the first line at or after
// at of both the segment grid and the fragment grid (where a long-running source's segment
// starts) at which every video track has a keyframe. A ladder whose keyframes never fall on
// the grid (a loop whose length is not a multiple of the segment duration, say) starts at the
// first grid line, with a warning: its first segments may differ from a redundant
// instance's.
func (l *Looper) anchoredStart(at time.Duration) time.Duration {
	step := lcm(l.ch.SegmentDuration(), l.frag)
	first := (at + step - 1) / step * step
	for i := range time.Duration(4096) {
		x := first + i*step
		ok := true
		for _, t := range l.tracks {
			if t.src.kind != manifest.Video {
				continue
			}
			pos := units(x, t.src.timescale)
			k, n := t.seek(pos)
			ok = ok && t.samples[n].sync && k*t.period+t.samples[n].dts == pos
		}
		if ok {
			return x
		}
	}
	l.opt.Logger.Warn("live: the loop's keyframes are not on the segment grid: redundant instances may publish different first segments",
		"channel", l.ch.Name(), "segment", l.ch.SegmentDuration(), "loop", l.loop)
	return first
}

// seek finds the first sample at or after media time pos (this track's timescale) on the
// loop anchored at media time zero: loop k ≥ 1 covers [k·period + r, (k+1)·period + r), r
// being the start of the sample later loops restart with (see trimTo), loop 0 [0, period + r).
func (t *loopTrack) seek(pos uint64) (loop uint64, next int) {
	r := t.samples[t.restart].dts
	if pos >= t.period+r {
		loop = (pos - r) / t.period
	}
	from := 0
	if loop > 0 {
		from = t.restart
	}
	off := loop * t.period
	next = from + sort.Search(len(t.samples)-from, func(i int) bool { return off+t.samples[from+i].dts >= pos })
	if next == len(t.samples) {
		loop, next = loop+1, t.restart
	}
	return loop, next
}

// fragSeq is the mfhd sequence number of a fragment starting at media time base when the loop
// is anchored: twice its fragment interval's index, plus one for the second fragment of an
// interval split at the loop point — a function of the media time, so redundant sources agree
// (it wraps after decades with half-second fragments; players don't read it).
func (t *loopTrack) fragSeq(base uint64, loopStart bool) uint32 {
	seq := 2 * (base / t.fragUnits)
	if loopStart && base%t.fragUnits != 0 {
		seq++
	}
	return uint32(seq)
}

func units(d time.Duration, timescale uint32) uint64 {
	return uint64(d.Seconds()*float64(timescale) + 0.5)
}

func toDuration(u uint64, timescale uint32) time.Duration {
	return time.Duration(u/uint64(timescale))*time.Second + time.Duration(u%uint64(timescale)*uint64(time.Second)/uint64(timescale))
}

func lcm(a, b time.Duration) time.Duration {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func loadLoopTracks(srcs []*inputTrack) ([]*loopTrack, error) {
	ids := newIDs()
	var out []*loopTrack
	for _, src := range srcs {
		t := &loopTrack{src: src, id: ids.forTrack(src)}
		if err := walkSamples(src, func(s sample) { t.samples = append(t.samples, s) }); err != nil {
			return nil, err
		}
		if src.kind == manifest.Video && !t.samples[0].sync {
			return nil, inputErr(src.in.path, errors.New("video does not start with a keyframe"))
		}
		// Closed captions loop with the video that carries them; a pass over the sample heads
		// before the channel starts (a loop is short, and read once).
		if scan := newCaptionScan(src); scan != nil {
			if err := scan.samples(t.samples); err != nil {
				return nil, inputErr(src.in.path, err)
			}
			t.captions = scan.channels()
		}
		out = append(out, t)
	}
	return out, nil
}

// trimTo keeps one loop period of presentation: the samples that start before period plus
// the priming the edit list hides, shortening the last one so the next loop starts exactly
// where this one ends. Only the first loop's priming is hidden (the edit list applies once), so
// every later loop starts after it, at t.restart: each loop then lasts period, and audio stays
// on the video's grid and ends with it instead of one audio frame early.
func (t *loopTrack) trimTo(period, priming uint64) {
	for t.restart < len(t.samples)-1 && t.samples[t.restart].dts < priming {
		t.restart++
	}
	end := period + t.samples[t.restart].dts
	n := 0
	for n < len(t.samples) && t.samples[n].dts < end {
		n++
	}
	t.samples = t.samples[:n]
	if n > 0 {
		last := &t.samples[n-1]
		if e := last.dts + uint64(last.dur); e > end {
			last.dur = uint32(end - last.dts)
		}
	}
}

// describe is the channel's view of the track, with its init segment and bandwidths measured
// over the file (peak over two-second windows, RFC 8216 §4.3.4.2).
func (t *loopTrack) describe() (manifest.Track, []byte, error) {
	init, err := encodeInit(t.src, t.src.language)
	if err != nil {
		return manifest.Track{}, nil, err
	}
	info := manifest.Track{
		ID: t.id, Kind: t.src.kind, Codecs: t.src.codecs, Timescale: t.src.timescale,
		Width: t.src.width, Height: t.src.height, SAR: t.src.sar,
		SampleRate: t.src.sampleRate, Channels: t.src.channels, Language: t.src.language,
		Priming: t.src.priming(t.samples[0]),
	}
	if info.Kind == manifest.Audio {
		info.Name = audioName(info.Language, 0)
	}
	for _, ch := range t.captions {
		info.Captions = append(info.Captions, manifest.Caption{Channel: ch})
	}
	durCount := map[uint32]int{}
	window := uint64(2 * t.src.timescale)
	var winBytes, total int64
	var winStart uint64
	for _, s := range t.samples {
		durCount[s.dur]++
		if s.dts-winStart >= window {
			info.PeakBandwidth = max(info.PeakBandwidth, int(winBytes*8/2))
			winStart, winBytes = s.dts, 0
		}
		winBytes += int64(s.size)
		total += int64(s.size)
	}
	info.PeakBandwidth = max(info.PeakBandwidth, int(winBytes*8/2))
	if secs := float64(t.period) / float64(t.src.timescale); secs > 0 {
		info.AverageBandwidth = int(float64(total*8) / secs)
	}
	if info.Kind == manifest.Video {
		var best uint32
		for d, n := range durCount {
			if n > durCount[best] || (n == durCount[best] && d < best) {
				best = d
			}
		}
		if best > 0 {
			info.FrameRate = reduce(int(t.src.timescale), int(best))
		}
	}
	return info, init, nil
}

// fragment encodes the samples whose continuous decode time is below limit (moof+mdat), moving
// on to the next loop when the file's samples run out. It returns nil when no sample is due.
func (t *loopTrack) fragment(limit uint64, loops int) (*live.Fragment, error) {
	if loops > 0 && t.loop >= uint64(loops) {
		return nil, nil // the last loop is done
	}
	var chunk []sample
	var base uint64
	for {
		if t.next == len(t.samples) {
			t.next = t.restart
			t.loop++
			if loops > 0 && t.loop >= uint64(loops) {
				break
			}
		}
		offset := t.base + t.loop*t.period
		s := t.samples[t.next]
		if offset+s.dts >= limit {
			break
		}
		if len(chunk) > 0 && t.loop > 0 && t.next == t.restart {
			break // a fragment never spans the loop point: its samples come from two timelines
		}
		if len(chunk) == 0 {
			base = offset + s.dts
		}
		chunk = append(chunk, s)
		t.next++
	}
	if len(chunk) == 0 {
		return nil, nil
	}
	t.seq++
	if t.fragUnits > 0 {
		t.seq = t.fragSeq(base, t.loop > 0 && t.next-len(chunk) == t.restart)
	}
	hdr, err := fragmentHeader(t.seq, base, chunk)
	if err != nil {
		return nil, err
	}
	var dur uint64
	for _, s := range chunk {
		dur += uint64(s.dur)
	}
	buf := bytes.NewBuffer(hdr)
	for _, s := range chunk {
		buf.Grow(int(s.size))
		b := buf.AvailableBuffer()[:s.size]
		if _, err := t.src.in.f.ReadAt(b, s.off); err != nil {
			return nil, fmt.Errorf("reading sample at offset %d: %w", s.off, err)
		}
		buf.Write(b)
	}
	// The loop knows what comes next: the next sample of this loop, or the next loop's first.
	next := t.samples[t.restart]
	if t.next < len(t.samples) {
		next = t.samples[t.next]
	}
	return &live.Fragment{Data: buf.Bytes(), Decode: base, Duration: dur, Independent: chunk[0].sync, Boundary: next.sync}, nil
}
