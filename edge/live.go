package edge

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/manifest"
)

// Live-manifest handling (DESIGN.md "Delivery"; issue 5).
//
// A manifest is recognised by its Content-Type or its extension, read whole when it arrives
// from the origin (manifests are small; up to Live.MaxManifestSize) and classified by
// manifest.Classify. A live one — an HLS media playlist without EXT-X-ENDLIST that is not
// PLAYLIST-TYPE:VOD, a dynamic MPD — changes every part or segment, whatever lifetime the
// origin gives it, so before it is stored its freshness directives are rewritten
// (policy.CapFreshness): s-maxage at most Live.MaxTTLFraction of its target duration (an
// LL-HLS playlist: its part target), stale-while-revalidate and stale-if-error (the origin's
// or the configured defaults) at most Live.MaxStaleFraction of it, and no client max-stale
// beyond that. One mechanism, in the stored header, rather than a live flag that every
// freshness decision would have to consult: the hit path's precomputed freshness, Reuse,
// stale-while-revalidate, stale-if-error after an origin failure, a 304's merge (re-capped),
// the disk tier and a restart all read the same header, and so do caches downstream. Master
// playlists, ended and VOD playlists and static MPDs are stored as the origin says.
//
// Refreshes are coalesced by the fill table like any miss: however many viewers find the
// playlist stale, one origin request per lifetime. LL-HLS blocking reloads are keyed by their
// _HLS_ parameters (the default key keeps the query), so N clients blocking on the same part
// share one origin request held open; their wait and the origin's first-byte timeout are at
// least Live.BlockingWait (rfc8216bis §6.2.5.2 lets the origin hold three target durations).
//
// Prefetch, driven by demand (livedemand.go): when a live manifest is stored, what it newly
// lists in the renditions clients watch — at most Live.Prefetch.Segments of the newest
// segments of each watched list (a first listing: its newest), its initialization segments
// and, while the rendition's clients read parts, its preload-hint part — is fetched into the
// cache through the normal fill path (same host and origin, the playlist request's header),
// unless cached or being fetched already, at most Live.Prefetch.Concurrency at a time. A
// rendition nobody watches is not prefetched: the other representations of an MPD, the whole
// segments of an LL-HLS playlist whose players read parts. A playlist without parts is held
// (Live.Prefetch.Hold) until its new segments are stored, so whoever reads it gets a hit on
// them; an LL-HLS playlist is not held (its players want parts, and the hinted part is held
// by the origin until it exists), nor a low-latency MPD (whose newest segment, in progress,
// is not prefetched: its players read it chunk by chunk as it is made).
// reel_edge_live_prefetch_total counts prefetches started, used (a client request was
// served from the prefetched object, or joined its fill), wasted (the object left the cache —
// evicted, purged — or went stale before any request used it, or was still unused a minute
// later: an approximation, checked at most once a second when live manifests are stored, since
// the memory tier does not say which key it evicts), failed (not stored: an error, a
// 404 for what doesn't exist yet) and dropped (no free slot).

// manifestTypes are the media types of HLS playlists (RFC 8216 §4, plus the legacy ones
// players still send) and DASH MPDs (ISO/IEC 23009-1 Annex C).
var manifestTypes = map[string]bool{
	"application/vnd.apple.mpegurl": true, "application/x-mpegurl": true, "audio/mpegurl": true,
	"audio/x-mpegurl": true, "application/dash+xml": true,
}

// isManifest: a response that may be a manifest, by its Content-Type or its path's extension.
func isManifest(urlPath string, h http.Header) bool {
	if ct := field(h, "Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && manifestTypes[mt] {
			return true
		}
	}
	return isManifestPath(urlPath)
}

func isManifestPath(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".m3u8", ".m3u", ".mpd":
		return true
	}
	return false
}

// blockingReload: an LL-HLS blocking playlist request (rfc8216bis §6.2.5.2), which the origin
// may hold for up to three target durations.
func blockingReload(rawQuery string) bool { return strings.Contains(rawQuery, "_HLS_msn=") }

// unknownTarget stands in for the target duration of a live manifest that gives none.
const unknownTarget = 2 * time.Second

// liveLimits are the most a live manifest may be kept fresh and then served stale.
func (e *Edge) liveLimits(info manifest.Info) (ttl, stale time.Duration) {
	target := info.Target
	if target <= 0 {
		target = unknownTarget
	}
	ttl = time.Duration(float64(target) * e.live.MaxTTLFraction)
	if info.PartTarget > 0 {
		ttl = min(ttl, info.PartTarget)
	}
	// Lifetimes are whole seconds (policy.CapFreshness rounds down); 0 would send every
	// request to the origin.
	return max(ttl, time.Second), time.Duration(float64(target) * e.live.MaxStaleFraction)
}

// manifestURL is the URL a client used for r: what a manifest's relative URIs resolve against.
func manifestURL(r *http.Request) *url.URL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
}

// errReader replays a read error after the bytes read before it.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// readManifest reads a manifest response's body whole (so that it can be classified before
// it is stored) and puts it back on resp as a reader of those bytes — followed by the
// origin's error, if reading stopped on one, so that publish sees the truncation as it would
// have. It returns the bytes, or nil when the body is not read whole (too large).
func (e *Edge) readManifest(resp *http.Response) []byte {
	limit := int64(e.live.MaxManifestSize)
	if resp.ContentLength > limit {
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	rest := io.Reader(resp.Body)
	switch {
	case err != nil:
		rest = errReader{err}
	case int64(len(buf)) <= limit:
		rest = bytes.NewReader(nil)
	}
	resp.Body = &readBackBody{Reader: io.MultiReader(bytes.NewReader(buf), rest), orig: resp.Body}
	if err != nil || int64(len(buf)) > limit || (resp.ContentLength >= 0 && int64(len(buf)) != resp.ContentLength) {
		return nil
	}
	if resp.ContentLength < 0 {
		// Chunked: now of known length, so it is stored like any small response.
		resp.ContentLength = int64(len(buf))
		resp.Header.Set("Content-Length", strconv.Itoa(len(buf)))
	}
	return buf
}

// readBackBody is an origin body partly read ahead: the bytes read, then the rest. Closing it
// and pausing its idle clock act on the origin's body.
type readBackBody struct {
	io.Reader
	orig io.ReadCloser
}

func (b *readBackBody) Close() error { return b.orig.Close() }

func (b *readBackBody) pause() {
	if p, ok := b.orig.(pausable); ok {
		p.pause()
	}
}

func (b *readBackBody) resume() {
	if p, ok := b.orig.(pausable); ok {
		p.resume()
	}
}

// decodedManifest returns a manifest body as text: gzip is undone (bounded); other content
// codings are not read (nil).
func (e *Edge) decodedManifest(h http.Header, body []byte) []byte {
	switch ce := strings.ToLower(strings.TrimSpace(field(h, "Content-Encoding"))); ce {
	case "", "identity":
		return body
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(e.live.MaxManifestSize)+1))
		if err != nil || int64(len(out)) > int64(e.live.MaxManifestSize) {
			return nil
		}
		return out
	}
	return nil
}

// classifyManifest classifies a 200 manifest body (nil info when it is not one).
func (e *Edge) classifyManifest(r *http.Request, h http.Header, body []byte) (manifest.Info, bool) {
	text := e.decodedManifest(h, body)
	if text == nil {
		e.m.manifests.WithLabelValues("unparsed").Inc()
		return manifest.Info{}, false
	}
	info, err := manifest.Classify(text, manifestURL(r))
	if err != nil {
		e.m.manifests.WithLabelValues("unparsed").Inc()
		return manifest.Info{}, false
	}
	kind := info.Format.String()
	if info.Live {
		kind += "-live"
	}
	e.m.manifests.WithLabelValues(kind).Inc()
	return info, true
}

// liveManifest handles a manifest response before publish stores it (see the top of this
// file): it reads and classifies the body, caps a live manifest's freshness in resp.Header,
// starts the prefetch of what it lists and holds it until its new segments are stored.
func (e *Edge) liveManifest(r *http.Request, res lookupResult, resp *http.Response, respTime time.Time) {
	if e.live.Off || resp.StatusCode != http.StatusOK || !isManifest(r.URL.Path, resp.Header) {
		return
	}
	body := e.readManifest(resp)
	if body == nil {
		return
	}
	info, ok := e.classifyManifest(r, resp.Header, body)
	if !ok || !info.Live {
		return
	}
	if storable, _ := policy.Storable(r, resp.StatusCode, resp.Header, res.pol); storable {
		ttl, stale := e.liveLimits(info)
		policy.CapFreshness(resp.StatusCode, resp.Header, respTime, res.pol, ttl, stale)
	}
	if e.live.Prefetch.Off || r.Context().Value(prefetchCtx{}) != nil {
		return
	}
	waits := e.prefetchListed(r, info)
	if len(waits) == 0 || info.PartTarget > 0 || info.Chunked || e.live.Prefetch.Hold <= 0 {
		return
	}
	// Held no longer than a target duration: by then the next version is due anyway.
	hold := e.live.Prefetch.Hold
	if info.Target > 0 {
		hold = min(hold, info.Target)
	}
	timer := time.NewTimer(hold)
	defer timer.Stop()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-timer.C:
			e.log.Debug("live manifest served before its segments were prefetched", "path", r.URL.Path, "hold", hold)
			return
		}
	}
}

// recapRevalidated caps a live manifest's header again after a 304 merged the origin's new
// fields into it (RFC 9111 §4.3.4): its body is classified again (from memory, or the disk
// tier's file).
func (e *Edge) recapRevalidated(r *http.Request, res lookupResult, cond *cached, merged http.Header, respTime time.Time) {
	if e.live.Off || cond.Status != http.StatusOK || !isManifest(r.URL.Path, merged) || cond.Size > int64(e.live.MaxManifestSize) {
		return
	}
	body := cond.mem
	if body == nil && cond.disk != nil {
		data, err := os.ReadFile(cond.disk.Path())
		if err != nil {
			return
		}
		body = data
	}
	if info, ok := e.classifyManifest(r, merged, body); ok && info.Live {
		ttl, stale := e.liveLimits(info)
		policy.CapFreshness(cond.Status, merged, respTime, res.pol, ttl, stale)
	}
}

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
	demand    liveDemand    // the renditions clients watch (livedemand.go)
}

type prefetched struct {
	at     time.Time
	stored atomic.Bool
}

// notePrefetchUse counts a client request served from an object a prefetch stored (or from
// its fill), once per object.
func (e *Edge) notePrefetchUse(key string) {
	if e.pf.n.Load() == 0 {
		return
	}
	if _, ok := e.pf.pending.LoadAndDelete(key); ok {
		e.pf.n.Add(-1)
		e.m.livePrefetch["used"].Inc()
		e.stats.PrefetchUsed.Add(1)
	}
}

func (e *Edge) forgetPrefetch(key string, p *prefetched, result string) {
	if e.pf.pending.CompareAndDelete(key, p) {
		e.pf.n.Add(-1)
		if result != "" {
			e.m.livePrefetch[result].Inc()
			if result == "wasted" {
				e.stats.PrefetchWasted.Add(1)
			}
		}
	}
}

// prefetchListed starts the prefetch of what a live manifest newly lists in the renditions
// clients watch (see livedemand.go) — the newest segments of every list first, then the next
// newest, and so on, so that scarce slots go to what players ask for first — and returns
// channels closed when each segment and initialization segment's prefetch has ended (the
// preload-hint part is not waited for).
func (e *Edge) prefetchListed(r *http.Request, info manifest.Info) []<-chan struct{} {
	if e.closing.Load() {
		return nil
	}
	e.sweepPrefetched()
	plan := e.planPrefetch(r, info)
	var waits []<-chan struct{}
	add := func(target string) {
		if ch := e.prefetchURL(r, target); ch != nil {
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
		e.prefetchURL(r, plan.hint)
	}
	return waits
}

// prefetchPlan is what to prefetch of a live manifest.
type prefetchPlan struct {
	init     []string
	segments [][]string // per list, oldest first
	hint     string
}

// planPrefetch records the listing of each of the manifest's lists in the demand table and
// picks, from the watched ones, what they list that the previous listing did not.
func (e *Edge) planPrefetch(r *http.Request, info manifest.Info) prefetchPlan {
	target := info.Target
	if target <= 0 {
		target = unknownTarget
	}
	window, now := demandTargets*target, e.now()
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
		l := listing{id: renditionID(r, info, i)}
		if len(complete) > 0 {
			l.newest = complete[len(complete)-1]
		}
		for _, u := range list[max(0, len(list)-demandIndexed):] {
			l.media = e.appendKey(l.media, r, u)
		}
		if hls {
			if keys := e.appendKey(nil, r, info.PreloadHint); len(keys) == 1 {
				l.part = keys[0]
			}
		} else if l.newest != "" {
			for _, u := range info.Init {
				if sameFolder(u, l.newest) {
					l.media = e.appendKey(l.media, r, u)
				}
			}
		}
		seen := e.pf.demand.listed(l, window, now)
		// An HLS playlist is watched by the client that asked for it; of an LL-HLS one,
		// whole segments only while its clients fetch some.
		watched := seen.media || (hls && info.PartTarget == 0)
		if hls && seen.part {
			plan.hint = info.PreloadHint
		}
		if !watched {
			continue
		}
		plan.segments = append(plan.segments, newlyListed(complete, seen.newest, e.live.Prefetch.Segments))
		if l.newest != "" {
			watchedFolders = append(watchedFolders, l.newest)
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
func (e *Edge) appendKey(keys []string, r *http.Request, target string) []string {
	if u, ok := prefetchable(r, target); ok {
		keys = append(keys, e.keyer.KeyURL(u, r.Header))
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

// prefetchURL fetches target into the cache with a fill nobody waits for (detached.go), as if
// r (the manifest's fill request) had asked for it, unless it is on another host, bypassed,
// cached, being fetched, or no slot is free. It returns a channel closed when the fetch has
// ended, or nil when none started.
func (e *Edge) prefetchURL(r *http.Request, target string) <-chan struct{} {
	u, ok := prefetchable(r, target)
	if !ok {
		return nil
	}
	pr := r.WithContext(context.WithValue(context.Background(), prefetchCtx{}, true))
	pr.URL = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	pr.RequestURI = ""
	var key string
	var p *prefetched
	admit := func(k string) bool {
		select {
		case e.pf.sem <- struct{}{}:
		default:
			e.m.livePrefetch["dropped"].Inc()
			return false
		}
		p = &prefetched{at: e.now()}
		if _, dup := e.pf.pending.LoadOrStore(k, p); dup {
			<-e.pf.sem
			p = nil
			return false
		}
		key = k
		e.pf.n.Add(1)
		return true
	}
	done := e.fillDetached(pr, admit, func(end detachedEnd) {
		defer func() { <-e.pf.sem }()
		if end.Stored {
			p.stored.Store(true)
			return
		}
		e.log.Debug("live prefetch not stored", "key", key, "status", end.Status, "reason", end.Reason, "err", end.Err, "body", end.BodyErr)
		e.forgetPrefetch(key, p, "failed")
	})
	if done == nil {
		if p != nil {
			// A request started it in between: nothing to fetch.
			<-e.pf.sem
			e.forgetPrefetch(key, p, "")
		}
		return nil
	}
	e.m.livePrefetch["started"].Inc()
	e.stats.PrefetchStarted.Add(1)
	return done
}

// sweepPrefetched counts as wasted the prefetched objects that left the cache, went stale or
// stayed unused for prefetchUnusedAfter; at most once a second.
func (e *Edge) sweepPrefetched() {
	now := e.now()
	last := e.pf.lastSweep.Load()
	if now.UnixNano()-last < int64(time.Second) || !e.pf.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	e.pf.pending.Range(func(k, v any) bool {
		key, p := k.(string), v.(*prefetched)
		if p.stored.Load() && (now.Sub(p.at) > prefetchUnusedAfter || !e.freshInCache(key, now)) {
			e.forgetPrefetch(key, p, "wasted")
		}
		return true
	})
	e.pf.demand.expire(now)
}

// freshInCache reports whether some variant of key is stored and fresh (for a plain request).
func (e *Edge) freshInCache(key string, now time.Time) bool {
	if entry, ok := e.mem.Lookup(key); ok {
		for _, o := range entry.Variants {
			if now.Before(o.FreshUntil) {
				return true
			}
		}
	}
	if e.disk != nil {
		if _, _, ok := e.disk.Lookup(key); ok {
			return true
		}
	}
	return false
}
