package edge

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Snapshot is a reading of the edge's counters for status pages. The counters are the very
// series /metrics exports (each field names its series), so a page built from snapshots and
// a Prometheus scrape taken at the same moment agree. Counters are totals since the edge
// started; rates are the reader's differences between two snapshots.
type Snapshot struct {
	Time time.Time `json:"time"`
	// Requests are client requests by how the cache answered them: hit, stale, revalidated,
	// miss, bypass, pass, error (reel_edge_requests_total{cache}).
	Requests map[string]int64 `json:"requests"`
	// ResponseBytes are body bytes sent to clients by source: cache, origin
	// (reel_edge_response_bytes_total{source}).
	ResponseBytes map[string]int64 `json:"response_bytes"`
	// OriginRequests (reel_edge_origin_requests_total) and OriginBytes
	// (reel_edge_origin_bytes_total) are what the edge asked of its origins.
	OriginRequests int64 `json:"origin_requests"`
	OriginBytes    int64 `json:"origin_bytes"`
	// Collapsed are requests that joined another request's origin fetch
	// (reel_edge_collapsed_requests_total).
	Collapsed int64 `json:"collapsed"`
	// Prefetch counts slices read ahead of a range request (started) and those a later
	// request used (reel_edge_slice_prefetch_total{result}).
	Prefetch map[string]int64 `json:"prefetch"`
	// LivePrefetch counts live segments fetched ahead of players by result: started, used,
	// wasted, … (reel_edge_live_prefetch_total{result}; empty when the edge has none).
	LivePrefetch map[string]int64 `json:"live_prefetch"`
	// Evictions are objects removed from a tier to make room, by tier
	// (reel_edge_evictions_total{cause="size"}).
	Evictions map[string]int64 `json:"evictions"`
	// Removals are all the objects that left a tier, by tier and cause
	// (reel_edge_evictions_total{tier,cause}): size (evictions), expired, replaced (a newer
	// copy stored over it — a refreshed live manifest, every second), invalidated (purged). Only
	// size is an eviction: counting a refresh as one made a busy live edge look starved.
	Removals map[string]map[string]int64 `json:"removals"`
	// Tier usage (reel_edge_store_bytes{tier}) and the configured sizes; DiskCapacity is 0
	// without a disk tier.
	MemoryBytes    int64 `json:"memory_bytes"`
	MemoryCapacity int64 `json:"memory_capacity"`
	DiskBytes      int64 `json:"disk_bytes"`
	DiskCapacity   int64 `json:"disk_capacity"`
	// Fills are the origin fetches in progress now and FillReaders the requests reading
	// them (their leaders and the coalesced requests that joined them).
	Fills       int `json:"fills"`
	FillReaders int `json:"fill_readers"`
	// Stored counts objects written to a tier (the edge's own counter; not in /metrics).
	Stored int64 `json:"stored"`
	// Top are the most requested paths of the last minutes (see TrackTopObjects), most
	// requested first; empty when requests are not tracked.
	Top []TopObject `json:"top"`
	// History is the last minutes of these counters, one Sample a second, oldest first,
	// sampled in the background whether or not anyone reads them (see History).
	History []Sample `json:"-"`
}

// TopObject is one of the most requested paths. Requests and Bytes fade by half every
// topHalfLife, so they describe recent traffic; under heavy traffic they are estimated from
// a sample of the requests.
type TopObject struct {
	Path     string    `json:"path"`
	Requests float64   `json:"requests"`
	Bytes    float64   `json:"bytes"`
	LastSeen time.Time `json:"last_seen"`
}

// Top objects: how many paths are tracked and shown, when requests start to be sampled, and
// how fast old traffic fades.
const (
	topTracked     = 256
	topShown       = 10
	topBusyRate    = 200 // requests per second above which one request in topSampleEvery is tracked
	topSampleEvery = 16
	topHalfLife    = time.Minute
	topMaxPath     = 200 // bytes of a path kept (paths come from clients)
)

// statusState is the Edge's state for Snapshot (New starts its sampler; Close stops it).
type statusState struct {
	samples  sampleRing
	stop     chan struct{} // closed by Close: the sampler ends
	stopOnce sync.Once
	busy     atomic.Bool // sample requests (set from the rate of the last second)
	mu       sync.Mutex
	objects  map[string]*TopObject
	second   int64     // the Unix second being counted
	rate     float64   // estimated requests in it
	landmark time.Time // see growth
}

// Snapshot reads the edge's counters (see Snapshot): a gathering of the metrics registry,
// as a scrape of /metrics makes, without the text encoding. It takes no lock the request
// path takes, except the fill table's, briefly.
func (e *Edge) Snapshot() Snapshot {
	s := Snapshot{
		Time:           e.now(),
		Requests:       map[string]int64{},
		ResponseBytes:  map[string]int64{},
		Prefetch:       map[string]int64{},
		LivePrefetch:   map[string]int64{},
		Evictions:      map[string]int64{},
		Removals:       map[string]map[string]int64{},
		MemoryCapacity: int64(e.cfg.Memory),
		Stored:         e.stats.Stored.Load(),
	}
	for _, l := range requestLabels {
		s.Requests[l] = 0
	}
	s.ResponseBytes["cache"], s.ResponseBytes["origin"] = 0, 0
	s.Prefetch["started"], s.Prefetch["used"] = 0, 0
	if e.tiers.disk != nil {
		s.DiskCapacity = int64(e.cfg.Disk)
	}
	// Gathered as /metrics gathers them, from the same registry: the values it would export.
	families, _ := e.m.reg.Gather()
	for _, f := range families {
		for _, m := range f.GetMetric() {
			v := int64(m.GetCounter().GetValue() + m.GetGauge().GetValue())
			label := func(name string) string {
				for _, l := range m.GetLabel() {
					if l.GetName() == name {
						return l.GetValue()
					}
				}
				return ""
			}
			switch f.GetName() {
			case "reel_edge_requests_total":
				s.Requests[label("cache")] = v
			case "reel_edge_response_bytes_total":
				s.ResponseBytes[label("source")] = v
			case "reel_edge_origin_requests_total":
				s.OriginRequests = v
			case "reel_edge_origin_bytes_total":
				s.OriginBytes = v
			case "reel_edge_collapsed_requests_total":
				s.Collapsed = v
			case "reel_edge_slice_prefetch_total":
				s.Prefetch[label("result")] = v
			case "reel_edge_live_prefetch_total":
				s.LivePrefetch[label("result")] = v
			case "reel_edge_evictions_total":
				tier, cause := label("tier"), label("cause")
				if s.Removals[tier] == nil {
					s.Removals[tier] = map[string]int64{}
				}
				s.Removals[tier][cause] += v
				if cause == "size" {
					s.Evictions[tier] += v
				}
			case "reel_edge_store_bytes":
				if label("tier") == "memory" {
					s.MemoryBytes = v
				} else if label("tier") == "disk" {
					s.DiskBytes = v
				}
			}
		}
	}
	s.Fills, s.FillReaders = e.fills.InFlight()
	s.Top = e.status.top(s.Time)
	s.History = e.status.samples.read()
	return s
}

// TrackTopObjects returns h (the edge itself, or a handler in front of it) counting requests
// and body bytes by path for Snapshot's top objects. Below topBusyRate requests per second
// every request is counted; above it one in topSampleEvery, weighted, so a busy hit path pays
// one random number per request. The writer of a counted request is wrapped transparently
// (Unwrap, ReadFrom), so the edge's fast paths still find the server's writer.
func (e *Edge) TrackTopObjects(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		weight := 1.0
		if e.status.busy.Load() {
			if rand.Uint32N(topSampleEvery) != 0 {
				h.ServeHTTP(w, r)
				return
			}
			weight = topSampleEvery
		}
		path := r.URL.Path
		cw := &topWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		e.status.observe(path, cw.n, weight, time.Now())
	})
}

// observe counts one (sampled) request for path.
func (s *statusState) observe(path string, n int64, weight float64, now time.Time) {
	if len(path) > topMaxPath {
		path = path[:topMaxPath]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := now.Unix(); sec != s.second {
		// A new second: the last one's count decides whether to sample from now on (an idle
		// spell in between counts as quiet).
		s.busy.Store(sec == s.second+1 && s.rate > topBusyRate)
		s.second, s.rate = sec, 0
	}
	s.rate += weight
	if s.objects == nil {
		s.objects = map[string]*TopObject{}
		s.landmark = now
	}
	g := s.growth(now)
	if g > 1<<20 {
		// Rescale before the stored values grow out of range.
		for _, o := range s.objects {
			o.Requests /= g
			o.Bytes /= g
		}
		s.landmark, g = now, 1
	}
	o := s.objects[path]
	if o == nil {
		if len(s.objects) >= topTracked {
			// Full: the least requested path makes room.
			var min *TopObject
			for _, c := range s.objects {
				if min == nil || c.Requests < min.Requests {
					min = c
				}
			}
			delete(s.objects, min.Path)
		}
		o = &TopObject{Path: path}
		s.objects[path] = o
	}
	o.Requests += weight * g
	o.Bytes += weight * float64(n) * g
	o.LastSeen = now
}

// growth is 2^((now-landmark)/topHalfLife). Counts are stored multiplied by the growth at
// the time they were made ("forward decay"): divided by the growth now, every count has
// halved once per half-life since, without touching the entries as time passes.
func (s *statusState) growth(now time.Time) float64 {
	return math.Exp2(now.Sub(s.landmark).Seconds() / topHalfLife.Seconds())
}

// top returns copies of the most requested paths, with their counts as of now, and forgets
// the paths whose count faded below half a request.
func (s *statusState) top(now time.Time) []TopObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.growth(now)
	out := make([]TopObject, 0, len(s.objects))
	for k, o := range s.objects {
		c := *o
		c.Requests /= g
		c.Bytes /= g
		if c.Requests < 0.5 {
			delete(s.objects, k)
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b TopObject) int {
		switch {
		case a.Requests > b.Requests:
			return -1
		case a.Requests < b.Requests:
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out[:min(len(out), topShown)]
}

// topWriter counts the body bytes of a response on their way to the server's writer.
type topWriter struct {
	http.ResponseWriter
	n int64
}

func (w *topWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the server's sendfile path for file bodies.
func (w *topWriter) ReadFrom(src io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.n += n
	return n, err
}

func (w *topWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Sample is one reading of the counters a status chart draws (see Snapshot for what each
// counts): rates are differences between two samples.
type Sample struct {
	Time           time.Time `json:"t"`
	Requests       int64     `json:"requests"`
	Hits           int64     `json:"hits"` // cache label hit or stale
	CacheBytes     int64     `json:"cache_bytes"`
	OriginSent     int64     `json:"origin_sent"` // bytes sent to clients from origin fetches
	OriginRequests int64     `json:"origin_requests"`
	OriginBytes    int64     `json:"origin_bytes"`
	Collapsed      int64     `json:"collapsed"`
	MemoryBytes    int64     `json:"memory_bytes"`
	DiskBytes      int64     `json:"disk_bytes"`
}

// History: one sample every sampleEvery, the last historyLength of them.
const (
	sampleEvery   = time.Second
	historyLength = 10 * 60
)

// sample reads the sampled counters — the series Snapshot reads, straight from their
// collectors rather than through a gathering of the registry (runtime and process collectors
// included), so that sampling every edge every second costs next to nothing. Its time is the
// wall clock's (e.now is the request path's, which tests may move).
func (e *Edge) sample() Sample {
	s := Sample{Time: time.Now(), CacheBytes: value(e.m.bytesFromCache), OriginSent: value(e.m.bytesFromOrigin),
		OriginRequests: value(e.m.originRequests), OriginBytes: value(e.m.originBytes), Collapsed: value(e.m.collapsed),
		MemoryBytes: int64(e.tiers.mem.Weight())}
	for o, c := range e.m.requestsBy {
		n := value(c)
		s.Requests += n
		if outcome(o) == outcomeHit || outcome(o) == outcomeStale {
			s.Hits += n
		}
	}
	if e.tiers.disk != nil {
		s.DiskBytes = e.tiers.disk.Size()
	}
	return s
}

// value reads a counter.
func value(c prometheus.Counter) int64 {
	var m dto.Metric
	c.Write(&m)
	return int64(m.GetCounter().GetValue())
}

// sampleRing holds the last historyLength samples.
type sampleRing struct {
	mu   sync.Mutex
	buf  []Sample // a ring once full
	next int      // where the next sample goes once full
}

func (r *sampleRing) add(s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < historyLength {
		r.buf = append(r.buf, s)
		return
	}
	r.buf[r.next] = s
	r.next = (r.next + 1) % historyLength
}

// read returns the samples, oldest first (never nil).
func (r *sampleRing) read() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Sample, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// startSampling samples the counters into the history every sampleEvery until Close, so that
// the status charts show idle spells as idle, not as a straight line from the last time a
// page asked (they were sampled only when a page polled).
func (e *Edge) startSampling() {
	e.status.stop = make(chan struct{})
	e.status.samples.add(e.sample())
	go func() {
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-e.status.stop:
				return
			case <-tick.C:
				e.status.samples.add(e.sample())
			}
		}
	}()
}

func (e *Edge) stopSampling() { e.status.stopOnce.Do(func() { close(e.status.stop) }) }
