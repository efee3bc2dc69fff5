package live

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/manifest"
)

// prefetchCtx marks the requests of prefetches: what they fetch is not prefetched from.
type prefetchCtx struct{}

// prefetchUnusedAfter: a prefetched object no request has used this long after it was
// fetched counts as wasted (a live segment's audience asks for it within a few target
// durations of its listing).
const prefetchUnusedAfter = time.Minute

// prefetcher is the state of live segment prefetch.
type prefetcher struct {
	sem       chan struct{} // a slot per prefetch in flight
	pending   sync.Map      // primary key → *prefetched, until used or wasted
	n         atomic.Int64  // entries in pending, read on every hit
	lastSweep atomic.Int64  // UnixNano of the last sweep for wasted prefetches
	demand    liveDemand    // the renditions clients watch (demand.go)
}

type prefetched struct {
	at     time.Time
	stored atomic.Bool
}

// Used counts a client request served from an object a prefetch stored (or from its fill),
// once per object. Cheap when no prefetch is pending (inlined on the hit path).
func (l *Manifests) Used(key string) {
	if l.pf.n.Load() != 0 {
		l.used(key)
	}
}

func (l *Manifests) used(key string) {
	if _, ok := l.pf.pending.LoadAndDelete(key); ok {
		l.pf.n.Add(-1)
		l.m.Prefetch["used"].Inc()
		l.m.Used.Add(1)
	}
}

// InFlight is the number of prefetches holding a slot.
func (l *Manifests) InFlight() int { return len(l.pf.sem) }

func (l *Manifests) forget(key string, p *prefetched, result string) {
	if l.pf.pending.CompareAndDelete(key, p) {
		l.pf.n.Add(-1)
		if result != "" {
			l.m.Prefetch[result].Inc()
			if result == "wasted" {
				l.m.Wasted.Add(1)
			}
		}
	}
}

// prefetchListed starts the prefetch of what a live manifest newly lists in the renditions
// clients watch (see demand.go) — the newest segments of every list first, then the next
// newest, and so on, so that scarce slots go to what players ask for first — and returns
// channels closed when each segment and initialization segment's prefetch has ended (the
// preload-hint part is not waited for).
func (l *Manifests) prefetchListed(r *http.Request, info manifest.Info) []<-chan struct{} {
	l.sweep(false)
	plan := l.plan(r, info)
	var waits []<-chan struct{}
	add := func(target string) {
		if ch := l.prefetch(r, target); ch != nil {
			waits = append(waits, ch)
		}
	}
	for _, u := range plan.init {
		add(u)
	}
	for rank := 0; ; rank++ {
		more := false
		for _, list := range plan.segments {
			if i := len(list) - 1 - rank; i >= 0 {
				add(list[i])
				more = true
			}
		}
		if !more {
			break
		}
	}
	if plan.hint != "" {
		l.prefetch(r, plan.hint)
	}
	return waits
}

// prefetchPlan is what to prefetch of a live manifest.
type prefetchPlan struct {
	init     []string
	segments [][]string // per list, oldest first
	hint     string
}

// plan records the listing of each of the manifest's lists in the demand table and picks,
// from the watched ones, what they list that the previous listing did not.
func (l *Manifests) plan(r *http.Request, info manifest.Info) prefetchPlan {
	target := info.Target
	if target <= 0 {
		target = unknownTarget
	}
	window, now := demandTargets*target, l.now()
	hls := info.Format == manifest.FormatHLSMedia
	var plan prefetchPlan
	var watchedFolders []string
	for i, list := range info.Media {
		// Low-latency DASH lists the segment in progress: it is streamed chunk by chunk, and
		// players read it so; prefetch the ones before it.
		complete := list
		if info.Chunked && len(complete) > 0 {
			complete = complete[:len(complete)-1]
		}
		ls := listing{id: renditionID(r, info, i)}
		if len(complete) > 0 {
			ls.newest = complete[len(complete)-1]
		}
		for _, u := range list[max(0, len(list)-demandIndexed):] {
			ls.media = l.appendKey(ls.media, r, u)
		}
		if hls {
			if keys := l.appendKey(nil, r, info.PreloadHint); len(keys) == 1 {
				ls.part = keys[0]
			}
		} else if ls.newest != "" {
			for _, u := range info.Init {
				if sameFolder(u, ls.newest) {
					ls.media = l.appendKey(ls.media, r, u)
				}
			}
		}
		seen := l.pf.demand.listed(ls, window, now)
		// An HLS playlist is watched by the client that asked for it; of an LL-HLS one,
		// whole segments only while its clients fetch some.
		watched := seen.media || (hls && info.PartTarget == 0)
		if hls && seen.part {
			plan.hint = info.PreloadHint
		}
		if !watched {
			continue
		}
		plan.segments = append(plan.segments, newlyListed(complete, seen.newest, l.cfg.Prefetch.Segments))
		if ls.newest != "" {
			watchedFolders = append(watchedFolders, ls.newest)
		}
	}
	for _, u := range info.Init {
		if hls || slices.ContainsFunc(watchedFolders, func(seg string) bool { return sameFolder(u, seg) }) {
			plan.init = append(plan.init, u)
		}
	}
	return plan
}

// newlyListed returns the segments of list after prev (the newest of the previous listing),
// at most n of the newest; when prev is not listed (a first listing, or one after a long
// gap), the newest segment alone: a player joining at the live edge starts there.
func newlyListed(list []string, prev string, n int) []string {
	from := len(list) - 1
	if prev != "" {
		if i := slices.Index(list, prev); i >= 0 {
			from = i + 1
		}
	}
	from = max(from, len(list)-n, 0)
	return list[from:]
}

// appendKey appends the cache key of target, an absolute URL a manifest r brought lists, to
// keys — unless it is one the edge would not prefetch (prefetchable).
func (l *Manifests) appendKey(keys []string, r *http.Request, target string) []string {
	if u, ok := prefetchable(r, target); ok {
		keys = append(keys, l.edge.Key(u, r.Header))
	}
	return keys
}

// prefetchable parses target, an absolute URL a manifest brought by r lists, and reports
// whether it may be prefetched: on r's scheme and host, and not a manifest.
func prefetchable(r *http.Request, target string) (*url.URL, bool) {
	if target == "" {
		return nil, false
	}
	u, err := url.Parse(target)
	base := manifestURL(r)
	if err != nil || u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) || isManifestPath(u.Path) {
		return nil, false
	}
	return u, true
}

// prefetch fetches target into the cache with a fill nobody waits for (Edge.Fill), as if r
// (the manifest's fill request) had asked for it, unless it is on another host, bypassed,
// cached, being fetched, or no slot is free. It returns a channel closed when the fetch has
// ended, or nil when none started.
func (l *Manifests) prefetch(r *http.Request, target string) <-chan struct{} {
	u, ok := prefetchable(r, target)
	if !ok {
		return nil
	}
	pr := r.WithContext(context.WithValue(context.Background(), prefetchCtx{}, true))
	pr.URL = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	pr.RequestURI = ""
	var key string
	var p *prefetched
	// Neither cached nor being fetched: a slot, and the object's entry among the pending.
	admit := func(k string) bool {
		select {
		case l.pf.sem <- struct{}{}:
		default:
			l.m.Prefetch["dropped"].Inc()
			return false
		}
		q := &prefetched{at: l.now()}
		if _, dup := l.pf.pending.LoadOrStore(k, q); dup {
			<-l.pf.sem
			return false
		}
		key, p = k, q
		l.pf.n.Add(1)
		return true
	}
	return l.edge.Fill(pr, FillHooks{
		Admit: admit,
		Abandoned: func() { // a request started it in between: nothing to fetch
			<-l.pf.sem
			l.forget(key, p, "")
		},
		Started: func() {
			l.m.Prefetch["started"].Inc()
			l.m.Started.Add(1)
		},
		Ended: func(end FillResult) {
			defer func() { <-l.pf.sem }()
			if end.Stored {
				p.stored.Store(true)
				return
			}
			l.log.Debug("live prefetch not stored", "key", key, "status", end.Status, "reason", end.Reason, "err", end.Err, "body", end.BodyErr)
			l.forget(key, p, "failed")
		},
	})
}

// sweep counts as wasted the prefetched objects that left the cache, went stale or stayed
// unused for prefetchUnusedAfter, and forgets the renditions nobody watches any more; at most
// once a second unless forced.
func (l *Manifests) sweep(force bool) {
	now := l.now()
	last := l.pf.lastSweep.Load()
	if !force && now.UnixNano()-last < int64(time.Second) || !l.pf.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	l.pf.pending.Range(func(k, v any) bool {
		key, p := k.(string), v.(*prefetched)
		if p.stored.Load() && (now.Sub(p.at) > prefetchUnusedAfter || !l.edge.FreshInCache(key, now)) {
			l.forget(key, p, "wasted")
		}
		return true
	})
	l.pf.demand.expire(now)
}

// SweepNow sweeps the prefetched objects (see sweep) now, however recently the last sweep
// was.
func (l *Manifests) SweepNow() { l.sweep(true) }
