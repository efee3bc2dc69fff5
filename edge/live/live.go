// Package live is the edge's live-manifest handling (DESIGN.md "Delivery"; issues 5 and 12):
// a module the edge's request flow calls at named points — Watched and Used where a request
// is looked up, OnResponse before an origin response is stored, OnRevalidated after a 304 —
// and that asks the edge, through the small Edge interface, for cache keys, cache lookups
// and fills nobody waits for. It never imports the edge.
//
// A manifest is recognised by its Content-Type or its extension, read whole when it arrives
// from the origin (manifests are small; up to Config.MaxManifestSize) and classified by
// manifest.Classify (manifest.go). A live one — an HLS media playlist without EXT-X-ENDLIST
// that is not PLAYLIST-TYPE:VOD, a dynamic MPD — changes every part or segment, whatever
// lifetime the origin gives it, so before it is stored its freshness directives are rewritten
// (policy.CapFreshness, freshness.go): s-maxage at most Config.MaxTTLFraction of its target
// duration (an LL-HLS playlist: its part target), stale-while-revalidate and stale-if-error
// (the origin's or the configured defaults) at most Config.MaxStaleFraction of it, and no
// client max-stale beyond that. One mechanism, in the stored header, rather than a live flag
// that every freshness decision would have to consult: the hit path's precomputed freshness,
// Reuse, stale-while-revalidate, stale-if-error after an origin failure, a 304's merge
// (re-capped), the disk tier and a restart all read the same header, and so do caches
// downstream. Master playlists, ended and VOD playlists and static MPDs are stored as the
// origin says.
//
// Refreshes are coalesced by the fill table like any miss: however many viewers find the
// playlist stale, one origin request per lifetime. LL-HLS blocking reloads are keyed by their
// _HLS_ parameters (the default key keeps the query), so N clients blocking on the same part
// share one origin request held open; their wait and the origin's first-byte timeout are at
// least the edge's live.blocking_wait (rfc8216bis §6.2.5.2 lets the origin hold three target
// durations; BlockingReload tells those requests).
//
// Prefetch, driven by demand (demand.go, prefetch.go): when a live manifest is stored, what
// it newly lists in the renditions clients watch — at most Prefetch.Segments of the newest
// segments of each watched list (a first listing: its newest), its initialization segments
// and, while the rendition's clients read parts, its preload-hint part — is fetched into the
// cache by a fill nobody waits for (Edge.Fill: same host and origin, the playlist request's
// header), unless cached or being fetched already, at most Prefetch.Concurrency at a time. A
// rendition nobody watches is not prefetched: the other representations of an MPD, the whole
// segments of an LL-HLS playlist whose players read parts. A playlist without parts is held
// (Prefetch.Hold) until its new segments are stored, so whoever reads it gets a hit on them;
// an LL-HLS playlist is not held (its players want parts, and the hinted part is held by the
// origin until it exists), nor a low-latency MPD (whose newest segment, in progress, is not
// prefetched: its players read it chunk by chunk as it is made).
// reel_edge_live_prefetch_total counts prefetches started, used (a client request was
// served from the prefetched object, or joined its fill), wasted (the object left the cache —
// evicted, purged — or went stale before any request used it, or was still unused a minute
// later: an approximation, checked at most once a second when live manifests are stored, since
// the memory tier does not say which key it evicts), failed (not stored: an error, a
// 404 for what doesn't exist yet) and dropped (no free slot).
package live

import (
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reelvideo/reel/edge/policy"
)

// Config is the live handling's configuration, its defaults applied (the edge's
// configuration file has it as "live").
type Config struct {
	// Off makes manifests follow the normal rules, live or not.
	Off bool
	// MaxTTLFraction and MaxStaleFraction cap a live manifest's freshness and staleness at
	// these fractions of its target duration (freshness.go).
	MaxTTLFraction, MaxStaleFraction float64
	// MaxManifestSize: larger manifests are not classified (and follow the normal rules).
	MaxManifestSize int64
	Prefetch        PrefetchConfig
}

// PrefetchConfig tunes segment prefetch (prefetch.go).
type PrefetchConfig struct {
	Off bool
	// Segments is how many, at most, of the segments a refresh adds to each watched list are
	// prefetched, the newest first.
	Segments int
	// Concurrency bounds the prefetches in flight; a segment that finds no free slot is not
	// prefetched.
	Concurrency int
	// Hold is how long, at most, a refreshed live manifest (without LL-HLS parts) waits for
	// its newly listed segments to be stored before it is served (0: not held).
	Hold time.Duration
}

// Edge is what the module needs of the edge that owns it.
type Edge interface {
	// Key is the cache key of u requested with the header h.
	Key(u *url.URL, h http.Header) string
	// FreshInCache reports whether some variant of key is stored and fresh at now for a plain
	// request — or, in the disk tier, stored at all (its freshness is not read there).
	FreshInCache(key string, now time.Time) bool
	// Fill starts a fill of r (a GET) that nobody waits for, unless r's object is not
	// cacheable through the edge, cached, or being filled already; hooks take part in its
	// steps. It returns nil when no fill started; otherwise a channel closed once the fill
	// has ended (after hooks.Ended).
	Fill(r *http.Request, hooks FillHooks) <-chan struct{}
}

// FillHooks are the steps of a fill nobody waits for that the one who asked for it takes part
// in (each may be nil).
type FillHooks struct {
	// Admit is called with the object's cache key just before the fill is joined, and may
	// still refuse it (a prefetch without a free slot). Once it said yes, either Abandoned
	// or Started is called.
	Admit func(key string) bool
	// Abandoned: admitted, but a fill of the key began in between (a client's request):
	// nothing to fetch.
	Abandoned func()
	// Started: the fill started; called before it can end.
	Started func()
	// Ended: a started fill ended, and how.
	Ended func(FillResult)
}

// FillResult is how a fill nobody waited for ended.
type FillResult struct {
	Stored bool   // the response was stored, its body complete
	Status int    // the response's status (0 when there was none)
	Reason string // why it was not shared, when it was not
	// Err is the fill's failure, BodyErr its body's (read or stored incompletely).
	Err, BodyErr error
}

// Metrics are the counters the module adds to, made by the edge.
type Metrics struct {
	// Manifests counts the manifests classified, by kind (reel_edge_manifests_total).
	Manifests *prometheus.CounterVec
	// Prefetch counts live prefetches by result: started, used, wasted, failed, dropped
	// (reel_edge_live_prefetch_total).
	Prefetch map[string]prometheus.Counter
	// Started, Used and Wasted are the edge's Stats of the same prefetches.
	Started, Used, Wasted *atomic.Int64
}

// Manifests is the live-manifest handling of one edge.
type Manifests struct {
	cfg  Config
	edge Edge
	m    Metrics
	log  *slog.Logger
	now  func() time.Time
	pf   prefetcher
}

// New makes the live handling of an edge: cfg with its defaults applied, now the edge's
// clock.
func New(cfg Config, edge Edge, m Metrics, log *slog.Logger, now func() time.Time) *Manifests {
	l := &Manifests{cfg: cfg, edge: edge, m: m, log: log, now: now}
	l.pf.sem = make(chan struct{}, cfg.Prefetch.Concurrency)
	return l
}

// Watched notes a client request (not a prefetch) for the object under key: live prefetch
// follows what clients watch (demand.go). Cheap when no live manifest lists anything.
func (l *Manifests) Watched(key string) { l.pf.demand.note(key, l.now) }

// OnResponse handles an origin response for r, cached under the policy pol, before it is
// stored: if it is a manifest (a 200), it reads and classifies the body, caps a live
// manifest's freshness in resp.Header, starts the prefetch of what it lists and holds it until
// its new segments are stored (see the package doc).
func (l *Manifests) OnResponse(r *http.Request, pol policy.Options, resp *http.Response, respTime time.Time) {
	if l.cfg.Off || resp.StatusCode != http.StatusOK || !isManifest(r.URL.Path, resp.Header) {
		return
	}
	body := l.readManifest(resp)
	if body == nil {
		return
	}
	info, ok := l.classify(r, resp.Header, body)
	if !ok || !info.Live {
		return
	}
	if storable, _ := policy.Storable(r, resp.StatusCode, resp.Header, pol); storable {
		l.capFreshness(info, resp.StatusCode, resp.Header, respTime, pol)
	}
	if l.cfg.Prefetch.Off || r.Context().Value(prefetchCtx{}) != nil {
		return
	}
	waits := l.prefetchListed(r, info)
	if len(waits) == 0 || info.PartTarget > 0 || info.Chunked || l.cfg.Prefetch.Hold <= 0 {
		return
	}
	// Held no longer than a target duration: by then the next version is due anyway.
	hold := l.cfg.Prefetch.Hold
	if info.Target > 0 {
		hold = min(hold, info.Target)
	}
	timer := time.NewTimer(hold)
	defer timer.Stop()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-timer.C:
			l.log.Debug("live manifest served before its segments were prefetched", "path", r.URL.Path, "hold", hold)
			return
		}
	}
}
