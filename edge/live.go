package edge

import (
	"net/http"
	"net/url"
	"time"

	"github.com/reelvideo/reel/edge/live"
)

// The edge's side of live-manifest handling, which is the module edge/live: its
// configuration, its counters, and what it asks of the edge (live.Edge) — cache keys, cache
// lookups and fills nobody waits for (detached.go). The request flow calls it at named points:
// Watched where a request is looked up and Used where it is served from the cache (flow.go)
// or joins a fill (fill.go), OnResponse before an origin response is stored and
// OnRevalidated after a 304 (fill.go).

// newLive makes the edge's live handling, from e.live (the configuration with its defaults),
// its metrics and stats.
func (e *Edge) newLive() *live.Manifests {
	cfg := live.Config{
		Off:              e.live.Off,
		MaxTTLFraction:   e.live.MaxTTLFraction,
		MaxStaleFraction: e.live.MaxStaleFraction,
		MaxManifestSize:  int64(e.live.MaxManifestSize),
		Prefetch: live.PrefetchConfig{
			Off:         e.live.Prefetch.Off,
			Segments:    e.live.Prefetch.Segments,
			Concurrency: e.live.Prefetch.Concurrency,
			Hold:        e.live.Prefetch.Hold,
		},
	}
	m := live.Metrics{
		Manifests: e.m.manifests,
		Prefetch:  e.m.livePrefetch,
		Started:   &e.stats.PrefetchStarted,
		Used:      &e.stats.PrefetchUsed,
		Wasted:    &e.stats.PrefetchWasted,
	}
	// The clock is read through e.now, which tests move.
	return live.New(cfg, liveEnv{e}, m, e.log, func() time.Time { return e.now() })
}

// liveEnv is the edge as the live module sees it.
type liveEnv struct{ e *Edge }

func (l liveEnv) Key(u *url.URL, h http.Header) string {
	return l.e.keyOfURL(u, h)
}

func (l liveEnv) Fill(r *http.Request, hooks live.FillHooks) <-chan struct{} {
	return l.e.fillDetached(r, hooks)
}

// FreshInCache reports whether some variant of key is stored and fresh (for a plain request).
func (l liveEnv) FreshInCache(key string, now time.Time) bool {
	return l.e.tiers.freshVariant(key, now)
}
