package live

import (
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/manifest"
)

// Demand for live renditions (issue 12): live prefetch fetches only what viewers watch.
//
// Prefetching every list a live manifest names cost the origin more than it saved: an MPD
// lists every representation, an LL-HLS playlist lists whole segments its players never
// fetch (they read parts), and a new list's newest segments were fetched though a player
// joining at the live edge asks for one. So the edge keeps, per rendition — an HLS media
// playlist, a DASH representation — when clients last asked for it:
//
//   - an HLS media playlist is watched by the client request that brought it (prefetches
//     never fetch manifests), and its segments are prefetched — an LL-HLS playlist's only
//     while clients of the rendition fetch whole segments, its preload-hint part only while
//     they fetch hinted parts;
//   - a DASH representation is watched while clients fetch its segments (or its
//     initialization segment): the MPD fill that lists it is no sign of that.
//
// A client request counts when its cache key is one the rendition's last listing named (its
// newest demandIndexed segments, a DASH representation's init segment, the parts its last
// demandParts listings hinted); "recently" is within demandTargets target durations. Only
// what a listing adds to the previous one is prefetched (the first listing: its newest
// segment), so an object evicted or fetched by a client meanwhile is not fetched again.
// Memory is bounded: at most maxRenditions renditions, each indexing at most
// demandIndexed+demandParts+1 keys; a rendition neither listed nor asked for during its
// window is forgotten.

const (
	// demandTargets: a rendition is watched while a client asked for it within this many
	// target durations (players ask for a segment every target duration).
	demandTargets = 3
	// demandIndexed is how many of the newest segments of a list count as demand when asked
	// for (players ask for the newest few).
	demandIndexed = 8
	// demandParts is how many listings' hinted parts count as demand when asked for: a player
	// may ask for the part hinted by the playlist before the newest.
	demandParts = 4
	// maxRenditions bounds the renditions tracked.
	maxRenditions = 1024
)

// demandKind tells what a client asked for: whole segments and init segments, or parts.
type demandKind uint8

const (
	demandMedia demandKind = iota
	demandPart
)

// liveDemand is the edge's table of watched renditions.
type liveDemand struct {
	mu         sync.RWMutex
	renditions map[string]*rendition  // by renditionID
	byKey      map[string][]demandRef // cache key of a listed object → what asking for it means
	indexed    atomic.Int64           // len(byKey): 0 spares the request path the lock
}

type demandRef struct {
	r    *rendition
	kind demandKind
}

// rendition is what the edge knows of one rendition. Guarded by liveDemand.mu, except the
// client request times.
type rendition struct {
	id     string
	keys   []string      // its entries in liveDemand.byKey
	parts  []string      // the hinted parts of its last demandParts listings (cache keys)
	window time.Duration // demandTargets target durations
	listed time.Time     // when a manifest last listed it
	newest string        // the newest complete segment its last listing named
	// UnixNano of the last client request for a segment or init segment, for a part.
	media, part atomic.Int64
}

// note counts a client request (not a prefetch) for the object under key.
func (d *liveDemand) note(key string, now func() time.Time) {
	if d.indexed.Load() != 0 {
		d.noteIndexed(key, now)
	}
}

func (d *liveDemand) noteIndexed(key string, now func() time.Time) {
	d.mu.RLock()
	refs := d.byKey[key]
	if len(refs) > 0 {
		t := now().UnixNano()
		for _, ref := range refs {
			if ref.kind == demandPart {
				ref.r.part.Store(t)
			} else {
				ref.r.media.Store(t)
			}
		}
	}
	d.mu.RUnlock()
}

// listing is one list of a live manifest as the demand table sees it.
type listing struct {
	id     string   // renditionID
	media  []string // cache keys of its newest segments and its init segment
	part   string   // cache key of its hinted part, if any
	newest string   // URL of its newest complete segment
}

// seen is what the table knew of a rendition before a listing.
type seen struct {
	first       bool   // never listed before (or forgotten)
	newest      string // the newest complete segment of the previous listing
	media, part bool   // clients asked for segments, for parts, within the window
}

// listed records a listing of a rendition at now and says what was known of it before.
func (d *liveDemand) listed(l listing, window time.Duration, now time.Time) seen {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.renditions == nil {
		d.renditions, d.byKey = map[string]*rendition{}, map[string][]demandRef{}
	}
	r := d.renditions[l.id]
	s := seen{first: r == nil}
	if r == nil {
		if len(d.renditions) >= maxRenditions {
			d.forgetOldest(now)
		}
		r = &rendition{id: l.id}
		d.renditions[l.id] = r
	} else {
		s.newest = r.newest
		s.media = now.Sub(time.Unix(0, r.media.Load())) <= r.window
		s.part = now.Sub(time.Unix(0, r.part.Load())) <= r.window
		d.unindex(r)
	}
	r.window, r.listed, r.newest = window, now, l.newest
	for _, k := range l.media {
		d.index(k, demandRef{r, demandMedia})
	}
	if l.part != "" && !slices.Contains(r.parts, l.part) {
		r.parts = append(r.parts, l.part)
		r.parts = r.parts[max(0, len(r.parts)-demandParts):]
	}
	for _, k := range r.parts {
		d.index(k, demandRef{r, demandPart})
	}
	d.indexed.Store(int64(len(d.byKey)))
	return s
}

// index makes a request for key count for ref (an object may be listed by several renditions:
// an HLS playlist and an MPD naming the same segments).
func (d *liveDemand) index(key string, ref demandRef) {
	d.byKey[key] = append(d.byKey[key], ref)
	ref.r.keys = append(ref.r.keys, key)
}

// unindex removes r's keys.
func (d *liveDemand) unindex(r *rendition) {
	for _, k := range r.keys {
		refs := slices.DeleteFunc(d.byKey[k], func(ref demandRef) bool { return ref.r == r })
		if len(refs) == 0 {
			delete(d.byKey, k)
		} else {
			d.byKey[k] = refs
		}
	}
	r.keys = r.keys[:0]
}

// expire forgets the renditions neither listed nor asked for during their window.
func (d *liveDemand) expire(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, r := range d.renditions {
		if now.Sub(r.lastActive()) > r.window {
			d.unindex(r)
			delete(d.renditions, id)
		}
	}
	d.indexed.Store(int64(len(d.byKey)))
}

// forgetOldest makes room: the expired renditions go, or else the least recently active.
func (d *liveDemand) forgetOldest(now time.Time) {
	var oldest *rendition
	for id, r := range d.renditions {
		if now.Sub(r.lastActive()) > r.window {
			d.unindex(r)
			delete(d.renditions, id)
		} else if oldest == nil || r.lastActive().Before(oldest.lastActive()) {
			oldest = r
		}
	}
	if len(d.renditions) >= maxRenditions && oldest != nil {
		d.unindex(oldest)
		delete(d.renditions, oldest.id)
	}
}

// lastActive is when r was last listed or asked for.
func (r *rendition) lastActive() time.Time {
	t := r.listed
	for _, n := range []int64{r.media.Load(), r.part.Load()} {
		if u := time.Unix(0, n); u.After(t) {
			t = u
		}
	}
	return t
}

// renditionID names list i of the live manifest a client asked for with r: an HLS media
// playlist by its URL (without the query, which an LL-HLS blocking reload varies), a DASH
// representation by its MPD's and its position in it.
func renditionID(r *http.Request, info manifest.Info, i int) string {
	id := manifestURL(r)
	id.RawQuery = ""
	s := id.String()
	if info.Format == manifest.FormatDASH {
		s += "#" + strconv.Itoa(i)
	}
	return s
}

// sameFolder reports whether two absolute URLs name objects in the same folder (how a DASH
// initialization segment is told to belong to a representation's list).
func sameFolder(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host == ub.Host && path.Dir(ua.Path) == path.Dir(ub.Path)
}
