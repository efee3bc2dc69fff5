package edge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/rangecache"
	"github.com/reelvideo/reel/rangecache/fill"
)

// Range requests for objects not stored whole, and whole objects too large to store whole,
// are the byte-range cache's (package rangecache): this file is the edge's side of it — its
// storage tiers, origins, cache policy and counters, handed over through rangecache's
// interfaces — and writes the responses it describes with the edge's own head.

// metaVariant is the variant key of a URL's slice meta (kept as a special variant of the URL
// so that purges and invalidations drop it); real variant keys never hold NUL.
const metaVariant = "\x00slices"

// reasonSliced marks a fill whose response is stored as slices while it streams
// (rangecache.Cache.Stream): the leader reads it as a plain body, followers through serveSliced.
const reasonSliced = rangecache.ReasonSliced

// newSliceCache is the edge's byte-range cache.
func (e *Edge) newSliceCache() *rangecache.Cache {
	return &rangecache.Cache{
		SliceSize:         int64(e.cfg.SliceSize),
		CoalesceWait:      e.cfg.Limits.CoalesceWait,
		OriginReadTimeout: e.cfg.Limits.OriginReadTimeout,
		Fills:             e.fills,
		Inflight:          &e.inflight,
		Gen:               func(key string) uint64 { return e.tiers.gen(key).Load() },
		Now:               func() time.Time { return e.now() }, // e.now as it is at the call (tests move it)
		Log:               e.log,
		Counters:          sliceCounters{e},
		ClientHeader:      clientHeader,
		Age: func(m *rangecache.Entry, now time.Time) time.Duration {
			return policy.CurrentAge(m.Header, m.RequestTime, m.ResponseTime, now)
		},
		NotModified: func(r *http.Request, m *rangecache.Entry) bool {
			return policy.NotModified(r, policy.Stored{Status: m.Status, Header: m.Header, RequestTime: m.RequestTime, ResponseTime: m.ResponseTime})
		},
	}
}

// serveSliced answers a GET or HEAD from slices and reports whether it did; false leaves the
// request to the whole-object path (rangecache.ErrDecline).
func (e *Edge) serveSliced(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult) bool {
	resp, err := e.slices.Serve(e.sliceRequest(r, up, res))
	switch {
	case errors.Is(err, rangecache.ErrDecline):
		return false
	case errors.Is(err, rangecache.ErrChanged):
		if r.Context().Err() == nil {
			httpError(w, http.StatusServiceUnavailable, "object changed at the origin, retry")
		}
		return true
	case errors.Is(err, rangecache.ErrNotSliceable):
		// Not sliceable (Vary, private, no identity…), another request's answer we may not
		// share, or ranges scattered over slices not stored: the client's own request goes
		// to the origin, uncached.
		e.forward(w, r, up, cachestatus.Status{Fwd: res.fwd, Detail: "unsliced"})
		return true
	case errors.Is(err, rangecache.ErrMultipart):
		httpError(w, http.StatusInternalServerError, "cannot build the multipart reply")
		return true
	case err != nil:
		if r.Context().Err() == nil {
			originError(w, err)
		}
		return true
	}
	defer resp.Close()
	cs := cachestatus.Status{Hit: resp.Cache.Hit, Fwd: resp.Cache.Fwd, FwdStatus: resp.Cache.FwdStatus,
		Stored: resp.Cache.Stored, Collapsed: resp.Cache.Collapsed}
	if d := resp.Direct; d != nil {
		// The origin answered the slice request with something other than a 206: the whole
		// object (it ignores Range), an error… — served as the whole-object path would.
		if d.Head.Direct != nil {
			e.writeHead(w, r, d.Head.Status, clientHeader(d.Head.Header), 0, cs)
			if r.Method != http.MethodHead {
				relay(w, d.Head.Direct)
			}
			return true
		}
		e.serveFill(w, r, d.Head, d.Body, cs)
		return true
	}
	e.writeHead(w, r, resp.Status, resp.Header, resp.Age, cs)
	if r.Method == http.MethodHead {
		return true
	}
	if err := resp.WriteBody(w); err != nil && r.Context().Err() == nil {
		panic(http.ErrAbortHandler) // mid-response: only an abrupt end is honest
	}
	return true
}

// isSliced reports whether the URL is known as a sliced object.
func (e *Edge) isSliced(key string) bool {
	return rangecache.Known(sliceStore{t: &e.tiers}, key)
}

// streamSlices stores resp's body as slices while every request of the fill reads it
// (rangecache.Cache.Stream); it reports false, having done nothing, when the object can't be
// sliced now (the URL was invalidated since gen, or the origin's object is not the one
// recorded).
func (e *Edge) streamSlices(f *fill.Fill, r *http.Request, up *upstream, res lookupResult, resp *http.Response, gen uint64, reqTime, respTime time.Time) bool {
	// The stream stops the origin's idle clock while it waits on its readers: the body is an
	// idleBody (or a live manifest's read-back one), a rangecache.Pausable.
	return e.slices.Stream(f, e.sliceRequest(r, up, res), resp, gen, reqTime, respTime)
}

// keepSlices stores the whole slices among the first n bytes of an abandoned fill's body (read
// from src) as the object's slices, so that the next request for it fetches only the rest
// (abandon.go). header is the object's stored header, size its length.
func (e *Edge) keepSlices(res lookupResult, gen uint64, header http.Header, size int64, src io.ReaderAt, n int64, reqTime, respTime time.Time) {
	// Nothing is fetched: the slices kept come from src.
	q := &rangecache.Request{Key: res.key, Fwd: res.fwd, Store: sliceStore{&e.tiers, res.pol}}
	e.slices.Keep(q, gen, header, size, src, n, reqTime, respTime)
}

// sliceRequest is r, a request for the object res found nothing whole for, as the byte-range
// cache takes it: its key, its storage tiers, its upstream, its cache policy and the edge's
// whole-object path.
func (e *Edge) sliceRequest(r *http.Request, up *upstream, res lookupResult) *rangecache.Request {
	u := &sliceUpstream{e: e, up: up, res: res}
	return &rangecache.Request{HTTP: r, Key: res.key, Fwd: res.fwd, Store: sliceStore{&e.tiers, res.pol},
		Origin: u, Policy: u, Whole: u}
}

// sliceStore is the storage tiers as the byte-range cache sees them (rangecache.Store): metas
// as a special variant of their URL (metaVariant), slices as objects of their own, written
// through to disk; pol is the URL's cache policy, which a stored meta's freshness follows.
type sliceStore struct {
	t   *tiers
	pol policy.Options
}

func (s sliceStore) Meta(key string) *rangecache.Entry {
	var o *store.Object
	if entry, ok := s.t.mem.Lookup(key); ok {
		o = entry.Variants[metaVariant]
	}
	if o == nil {
		o = s.t.diskObject(key, metaVariant, false)
	}
	if o == nil {
		return nil
	}
	return &rangecache.Entry{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime, Invalidated: o.Invalidated}
}

// PutMeta stores a sliced object's meta in both tiers.
func (s sliceStore) PutMeta(key string, m *rangecache.Entry) {
	s.t.mem.Put(key, nil, metaVariant, withFreshness(&store.Object{Status: m.Status, Header: m.Header, RequestTime: m.RequestTime, ResponseTime: m.ResponseTime}, s.pol))
	s.t.persist(&store.DiskObject{Primary: key, VaryKey: metaVariant, Status: m.Status, Header: m.Header,
		RequestTime: m.RequestTime, ResponseTime: m.ResponseTime}, nil)
}

func (s sliceStore) Slice(key string) (http.Header, []byte) {
	var o *store.Object
	if entry, ok := s.t.mem.Lookup(key); ok {
		o = entry.Variants[""]
	}
	if o == nil {
		if o = s.t.diskObject(key, "", true); o != nil {
			s.t.mem.Put(key, nil, "", o) // hot again: back in memory
		}
	}
	if o == nil {
		return nil, nil
	}
	return o.Header, o.Body
}

// SliceHeader finds a slice without reading it.
func (s sliceStore) SliceHeader(key string) http.Header {
	if entry, ok := s.t.mem.Lookup(key); ok {
		if o := entry.Variants[""]; o != nil {
			return o.Header
		}
	}
	if s.t.disk == nil {
		return nil
	}
	_, variant, ok := s.t.disk.Lookup(key)
	if !ok {
		return nil
	}
	if d := variant(""); d != nil {
		return d.Header
	}
	return nil
}

// PutSlice stores a slice in memory, written through to disk.
func (s sliceStore) PutSlice(key string, o *rangecache.Entry) {
	s.t.mem.Put(key, nil, "", &store.Object{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime, Body: o.Body})
	s.t.persist(&store.DiskObject{Primary: key, Status: o.Status, Header: o.Header,
		RequestTime: o.RequestTime, ResponseTime: o.ResponseTime, Size: int64(len(o.Body))}, o.Body)
}

// Forget drops what is known of a sliced object: its meta (with the URL's other variants,
// which describe the old version too) and, with the meta's epoch, every slice stored for it.
func (s sliceStore) Forget(key string) {
	s.t.invalidate(key) // drops the meta in both tiers, stops fills in flight from storing
}

// sliceUpstream is the edge's side of one request for a sliced object: its upstream
// (rangecache.Origin), its URL's cache policy (rangecache.Policy) and the edge's whole-object
// path (rangecache.WholePath).
type sliceUpstream struct {
	e   *Edge
	up  *upstream
	res lookupResult
}

func (s *sliceUpstream) Fetch(ctx context.Context, out *http.Request) (*http.Response, time.Time, time.Time, error) {
	reqTime := s.e.now()
	resp, err := s.e.send(ctx, s.up, out, true, nil)
	if err != nil {
		return nil, time.Time{}, time.Time{}, err
	}
	respTime := s.e.now()
	policy.EnsureDate(resp.Header, respTime)
	return resp, reqTime, respTime, nil
}

// Fresh reports whether a plain request may use the meta now (the response's own
// freshness, RFC 9111 §4.2, and not soft-purged).
func (s *sliceUpstream) Fresh(m *rangecache.Entry) bool {
	if m.Invalidated {
		return false
	}
	st := policy.Stored{Status: http.StatusOK, Header: m.Header, RequestTime: m.RequestTime, ResponseTime: m.ResponseTime}
	plain := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	return policy.Reuse(plain, st, s.e.now(), s.res.pol) == policy.Fresh
}

func (s *sliceUpstream) Storable(whole *http.Request, h http.Header) (http.Header, bool) {
	storable, _ := policy.Storable(whole, http.StatusOK, h, s.res.pol)
	return policy.HeaderToStore(h, s.res.pol), storable
}

func (s *sliceUpstream) StoredWhole(f *fill.Fill, whole *http.Request) bool {
	return s.e.publishIfStored(f, whole, s.res)
}

func (s *sliceUpstream) Publish(f *fill.Fill, whole *http.Request, resp *http.Response, gen uint64, reqTime, respTime time.Time) {
	s.e.publish(f, whole, s.up, s.res, nil, resp, gen, reqTime, respTime)
}

// sliceCounters counts what the byte-range cache does in the edge's stats and metrics.
type sliceCounters struct{ e *Edge }

func (c sliceCounters) Collapsed() {
	c.e.stats.Collapsed.Add(1)
	c.e.m.collapsed.Inc()
}
func (c sliceCounters) Stored()             { c.e.stats.Stored.Add(1) }
func (c sliceCounters) OriginBytes(n int64) { c.e.m.originBytes.Add(float64(n)) }
func (c sliceCounters) ReadAheadStarted()   { c.e.m.prefetchStarted.Inc() }
func (c sliceCounters) ReadAheadUsed()      { c.e.m.prefetchUsed.Inc() }
