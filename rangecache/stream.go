package rangecache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reelvideo/reel/rangecache/fill"
)

// A whole-object response that the edge stores as slices ([Cache.Stream]) — too large for any
// tier whole, above slice_threshold, or of unknown length (chunked) at an origin that serves
// byte ranges — is read by its fill, on a context no client can cancel, at the pace of its
// fastest reader rather than of the request that happened to start it, and cut into slices as
// it arrives: a sliceStream. The slice being written and the next one are fills of their own
// in the fill table, so the request that started the fetch, the ones that joined it and, for
// an object of known length, any read of its slices arriving meanwhile (its meta is recorded
// before the body is read) all read this one origin response, each at its own pace, from its
// first bytes on: N concurrent cold GETs cost the origin one copy. Each complete slice is
// stored before its last byte becomes visible.
//
// An object of unknown length gets no meta until its body has ended complete: its slices are
// stored meanwhile under a fresh epoch that no meta leads to, and the meta — with the length
// now known — is recorded after the last slice, before the last byte is released. A body that
// ends short or fails leaves no meta, so nothing half-known is ever served from the cache.
//
// The stream writes a slice only once a request wants it (await): it runs a slice or two
// ahead of its fastest reader, and stops at a slice boundary once no request reads it any
// more — an abandoned transfer costs at most the slices being written.

// errStreamStopped ends a stream nobody reads any more.
var errStreamStopped = errors.New("slice stream stopped: no reader left")

// errSliceGone reports a slice of a stream that is neither being written nor stored, and that
// the origin would not give by range.
var errSliceGone = errors.New("slice no longer available")

// ReasonSliced marks a fill whose response is stored as slices while it streams: the leader
// reads it as a plain body, followers through Serve.
const ReasonSliced = "sliced"

// Pausable is an origin body whose idle clock can be stopped while a stream waits on its
// readers rather than on the origin.
type Pausable interface {
	Pause()
	Resume()
}

// sliceStream is one origin response being stored as slices.
type sliceStream struct {
	c        *Cache
	q        *Request // its HTTP is the fill's request: a plain GET of the object
	gen      uint64
	size     int64       // the object's length from the response head, -1 when unknown
	header   http.Header // the whole-object header stored with slices and meta (with the epoch)
	client   http.Header // the origin's header, as the clients reading the stream are sent it
	identity string
	epoch    uint64
	reqTime  time.Time
	respTime time.Time

	unpaced bool // the stream no longer waits for its readers (await; the stream's own)

	mu    sync.Mutex
	total int64 // the object's length once known (from the start when size >= 0), else -1
	err   error // why the stream ended before the object's end
}

// streamSlot is the slice a stream is writing (or about to): a fill of its own, or, when
// another fill was already fetching that slice, a private body the stream merely stores.
type streamSlot struct {
	f    *fill.Fill // nil for a private body
	body *fill.Body
	done chan struct{} // closed when the stream is through with the slot: its fill ends
	once sync.Once
}

func (s *streamSlot) end() { s.once.Do(func() { close(s.done) }) }

// slotKey is what readers of slice idx join while the stream writes it. A stream of unknown
// length has keys of its own: plain slice fills carry the object's length in their head, and
// a request that joins one must learn it there.
func (st *sliceStream) slotKey(idx int64) string {
	if st.size >= 0 {
		return sliceFillKey(st.q.Key, st.gen, idx)
	}
	return st.q.Key + "\x00streamslot\x00" + strconv.FormatUint(st.gen, 10) + "\x00" + strconv.FormatInt(idx, 10)
}

func (st *sliceStream) slotHead() fill.Head {
	return fill.Head{Status: http.StatusPartialContent, Header: st.header, Shareable: true, Stored: true}
}

// open registers slice idx's fill, which readers join until the stream ends it.
func (st *sliceStream) open(idx int64) *streamSlot {
	s := &streamSlot{body: fill.NewMemoryBodySize(st.c.SliceSize), done: make(chan struct{})}
	head := st.slotHead()
	f, leader := st.c.Fills.Join(context.Background(), st.slotKey(idx), func(_ context.Context, f *fill.Fill) {
		f.SetHead(head, s.body)
		<-s.done
	})
	f.Done() // the stream writes the slot; only its readers hold it
	if leader {
		s.f = f
	}
	return s
}

// state returns the object's length, -1 while unknown, and why the stream failed, if it did.
func (st *sliceStream) state() (int64, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.total, st.err
}

// Stream stores resp's body as slices while every request of the fill f reads it (see above);
// it reports false, having done nothing, when the object can't be sliced now (the URL was
// invalidated since gen, or the origin's object is not the one recorded). q.HTTP is the
// fill's request.
func (c *Cache) Stream(f *fill.Fill, q *Request, resp *http.Response, gen uint64, reqTime, respTime time.Time) bool {
	r := q.HTTP
	size := resp.ContentLength
	header, _ := q.Policy.Storable(r, resp.Header)
	var epoch uint64
	if size >= 0 {
		header.Set("Content-Length", strconv.FormatInt(size, 10))
		epoch = c.sliceEpoch(q, gen, header, reqTime, respTime)
		if epoch == 0 {
			return false
		}
	}
	for epoch == 0 {
		epoch = rand.Uint64()
	}
	header.Set(epochField, strconv.FormatUint(epoch, 10))
	st := &sliceStream{c: c, q: q, gen: gen, size: size, header: header, client: resp.Header,
		identity: Identity(header, size), epoch: epoch, reqTime: reqTime, respTime: respTime, total: size}
	if size < 0 {
		// Requests joining the fill are told it is sliced (fill.ErrNotShareable with
		// ReasonSliced) and go to Serve, which finds the stream here. (With the length
		// known, they find the meta and read the slices as any reader would.)
		c.streams.Store(q.Key, st)
		defer c.streams.CompareAndDelete(q.Key, st)
	}
	// The request that started the fill reads the stream as a plain body.
	ctx := r.Context()
	get := func(idx int64) (*fetchedSlice, error) { return st.slot(ctx, idx) }
	if size >= 0 {
		// A slice no longer written nor stored (evicted already) is fetched again by range,
		// as any reader of a sliced object would.
		m := &meta{total: size, identity: st.identity, epoch: epoch, header: header}
		get = func(idx int64) (*fetchedSlice, error) {
			s, err := c.slice(q, gen, idx, m)
			if err == nil && !s.usable() {
				err = ErrChanged
			}
			return s, err
		}
	}
	leader := &sliceSeqReader{ctx: ctx, size: c.SliceSize, state: st.state, get: get}
	st.run(f, resp, fill.Head{Status: resp.StatusCode, Header: resp.Header, Stored: true, Direct: leader, Reason: ReasonSliced})
	return true
}

// run reads the origin's body into slices until its end, an error, or no one reads it.
func (st *sliceStream) run(f *fill.Fill, resp *http.Response, head fill.Head) {
	c := st.c
	S := c.SliceSize
	defer resp.Body.Close()
	more := func(idx int64) bool { return st.size < 0 || idx*S < st.size }
	var cur, next, after *streamSlot
	defer func() {
		// Whatever happened, no slot is left open: its readers would wait forever.
		for _, s := range []*streamSlot{cur, next, after} {
			if s != nil {
				s.body.Finish(errors.New("slice stream ended"))
				s.end()
			}
		}
	}()
	cur = st.open(0)
	if more(1) {
		next = st.open(1)
	}
	f.SetHead(head, nil)
	for i := int64(0); ; i++ {
		if !st.await(f, cur, next, resp.Body) {
			st.fail(errStreamStopped, cur, next)
			return
		}
		want := S
		if st.size >= 0 {
			want = min(S, st.size-i*S)
		}
		n, err := cur.body.CopyHoldingLast(io.LimitReader(resp.Body, want))
		c.Counters.OriginBytes(n)
		if err == nil && st.size >= 0 && n < want {
			err = fmt.Errorf("origin sent %d of %d bytes", i*S+n, st.size)
		}
		if err != nil {
			st.fail(err, cur, next)
			return
		}
		if st.size >= 0 && (i+1)*S >= st.size || st.size < 0 && n < S {
			st.finish(i, n, cur, next)
			return
		}
		// The slice after next is open before this one can be read whole — from its fill or
		// from the store: a reader that has all of this one asks for the one after next right
		// away, and must find it being written rather than start a fetch of its own.
		if more(i + 2) {
			after = st.open(i + 2)
		}
		c.storeSlice(st.q, st.gen, st.epoch, i, st.header, cur.body.Written(), st.reqTime, st.respTime)
		cur.body.Finish(nil)
		cur.end()
		cur, next, after = next, after, nil
	}
}

// await waits until a request wants slice cur — joined its fill to read it, or ahead while it
// reads the slice before (or joined the next one) — so that the stream runs at the pace of
// its fastest reader, a slice or two ahead of it, rather than at the origin's: an object
// larger than the memory tier is not pushed through it faster than anyone reads it, nor
// fetched for nobody. Slower readers read the slices stored behind it. The origin's idle
// clock is stopped meanwhile (the wait is ours), for at most the origin read timeout.
//
// It reports false when the stream should stop instead: no request holds the fill any more,
// or the readers of an object of known length took longer than that timeout (they go on with
// slices fetched by range) — provided no request can join the slices it would write. An
// object of unknown length is stored only by its stream (its meta needs the length its end
// tells): when its readers are that slow, the stream goes on without waiting for them.
func (st *sliceStream) await(whole *fill.Fill, cur, next *streamSlot, body io.ReadCloser) bool {
	if cur.f == nil {
		return true // another fill fetches this slice: the stream only passes it by
	}
	var nextJoined <-chan struct{}
	if next != nil && next.f != nil {
		nextJoined = next.f.Joined()
	}
	select {
	case <-cur.f.Joined():
		return true
	case <-nextJoined:
		return true
	default:
	}
	if st.unpaced {
		return whole.Holders() > 0 || !st.letGo(cur, next)
	}
	if ib, ok := body.(Pausable); ok {
		ib.Pause()
		defer ib.Resume()
	}
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-cur.f.Joined():
			return true
		case <-nextJoined:
			return true
		case <-tick.C:
		}
		waited := time.Since(start) > st.c.OriginReadTimeout
		switch {
		case whole.Holders() == 0 || waited && st.size >= 0:
			return !st.letGo(cur, next)
		case waited:
			st.unpaced = true
			return true
		}
	}
}

// letGo withdraws slices cur and next from the fill table so that the stream can stop, and
// reports whether it did; false when a request holds either (then cur is written on the way
// to next: no longer joinable, still stored).
func (st *sliceStream) letGo(cur, next *streamSlot) bool {
	if !st.c.Fills.Withdraw(cur.f) {
		return false
	}
	return next == nil || next.f == nil || st.c.Fills.Withdraw(next.f)
}

// finish ends a stream whose body ended complete in slice i, after n bytes of it: the last
// slice stored, the meta recorded if the length was unknown so far, then the slice released.
func (st *sliceStream) finish(i, n int64, cur, next *streamSlot) {
	c := st.c
	S := c.SliceSize
	total := i*S + n
	header := st.header
	if st.size < 0 && total > 0 {
		header = header.Clone()
		header.Set("Content-Length", strconv.FormatInt(total, 10))
	}
	if n > 0 {
		data := cur.body.Written()
		if int64(cap(data)) > 2*n {
			data = bytes.Clone(data) // a short last slice doesn't pin a whole slice's memory
		}
		c.storeSlice(st.q, st.gen, st.epoch, i, header, data, st.reqTime, st.respTime)
	}
	if st.size < 0 && total > 0 {
		c.recordMeta(st.q, st.gen, header, st.epoch, st.reqTime, st.respTime)
	}
	st.mu.Lock()
	st.total = total
	st.mu.Unlock()
	cur.body.Finish(nil)
	cur.end()
	if next != nil {
		next.body.Finish(nil) // past the end: empty
		next.end()
	}
}

// fail ends a stream short: its open slices are aborted, and no meta is recorded for an
// object whose length was unknown.
func (st *sliceStream) fail(err error, cur, next *streamSlot) {
	st.mu.Lock()
	st.err = err
	st.mu.Unlock()
	for _, s := range []*streamSlot{cur, next} {
		if s != nil {
			s.body.Finish(err)
			s.end()
		}
	}
	if !errors.Is(err, errStreamStopped) {
		st.c.Log.Warn("origin body interrupted", "key", st.q.Key, "err", err)
	}
}

// slot returns slice idx of the stream: stored, or the fill the stream writes it through.
func (st *sliceStream) slot(ctx context.Context, idx int64) (*fetchedSlice, error) {
	c := st.c
	if data := storedSlice(st.q.Store, st.q.Key, st.epoch, idx, st.identity); data != nil {
		return &fetchedSlice{data: data, cs: Status{Hit: true}}, nil
	}
	head := st.slotHead()
	f, leader := c.Fills.Join(ctx, st.slotKey(idx), func(ctx context.Context, f *fill.Fill) {
		// The stream is not writing this slice (any more): stored meanwhile, or else asked
		// of the origin by range (evicted before this reader, behind the others, got to it;
		// or the stream failed further on).
		if data := storedSlice(st.q.Store, st.q.Key, st.epoch, idx, st.identity); data != nil {
			body := fill.NewMemoryBodySize(int64(len(data)))
			body.Write(data)
			body.Finish(nil)
			f.SetHead(head, body)
			return
		}
		if total, _ := st.state(); total >= 0 && idx*c.SliceSize >= total {
			body := fill.NewMemoryBody() // past the end (a reader asking ahead): empty
			body.Finish(nil)
			f.SetHead(head, body)
			return
		}
		st.fetchSlot(ctx, f, idx)
	})
	_, body, err := f.Head(ctx, leader, 0)
	if err != nil {
		f.Done()
		return nil, err
	}
	return &fetchedSlice{body: body, f: f}, nil
}

// fetchSlot fetches slice idx of an object of unknown length by range, for a reader of its
// stream that needs it and can't find it (that is what Accept-Ranges: bytes promised): the
// answer must be a 206 of the same version (strong ETag) starting at the slice, no longer
// than one; a 416 at the slice's start says the object ends there (an empty slice).
func (st *sliceStream) fetchSlot(ctx context.Context, f *fill.Fill, idx int64) {
	c := st.c
	S := c.SliceSize
	out := st.q.HTTP.Clone(ctx)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", idx*S, idx*S+S-1))
	resp, _, _, err := st.q.Origin.Fetch(ctx, out)
	if err != nil {
		f.Fail(err)
		return
	}
	defer resp.Body.Close()
	cr := resp.Header.Get("Content-Range")
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && cr == "bytes */"+strconv.FormatInt(idx*S, 10) {
		body := fill.NewMemoryBody()
		body.Finish(nil)
		f.SetHead(st.slotHead(), body)
		return
	}
	a, b, ok := contentRangeUnknownTotal(cr)
	if resp.StatusCode != http.StatusPartialContent || !ok || a != idx*S || b-a+1 > S || resp.ContentLength != b-a+1 ||
		resp.Header.Get("ETag") != st.client.Get("ETag") {
		f.Fail(fmt.Errorf("%w: the origin answered slice %d's range with %d %q", errSliceGone, idx, resp.StatusCode, cr))
		return
	}
	body := fill.NewMemoryBodySize(b - a + 1)
	f.SetHead(st.slotHead(), body)
	n, err := io.Copy(body, resp.Body)
	c.Counters.OriginBytes(n)
	if err == nil && n != b-a+1 {
		err = fmt.Errorf("origin sent %d of %d slice bytes", n, b-a+1)
	}
	body.Finish(err)
}

// reader reads the whole object from the stream, slice after slice.
func (st *sliceStream) reader(ctx context.Context) *sliceSeqReader {
	return &sliceSeqReader{ctx: ctx, size: st.c.SliceSize, state: st.state,
		get: func(idx int64) (*fetchedSlice, error) { return st.slot(ctx, idx) }}
}

// sliceSeqReader reads an object slice after slice from the start, returning each slice's
// bytes as they arrive, and asks for the next slice while it reads one (which is what lets a
// stream write it). A short slice is the object's last; the object's length, once known, must
// agree.
type sliceSeqReader struct {
	ctx   context.Context
	size  int64 // the slice size
	state func() (total int64, err error)
	get   func(idx int64) (*fetchedSlice, error)
	idx   int64
	cur   *fetchedSlice
	rd    io.Reader
	off   int64 // bytes of cur read
	eof   bool
	next  chan sliceResult // slice idx+1, asked for while idx is read
}

type sliceResult struct {
	s   *fetchedSlice
	err error
}

func (sr *sliceSeqReader) Read(p []byte) (int, error) {
	for {
		if sr.cur == nil {
			total, _ := sr.state()
			if sr.eof || total >= 0 && sr.idx*sr.size >= total {
				return 0, io.EOF
			}
			var s *fetchedSlice
			var err error
			if sr.next != nil {
				res := <-sr.next
				sr.next, s, err = nil, res.s, res.err
			} else {
				s, err = sr.get(sr.idx)
			}
			if err != nil {
				return 0, err
			}
			sr.cur, sr.off = s, 0
			if s.data != nil {
				sr.rd = bytes.NewReader(s.data)
			} else {
				sr.rd = s.body.NewReader(sr.ctx, 0)
			}
			if total, _ := sr.state(); total < 0 || (sr.idx+1)*sr.size < total {
				ch, idx := make(chan sliceResult, 1), sr.idx+1
				go func() {
					s, err := sr.get(idx)
					ch <- sliceResult{s, err}
				}()
				sr.next = ch
			}
		}
		n, err := sr.rd.Read(p)
		sr.off += int64(n)
		if sr.off > sr.size {
			return n, fmt.Errorf("slice %d holds more than %d bytes", sr.idx, sr.size)
		}
		if err != io.EOF {
			return n, err
		}
		full := sr.off == sr.size
		sr.cur.release()
		sr.cur = nil
		if !full {
			// A short slice ends the object; it must end where the object does.
			sr.eof = true
			if total, _ := sr.state(); total >= 0 && sr.idx*sr.size+sr.off != total {
				return n, fmt.Errorf("slice %d ends at %d, the object at %d", sr.idx, sr.idx*sr.size+sr.off, total)
			}
		}
		sr.idx++
		if n > 0 {
			return n, nil
		}
	}
}

func (sr *sliceSeqReader) Close() error {
	if sr.cur != nil {
		sr.cur.release()
		sr.cur = nil
	}
	if sr.next != nil {
		if res := <-sr.next; res.s != nil {
			res.s.release()
		}
		sr.next = nil
	}
	return nil
}

// serveStream answers a plain GET or HEAD of an object of unknown length that a stream is
// storing as slices: the origin's header and, as the stream writes them, its bytes. It
// reports false, having taken nothing, when the stream already failed.
func (c *Cache) serveStream(q *Request, st *sliceStream) (*Response, bool) {
	if _, err := st.state(); err != nil {
		return nil, false
	}
	h := c.ClientHeader(st.client)
	cs := Status{Fwd: q.Fwd, FwdStatus: http.StatusOK, Stored: true, Collapsed: true}
	if c.NotModified(q.HTTP, &Entry{Status: http.StatusOK, Header: st.header, RequestTime: st.reqTime, ResponseTime: st.respTime}) {
		return &Response{Status: http.StatusNotModified, Header: h, Cache: cs}, true
	}
	write := func(w http.ResponseWriter, _ *fetchedSlice) error {
		rd := st.reader(q.HTTP.Context())
		defer rd.Close()
		return fill.CopyFlushing(w, rd)
	}
	return &Response{Status: http.StatusOK, Header: h, Cache: cs, write: write}, true
}

// StreamableUnknownLength reports whether a response of unknown length may be stored as
// slices while it streams: a 200 with a strong ETag (its identity, which slices fetched
// later by range must match) from an origin that says it serves byte ranges.
func StreamableUnknownLength(resp *http.Response) bool {
	et := resp.Header.Get("ETag")
	return resp.StatusCode == http.StatusOK && resp.ContentLength < 0 && et != "" && !strings.HasPrefix(et, "W/") &&
		acceptsByteRanges(resp.Header)
}

// acceptsByteRanges reports whether h has Accept-Ranges: bytes (RFC 9110 §14.3).
func acceptsByteRanges(h http.Header) bool {
	for _, v := range h.Values("Accept-Ranges") {
		for _, u := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(u), "bytes") {
				return true
			}
		}
	}
	return false
}
