package live

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/reelvideo/reel/internal/atomicfile"
	"github.com/reelvideo/reel/manifest"
)

// A track's segments survive a restart of `reel live`: each completed segment is recorded in an
// append-only log beside the segment files (one JSON line, appended after the segment file is in
// place), and AddTrack reads the log back. A restarted channel lists its DVR again, continues its
// media sequence numbers, counts the discontinuities that left the window, and flags the first new
// segment with EXT-X-DISCONTINUITY. A log line whose segment file is gone (expired, or lost in a
// crash before its rename) is skipped; the log is rewritten without such lines when it is read.

const segmentLog = "segments.log"

// logEntry is one line of the segment log.
type logEntry struct {
	Number   uint64    `json:"n"`
	Start    uint64    `json:"start"`
	Duration uint64    `json:"dur"`
	PDT      time.Time `json:"pdt"`
	Disc     bool      `json:"disc,omitempty"`
	Size     int64     `json:"size"`
	// Parts is the segment's LL-HLS parts, in order: they stay fetchable, as slices of the
	// segment file, after a restart too.
	Parts []logPart `json:"parts,omitempty"`
	// DiscDropped, on the first line of a rewritten log, counts discontinuities that left the DVR.
	DiscDropped uint64 `json:"dropped,omitempty"`
}

// logPart is one part of a logged segment; its offset is the sum of the sizes before it.
type logPart struct {
	Size        int64  `json:"s"`
	Duration    uint64 `json:"d"`
	Independent bool   `json:"i,omitempty"`
}

// logSegment appends s to t's log. c.mu is held.
func (t *track) logSegment(s *segment) error {
	e := logEntry{Number: s.number, Start: s.start, Duration: s.duration, PDT: s.pdt, Disc: s.disc, Size: s.size}
	for _, p := range s.parts {
		e.Parts = append(e.Parts, logPart{Size: p.size, Duration: p.duration, Independent: p.independent})
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(t.dir, segmentLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// resume loads what a previous run left for t, if its init segment is the same as the new one
// (another codec configuration starts the track afresh: its old segments are removed).
func (t *track) resume(init []byte) error {
	old, err := os.ReadFile(filepath.Join(t.dir, manifest.InitSegmentName))
	if err != nil || !bytes.Equal(old, init) {
		t.forget()
		return nil
	}
	f, err := os.Open(filepath.Join(t.dir, segmentLog))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var kept []logEntry
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue // a line torn by a crash
		}
		t.discDropped += e.DiscDropped
		st, err := os.Stat(filepath.Join(t.dir, segmentName(e.Number)))
		if err != nil || st.Size() != e.Size || e.Duration == 0 || e.Size == 0 {
			if e.Disc {
				t.discDropped++
			}
			t.expired = true
			continue
		}
		if n := len(kept); n > 0 && e.Number != kept[n-1].Number+1 {
			kept = kept[:0] // numbers must follow each other: keep the last contiguous run
		}
		kept = append(kept, e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", segmentLog, err)
	}
	for _, e := range kept {
		t.pos += e.Duration
		t.segs = append(t.segs, &segment{number: e.Number, start: e.Start, duration: e.Duration, pdt: e.PDT, disc: e.Disc, size: e.Size, endPos: t.pos, parts: e.parts()})
	}
	if n := len(kept); n > 0 {
		last := kept[n-1]
		t.end = last.Start + last.Duration
		t.anchorMedia, t.anchorPDT = last.Start, last.PDT
		t.discPending = true // whatever comes next did not follow on from this
	}
	return t.rewriteLog(kept)
}

// parts are e's parts without their bytes (served from the segment file), or none if the
// logged sizes don't add up to the segment's.
func (e logEntry) parts() []part {
	var out []part
	var sum int64
	for _, p := range e.Parts {
		out = append(out, part{size: p.Size, duration: p.Duration, independent: p.Independent})
		sum += p.Size
	}
	if sum != e.Size {
		return nil
	}
	return out
}

// rewriteLog replaces the log with entries (atomically), carrying the dropped-discontinuity count.
func (t *track) rewriteLog(entries []logEntry) error {
	var b bytes.Buffer
	for i, e := range entries {
		if i == 0 {
			e.DiscDropped = t.discDropped
		}
		line, _ := json.Marshal(e)
		b.Write(append(line, '\n'))
	}
	return atomicfile.Write(filepath.Join(t.dir, segmentLog), b.Bytes(), 0o644)
}

// forget removes a previous run's segments and log from t's folder.
func (t *track) forget() {
	matches, _ := filepath.Glob(filepath.Join(t.dir, "seg_*.m4s"))
	for _, m := range matches {
		os.Remove(m)
	}
	os.Remove(filepath.Join(t.dir, segmentLog))
	inits, _ := filepath.Glob(filepath.Join(t.dir, "init-*.mp4")) // key periods' init segments
	for _, m := range inits {
		os.Remove(m)
	}
}

// reset forgets what resume loaded: t starts afresh, as a new track.
func (t *track) reset() {
	t.forget()
	t.segs, t.pos, t.end = nil, 0, 0
	t.anchorMedia, t.anchorPDT = 0, time.Time{}
	t.discPending, t.expired, t.discDropped = false, false, 0
}

// ResumeAt returns the media time at which track id's previous run ended (0 for a new track),
// so that a source can continue the media timeline rather than restart it.
func (c *Channel) ResumeAt(id string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.byID[id]; t != nil {
		return t.end
	}
	return 0
}
