package edge

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/reelvideo/reel/edge/cachekey"
	"github.com/reelvideo/reel/edge/live"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/rangecache"
	"github.com/reelvideo/reel/rangecache/fill"
)

// Edge is the caching reverse proxy: an http.Handler that serves from its store, coalesces
// misses into one origin fetch per key, and streams fills to every waiting client.
//
// A request goes through the phases of the request flow, in ServeHTTP (flow.go): admit →
// route (→ token) → pass → lookup → decide → upstream → respond.
type Edge struct {
	cfg     Config
	log     *slog.Logger
	keyer   *cachekey.Keyer
	pol     policy.Options
	tiers   tiers // memory and disk, invalidation counts, surrogate keys (storage.go)
	fills   *fill.Table
	origins map[string]*upstream // by Origin.Host ("*" is the default) at start; tests reach them here
	// routing is the origins, the rules and what chooses among them (route.go), the cache
	// policy and the access log: swapped whole by a reload (reload.go), read once per request.
	routing  atomic.Pointer[routing]
	reloadMu sync.Mutex // one reload at a time
	name     string     // this node's Cache-Status member name (RFC 9211) and Via pseudonym
	via      string
	viaWire  string // "Via: " + via + CRLF, for the pre-serialised hit header
	now      func() time.Time
	// parents is the shield tier (nil without one); loopID marks the requests this edge sends
	// upstream (CDN-Loop, RFC 8586) so that one coming back is recognised (parents.go).
	parents *parentSet
	loopID  string

	// poolMetrics are the origin pools' series (pool.go), nil without pools.
	poolMetrics *poolMetrics

	stats Stats
	// fillMem is the bytes of memory-backed fills in flight, bounded by fillMemory(cfg).
	fillMem  atomic.Int64
	inflight sync.WaitGroup // fills running, so that Close lets them store what they fetched
	m        *metrics
	// slices is the byte-range cache (sliced.go): objects stored and served as slices.
	slices *rangecache.Cache
	// status holds what Snapshot reads besides the metrics (stats.go): top objects.
	status    statusState
	live      Live              // cfg.Live with its defaults
	manifests *live.Manifests   // live-manifest handling (live.go, edge/live)
	tokens    *tokenGate        // signed URLs (tokencheck.go); nil when off
	geo       *maxminddb.Reader // geoip.database (access.go); nil when none
	// closing stops new prefetches once Close has begun.
	closing atomic.Bool
	// cluster: purge ids and cluster purges (purgefan.go), set up by AdminHandler.
	cluster clusterSlot
	// comp makes the coded copies of compressible responses (compress.go).
	comp *compressor
	// warm runs the admin API's warm-up jobs (warm.go); Close stops them first.
	warm *warmer
}

// Stats are counters for tests, /metrics and the stats endpoint.
type Stats struct {
	OriginRequests atomic.Int64
	Hits           atomic.Int64
	Misses         atomic.Int64
	Collapsed      atomic.Int64
	Stored         atomic.Int64
	// Live segment prefetch (edge/live/prefetch.go): fetches started, objects a client request then used,
	// objects that left the cache (or stayed) unused.
	PrefetchStarted, PrefetchUsed, PrefetchWasted atomic.Int64
}

// upstream is one configured origin.
type upstream struct {
	url        *url.URL
	hostHeader string
	// parent: a cache of the shield tier, which is sent the client's Host (it routes by it
	// to its own origins) rather than the origin's.
	parent bool
	client *http.Client
	// blocking sends LL-HLS blocking playlist reloads, which the origin may hold for three
	// target durations: its first-byte timeout is at least Live.BlockingWait (and its
	// connections are not the ones other requests wait for).
	blocking *http.Client
	// uploads bounds the request bodies streamed to it at once (reqbody.go).
	uploads *uploadSlots
	// strip is the path prefix not sent to it (Rule.StripPrefix; stripEscaped: as escaped in
	// a path), "" for the whole path: route.go gives each stripping rule its own copy.
	strip, stripEscaped string
	// pool, for an origin with several URLs, holds its members (pool.go): url, client and
	// blocking are then its first member's, and send picks one per request.
	pool *originPool
}

// New builds an edge from a validated configuration.
func New(cfg Config, log *slog.Logger) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	keyer, err := cachekey.New(cfg.Cache.DropParams)
	if err != nil {
		return nil, fmt.Errorf("cache keys: %w", err)
	}
	e := &Edge{
		cfg:     cfg,
		log:     log,
		tiers:   tiers{tags: newTagIndex(), log: log},
		keyer:   keyer,
		pol:     policyOptions(cfg),
		fills:   fill.NewTable(),
		origins: map[string]*upstream{},
		name:    cfg.Name,
		via:     "1.1 " + cfg.Name,
		viaWire: "Via: 1.1 " + cfg.Name + "\r\n",
		loopID:  newLoopID(),
		now:     time.Now,
		live:    cfg.Live.withDefaults(),
		comp:    newCompressor(cfg.Compression),
		tokens:  newTokenGate(cfg.Tokens),
	}
	if e.geo, err = openGeoIP(cfg.GeoIP); err != nil { // access.go
		return nil, err
	}
	e.slices = e.newSliceCache()
	e.m = newMetrics(func() float64 { return float64(e.tiers.mem.Weight()) }, func() float64 {
		if e.tiers.disk == nil {
			return 0
		}
		return float64(e.tiers.disk.Size())
	})
	e.m.ops.setHosts(configuredHosts(cfg))
	e.warm = newWarmer(e)
	e.m.ops.setCapacity(tierMemory(cfg), diskCapacity(cfg))
	e.manifests = e.newLive()
	// The largest object kept in memory is the largest a memory-backed fill may bring in: the
	// fills' share of --memory (--memory/8, as before the tier and the fills shared it).
	if e.tiers.mem, err = store.NewMemory(tierMemory(cfg), fillMemory(cfg), cfg.Cache.MaxVariants, func(cause string) {
		e.m.evictions.WithLabelValues("memory", cause).Inc()
	}); err != nil {
		return nil, err
	}
	if cfg.CacheDir != "" {
		d, err := store.OpenDisk(cfg.CacheDir, int64(cfg.Disk), log, func(cause string) {
			e.m.evictions.WithLabelValues("disk", cause).Inc()
		})
		if err != nil {
			return nil, fmt.Errorf("cache folder %s: %w", cfg.CacheDir, err)
		}
		e.tiers.disk = d
		// Surrogate keys live in the stored headers: rebuild their index.
		d.Each(func(o *store.DiskObject) { e.tiers.tags.add(o.Primary, o.Header) })
	}
	rt, err := e.buildRouting(cfg, nil) // reload.go
	if err != nil {
		return nil, err
	}
	for i, o := range cfg.Origins {
		if o.Host != "" {
			e.origins[o.Host] = rt.upstreams[i]
		}
	}
	if cfg.Parents.enabled() {
		if e.parents, err = newParentSet(cfg, e.m, log, e.newUpstream); err != nil {
			return nil, err
		}
		e.parents.start()
	}
	if rt.accessLog, err = newAccessLog(cfg, log); err != nil {
		return nil, err
	}
	e.routing.Store(rt)
	e.startSampling() // the status page's history (stats.go)
	return e, nil
}

// policyOptions is the cache policy of cfg before the rules' settings.
func policyOptions(cfg Config) policy.Options {
	return policy.Options{
		HeuristicFraction:           cfg.Cache.HeuristicFraction,
		HeuristicMax:                cfg.Cache.HeuristicMax,
		DefaultStaleWhileRevalidate: cfg.Cache.StaleWhileRevalidate,
		DefaultStaleIfError:         cfg.Cache.StaleIfError,
		DefaultTTL:                  cfg.Cache.DefaultTTL,
		MaxNegativeTTL:              negativeOption(cfg.Cache.MaxNegativeTTL),
		MaxErrorTTL:                 cfg.Cache.MaxErrorTTL,
		StripSetCookie:              cfg.Cache.StripSetCookie,
		HeuristicWithCredentials:    cfg.Cache.HeuristicWithCredentials,
	}
}

// Close waits (up to 30s) for running fills to finish storing, then closes the disk tier's
// index. Stop the servers first so that no new fill starts.
func (e *Edge) Close() error {
	e.warm.close()        // no new warm requests (warm.go)
	e.closing.Store(true) // no new prefetches
	e.stopSampling()
	done := make(chan struct{})
	go func() { e.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		e.log.Warn("closing with fills still running; their objects are not stored")
	}
	if e.parents != nil {
		e.parents.close()
	}
	for _, up := range e.rt().upstreams {
		if up.pool != nil {
			up.pool.close()
		}
	}
	if e.cluster.c != nil {
		e.cluster.c.close()
	}
	e.rt().accessLog.close()
	if e.tiers.disk != nil {
		return e.tiers.disk.Close()
	}
	return nil
}

// Stats returns the edge's counters.
func (e *Edge) Stats() *Stats { return &e.stats }
