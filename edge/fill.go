package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/live"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/rangecache"
	"github.com/reelvideo/reel/rangecache/fill"
)

// fillKey is what concurrent requests coalesce on: the URL key plus, when the URL's Vary is
// known, the request's secondary key; revalidations of a stored object coalesce separately
// from plain misses so that their conditional answers are never mixed up. The key's
// invalidation count is part of it: a request that comes after a purge must not join a fill
// that began before it and get the content the purge was meant to remove.
func (e *Edge) fillKey(res lookupResult, cond *cached) string {
	k := res.key + "\x00" + res.vk + "\x00" + strconv.FormatUint(e.tiers.gen(res.key).Load(), 10)
	if cond != nil {
		k += "\x00revalidate"
	}
	return k
}

// joinFill joins the fill of res's key (cond: the stored object revalidated, if any), or
// starts it with out — a fill request (fill.Request), whose context is the leader's — as the
// request it sends upstream. The caller must call f.Done.
func (e *Edge) joinFill(out *http.Request, up *upstream, res lookupResult, cond *cached) (f *fill.Fill, leader bool) {
	e.inflight.Add(1) // before the fill's goroutine exists, so Close can't miss it
	f, leader = e.fills.Join(out.Context(), e.fillKey(res, cond), func(ctx context.Context, f *fill.Fill) {
		defer e.inflight.Done()
		e.runFill(ctx, f, up, out, res, cond)
	})
	if !leader {
		e.inflight.Done()
	}
	return f, leader
}

// fillAndServe joins (or starts) the fill for the request and serves it as it arrives. cond
// is the stored object being revalidated, if any.
func (e *Edge) fillAndServe(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult, fwd string, cond *cached) {
	r = withInterim(r, w) // the origin's 103 Early Hints reach the leader's client (interim.go)
	if e.followFill(w, r, up, res, fwd, cond, false) {
		// The fill's leader kept its answer to itself because of what its own request
		// carried (fill.Head.Rejoin): one more fill, led by one of us, before going alone.
		e.followFill(w, r, up, res, fwd, cond, true)
	}
}

// followFill joins (or starts) the fill for the request and serves it as it arrives, or
// reports that it should join a new one (only when !last): the response was its leader's
// alone because of the leader's own request.
func (e *Edge) followFill(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult, fwd string, cond *cached, last bool) (rejoin bool) {
	f, leader := e.joinFill(fill.Request(r), up, res, cond)
	if !leader && !last { // a request that rejoins was counted when it first joined
		e.stats.Collapsed.Add(1)
		e.m.collapsed.Inc()
		e.manifests.Used(res.key)
	}
	defer f.Done()
	// The leader waits as long as the origin's own timeouts allow; followers only
	// CoalesceWait, then fall back to a stale copy or their own request — at least
	// Live.BlockingWait for an LL-HLS blocking reload, which the origin may hold that long.
	wait := e.cfg.Limits.CoalesceWait
	switch {
	case leader:
		wait = 0
	case live.BlockingReload(r.URL.RawQuery):
		wait = max(wait, e.live.BlockingWait)
	}
	head, body, err := f.Head(r.Context(), leader, wait)
	if err == nil && !leader {
		if vk, ok := policy.VaryKey(head.Vary, r.Header); !ok || vk != head.VaryKey {
			err = fill.ErrNotShareable // the response negotiated something else than we asked
		}
	}
	now := e.now()
	canStale := cond != nil && policy.CanServeStaleOnError(cond.stored(), now, res.pol)
	switch {
	case err == nil && canStale && serverError(head.Status):
		// RFC 5861 §4: the origin answered the revalidation with a server error.
		e.serveObject(w, r, now, e.coded(w, r, res.key, res.vk, cond), res.pol, cachestatus.Status{Fwd: cachestatus.FwdStale, FwdStatus: head.Status, Detail: "stale-if-error"})
		return
	case err != nil && canStale && !errors.Is(err, fill.ErrNotShareable) && r.Context().Err() == nil:
		// Origin down, timed out, or too slow to wait for.
		e.serveObject(w, r, now, e.coded(w, r, res.key, res.vk, cond), res.pol, cachestatus.Status{Fwd: cachestatus.FwdStale, Detail: "stale-if-error"})
		return
	case errors.Is(err, fill.ErrNotShareable) && head.Reason == reasonSliced && e.serveSliced(w, r, up, res):
		// The leader streams an object too large to share while it stores it as slices:
		// followers read it through coalesced slices rather than each from the origin.
		return
	case errors.Is(err, fill.ErrNotShareable) && head.Rejoin && !last:
		return true
	case errors.Is(err, fill.ErrNotShareable), errors.Is(err, fill.ErrHeadTimeout):
		// Not ours to share, or the origin is too slow to wait for: go on our own.
		e.forward(w, r, up, cachestatus.Status{Fwd: fwd, Detail: "uncollapsed"})
		return
	case err != nil:
		if r.Context().Err() == nil {
			originError(w, err)
		}
		return
	}

	cs := cachestatus.Status{Fwd: fwd, FwdStatus: head.Status, Stored: head.Stored, Collapsed: !leader}
	if head.Reason == reasonRevalidated {
		cs.FwdStatus = http.StatusNotModified
	}
	if head.Direct != nil {
		defer head.Direct.Close()
		e.writeHead(w, r, head.Status, clientHeader(head.Header), 0, cs)
		if r.Method != http.MethodHead {
			relay(w, head.Direct)
		}
		return
	}
	// A compressible response goes out in the coding the request prefers once stored, or as
	// it is, with Vary: Accept-Encoding (compress.go).
	head, coded := e.codingFill(w, r, head)
	if coded && e.serveCodedFill(w, r, res, head, body, cs) {
		return
	}
	e.serveFill(w, r, head, body, cs)
	return
}

// runFill fetches one response for a coalesced group and publishes it: shareable responses
// are copied into a Body every waiter reads and stored when complete; others are handed to
// the leader alone. cond is the stored object being revalidated, if any.
func (e *Edge) runFill(ctx context.Context, f *fill.Fill, up *upstream, r *http.Request, res lookupResult, cond *cached) {
	if e.publishIfStored(f, r, res) {
		return
	}
	var extra http.Header
	if cond != nil {
		extra = policy.ConditionalRequestHeaders(cond.Header)
	}
	gen := e.tiers.gen(res.key).Load()
	resp, reqTime, respTime, ok := e.fetchForFill(ctx, f, up, r, extra)
	if !ok {
		return
	}

	if cond != nil {
		switch {
		case resp.StatusCode == http.StatusNotModified:
			resp.Body.Close()
			if merged, ok := policy.MergeNotModified(cond.Header, resp.Header); ok {
				e.manifests.OnRevalidated(r, res.pol, merged, respTime, cond.Status, cond.Size, cond.bytes)
				e.revalidated(f, res, cond, merged, reqTime, respTime)
				return
			}
			// The 304 is about another representation: fetch it whole.
			e.runFill(ctx, f, up, r, res, nil)
			return
		}
	}
	e.publish(f, r, up, res, cond, resp, gen, reqTime, respTime)
}

// publishIfStored serves a fill from the cache when the object was stored between the
// request's lookup and its fill starting (the previous fill for the key finished in that
// window), instead of fetching it again.
func (e *Edge) publishIfStored(f *fill.Fill, r *http.Request, res lookupResult) bool {
	l := e.tiers.lookup(res.key, r.Header, res.pol)
	if l.obj == nil || l.obj.mem == nil {
		return false
	}
	if _, _, fresh := l.obj.quickFresh(r, e.now()); !fresh {
		return false
	}
	body := fill.NewMemoryBodySize(l.obj.Size)
	body.Write(l.obj.mem)
	body.Finish(nil)
	f.SetHead(fill.Head{Status: l.obj.Status, Header: l.obj.Header, Shareable: true, Stored: true, Vary: l.vary, VaryKey: l.vk}, body)
	return true
}

// fetchForFill sends a fill's request (plus extra header fields) to the origin and returns
// the response with a Date and the exchange's times (RFC 9111 §4.2.3); on failure it fails
// the fill and reports false.
func (e *Edge) fetchForFill(ctx context.Context, f *fill.Fill, up *upstream, r *http.Request, extra http.Header) (*http.Response, time.Time, time.Time, bool) {
	reqTime := e.now()
	resp, err := e.send(ctx, up, r, true, extra)
	if err != nil {
		f.Fail(err)
		return nil, time.Time{}, time.Time{}, false
	}
	respTime := e.now()
	policy.EnsureDate(resp.Header, respTime)
	return resp, reqTime, respTime, true
}

// publish hands a fetched response to the fill: stored and shared when storable, relayed
// when short, streamed to the leader alone otherwise. gen is the key's invalidation count
// when the fetch began.
func (e *Edge) publish(f *fill.Fill, r *http.Request, up *upstream, res lookupResult, cond *cached, resp *http.Response, gen uint64, reqTime, respTime time.Time) {
	// A live manifest's freshness is capped in its header before anything below reads it,
	// and what it lists is prefetched (edge/live).
	e.manifests.OnResponse(r, res.pol, resp, respTime)
	storable, reason := policy.Storable(r, resp.StatusCode, resp.Header, res.pol)
	vary := resp.Header.Values("Vary")
	vk, varyOK := policy.VaryKey(vary, r.Header)
	size := resp.ContentLength
	storable = storable && varyOK
	if storable && len(vary) == 0 && e.cfg.SliceSize > 0 && rangecache.StreamableUnknownLength(resp) &&
		e.streamSlices(f, r, up, res, resp, gen, reqTime, respTime) {
		// Unknown length (chunked) at an origin that serves ranges: stored as slices while
		// it streams to every request of the fill, its meta recorded once it ended complete
		// (rangecache/stream.go) — whatever its length turns out to be, and without a tier's limit.
		return
	}
	sliceable := size > 0 && e.cfg.SliceSize > 0 && len(vary) == 0 && resp.StatusCode == http.StatusOK && rangecache.Identity(resp.Header, size) != ""
	whole := storable && !(sliceable && e.cfg.SliceThreshold > 0 && size > int64(e.cfg.SliceThreshold))
	inMemory := whole && size >= 0 && e.tiers.mem.Fits(size) && e.reserveFillMem(size)
	if inMemory {
		defer e.fillMem.Add(-size)
	}
	var room *store.Room // made on disk before the body is written, so the tier never overfills
	if whole && !inMemory && e.tiers.disk != nil && size <= int64(e.cfg.MaxObjectSize) {
		room = e.tiers.disk.Reserve(max(size, 0))
	}
	defer room.Release()
	onDisk := room != nil
	if storable && !inMemory && !onDisk {
		reason = "size"
		if sliceable && e.streamSlices(f, r, up, res, resp, gen, reqTime, respTime) {
			// Too large for any tier whole, or above slice_threshold: stored as slices while
			// it streams, the leader, the requests that joined it and those arriving
			// meanwhile all reading the slices of this one origin response (rangecache/stream.go).
			// (Not when the URL was invalidated meanwhile, or the object is not the version
			// recorded: then the leader alone gets it, below.)
			return
		}
		if size < 0 {
			// Unknown length (chunked), no disk tier, and nothing to slice it by (no strong
			// ETag or no Accept-Ranges, see above): the leader streams it directly, and a
			// copy is kept and stored if the body ends complete within the memory tier's
			// object limit. (Waiters meanwhile fetch on their own.)
			reason = "unknown-length"
			direct := &teeStore{ReadCloser: resp.Body, limit: e.tiers.mem.MaxObject()}
			direct.complete = func(data []byte) {
				if e.tiers.gen(res.key).Load() != gen {
					return
				}
				header := policy.HeaderToStore(resp.Header, res.pol)
				e.tiers.mem.Put(res.key, vary, vk, withFreshness(&store.Object{Status: resp.StatusCode, Header: header, RequestTime: reqTime, ResponseTime: respTime, Body: data}, res.pol))
				e.tiers.tags.add(res.key, header)
				e.stats.Stored.Add(1)
			}
			f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: direct, Reason: reason}, nil)
			return
		}
	}
	if !inMemory && !onDisk {
		// A short error with no per-user state is relayed to every collapsed request —
		// including ones that may answer with a stale copy instead (RFC 5861 §4) — rather
		// than sending each of them to a failing origin (errshare.go).
		if shareableError(r, resp) && e.relayError(f, r, resp) {
			return
		}
		// Kept from the others by the leader's own credentials: they fill again together,
		// not each on its own (fillAndServe) — or one client's Authorization on the first
		// request for a new object would send everyone who joined it to the origin.
		f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: resp.Body, Reason: reason, Rejoin: policy.ByRequest(reason)}, nil)
		return
	}
	header := policy.HeaderToStore(resp.Header, res.pol)
	var body *fill.Body
	var tmp *os.File
	var err error
	if inMemory {
		body = fill.NewMemoryBodySize(size)
	} else {
		if tmp, err = e.tiers.disk.TempFile(); err != nil {
			f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: resp.Body, Reason: "disk"}, nil)
			return
		}
		body = fill.NewFileBody(tmp)
	}
	f.SetHead(fill.Head{Status: resp.StatusCode, Header: header, Shareable: true, Stored: true, Vary: vary, VaryKey: vk}, body)
	limit := int64(e.cfg.MaxObjectSize)
	src := &abandonGuard{Reader: resp.Body, f: f, limit: int64(e.cfg.Limits.AbandonedFillBytes)}
	n, err := body.CopyHoldingLast(io.LimitReader(src, limit+1))
	resp.Body.Close()
	e.m.originBytes.Add(float64(n))
	switch {
	case err != nil:
	case size >= 0 && n != size:
		err = fmt.Errorf("origin sent %d of %d bytes", n, size)
	case n > limit:
		err = fmt.Errorf("body exceeds the %d-byte object limit", limit)
	}
	if err != nil {
		if errors.Is(err, errAbandoned) && sliceable && e.tiers.gen(res.key).Load() == gen {
			var arrived io.ReaderAt = tmp
			if tmp == nil {
				arrived = bytes.NewReader(body.Written())
			}
			e.keepSlices(res, gen, header, size, arrived, n, reqTime, respTime)
		}
		body.Finish(err) // an interrupted fill is never stored nor passed off as complete
		if tmp != nil {
			os.Remove(tmp.Name())
		}
		e.log.Warn("origin body interrupted", "key", res.key, "err", err)
		return
	}
	obj := &store.DiskObject{Primary: res.key, Vary: vary, VaryKey: vk, Status: resp.StatusCode, Header: header,
		RequestTime: reqTime, ResponseTime: respTime, Size: n}
	if e.tiers.gen(res.key).Load() != gen {
		// Purged or invalidated while we fetched: serve what we have, store nothing.
		body.Finish(nil)
		if tmp != nil {
			os.Remove(tmp.Name())
		}
		return
	}
	if inMemory {
		// Store, then Finish: once a client has the complete body, it is stored — so a purge
		// it sends next can't be undone by a store that lands later.
		data := body.Written()
		e.tiers.mem.Put(res.key, vary, vk, withFreshness(&store.Object{Status: resp.StatusCode, Header: header, RequestTime: reqTime, ResponseTime: respTime, Body: data}, res.pol))
		e.tiers.persist(obj, data)
		body.Finish(nil)
	} else {
		// Commit before Finish: by the time anyone sees the body complete, it is stored.
		if err := room.Commit(tmp.Name(), obj); err != nil {
			e.log.Warn("disk tier: storing a body", "key", res.key, "err", err)
		}
		body.Finish(nil)
	}
	e.tiers.tags.add(res.key, header)
	e.stats.Stored.Add(1)
}

// teeStore passes a body through while keeping a copy of up to limit bytes; complete is
// called with the copy if the body reached a clean end within the limit.
type teeStore struct {
	io.ReadCloser
	limit    int64
	buf      []byte
	over     bool
	complete func([]byte)
}

func (t *teeStore) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if !t.over {
		if int64(len(t.buf)+n) > t.limit {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	if err == io.EOF && !t.over && t.complete != nil {
		t.complete(t.buf)
		t.complete = nil
	}
	return n, err
}

// revalidated publishes a stored object refreshed by a 304 (RFC 9111 §4.3.4): new headers
// and exchange times in both tiers, the same body.
func (e *Edge) revalidated(f *fill.Fill, res lookupResult, cond *cached, merged http.Header, reqTime, respTime time.Time) {
	if cond.mem != nil {
		e.tiers.mem.Put(res.key, res.vary, res.vk, withFreshness(&store.Object{Status: cond.Status, Header: merged, RequestTime: reqTime, ResponseTime: respTime, Body: cond.mem}, res.pol))
	}
	if e.tiers.disk != nil {
		// The object revalidated (cond.disk, or the one the memory copy came from) — Update
		// leaves a newer object of the same key alone.
		target := cond.disk
		if target == nil {
			if _, variant, ok := e.tiers.disk.Lookup(res.key); ok {
				target = variant(res.vk)
			}
		}
		if target != nil {
			e.tiers.disk.Update(target, merged, reqTime, respTime)
		}
	}
	e.stats.Stored.Add(1)
	var body *fill.Body
	if cond.mem != nil {
		body = fill.NewMemoryBodySize(cond.Size)
		body.Write(cond.mem)
		body.Finish(nil)
	} else {
		file, err := os.Open(cond.disk.Path())
		if err != nil {
			f.Fail(err)
			return
		}
		body = fill.NewCompleteFileBody(file, cond.Size)
	}
	f.SetHead(fill.Head{Status: cond.Status, Header: merged, Shareable: true, Stored: true, Vary: res.vary, VaryKey: res.vk, Reason: reasonRevalidated}, body)
}

// reasonRevalidated marks a fill head rebuilt from a 304.
const reasonRevalidated = "revalidated"

// refreshInBackground revalidates a stale-while-revalidate entry once per key (RFC 5861 §3)
// with a fill nobody waits for (detached.go): concurrent requests for it join the same
// refresh.
func (e *Edge) refreshInBackground(r *http.Request, up *upstream, res lookupResult) {
	e.detach(fill.Request(r.WithContext(context.WithoutCancel(r.Context()))), up, res, res.obj, drainUnshared, live.FillHooks{})
}

// reserveFillMem accounts size bytes of a memory-backed fill, refusing when fills in flight
// would exceed their share of --memory (fillMemory: many concurrent large misses must not
// exhaust RAM; such fills go to disk or are passed through).
func (e *Edge) reserveFillMem(size int64) bool {
	if e.fillMem.Add(size) > fillMemory(e.cfg) {
		e.fillMem.Add(-size)
		return false
	}
	return true
}
