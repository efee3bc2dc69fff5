package packager

import (
	"context"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reelvideo/reel/packager/live"
)

// Ingest accepts CMAF pushed over HTTP, in the manner of DASH-IF live media ingest
// (Interface 1): an encoder PUTs or POSTs each track's init segment and then its segments or
// chunks, one request each or one long chunked request, to /ingest/CHANNEL/…. ffmpeg's dash
// muxer with -method PUT is such a sender ("init-stream0.m4s", "chunk-stream0-00001.m4s").
//
// Requests for one track are read in the order they arrive, one at a time; tracks are told
// apart by the request path (see trackKey). Manifests the encoder sends along are accepted and
// ignored (Reel makes its own), as are DELETEs of segments it no longer lists.
type Ingest struct {
	log *slog.Logger
	// Metrics, when set, count requests by channel and status.
	Metrics *live.Metrics

	mu       sync.Mutex
	channels map[string]*ingestChannel
}

type ingestChannel struct {
	ch *live.Channel

	mu      sync.Mutex
	ids     ids
	idsMu   sync.Mutex // the streams of a channel set up their tracks concurrently
	streams map[string]*ingestStream
}

// ingestStream is one track's sender; its lock serialises that track's requests.
type ingestStream struct {
	mu sync.Mutex
	r  *streamReader

	// Requests are taken in order: an encoder may open segment N+1's request before N's
	// handler got the lock, or its first segment's before its init was read. An init goes
	// before the segments that arrive after it (inits counts those waiting), the lowest
	// segment waiting when the first init was read sets where numbers start (waiting counts
	// them by number), and segments follow in number order. last is the last number taken
	// (or the one before the first); done is closed (and replaced) whenever a request is
	// taken.
	orderMu sync.Mutex
	last    int64
	inits   int
	hadInit bool
	waiting map[int64]int
	done    chan struct{}
}

// segmentNumber reads the number at the end of a segment file name ("chunk-stream0-00042.m4s"
// → 42); -1 for files without one (init segments).
func segmentNumber(file string) int64 {
	m := segNumRe.FindStringSubmatch(path.Base(file))
	if m == nil || strings.Contains(strings.ToLower(path.Base(file)), "init") {
		return -1
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

var segNumRe = regexp.MustCompile(`(\d+)\.[A-Za-z0-9]+$`)

// waitTurn holds a request for segment n (n < 0: an init segment) until its turn (or a moment
// has passed: a lost request must not stall the track).
func (st *ingestStream) waitTurn(n int64) {
	st.orderMu.Lock()
	if n < 0 {
		st.inits++
		st.orderMu.Unlock()
		return
	}
	st.waiting[n]++
	st.orderMu.Unlock()
	defer func() {
		st.orderMu.Lock()
		if st.waiting[n]--; st.waiting[n] == 0 {
			delete(st.waiting, n)
		}
		st.orderMu.Unlock()
	}()
	deadline := time.After(2 * time.Second)
	for {
		st.orderMu.Lock()
		ready := st.inits == 0 && st.hadInit
		if ready && st.last < 0 {
			st.last = n - 1
			for m := range st.waiting {
				st.last = min(st.last, m-1)
			}
		}
		if ready && n <= st.last+1 {
			st.orderMu.Unlock()
			return
		}
		done := st.done
		st.orderMu.Unlock()
		select {
		case <-done:
		case <-deadline:
			return
		}
	}
}

func (st *ingestStream) took(n int64) {
	st.orderMu.Lock()
	if n < 0 {
		st.inits--
		st.hadInit = true
	} else {
		st.last = max(st.last, n)
	}
	close(st.done)
	st.done = make(chan struct{})
	st.orderMu.Unlock()
}

// IngestPath is where encoders send.
const IngestPath = "/ingest/"

// NewIngest makes an ingest endpoint without channels.
func NewIngest(log *slog.Logger) *Ingest {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingest{log: log, channels: map[string]*ingestChannel{}}
}

// Add accepts pushes for ch at /ingest/NAME/.
func (g *Ingest) Add(ch *live.Channel) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.channels[ch.Name()] = &ingestChannel{ch: ch, ids: newIDs(), streams: map[string]*ingestStream{}}
}

// mediaTypes are the Content-Types an encoder may label CMAF with; none at all is accepted too.
var mediaTypes = map[string]bool{
	"video/mp4": true, "audio/mp4": true, "application/mp4": true, "video/iso.segment": true,
	"audio/iso.segment": true, "application/octet-stream": true,
}

func (g *Ingest) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	defer func() { g.Metrics.IngestRequest(w.channel, w.status) }()
	rest, ok := strings.CutPrefix(r.URL.Path, IngestPath)
	name, file, _ := strings.Cut(rest, "/")
	g.mu.Lock()
	ic := g.channels[name]
	g.mu.Unlock()
	if !ok || ic == nil || file == "" {
		ingestFail(w, http.StatusNotFound, "no such ingest channel")
		return
	}
	w.channel = name
	switch r.Method {
	case http.MethodPut, http.MethodPost:
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent) // the encoder's own window; Reel keeps its DVR
		return
	default:
		w.Header().Set("Allow", "PUT, POST, DELETE")
		ingestFail(w, http.StatusMethodNotAllowed, "ingest takes PUT or POST")
		return
	}
	switch strings.ToLower(path.Ext(file)) {
	case ".mpd", ".m3u8":
		io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !mediaTypes[mt] {
			ingestFail(w, http.StatusUnsupportedMediaType, "Content-Type "+ct+" is not CMAF (video/mp4, audio/mp4)")
			return
		}
	}
	key := trackKey(file)
	ic.mu.Lock()
	st := ic.streams[key]
	if st == nil {
		st = &ingestStream{r: newStreamReader(ic.ch, name+"/"+key, g.log, ic.ids), last: -1, waiting: map[int64]int{}, done: make(chan struct{})}
		st.r.idsMu = &ic.idsMu
		st.r.reinit = true
		ic.streams[key] = st
	}
	ic.mu.Unlock()

	num := segmentNumber(file)
	st.waitTurn(num)
	st.mu.Lock()
	defer st.mu.Unlock()
	defer st.took(num)
	// Not r.Context(): an encoder may close its connection right after the body's last chunk,
	// which cancels the context while that last fragment still waits in our buffer. The body
	// read itself fails if the sender really went away mid-body.
	if err := st.r.feed(context.Background(), r.Body); err != nil {
		g.log.Warn("live: ingest refused", "channel", name, "track", key, "file", file, "err", err)
		ingestFail(w, http.StatusBadRequest, err.Error())
		return
	}
	// One request carried one segment: it is complete now, not when the next one starts.
	for _, t := range st.r.tracks {
		ic.ch.Flush(t.id)
	}
	w.WriteHeader(http.StatusNoContent)
}

// statusWriter remembers the status answered, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status  int
	channel string
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func ingestFail(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, reason+"\n")
}

var (
	streamsRe  = regexp.MustCompile(`Streams\(([^)]+)\)`)   // DASH-IF ingest: …/Streams(video1)/…
	streamNoRe = regexp.MustCompile(`(?i)stream[-_]?(\d+)`) // ffmpeg: init-stream0.m4s, chunk-stream0-00001.m4s
	trailNumRe = regexp.MustCompile(`[-_.]?\d+$`)
)

// trackKey names the track a pushed file belongs to: the DASH-IF "Streams(ID)" path element,
// else ffmpeg's "streamN", else the file name without its number and extension (so that
// "video-init.mp4"… is not confused: init files drop an "init" word too).
func trackKey(file string) string {
	if m := streamsRe.FindStringSubmatch(file); m != nil {
		return m[1]
	}
	base := path.Base(file)
	if m := streamNoRe.FindStringSubmatch(base); m != nil {
		return "stream" + m[1]
	}
	if dir := path.Dir(file); dir != "." {
		return dir
	}
	stem := strings.TrimSuffix(base, path.Ext(base))
	stem = trailNumRe.ReplaceAllString(stem, "")
	for _, w := range []string{"init", "chunk", "segment", "seg"} {
		stem = strings.Trim(strings.ReplaceAll(stem, w, ""), "-_.")
	}
	if stem == "" {
		return "default"
	}
	return stem
}
