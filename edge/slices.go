package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/rangecache"
	"github.com/reelvideo/reel/rangecache/fill"
)

// Range requests for objects not stored whole are answered from slices: fixed-size, aligned
// pieces of the object (Config.SliceSize), each fetched from the origin with its own Range
// request, coalesced and stored as its own cache entry. A client asking for bytes=0-99 of an
// uncached 4 GB object makes the origin send one slice, and its first byte goes out as soon
// as that slice's first bytes arrive. A read of several slices asks for slice i+1 while slice
// i is sent, and a range longer than one slice reads one slice past its end: the origin never
// sends more than the requested bytes rounded out to slices, plus that one.
//
// The object's identity — its strong ETag, or Last-Modified with its length — is recorded
// with the first slice (the slice "meta", kept as a special variant of the URL so that purges
// and invalidations drop it) and checked on every slice: bytes of two versions are never
// mixed into one response.
//
// A whole-object response that is to be stored as slices — too large for any tier whole,
// above slice_threshold, or of unknown length at an origin that serves ranges — is cut into
// them as it streams, every request of its fill reading the one origin response
// (slicestream.go).
//
// Slices are keyed with an epoch: a random number chosen when the meta is recorded and kept
// in it (so on disk too). Dropping the meta — a purge, an invalidation, a changed object —
// drops the epoch, and the next meta has a new one, so every slice stored before is
// unreachable in both tiers, after a restart as well; while the meta stays, its slices are
// found again after a restart. (The in-memory invalidation counts, gens, start from zero at
// every start: slices keyed with them would come back after a purge and a restart, and be
// lost after a restart without one. They still stop a fill that began before a purge from
// storing what it fetched.)

// metaVariant is the variant key of a URL's slice meta; real variant keys never hold NUL.
const metaVariant = "\x00slices"

// epochField carries a sliced object's epoch in its meta's header and in the heads of slice
// fills; clients never see it.
const epochField = "X-Reel-Slice-Epoch"

// errChanged reports that the origin's object changed between two slices of one response.
var errChanged = errors.New("object changed while its slices were read")

// errNotSliceable reports a 206 that can't be cached as a slice (Vary, private, no identity…).
var errNotSliceable = errors.New("response cannot be cached as a slice")

// sliceMeta is what the first slice taught us about a sliced object.
type sliceMeta struct {
	total    int64
	identity string
	epoch    uint64        // what the object's slices are keyed with; 0: none stored
	header   http.Header   // the object's header, as for a 200 of the whole object
	obj      *store.Object // the stored meta (for its freshness), nil for a fill's head
}

func (e *Edge) loadSliceMeta(key string) (*sliceMeta, bool) {
	var o *store.Object
	if entry, ok := e.mem.Lookup(key); ok {
		o = entry.Variants[metaVariant]
	}
	if o == nil {
		o = e.diskObject(key, metaVariant, false)
	}
	if o == nil {
		return nil, false
	}
	total, err := strconv.ParseInt(o.Header.Get("Content-Length"), 10, 64)
	if err != nil {
		return nil, false
	}
	return &sliceMeta{total: total, identity: identity(o.Header, total), epoch: epochOf(o.Header), header: o.Header, obj: o}, true
}

func epochOf(h http.Header) uint64 {
	n, _ := strconv.ParseUint(h.Get(epochField), 10, 64)
	return n
}

// metaFresh reports whether a plain request may use the meta now (the response's own
// freshness, RFC 9111 §4.2, and not soft-purged).
func (e *Edge) metaFresh(meta *sliceMeta, pol policy.Options) bool {
	if meta.obj.Invalidated {
		return false
	}
	st := policy.Stored{Status: http.StatusOK, Header: meta.obj.Header, RequestTime: meta.obj.RequestTime, ResponseTime: meta.obj.ResponseTime}
	plain := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	return policy.Reuse(plain, st, e.now(), pol) == policy.Fresh
}

// isSliced reports whether the URL is known as a sliced object.
func (e *Edge) isSliced(key string) bool {
	_, ok := e.loadSliceMeta(key)
	return ok
}

// identity is what must stay equal between slices of one object: a strong ETag, else
// Last-Modified with the length; "" when the origin gives neither (such objects aren't sliced).
func identity(h http.Header, total int64) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return "etag:" + et
	}
	if lm := h.Get("Last-Modified"); lm != "" {
		return "lm:" + lm + "/" + strconv.FormatInt(total, 10)
	}
	return ""
}

// storedSlice returns a stored slice's bytes, or nil.
func (e *Edge) storedSlice(key string, epoch uint64, idx int64, id string) []byte {
	if epoch == 0 {
		return nil
	}
	sk := sliceKey(key, epoch, idx)
	var o *store.Object
	if entry, ok := e.mem.Lookup(sk); ok {
		o = entry.Variants[""]
	}
	if o == nil {
		if o = e.diskObject(sk, "", true); o != nil {
			e.mem.Put(sk, nil, "", o) // hot again: back in memory
		}
	}
	if o == nil || o.Header.Get("X-Reel-Identity") != id {
		return nil
	}
	return o.Body
}

// diskObject loads a small internal object (slice meta, slice) from the disk tier.
func (e *Edge) diskObject(primary, vk string, withBody bool) *store.Object {
	if e.disk == nil {
		return nil
	}
	_, variant, ok := e.disk.Lookup(primary)
	if !ok {
		return nil
	}
	d := variant(vk)
	if d == nil {
		return nil
	}
	o := &store.Object{Status: d.Status, Header: d.Header, RequestTime: d.RequestTime, ResponseTime: d.ResponseTime}
	if withBody {
		data, err := os.ReadFile(d.Path())
		if err != nil || int64(len(data)) != d.Size {
			return nil
		}
		o.Body = data
	}
	return o
}

// sliceKey is where slice idx of an object is stored.
func sliceKey(key string, epoch uint64, idx int64) string {
	return key + "\x00slice\x00" + strconv.FormatUint(epoch, 10) + "\x00" + strconv.FormatInt(idx, 10)
}

// sliceFillKey is what requests for slice idx coalesce on: fills that began before a purge
// are not joined by requests that come after it.
func sliceFillKey(key string, gen uint64, idx int64) string {
	return key + "\x00slicefill\x00" + strconv.FormatUint(gen, 10) + "\x00" + strconv.FormatInt(idx, 10)
}

// serveSliced answers a GET or HEAD from slices and reports whether it did; false leaves the
// request to the whole-object path (suffix or multiple ranges on an object not yet known,
// origins that don't answer ranges, objects without an identity…).
func (e *Edge) serveSliced(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult) bool {
	S := int64(e.cfg.SliceSize)
	meta, known := e.loadSliceMeta(res.key)
	if known {
		// Judged on the response alone: one client's no-cache must not discard everyone's
		// slices. A stale meta is treated as unknown: the first slice is fetched again, and
		// sliceEpoch refreshes the meta if the object is the same (its slices stay valid) or
		// forgets them all if it changed.
		if !e.metaFresh(meta, res.pol) {
			meta, known = nil, false
		}
	}
	var storedMeta *store.Object // for Age when the response comes from stored slices
	if known {
		storedMeta = meta.obj
	}
	rng := r.Header.Get("Range")
	gen := e.gen(res.key).Load()
	if !known && rng == "" {
		// An object of unknown length being stored as slices by a stream: read from it.
		if v, ok := e.streams.Load(res.key); ok {
			if st := v.(*sliceStream); st.gen == gen && st.size < 0 && e.serveStream(w, r, st, res) {
				return true
			}
		}
	}
	var start int64
	if !known && rng != "" {
		if suffixRange(rng) {
			e.serveColdSuffix(w, r, up, res, gen)
			return true
		}
		// Cold: the lowest first byte says which slice to fetch before the length is known
		// (a whole GET starts at slice 0).
		first, ok := firstByte(rng)
		if !ok {
			return false
		}
		start = first
	}

	// The slice holding the first requested byte, fetched (or found) first: it tells the
	// object's length and identity when they are not known yet.
	idx := start / S
	if known {
		kind, rs := e.ranges(r, meta.header, meta.total)
		switch {
		case rng != "" && kind == rangecache.Unsatisfiable:
			h := http.Header{"Content-Range": {rangecache.UnsatisfiedContentRange(meta.total)}}
			e.writeHead(w, r, http.StatusRequestedRangeNotSatisfiable, h, 0, cachestatus.Status{Hit: true})
			return true
		case kind == rangecache.Satisfiable && len(rs) == 1:
			idx = rs[0].Start / S
		case rng != "" && kind == rangecache.Satisfiable:
			idx = rs[0].Start / S // several ranges: multipart, from the first one's slice
		}
	}
	first, err := e.slice(r, up, res, gen, idx, meta)
	if errors.Is(err, errNotSliceable) || errors.Is(err, fill.ErrNotShareable) || errors.Is(err, fill.ErrHeadTimeout) {
		// Not sliceable (Vary, private, no identity…), or another request's answer we may
		// not share: the client's own request goes to the origin, uncached.
		e.forward(w, r, up, cachestatus.Status{Fwd: res.fwd, Detail: "unsliced"})
		return true
	}
	if err != nil {
		return e.sliceFallback(w, r, err)
	}
	if first.direct != nil {
		// The origin answered the slice request with something other than a 206: the whole
		// object (it ignores Range), an error… — serve that as the whole-object path would.
		first.direct.serve(w, r)
		return true
	}
	meta = first.meta
	kind, rs := e.ranges(r, meta.header, meta.total)
	status, lo, hi := http.StatusOK, int64(0), meta.total-1
	h := clientHeader(meta.header)
	h.Del(epochField)
	h.Set("Accept-Ranges", "bytes")
	switch {
	case rng != "" && kind == rangecache.Unsatisfiable:
		first.release()
		e.writeHead(w, r, http.StatusRequestedRangeNotSatisfiable, http.Header{"Content-Range": {rangecache.UnsatisfiedContentRange(meta.total)}}, 0, first.cs)
		return true
	case kind == rangecache.Satisfiable && len(rs) == 1:
		status, lo, hi = http.StatusPartialContent, rs[0].Start, rs[0].Start+rs[0].Length-1
		h.Set("Content-Range", rs[0].ContentRange(meta.total))
	case kind == rangecache.Satisfiable:
		fetched := int64(-1)
		if !first.cs.Hit {
			fetched = idx
		}
		first.release()
		if !e.rangesFillFit(res.key, meta, rs, fetched) {
			// Small ranges scattered over many slices not stored: filling them would cost
			// the origin far more than the client gets. The ranges go to the origin as
			// asked, uncached.
			e.forward(w, r, up, cachestatus.Status{Fwd: res.fwd, Detail: "unsliced"})
			return true
		}
		e.serveSlicedMultipart(w, r, up, res, gen, meta, rs, h, first.cs)
		return true
	}
	h.Set("Content-Length", strconv.FormatInt(hi-lo+1, 10))
	if lo/S != idx {
		// Known only now (a suffix range on a cold object): not the slice we fetched.
		first.release()
		if first, err = e.slice(r, up, res, gen, lo/S, meta); err != nil || first.direct != nil {
			if first != nil {
				first.release()
			}
			return e.sliceFallback(w, r, errors.Join(err, errChanged))
		}
	}
	var age time.Duration
	if storedMeta != nil && first.cs.Hit {
		age = policy.CurrentAge(storedMeta.Header, storedMeta.RequestTime, storedMeta.ResponseTime, e.now())
	}
	e.writeHead(w, r, status, h, age, first.cs)
	if r.Method == http.MethodHead {
		first.release()
		return true
	}
	// A range longer than one slice reads like a player fetching media in sequence: its
	// next request most likely starts where this one ends, so the slice after it is read
	// ahead. Shorter ranges (probes, index boxes, seeks) don't, so that bytes=0-99 of a cold
	// object still costs one slice.
	readAhead := rng != "" && hi/S > lo/S && (hi/S+1)*S < meta.total
	cur := first
	for i := lo / S; i <= hi/S; i++ {
		if cur == nil {
			if cur, err = e.slice(r, up, res, gen, i, meta); err != nil || !cur.usable() {
				panic(http.ErrAbortHandler) // mid-response: only an abrupt end is honest
			}
		}
		// The next slice of the range is fetched while this one is sent, so that a slow
		// origin's round trip is not paid once per slice. It goes through the fill table
		// (coalesced with anyone else's request for it) and runs on a context no client can
		// cancel: a client leaving mid-way leaves at most that one slice fetched, and stored.
		var next chan *fetchedSlice
		if i < hi/S {
			next = make(chan *fetchedSlice, 1)
			go func(i int64) {
				s, err := e.slice(r, up, res, gen, i, meta)
				if err != nil {
					s = nil
				}
				next <- s
			}(i + 1)
		} else if readAhead {
			e.readAhead(r, up, res, gen, i+1, meta)
		}
		from, to := max(lo, i*S)-i*S, min(hi, i*S+S-1)-i*S
		err := cur.copy(w, r.Context(), from, to-from+1)
		cur.release()
		if err != nil {
			if next != nil {
				// Waited for (it uses r, which is not ours once we return); the fill it
				// joined goes on without it.
				if s := <-next; s != nil {
					s.release()
				}
			}
			if r.Context().Err() == nil {
				panic(http.ErrAbortHandler)
			}
			return true
		}
		cur = nil
		if next != nil {
			if cur = <-next; !cur.usable() {
				panic(http.ErrAbortHandler)
			}
		}
	}
	return true
}

// serveSlicedMultipart answers several ranges of a sliced object as multipart/byteranges
// (RFC 9110 §14.6), reading only the slices the ranges cover.
func (e *Edge) serveSlicedMultipart(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult, gen uint64, meta *sliceMeta, rs []rangecache.Range, h http.Header, cs cachestatus.Status) {
	boundary := rangecache.RandomBoundary()
	ctype := meta.header.Get("Content-Type")
	n, err := rangecache.MultipartLength(boundary, ctype, meta.total, rs)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "cannot build the multipart reply")
		return
	}
	h.Set("Content-Type", rangecache.MultipartContentType(boundary))
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	e.writeHead(w, r, http.StatusPartialContent, h, 0, cs)
	if r.Method == http.MethodHead {
		return
	}
	src := &sliceReader{e: e, r: r, up: up, res: res, gen: gen, meta: meta}
	defer src.close()
	if err := rangecache.WriteMultipart(w, boundary, ctype, meta.total, rs, src); err != nil && r.Context().Err() == nil {
		panic(http.ErrAbortHandler)
	}
}

// sliceFallback answers when slicing could not start: a changed object or origin error.
func (e *Edge) sliceFallback(w http.ResponseWriter, r *http.Request, err error) bool {
	if r.Context().Err() != nil {
		return true
	}
	if errors.Is(err, errChanged) {
		httpError(w, http.StatusServiceUnavailable, "object changed at the origin, retry")
		return true
	}
	originError(w, err)
	return true
}

// firstByte returns where to start on a cold object: the lowest first-byte-pos of a
// "bytes=" range set, or 0 when it holds a suffix range (the length is not known yet).
func firstByte(rng string) (int64, bool) {
	unit, spec, ok := strings.Cut(rng, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, false
	}
	lowest := int64(-1)
	for _, part := range strings.Split(spec, ",") {
		a, _, ok := strings.Cut(strings.TrimSpace(part), "-")
		if ok && a == "" {
			return 0, true // a suffix range: slice 0 tells the length, then the right slice
		}
		n, err := strconv.ParseInt(a, 10, 64)
		if !ok || err != nil || n < 0 {
			return 0, false
		}
		if lowest < 0 || n < lowest {
			lowest = n
		}
	}
	return lowest, lowest >= 0
}

// serveColdSuffix answers a suffix range ("bytes=-N") of an object whose length is not known:
// which slice holds its bytes is not known before a first slice tells the length, so rather
// than two slices the origin is asked for the client's own range, once for all the requests
// asking the same. Its 206 goes to the client that asked, uncached; an origin that ignores
// ranges answers with the whole object, which is stored and shared as any fill's.
func (e *Edge) serveColdSuffix(w http.ResponseWriter, r *http.Request, up *upstream, res lookupResult, gen uint64) {
	out := fillRequest(r)
	out.Header.Set("Range", r.Header.Get("Range"))
	whole := fillRequest(r)
	e.inflight.Add(1)
	key := res.key + "\x00suffix\x00" + strconv.FormatUint(gen, 10) + "\x00" + out.Header.Get("Range")
	f, leader := e.fills.Join(r.Context(), key, func(ctx context.Context, f *fill.Fill) {
		defer e.inflight.Done()
		resp, reqTime, respTime, ok := e.fetchForFill(ctx, f, up, out, nil)
		if !ok {
			return
		}
		if resp.StatusCode == http.StatusPartialContent {
			f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: resp.Body, Reason: "unsliced"}, nil)
			return
		}
		e.publish(f, whole, up, res, nil, resp, gen, reqTime, respTime)
	})
	if !leader {
		e.inflight.Done()
	}
	wait := e.cfg.Limits.CoalesceWait
	if leader {
		wait = 0
	}
	head, body, err := f.Head(r.Context(), leader, wait)
	switch {
	case errors.Is(err, fill.ErrNotShareable), errors.Is(err, fill.ErrHeadTimeout):
		f.Done()
		e.forward(w, r, up, cachestatus.Status{Fwd: res.fwd, Detail: "unsliced"})
		return
	case err != nil:
		f.Done()
		e.sliceFallback(w, r, err)
		return
	}
	cs := cachestatus.Status{Fwd: res.fwd, FwdStatus: head.Status, Stored: head.Stored, Collapsed: !leader}
	(&directAnswer{e: e, head: head, body: body, cs: cs, f: f}).serve(w, r)
}

// suffixRange reports whether rng is one suffix range ("bytes=-N").
func suffixRange(rng string) bool {
	unit, spec, ok := strings.Cut(rng, "=")
	spec = strings.TrimSpace(spec)
	return ok && strings.EqualFold(strings.TrimSpace(unit), "bytes") && strings.HasPrefix(spec, "-") && !strings.Contains(spec, ",")
}

// rangesFillFit reports whether the slices ranges rs touch that are not stored yet may be
// fetched for them: what that costs the origin must stay within the client's bytes plus two
// slices (the DESIGN's figure for range slicing). Slice fetched (-1: none) was fetched for
// this request already and counts as not stored.
func (e *Edge) rangesFillFit(key string, meta *sliceMeta, rs []rangecache.Range, fetched int64) bool {
	S := int64(e.cfg.SliceSize)
	var want int64
	for _, r := range rs {
		want += r.Length
	}
	budget := want/S + 2 // slices the origin may send
	cold, last := int64(0), int64(-1)
	if fetched >= 0 {
		cold = 1 // whether the ranges touch it or not (a suffix range sent us to slice 0)
	}
	for _, r := range rs {
		for i := max(r.Start/S, last+1); i <= (r.Start+r.Length-1)/S; i++ {
			last = i
			if i != fetched && !e.hasSlice(key, meta.epoch, i, meta.identity) {
				if cold++; cold > budget {
					return false
				}
			}
		}
	}
	return cold <= budget
}

// sliceReader reads a sliced object at any offset, slice by slice (for multipart replies).
type sliceReader struct {
	e    *Edge
	r    *http.Request
	up   *upstream
	res  lookupResult
	gen  uint64
	meta *sliceMeta
	cur  *fetchedSlice // kept across reads: the multipart writer reads in small chunks
	idx  int64
}

func (sr *sliceReader) ReadAt(p []byte, off int64) (int, error) {
	S := int64(sr.e.cfg.SliceSize)
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= sr.meta.total {
			return n, io.EOF
		}
		if sr.cur == nil || sr.idx != pos/S {
			sr.close()
			s, err := sr.e.slice(sr.r, sr.up, sr.res, sr.gen, pos/S, sr.meta)
			if err == nil && !s.usable() {
				err = errChanged
			}
			if err != nil {
				return n, err
			}
			sr.cur, sr.idx = s, pos/S
		}
		in := pos % S
		want := min(int64(len(p)-n), min(S, sr.meta.total-pos/S*S)-in)
		if sr.cur.data != nil {
			copy(p[n:], sr.cur.data[in:in+want])
		} else if _, err := io.ReadFull(sr.cur.body.NewReader(sr.r.Context(), in), p[n:n+int(want)]); err != nil {
			return n, err
		}
		n += int(want)
	}
	return n, nil
}

func (sr *sliceReader) close() {
	if sr.cur != nil {
		sr.cur.release()
		sr.cur = nil
	}
}

// fetchedSlice is one slice ready to be read: stored bytes, or a fill in progress.
type fetchedSlice struct {
	meta   *sliceMeta
	data   []byte     // a stored slice
	body   *fill.Body // or a fill's body
	f      *fill.Fill
	cs     cachestatus.Status
	direct *directAnswer // the origin did not answer with a slice
}

func (s *fetchedSlice) release() {
	if s.f != nil {
		s.f.Done()
		s.f = nil
	}
	if d := s.direct; d != nil && d.f != nil {
		if d.head.Direct != nil {
			d.head.Direct.Close()
		}
		d.f.Done()
		d.f = nil
	}
}

// usable reports whether s holds slice bytes (not a direct origin answer); otherwise s is
// released.
func (s *fetchedSlice) usable() bool {
	if s != nil && s.direct == nil {
		return true
	}
	if s != nil {
		s.release()
	}
	return false
}

// copy writes n bytes of the slice from offset off.
func (s *fetchedSlice) copy(w http.ResponseWriter, ctx context.Context, off, n int64) error {
	if s.data != nil {
		if off+n > int64(len(s.data)) {
			return fmt.Errorf("slice holds %d bytes, need %d", len(s.data), off+n)
		}
		_, err := w.Write(s.data[off : off+n])
		return err
	}
	return copyFlushing(w, io.LimitReader(s.body.NewReader(ctx, off), n))
}

// directAnswer is a non-slice origin answer passed to the client as is.
type directAnswer struct {
	e    *Edge
	head fill.Head
	body *fill.Body
	cs   cachestatus.Status
	f    *fill.Fill
}

func (d *directAnswer) serve(w http.ResponseWriter, r *http.Request) {
	defer d.f.Done()
	if d.head.Direct != nil {
		defer d.head.Direct.Close()
		d.e.writeHead(w, r, d.head.Status, clientHeader(d.head.Header), 0, d.cs)
		if r.Method != http.MethodHead {
			relay(w, d.head.Direct)
		}
		return
	}
	d.e.serveFill(w, r, d.head, d.body, d.cs)
}

// slice returns slice idx of the object: stored, or fetched through a coalesced fill.
func (e *Edge) slice(r *http.Request, up *upstream, res lookupResult, gen uint64, idx int64, meta *sliceMeta) (*fetchedSlice, error) {
	if meta != nil {
		if data := e.storedSlice(res.key, meta.epoch, idx, meta.identity); data != nil {
			if e.ahead.take(res.key, idx) {
				e.m.prefetchUsed.Inc()
			}
			return &fetchedSlice{meta: meta, data: data, cs: cachestatus.Status{Hit: true}}, nil
		}
	}
	f, leader := e.joinSlice(r, up, res, gen, idx, meta)
	if e.ahead.take(res.key, idx) && !leader {
		e.m.prefetchUsed.Inc() // still on its way from the origin, but already asked for
	}
	if !leader {
		e.stats.Collapsed.Add(1)
		e.m.collapsed.Inc()
	}
	wait := e.cfg.Limits.CoalesceWait
	if leader {
		wait = 0
	}
	head, body, err := f.Head(r.Context(), leader, wait)
	if err != nil {
		f.Done()
		return nil, err
	}
	cs := cachestatus.Status{Fwd: cachestatus.FwdURIMiss, FwdStatus: head.Status, Stored: head.Stored, Collapsed: !leader}
	if head.Status != http.StatusPartialContent {
		return &fetchedSlice{direct: &directAnswer{e: e, head: head, body: body, cs: cs, f: f}}, nil
	}
	total, _ := strconv.ParseInt(head.Header.Get("Content-Length"), 10, 64)
	got := &sliceMeta{total: total, identity: identity(head.Header, total), epoch: epochOf(head.Header), header: head.Header}
	if meta != nil && got.identity != meta.identity {
		f.Done()
		e.forgetSlices(res.key)
		return nil, errChanged
	}
	return &fetchedSlice{meta: got, body: body, f: f, cs: cs}, nil
}

// joinSlice joins (or starts) the coalesced fill of slice idx; the caller must call f.Done.
func (e *Edge) joinSlice(r *http.Request, up *upstream, res lookupResult, gen uint64, idx int64, meta *sliceMeta) (f *fill.Fill, leader bool) {
	S := int64(e.cfg.SliceSize)
	out := fillRequest(r)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", idx*S, idx*S+S-1))
	e.inflight.Add(1)
	f, leader = e.fills.Join(r.Context(), sliceFillKey(res.key, gen, idx), func(ctx context.Context, f *fill.Fill) {
		defer e.inflight.Done()
		e.runSliceFill(ctx, f, up, out, res, gen, idx, meta)
	})
	if !leader {
		e.inflight.Done()
	}
	return f, leader
}

// readAhead starts fetching slice idx, which the request does not need, for the request
// most likely to come next. Nobody waits for it: the fill stores the slice on its own (an
// answer that is not a slice is dropped unread when the fill ends).
func (e *Edge) readAhead(r *http.Request, up *upstream, res lookupResult, gen uint64, idx int64, meta *sliceMeta) {
	if e.hasSlice(res.key, meta.epoch, idx, meta.identity) {
		return
	}
	f, leader := e.joinSlice(r, up, res, gen, idx, meta)
	f.Done()
	if leader {
		e.ahead.add(res.key, idx)
		e.m.prefetchStarted.Inc()
	}
}

// hasSlice reports whether slice idx is stored, without reading it.
func (e *Edge) hasSlice(key string, epoch uint64, idx int64, id string) bool {
	if epoch == 0 {
		return false
	}
	sk := sliceKey(key, epoch, idx)
	if entry, ok := e.mem.Lookup(sk); ok {
		if o := entry.Variants[""]; o != nil && o.Header.Get("X-Reel-Identity") == id {
			return true
		}
	}
	if e.disk == nil {
		return false
	}
	_, variant, ok := e.disk.Lookup(sk)
	if !ok {
		return false
	}
	d := variant("")
	return d != nil && d.Header.Get("X-Reel-Identity") == id
}

// aheadSet remembers the slices read ahead and not yet asked for, so that the requests that
// use them can be counted (reel_edge_slice_prefetch_total{result="used"}). It is bounded: a
// read-ahead forgotten when it is full is merely not counted.
type aheadSet struct {
	n  atomic.Int64 // len(m), read without the lock on every slice
	mu sync.Mutex
	m  map[string]struct{}
}

const maxAhead = 4096

func aheadKey(key string, idx int64) string { return key + "\x00" + strconv.FormatInt(idx, 10) }

func (a *aheadSet) add(key string, idx int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]struct{}{}
	}
	if len(a.m) >= maxAhead {
		for k := range a.m {
			delete(a.m, k)
			break
		}
	}
	a.m[aheadKey(key, idx)] = struct{}{}
	a.n.Store(int64(len(a.m)))
}

// take reports whether slice idx of key was read ahead, and forgets it.
func (a *aheadSet) take(key string, idx int64) bool {
	if a.n.Load() == 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := aheadKey(key, idx)
	_, ok := a.m[k]
	delete(a.m, k)
	a.n.Store(int64(len(a.m)))
	return ok
}

// runSliceFill fetches one slice. A 206 for exactly the slice's bytes is stored as the slice
// (and, for the first one, the object's meta); anything else goes the whole-object way.
// The head it publishes for a slice carries the whole object's header (Content-Length = the
// object's length), so followers learn the length and identity from it.
func (e *Edge) runSliceFill(ctx context.Context, f *fill.Fill, up *upstream, r *http.Request, res lookupResult, gen uint64, idx int64, meta *sliceMeta) {
	whole := r.Clone(r.Context())
	whole.Header.Del("Range")
	if e.publishIfStored(f, whole, res) {
		return // stored whole meanwhile: serveFill answers the range from it
	}
	if meta != nil {
		// The previous fill of this slice may have stored it and left the table between
		// the request's look and its join (readers of one object in step, a prefetch
		// overtaken by a reader): served from the store, not fetched twice. (Without a
		// meta — a cold or stale object — the origin is asked, as it must be.)
		if data := e.storedSlice(res.key, meta.epoch, idx, meta.identity); data != nil {
			body := fill.NewMemoryBodySize(int64(len(data)))
			body.Write(data)
			body.Finish(nil)
			f.SetHead(fill.Head{Status: http.StatusPartialContent, Header: meta.header, Shareable: true, Stored: true}, body)
			return
		}
	}
	resp, reqTime, respTime, ok := e.fetchForFill(ctx, f, up, r, nil)
	if !ok {
		return
	}
	S := int64(e.cfg.SliceSize)
	a, b, total, ok := contentRange(resp.Header.Get("Content-Range"))
	storable, _ := policy.Storable(whole, http.StatusOK, resp.Header, res.pol)
	if resp.StatusCode != http.StatusPartialContent || !ok || a != idx*S || b != min(idx*S+S, total)-1 ||
		resp.ContentLength != b-a+1 || !storable || len(resp.Header.Values("Vary")) > 0 || identity(resp.Header, total) == "" {
		if resp.StatusCode == http.StatusPartialContent {
			// A partial answer we can't keep as a slice: every waiting request asks the origin
			// for its own range instead, and is passed the answer uncached. That includes a
			// 206 whose Content-Range says "bytes a-b/*" (complete length unknown, RFC 9110
			// §14.4): a slice's meta needs the object's length.
			resp.Body.Close()
			f.Fail(errNotSliceable)
			return
		}
		e.publish(f, whole, up, res, nil, resp, gen, reqTime, respTime)
		return
	}
	header := policy.HeaderToStore(resp.Header, res.pol)
	header.Del("Content-Range")
	header.Set("Content-Length", strconv.FormatInt(total, 10))
	// The meta is recorded before the body is read, so that the head can tell everyone
	// waiting which epoch the object's other slices are stored under.
	epoch := e.sliceEpoch(res, gen, header, reqTime, respTime)
	if epoch != 0 {
		header.Set(epochField, strconv.FormatUint(epoch, 10))
	}
	body := fill.NewMemoryBodySize(b - a + 1)
	f.SetHead(fill.Head{Status: http.StatusPartialContent, Header: header, Shareable: true, Stored: true}, body)
	n, err := io.Copy(holdLast{body}, resp.Body)
	resp.Body.Close()
	e.m.originBytes.Add(float64(n))
	if err == nil && n != b-a+1 {
		err = fmt.Errorf("origin sent %d of %d slice bytes", n, b-a+1)
	}
	if err != nil {
		body.Finish(err)
		return
	}
	defer body.Finish(nil) // after storing, as in publish
	e.storeSlice(res, gen, epoch, idx, header, body.Written(), reqTime, respTime)
}

// sliceEpoch returns the epoch to store slices of the object described by header (its
// whole-object header: Content-Length = the object's length) under, recording the object's
// meta if it is new, or refreshing it if it was stale and the origin has now confirmed it
// (same identity: its epoch and slices stay). It returns 0 — store nothing — if the URL was
// invalidated since gen, and forgets the object if the origin's version is not the one
// recorded.
func (e *Edge) sliceEpoch(res lookupResult, gen uint64, header http.Header, reqTime, respTime time.Time) uint64 {
	// One meta per object: concurrent first slices must agree on the epoch, or all but one
	// would store slices no meta leads to.
	mu := &e.metaLocks[fnv32(res.key)%uint32(len(e.metaLocks))]
	mu.Lock()
	defer mu.Unlock()
	if e.gen(res.key).Load() != gen {
		return 0
	}
	total, _ := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
	meta, ok := e.loadSliceMeta(res.key)
	if ok && meta.identity != identity(header, total) {
		e.forgetSlices(res.key) // another version: start over
		return 0
	}
	if ok && meta.epoch != 0 && e.metaFresh(meta, res.pol) {
		return meta.epoch
	}
	epoch := uint64(0)
	if ok {
		epoch = meta.epoch
	}
	for epoch == 0 {
		epoch = rand.Uint64()
	}
	e.putMeta(res, header, epoch, reqTime, respTime)
	return epoch
}

// recordMeta records the meta of an object whose slices are stored under epoch already (one
// of unknown length, complete now: header has its length), unless the URL was invalidated
// since gen or another version of the object was recorded meanwhile. A meta of the same
// version is replaced: the slices under epoch are complete.
func (e *Edge) recordMeta(res lookupResult, gen uint64, header http.Header, epoch uint64, reqTime, respTime time.Time) bool {
	mu := &e.metaLocks[fnv32(res.key)%uint32(len(e.metaLocks))]
	mu.Lock()
	defer mu.Unlock()
	if e.gen(res.key).Load() != gen {
		return false
	}
	total, _ := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
	if meta, ok := e.loadSliceMeta(res.key); ok && meta.identity != identity(header, total) {
		return false
	}
	e.putMeta(res, header, epoch, reqTime, respTime)
	return true
}

// putMeta stores a sliced object's meta in both tiers; the caller holds its meta lock.
func (e *Edge) putMeta(res lookupResult, header http.Header, epoch uint64, reqTime, respTime time.Time) {
	mh := header.Clone()
	mh.Set(epochField, strconv.FormatUint(epoch, 10))
	e.mem.Put(res.key, nil, metaVariant, withFreshness(&store.Object{Status: http.StatusOK, Header: mh, RequestTime: reqTime, ResponseTime: respTime}, res.pol))
	e.persist(&store.DiskObject{Primary: res.key, VaryKey: metaVariant, Status: http.StatusOK, Header: mh,
		RequestTime: reqTime, ResponseTime: respTime}, nil)
}

// storeSlice stores slice idx of an object under epoch (from sliceEpoch; 0 stores nothing),
// unless the URL was invalidated since gen.
func (e *Edge) storeSlice(res lookupResult, gen, epoch uint64, idx int64, header http.Header, data []byte, reqTime, respTime time.Time) {
	if epoch == 0 || e.gen(res.key).Load() != gen {
		return
	}
	total, _ := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
	sh := header.Clone()
	sh.Set("X-Reel-Identity", identity(header, total))
	sk := sliceKey(res.key, epoch, idx)
	e.mem.Put(sk, nil, "", &store.Object{Status: http.StatusPartialContent, Header: sh, RequestTime: reqTime, ResponseTime: respTime, Body: data})
	e.persist(&store.DiskObject{Primary: sk, Status: http.StatusPartialContent, Header: sh,
		RequestTime: reqTime, ResponseTime: respTime, Size: int64(len(data))}, data)
	e.stats.Stored.Add(1)
}

// forgetSlices drops what is known of a sliced object: its meta (with the URL's other
// variants, which describe the old version too) and, with the meta's epoch, every slice
// stored for it.
func (e *Edge) forgetSlices(key string) {
	e.invalidate(key) // drops the meta in both tiers, stops fills in flight from storing
}

// contentRange parses "bytes a-b/total".
func contentRange(v string) (a, b, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, t, found := strings.Cut(rest, "/")
	as, bs, found2 := strings.Cut(span, "-")
	if !found || !found2 {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	a, err1 = strconv.ParseInt(as, 10, 64)
	b, err2 = strconv.ParseInt(bs, 10, 64)
	total, err3 = strconv.ParseInt(t, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || a < 0 || b < a || total <= b {
		return 0, 0, 0, false
	}
	return a, b, total, true
}
