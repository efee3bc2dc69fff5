package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/reelvideo/reel/edge"
)

// originCounter counts the requests (and body bytes) an origin receives from the edge, per URL.
type originCounter struct {
	h     http.Handler
	mu    sync.Mutex
	reqs  map[string]int
	sent  map[string]int64 // body bytes per URL
	total atomic.Int64
	bytes atomic.Int64
}

func (c *originCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Via"), "reel") { // the edge's requests, not the test's own
		uri := r.URL.RequestURI()
		c.mu.Lock()
		c.reqs[uri]++
		c.mu.Unlock()
		c.total.Add(1)
		w = &countingWriter{ResponseWriter: w, add: func(n int) {
			c.bytes.Add(int64(n))
			c.mu.Lock()
			c.sent[uri] += int64(n)
			c.mu.Unlock()
		}}
	}
	c.h.ServeHTTP(w, r)
}

// countingWriter counts a response's body bytes as they are written, so that a count read
// while the response is still going out includes what went out so far.
type countingWriter struct {
	http.ResponseWriter
	add func(n int)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.add(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	streamInfURIRe = regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:.*\n(\S+)$`)
	mediaURIRe     = regexp.MustCompile(`#EXT-X-MEDIA:TYPE=AUDIO.*URI="([^"]+)"`)
	mapURIRe       = regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`)
	segLineRe      = regexp.MustCompile(`(?m)^(seg_\d+\.m4s)$`)
)

// eventStats is what the viewers of the simulated event saw.
type eventStats struct {
	requests, bytes atomic.Int64
	segments        atomic.Int64 // segment responses
	segmentMisses   atomic.Int64 // segment responses that were not hits
	errors          atomic.Int64
	first           sync.Map // segment URL → the Cache-Status of the first response for it
	asked           sync.Map // segment URLs a viewer sent a request for (got or cut short)
}

// get fetches url for a viewer, counting the request, its bytes and failures (once ctx ends,
// failures are the viewer leaving), and returns the body, Cache-Status and status code. The
// request counts when it is sent: one the end of the run cuts short may already have made
// the edge ask the origin, and that origin request is on its behalf.
func (st *eventStats) get(ctx context.Context, c *http.Client, url string) (string, string, int) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	st.requests.Add(1)
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			st.errors.Add(1)
		}
		return "", "", 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	st.bytes.Add(int64(len(b)))
	if err != nil || resp.StatusCode != http.StatusOK {
		if ctx.Err() == nil {
			st.errors.Add(1)
		}
		return "", "", resp.StatusCode
	}
	return string(b), resp.Header.Get("Cache-Status"), resp.StatusCode
}

// segment fetches a segment for a viewer and counts it; it reports whether the viewer got it.
func (st *eventStats) segment(ctx context.Context, c *http.Client, url string) bool {
	st.asked.Store(url, true)
	_, cs, code := st.get(ctx, c, url)
	if code != http.StatusOK {
		return false
	}
	st.segments.Add(1)
	if !strings.HasPrefix(cs, "reel; hit") {
		st.segmentMisses.Add(1)
	}
	st.first.LoadOrStore(url, cs)
	return true
}

// pause waits d and a random bit more (players don't reload in step), or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d + rand.N(100*time.Millisecond)):
	}
}

// viewer follows one rendition (and the audio) like an HLS player (RFC 8216 §6.3.4: reload the
// playlist a target duration after it changed, half of one after it did not), starting at the
// live edge and fetching each new segment once, until ctx ends.
func viewer(ctx context.Context, c *http.Client, base string, rendition int, st *eventStats) {
	master, _, _ := st.get(ctx, c, base+"/live/event/master.m3u8")
	variants := streamInfURIRe.FindAllStringSubmatch(master, -1)
	if len(variants) == 0 {
		return
	}
	playlists := []string{base + "/live/event/" + variants[rendition%len(variants)][1]}
	if m := mediaURIRe.FindStringSubmatch(master); m != nil {
		playlists = append(playlists, base+"/live/event/"+m[1])
	}
	type follow struct {
		url, dir, last string
		init           bool
	}
	var fs []*follow
	for _, p := range playlists {
		fs = append(fs, &follow{url: p, dir: p[:strings.LastIndex(p, "/")+1]})
	}
	// Viewers join at random moments of the first second.
	pause(ctx, rand.N(time.Second))
	for ctx.Err() == nil {
		changed := false
		for _, f := range fs {
			pl, _, code := st.get(ctx, c, f.url)
			if code != http.StatusOK {
				continue
			}
			if !f.init {
				if m := mapURIRe.FindStringSubmatch(pl); m != nil {
					st.get(ctx, c, f.dir+m[1])
				}
				f.init = true
			}
			segs := segLineRe.FindAllString(pl, -1)
			if len(segs) == 0 {
				continue
			}
			// New segments since the last one fetched (at the start: the newest only).
			from := len(segs) - 1
			for i, s := range segs {
				if s == f.last {
					from = i + 1
				}
			}
			for _, s := range segs[from:] {
				if st.segment(ctx, c, f.dir+s) {
					f.last, changed = s, true
				}
			}
		}
		wait := time.Second // half the target duration
		if changed {
			wait = 2 * time.Second
		}
		pause(ctx, wait)
	}
}

// dashViewer is viewer's DASH twin: it follows one video Representation (and the audio) of the
// MPD like a DASH player — reloading it every minimumUpdatePeriod (2 s), fetching the init
// segment once and each new segment once, starting at the newest — until ctx ends.
func dashViewer(ctx context.Context, c *http.Client, base string, rendition int, st *eventStats) {
	dir := base + "/live/event/"
	next := map[string]uint64{} // Representation → the next number to fetch
	pause(ctx, rand.N(time.Second))
	for ctx.Err() == nil {
		body, _, code := st.get(ctx, c, dir+"manifest.mpd")
		m, err := mpd.ReadFromString(body)
		if code != http.StatusOK || err != nil || len(m.Periods) == 0 {
			pause(ctx, time.Second)
			continue
		}
		var video, audio []*mpd.RepresentationType
		for _, as := range m.Periods[0].AdaptationSets {
			switch {
			case as.ContentType == "video" || strings.HasPrefix(as.MimeType, "video/"):
				video = append(video, as.Representations...)
			case as.ContentType == "audio" || strings.HasPrefix(as.MimeType, "audio/"):
				audio = append(audio, as.Representations...)
			}
		}
		var follow []*mpd.RepresentationType
		if len(video) > 0 {
			follow = append(follow, video[rendition%len(video)])
		}
		if len(audio) > 0 {
			follow = append(follow, audio[0])
		}
		for _, rep := range follow {
			tmpl := rep.SegmentTemplate
			if tmpl == nil && rep.Parent() != nil {
				tmpl = rep.Parent().SegmentTemplate
			}
			if tmpl == nil || tmpl.SegmentTimeline == nil || tmpl.StartNumber == nil {
				continue
			}
			expand := func(t string, n uint64) string {
				return dir + strings.ReplaceAll(strings.ReplaceAll(t, "$RepresentationID$", rep.Id), "$Number$", strconv.FormatUint(n, 10))
			}
			last := uint64(*tmpl.StartNumber) - 1
			for _, s := range tmpl.SegmentTimeline.S {
				last += uint64(s.R) + 1
			}
			from, ok := next[rep.Id]
			if !ok {
				st.get(ctx, c, expand(tmpl.Initialization, 0))
				from = last // at the start: the newest only
			}
			for n := max(from, uint64(*tmpl.StartNumber)); n <= last; n++ {
				if !st.segment(ctx, c, expand(tmpl.Media, n)) {
					break
				}
				next[rep.Id] = n + 1
			}
			if !ok && next[rep.Id] == 0 {
				next[rep.Id] = last
			}
		}
		pause(ctx, 2*time.Second)
	}
}

// startEvent loops a live ladder (three video renditions and audio, 2 s segments) as the
// channel "event" behind one edge, and returns once every media playlist lists segments
// segments; the origin counts what the edge asks of it.
func startEvent(t *testing.T, log *slog.Logger, segments int) (*edge.Edge, string, *originCounter) {
	t.Helper()
	srv := loopChannel(t, "event", 0, sample("ladder_720p.mp4"), sample("ladder_480p.mp4"), sample("ladder_360p.mp4"))
	counter := &originCounter{h: srv, reqs: map[string]int{}, sent: map[string]int64{}}
	o := httptest.NewServer(counter)
	t.Cleanup(o.Close)
	e, base := edgeInFront(t, o.URL, log)
	// Straight from the origin (not counted: no Via).
	get := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return ""
		}
		return string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		master := get(o.URL + "/live/event/master.m3u8")
		var lists []string
		for _, m := range streamInfURIRe.FindAllStringSubmatch(master, -1) {
			lists = append(lists, m[1])
		}
		if m := mediaURIRe.FindStringSubmatch(master); m != nil {
			lists = append(lists, m[1])
		}
		ready := len(lists) > 0
		for _, l := range lists {
			ready = ready && len(segLineRe.FindAllString(get(o.URL+"/live/event/"+l), -1)) >= segments
		}
		if ready {
			return e, base, counter
		}
		if time.Now().After(deadline) {
			t.Fatalf("the channel did not start: not %d segments in every playlist after 30 s", segments)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// watch runs n viewers for dur, viewer i as run(ctx, client, i), and returns when they are done.
func watch(n int, dur time.Duration, run func(ctx context.Context, c *http.Client, i int)) {
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxIdleConns: 0, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx, client, i)
		}()
	}
	wg.Wait()
}

// TestLiveEvent is the simulated event of issue 5: 1,000 viewers (goroutines) follow a looped
// live ladder (three video renditions and audio, 2 s segments) through one edge for 60 s.
// The origin must see at most one request per segment and at most one per media playlist per
// edge lifetime (1 s: half the target duration), +1; the first viewer of each segment gets a
// hit, thanks to the prefetch. It logs the offload: what the viewers asked for against what
// the origin was asked. Under the race detector (and -short) it runs 100 viewers for 15 s;
// make test also runs it at full size without.
func TestLiveEvent(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	viewers, dur := 1000, 60*time.Second
	if raceEnabled || testing.Short() {
		viewers, dur = 100, 15*time.Second
	}
	e, base, counter := startEvent(t, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})), 1)
	var st eventStats
	start := time.Now()
	watch(viewers, dur, func(ctx context.Context, c *http.Client, i int) { viewer(ctx, c, base, i, &st) })
	elapsed := time.Since(start)

	counter.mu.Lock()
	reqs := make(map[string]int, len(counter.reqs))
	for k, v := range counter.reqs {
		reqs[k] = v
	}
	counter.mu.Unlock()
	var segURLs, playlists []string
	maxSeg, maxPlaylist := 0, 0
	for u, n := range reqs {
		switch {
		case strings.HasSuffix(u, ".m4s") || strings.HasSuffix(u, ".mp4"):
			segURLs = append(segURLs, u)
			maxSeg = max(maxSeg, n)
			if n > 1 {
				t.Errorf("%s: %d origin requests, want ≤ 1", u, n)
			}
		case strings.HasSuffix(u, "index.m3u8"):
			playlists = append(playlists, u)
			maxPlaylist = max(maxPlaylist, n)
		}
	}
	sort.Strings(playlists)
	// The edge's lifetime for these playlists: half the 2 s target, 1 s.
	allowed := int(elapsed/time.Second) + 1 + 1
	for _, p := range playlists {
		if reqs[p] > allowed {
			t.Errorf("%s: %d origin requests in %v, want ≤ %d (1 per 1 s lifetime, +1)", p, reqs[p], elapsed.Round(time.Second), allowed)
		}
	}
	firstMisses := 0
	firsts := 0
	st.first.Range(func(k, v any) bool {
		firsts++
		if !strings.HasPrefix(v.(string), "reel; hit") {
			firstMisses++
			t.Logf("the first response for %s was not a hit: %q", k, v)
		}
		return true
	})
	// The prefetch races the viewers' own requests by design; on a loaded machine one may
	// win now and then (it still makes no extra origin request: the check above). A few per
	// cent would mean the prefetch isn't doing its job.
	if firstMisses > max(1, firsts/20) {
		t.Errorf("%d of %d first segment requests were not hits (prefetch)", firstMisses, firsts)
	}
	if st.segments.Load() == 0 || firsts < 3*int(dur/(2*time.Second))/2 {
		t.Errorf("viewers got %d segment responses, %d distinct segments", st.segments.Load(), firsts)
	}
	if n := st.errors.Load(); n > 0 {
		t.Errorf("%d failed viewer requests", n)
	}
	originReqs, originBytes := counter.total.Load(), counter.bytes.Load()
	s := e.Stats()
	report := fmt.Sprintf("\n%d viewers × %v (3 video renditions + audio, 2 s segments, one edge):\n"+
		"  viewers: %d requests, %.1f MB (%d segment responses for %d distinct segments, %d not hits)\n"+
		"  origin:  %d requests, %.1f MB — max %d per segment or init, max %d per media playlist (allowed %d)\n"+
		"  offload: %.0f× requests, %.0f× bytes (%.2f%% of requests and %.2f%% of bytes reached the origin)\n"+
		"  prefetch: %d started, %d used, %d wasted; first viewer of a segment: %d/%d hits\n",
		viewers, elapsed.Round(time.Second),
		st.requests.Load(), float64(st.bytes.Load())/1e6, st.segments.Load(), firsts, st.segmentMisses.Load(),
		originReqs, float64(originBytes)/1e6, maxSeg, maxPlaylist, allowed,
		float64(st.requests.Load())/float64(max(originReqs, 1)), float64(st.bytes.Load())/float64(max(originBytes, 1)),
		100*float64(originReqs)/float64(max(st.requests.Load(), 1)), 100*float64(originBytes)/float64(max(st.bytes.Load(), 1)),
		s.PrefetchStarted.Load(), s.PrefetchUsed.Load(), s.PrefetchWasted.Load(), firsts-firstMisses, firsts)
	t.Log(report)
}
