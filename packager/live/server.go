package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/reelvideo/reel/manifest"
)

// Server is the live origin: it serves every channel under /live/CH/ (master.m3u8,
// manifest.mpd, TRACK/index.m3u8, TRACK/init.mp4, TRACK/seg_N.m4s, TRACK/seg_N.P.m4s) and the
// clock DASH players synchronise with at /live/time.
type Server struct {
	log *slog.Logger

	mu       sync.RWMutex
	channels map[string]*Channel
}

// NewServer makes a server without channels.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{log: log, channels: map[string]*Channel{}}
}

// Add serves ch at /live/NAME/.
func (s *Server) Add(ch *Channel) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.channels[ch.Name()]; dup {
		return errors.New("channel " + ch.Name() + " added twice")
	}
	s.channels[ch.Name()] = ch
	return nil
}

// TimePath is where the server tells the time (DASH UTCTiming, urn:mpeg:dash:utc:http-iso:2014).
const TimePath = "/live/time"

// Cache lifetimes. Segments and parts never change once published. Live playlists change
// every part or segment: they live about half a target duration (one second with parts) so
// that an edge refreshes them that often and no more. A blocking reload's answer is keyed by
// its _HLS_ parameters and is a valid answer to them for a while.
const (
	immutable = "public, max-age=31536000, immutable"
	noStore   = "no-store"
)

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Age, Cache-Status, Content-Length, Content-Range, Date")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Range")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		fail(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if r.URL.Path == TimePath {
		h.Set("Cache-Control", noStore)
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(time.Now().UTC().Format("2006-01-02T15:04:05.000Z")))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/live/")
	if !ok {
		fail(w, http.StatusNotFound, "not found")
		return
	}
	name, file, _ := strings.Cut(rest, "/")
	s.mu.RLock()
	ch := s.channels[name]
	s.mu.RUnlock()
	if ch == nil {
		fail(w, http.StatusNotFound, "no such channel")
		return
	}
	dvr := r.URL.Query().Get("dvr") == "1"
	switch file {
	case manifest.MasterPlaylist:
		ch.serveMaster(w, dvr)
	case manifest.DASHManifest:
		ch.serveMPD(w, timeURL(r), dvr)
	default:
		id, f, ok := strings.Cut(file, "/")
		if !ok || strings.Contains(f, "/") {
			fail(w, http.StatusNotFound, "not found")
			return
		}
		ch.serveTrackFile(w, r, id, f)
	}
}

// fail answers an error that must not be cached: what doesn't exist yet soon will.
func fail(w http.ResponseWriter, status int, reason string) {
	h := w.Header()
	h.Set("Cache-Control", noStore)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write([]byte(reason + "\n"))
}

// timeURL is the absolute URL of the clock for DASH players, on the host they asked.
func timeURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + TimePath
}

func (c *Channel) serveMaster(w http.ResponseWriter, dvr bool) {
	c.mu.Lock()
	p := c.snapshot(time.Now(), "", dvr)
	c.mu.Unlock()
	if len(p.Video) == 0 {
		fail(w, http.StatusNotFound, "channel has no video yet")
		return
	}
	master := p.HLSMaster()
	if dvr {
		master = withDVR(master)
	}
	w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(c.playlistMaxAge()))
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Write(master)
}

var uriAttr = regexp.MustCompile(`URI="([^"?]+)"`)

// withDVR points a master playlist's media playlists at their DVR view (?dvr=1).
func withDVR(master []byte) []byte {
	lines := strings.Split(string(master), "\n")
	for i, l := range lines {
		switch {
		case l == "":
		case !strings.HasPrefix(l, "#"):
			lines[i] = l + "?dvr=1"
		default:
			lines[i] = uriAttr.ReplaceAllString(l, `URI="$1?dvr=1"`)
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

func (c *Channel) serveMPD(w http.ResponseWriter, clock string, dvr bool) {
	c.mu.Lock()
	p := c.snapshot(time.Now(), clock, dvr)
	if len(p.Video) == 0 {
		c.mu.Unlock()
		fail(w, http.StatusNotFound, "channel has no video yet")
		return
	}
	// Low-latency DASH: the segment in progress is announced at its nominal duration, so that
	// players may ask for it availabilityTimeOffset early and read it chunk by chunk as it is
	// made (serveSegment streams it). The next MPD has its real duration.
	if c.cfg.PartDuration > 0 {
		for _, t := range p.Tracks() {
			tr := c.byID[t.ID]
			if tr == nil || tr.cur == nil || len(tr.cur.parts) == 0 {
				continue
			}
			t.Segments = append(t.Segments, manifest.Segment{
				Start: tr.cur.start, Duration: max(tr.grid, tr.cur.duration), URI: segmentName(tr.cur.number),
				Number: tr.cur.number, ProgramDateTime: tr.cur.pdt, Discontinuity: tr.cur.disc,
			})
			t.LiveParts, t.NextNumber, t.NextProgramDateTime, t.NextDiscontinuity = nil, 0, time.Time{}, false
		}
		c.announceText(p)
	}
	c.mu.Unlock()
	// DASH has one Period here, whose timeline can't go back: after a restart whose media time
	// went back (an encoder reconnecting with its clock reset), the MPD lists the segments
	// since then; HLS keeps the whole window, with EXT-X-DISCONTINUITY.
	for _, t := range p.AllTracks() {
		for i := len(t.Segments) - 1; i > 0; i-- {
			if prev := t.Segments[i-1]; t.Segments[i].Start < prev.Start+prev.Duration {
				t.Segments = t.Segments[i:]
				break
			}
		}
	}
	// A text track without a segment yet (an encoder's text starting after its media) is left
	// out until it has one, rather than keeping the MPD from the media.
	p.Text = slices.DeleteFunc(p.Text, func(t *manifest.Track) bool { return len(t.Segments) == 0 })
	mpd, err := p.DASH()
	if errors.Is(err, manifest.ErrNoSegmentYet) {
		fail(w, http.StatusNotFound, "no complete segment yet")
		return
	}
	if err != nil {
		c.cfg.Logger.Error("live: rendering MPD", "channel", c.cfg.Name, "err", err)
		fail(w, http.StatusInternalServerError, "could not render the MPD")
		return
	}
	w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(max(1, int(c.cfg.SegmentDuration.Seconds()/2))))
	w.Header().Set("Content-Type", "application/dash+xml")
	w.Write(mpd)
}

// playlistMaxAge is how long a non-blocking live playlist may be cached, in seconds.
func (c *Channel) playlistMaxAge() int {
	if c.cfg.PartDuration > 0 {
		return 1
	}
	return max(1, int(c.cfg.SegmentDuration.Seconds()/2))
}

func (c *Channel) serveTrackFile(w http.ResponseWriter, r *http.Request, id, f string) {
	c.mu.Lock()
	t := c.byID[id]
	wvtt := c.textTrackFor(id)
	c.mu.Unlock()
	switch {
	case wvtt != nil:
		c.serveTextFile(w, r, wvtt, true, f)
		return
	case t == nil:
		fail(w, http.StatusNotFound, "no such track")
		return
	case t.text != nil:
		c.serveTextFile(w, r, t, false, f)
		return
	}
	switch {
	case f == manifest.MediaPlaylist:
		c.servePlaylist(w, r, t)
	case t.keys != nil:
		// Encrypted: the init segments are the key periods' (init.mp4, clear, only tells a
		// restarted channel whether its codec configuration changed).
		c.serveKeyedTrackFile(w, r, t, f)
	case f == manifest.InitSegmentName:
		serveInit(w, r, t.init)
	default:
		c.serveMedia(w, r, t, f)
	}
}

// serveKeyedTrackFile answers an encrypted track's files but its playlist: the init segment of
// a key period the channel has published (init-K.mp4), segments and parts.
func (c *Channel) serveKeyedTrackFile(w http.ResponseWriter, r *http.Request, t *track, f string) {
	if f == manifest.InitSegmentName {
		fail(w, http.StatusNotFound, "encrypted channel: the init segments are init-<key period>.mp4")
		return
	}
	if k, ok := parseInitName(f); ok {
		c.mu.Lock()
		init := t.initBytes(k)
		c.mu.Unlock()
		if init == nil {
			fail(w, http.StatusNotFound, "no such key period")
			return
		}
		serveInit(w, r, init)
		return
	}
	c.serveMedia(w, r, t, f)
}

// serveInit answers an init segment, with a strong ETag that is a digest of its bytes: the
// same on every channel that makes the same init segment (redundant origins, a restart).
func serveInit(w http.ResponseWriter, r *http.Request, init []byte) {
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("ETag", fmt.Sprintf(`"i%016x"`, xxhash.Sum64(init)))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(init))
}

// serveMedia answers seg_N.m4s and seg_N.P.m4s.
func (c *Channel) serveMedia(w http.ResponseWriter, r *http.Request, t *track, f string) {
	n, p, ok := parseMediaName(f)
	if !ok {
		fail(w, http.StatusNotFound, "not found")
		return
	}
	if p >= 0 {
		c.servePart(w, r, t, n, p)
	} else {
		c.serveSegment(w, r, t, n)
	}
}

// parseMediaName reads "seg_N.m4s" (p = -1) and "seg_N.P.m4s".
func parseMediaName(f string) (n uint64, p int, ok bool) {
	body, ok := strings.CutPrefix(f, "seg_")
	if !ok {
		return 0, 0, false
	}
	if body, ok = strings.CutSuffix(body, ".m4s"); !ok {
		return 0, 0, false
	}
	num, part, hasPart := strings.Cut(body, ".")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || (len(num) > 1 && num[0] == '0') {
		return 0, 0, false
	}
	if !hasPart {
		return n, -1, true
	}
	p, err = strconv.Atoi(part)
	if err != nil || p < 0 || (len(part) > 1 && part[0] == '0') {
		return 0, 0, false
	}
	return n, p, true
}

// has reports whether segment msn is complete (p < 0), or its part p exists, or anything
// later does (rfc8216bis §6.2.5.2: a blocking request is satisfied by a later segment too).
func (t *track) has(msn uint64, p int) bool {
	if t.cur != nil {
		if t.cur.number > msn {
			return true
		}
		if t.cur.number == msn {
			return p >= 0 && p < len(t.cur.parts)
		}
	}
	return len(t.segs) > 0 && t.segs[len(t.segs)-1].number >= msn
}

// lastMSN is the number of the live edge's segment: the one in progress when parts are listed,
// else the last complete one. ok is false before the first fragment.
func (c *Channel) lastMSN(t *track) (n uint64, part int, ok bool) {
	if c.cfg.PartDuration > 0 && t.cur != nil && t.text == nil {
		return t.cur.number, len(t.cur.parts) - 1, true
	}
	if len(t.segs) > 0 {
		last := t.segs[len(t.segs)-1]
		return last.number, len(last.parts) - 1, true
	}
	return 0, -1, false
}

// wait blocks until ready (evaluated under c.mu) holds, the channel ends, ctx ends or timeout
// passes, and reports whether ready held.
func (c *Channel) wait(ctx context.Context, timeout time.Duration, ready func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		c.mu.Lock()
		ok, ended := ready(), c.ended
		changed := c.changed
		c.mu.Unlock()
		if ok || ended {
			return ok
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

// servePlaylist answers a media playlist request, blocking for _HLS_msn/_HLS_part
// (rfc8216bis §6.2.5.2) and rendering a delta update for _HLS_skip (§6.2.5.1).
func (c *Channel) servePlaylist(w http.ResponseWriter, r *http.Request, t *track) {
	q := r.URL.Query()
	msnStr, partStr := q.Get("_HLS_msn"), q.Get("_HLS_part")
	maxAge := c.playlistMaxAge()
	if msnStr != "" || partStr != "" {
		if msnStr == "" {
			fail(w, http.StatusBadRequest, "_HLS_part without _HLS_msn")
			return
		}
		msn, err := strconv.ParseUint(msnStr, 10, 64)
		part := -1
		if err == nil && partStr != "" {
			part, err = strconv.Atoi(partStr)
			if err == nil && part < 0 {
				err = errors.New("negative part")
			}
		}
		if err != nil {
			fail(w, http.StatusBadRequest, "malformed _HLS_msn or _HLS_part")
			return
		}
		if part >= 0 && (c.cfg.PartDuration == 0 || t.text != nil) {
			fail(w, http.StatusBadRequest, "_HLS_part on a playlist without parts")
			return
		}
		c.mu.Lock()
		last, _, started := c.lastMSN(t)
		c.mu.Unlock()
		if started && msn > last+2 {
			// §6.2.5.2: more than two segments beyond the last one listed.
			c.cfg.Metrics.blocked(c.cfg.Name, "bad")
			fail(w, http.StatusBadRequest, "_HLS_msn is too far in the future")
			return
		}
		// §6.2.5.2: a request that can't be satisfied within three target durations gets 503.
		if !c.wait(r.Context(), 3*c.cfg.SegmentDuration, func() bool { return t.has(msn, part) }) {
			if r.Context().Err() == nil {
				c.cfg.Metrics.blocked(c.cfg.Name, "timeout")
				fail(w, http.StatusServiceUnavailable, "the requested segment or part did not appear in time")
			}
			return
		}
		c.cfg.Metrics.blocked(c.cfg.Name, "served")
		maxAge = max(1, int(c.cfg.SegmentDuration.Seconds()))
	}
	opt := manifest.LiveMediaOptions{Skip: q.Get("_HLS_skip") == "YES" || q.Get("_HLS_skip") == "v2"}
	c.mu.Lock()
	p := c.snapshot(time.Now(), "", q.Get("dvr") == "1")
	if c.cfg.PartDuration > 0 && !c.ended && t.text == nil {
		if t.cur != nil {
			opt.PreloadHint, opt.PreloadHintNumber = partName(t.cur.number, len(t.cur.parts)), t.cur.number
		} else if n, _, ok := c.lastMSN(t); ok && !c.keyAwaited(t, n+1) {
			opt.PreloadHint, opt.PreloadHintNumber = partName(n+1, 0), n+1
		}
	}
	c.mu.Unlock()
	var mt *manifest.Track
	for _, x := range p.AllTracks() {
		if x.ID == t.info.ID {
			mt = x
		}
	}
	if t.text == nil {
		// A subtitle playlist, without parts, reports no renditions: players switch media
		// renditions by their reports, never to or from text.
		opt.Reports = p.RenditionReports(mt)
	}
	w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(maxAge))
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Write(p.HLSLiveMedia(mt, opt))
}

// servePart answers seg_N.P.m4s. The part named by the preload hint (the next one) is waited
// for, as LL-HLS clients ask for it before it exists (rfc8216bis §6.2.6). A part stays
// fetchable as long as its segment is in the DVR window: a player seeking back asks for parts
// it indexed from playlists long gone. Its bytes are then its slice of the segment.
func (c *Channel) servePart(w http.ResponseWriter, r *http.Request, t *track, n uint64, p int) {
	var data []byte
	var off, size int64
	found := false
	find := func() bool {
		data, off, size, found = t.partBytes(n, p)
		return found
	}
	c.mu.Lock()
	find()
	next := false
	if !found && !c.ended {
		switch {
		case t.cur != nil:
			next = t.cur.number == n && p == len(t.cur.parts) || t.cur.number+1 == n && p == 0
		default:
			last, _, ok := c.lastMSN(t)
			next = ok && last+1 == n && p == 0
		}
	}
	c.mu.Unlock()
	if !found && next {
		c.wait(r.Context(), 3*max(c.cfg.PartDuration, time.Second), find)
	}
	if !found {
		if r.Context().Err() == nil {
			fail(w, http.StatusNotFound, "no such part")
		}
		return
	}
	var body io.ReadSeeker
	if data != nil {
		body = bytes.NewReader(data)
	} else {
		f, err := os.Open(filepath.Join(t.dir, segmentName(n)))
		if err != nil {
			fail(w, http.StatusNotFound, "part left the DVR window")
			return
		}
		defer f.Close()
		body = io.NewSectionReader(f, off, size)
	}
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Type", "video/iso.segment")
	http.ServeContent(w, r, "", time.Time{}, body)
}

// serveSegment answers seg_N.m4s: a complete segment from memory or disk; the segment in
// progress is streamed as its parts arrive (low-latency DASH reads chunked segments this way).
func (c *Channel) serveSegment(w http.ResponseWriter, r *http.Request, t *track, n uint64) {
	c.mu.Lock()
	var data []byte
	var etag string
	var seg *segment
	found, inProgress := false, false
	for i := len(t.segs) - 1; i >= 0; i-- {
		if s := t.segs[i]; s.number == n {
			data, found, etag, seg = s.data, true, segmentETag(t, s), s
			break
		} else if s.number < n {
			break
		}
	}
	if !found && t.cur != nil && t.cur.number == n {
		inProgress, etag = true, segmentETag(t, t.cur)
	}
	// The next segment, not started yet: a low-latency DASH player asks for it as soon as its
	// first chunk is due, which may be a moment before it exists.
	next := false
	if !found && !inProgress && !c.ended && c.cfg.PartDuration > 0 {
		if last, _, ok := c.lastMSN(t); ok && n == last+1 && t.cur == nil {
			next = true
		}
	}
	c.mu.Unlock()
	if next && c.wait(r.Context(), 3*c.cfg.PartDuration, func() bool { return t.cur != nil && t.cur.number == n || t.has(n, -1) }) {
		c.serveSegment(w, r, t, n)
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	switch {
	case found && data != nil:
		w.Header().Set("Cache-Control", immutable)
		w.Header().Set("Content-Type", "video/iso.segment")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	case found:
		f, err := os.Open(filepath.Join(t.dir, segmentName(n)))
		if err != nil {
			fail(w, http.StatusNotFound, "segment left the DVR window")
			return
		}
		defer f.Close()
		if etag == "" {
			w.Header().Set("ETag", c.diskSegmentETag(t, seg, f))
		}
		w.Header().Set("Cache-Control", immutable)
		w.Header().Set("Content-Type", "video/iso.segment")
		http.ServeContent(w, r, "", time.Time{}, f)
	case inProgress:
		if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == "*" || strings.Contains(inm, etag)) {
			// RFC 9110 §13.1.2: the segment it has is the one being made.
			w.Header().Set("Cache-Control", immutable)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		// Ranges are not served while the segment grows (RFC 9110 §14.2 lets a server ignore
		// them: the whole segment streams); Accept-Ranges and the ETag tell a cache it may
		// store the stream as it passes and ask for ranges of it once it is complete.
		w.Header().Set("Accept-Ranges", "bytes")
		c.streamSegment(w, r, t, n)
	default:
		fail(w, http.StatusNotFound, "no such segment")
	}
}

// streamSegment sends the parts of segment n as they are produced, until it is complete.
func (c *Channel) streamSegment(w http.ResponseWriter, r *http.Request, t *track, n uint64) {
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Content-Type", "video/iso.segment")
	rc := http.NewResponseController(w)
	sent := 0
	for {
		var chunk [][]byte
		done := false
		c.mu.Lock()
		var parts []part
		if t.cur != nil && t.cur.number == n {
			parts = t.cur.parts
		} else {
			done = true // completed (or abandoned): send what it had
			for i := len(t.segs) - 1; i >= 0; i-- {
				if t.segs[i].number == n {
					parts = t.segs[i].parts
					break
				}
			}
		}
		for _, p := range parts[min(sent, len(parts)):] {
			chunk = append(chunk, p.data)
		}
		sent = max(sent, len(parts))
		changed := c.changed
		ended := c.ended
		c.mu.Unlock()
		for _, b := range chunk {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
		if len(chunk) > 0 {
			rc.Flush()
		}
		if done || ended {
			return
		}
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-time.After(3 * c.cfg.SegmentDuration):
			// The source stalled: abort the response, so the client sees an incomplete body
			// (not a short one that looks whole) and retries.
			panic(http.ErrAbortHandler)
		}
	}
}
