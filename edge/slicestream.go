package edge

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

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/fill"
	"github.com/reelvideo/reel/edge/policy"
)

// A whole-object response that publish stores as slices — of unknown length (chunked) at an
// origin that serves byte ranges — is read by its fill, on a context no client can cancel and
// at the origin's pace rather than a client's, and cut into slices as it arrives: a
// sliceStream. The slice being written and the next one are fills of their own in the fill
// table, so the request that started the fetch and the ones that joined it all read this one
// origin response, each at its own pace, from its first bytes on. Each complete slice is
// stored before its last byte becomes visible.
//
// An object of unknown length gets no meta until its body has ended complete: its slices are
// stored meanwhile under a fresh epoch that no meta leads to, and the meta — with the length
// now known — is recorded after the last slice, before the last byte is released. A body that
// ends short or fails leaves no meta, so nothing half-known is ever served from the cache.
//
// The fetch stops at a slice boundary once no request reads it any more (the clients left):
// an abandoned transfer costs at most the slice being written.

// errStreamStopped ends a stream nobody reads any more.
var errStreamStopped = errors.New("slice stream stopped: no reader left")

// errSliceGone reports a slice of a stream that is neither being written nor stored.
var errSliceGone = errors.New("slice no longer available")

// sliceStream is one origin response being stored as slices.
type sliceStream struct {
	e        *Edge
	res      lookupResult
	gen      uint64
	size     int64       // the object's length from the response head, -1 when unknown
	header   http.Header // the whole-object header stored with slices and meta (with the epoch)
	client   http.Header // the origin's header, as the clients reading the stream are sent it
	identity string
	epoch    uint64
	reqTime  time.Time
	respTime time.Time

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
		return sliceFillKey(st.res.key, st.gen, idx)
	}
	return st.res.key + "\x00streamslot\x00" + strconv.FormatUint(st.gen, 10) + "\x00" + strconv.FormatInt(idx, 10)
}

func (st *sliceStream) slotHead() fill.Head {
	return fill.Head{Status: http.StatusPartialContent, Header: st.header, Shareable: true, Stored: true}
}

// open registers slice idx's fill, which readers join until the stream ends it.
func (st *sliceStream) open(idx int64) *streamSlot {
	s := &streamSlot{body: fill.NewMemoryBodySize(int64(st.e.cfg.SliceSize)), done: make(chan struct{})}
	head := st.slotHead()
	f, leader := st.e.fills.Join(context.Background(), st.slotKey(idx), func(_ context.Context, f *fill.Fill) {
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

// streamSlices stores resp's body as slices while every request of the fill reads it (see
// above); it reports false, having done nothing, when the object can't be sliced now (the
// URL was invalidated since gen, or the origin's object is not the one recorded).
func (e *Edge) streamSlices(f *fill.Fill, r *http.Request, up *upstream, res lookupResult, resp *http.Response, gen uint64, reqTime, respTime time.Time) bool {
	size := resp.ContentLength
	header := policy.HeaderToStore(resp.Header, res.pol)
	var epoch uint64
	if size >= 0 {
		header.Set("Content-Length", strconv.FormatInt(size, 10))
		epoch = e.sliceEpoch(res, gen, header, reqTime, respTime)
		if epoch == 0 {
			return false
		}
	}
	for epoch == 0 {
		epoch = rand.Uint64()
	}
	header.Set(epochField, strconv.FormatUint(epoch, 10))
	st := &sliceStream{e: e, res: res, gen: gen, size: size, header: header, client: resp.Header,
		identity: identity(header, size), epoch: epoch, reqTime: reqTime, respTime: respTime, total: size}
	if size < 0 {
		// Requests joining the fill are told it is sliced (fill.ErrNotShareable with
		// reasonSliced) and go to serveSliced, which finds the stream here. (With the length
		// known, they find the meta and read the slices as any reader would.)
		e.streams.Store(res.key, st)
		defer e.streams.CompareAndDelete(res.key, st)
	}
	// The request that started the fill reads the stream as a plain body.
	ctx := r.Context()
	get := func(idx int64) (*fetchedSlice, error) { return st.slot(ctx, idx) }
	if size >= 0 {
		// A slice no longer written nor stored (evicted already) is fetched again by range,
		// as any reader of a sliced object would.
		meta := &sliceMeta{total: size, identity: st.identity, epoch: epoch, header: header}
		get = func(idx int64) (*fetchedSlice, error) {
			s, err := e.slice(r, up, res, gen, idx, meta)
			if err == nil && !s.usable() {
				err = errChanged
			}
			return s, err
		}
	}
	leader := &sliceSeqReader{ctx: ctx, size: int64(e.cfg.SliceSize), state: st.state, get: get}
	st.run(f, resp, fill.Head{Status: resp.StatusCode, Header: resp.Header, Stored: true, Direct: leader, Reason: reasonSliced})
	return true
}

// run reads the origin's body into slices until its end, an error, or no one reads it.
func (st *sliceStream) run(f *fill.Fill, resp *http.Response, head fill.Head) {
	e := st.e
	S := int64(e.cfg.SliceSize)
	defer resp.Body.Close()
	more := func(idx int64) bool { return st.size < 0 || idx*S < st.size }
	var cur, next *streamSlot
	defer func() {
		// Whatever happened, no slot is left open: its readers would wait forever.
		for _, s := range []*streamSlot{cur, next} {
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
		want := S
		if st.size >= 0 {
			want = min(S, st.size-i*S)
		}
		n, err := io.Copy(holdLast{cur.body}, io.LimitReader(resp.Body, want))
		e.m.originBytes.Add(float64(n))
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
		e.storeSlice(st.res, st.gen, st.epoch, i, st.header, cur.body.Written(), st.reqTime, st.respTime)
		cur.body.Finish(nil)
		cur.end()
		if f.Holders() == 0 && (next.f == nil || e.fills.Withdraw(next.f)) {
			// Nobody reads the object any more, and nobody can join the next slice: stop.
			st.fail(errStreamStopped, nil, next)
			return
		}
		cur, next = next, nil
		if more(i + 2) {
			next = st.open(i + 2)
		}
	}
}

// finish ends a stream whose body ended complete in slice i, after n bytes of it: the last
// slice stored, the meta recorded if the length was unknown so far, then the slice released.
func (st *sliceStream) finish(i, n int64, cur, next *streamSlot) {
	e := st.e
	S := int64(e.cfg.SliceSize)
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
		e.storeSlice(st.res, st.gen, st.epoch, i, header, data, st.reqTime, st.respTime)
	}
	if st.size < 0 && total > 0 {
		e.recordMeta(st.res, st.gen, header, st.epoch, st.reqTime, st.respTime)
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
		st.e.log.Warn("origin body interrupted", "key", st.res.key, "err", err)
	}
}

// slot returns slice idx of the stream: stored, or the fill the stream writes it through.
func (st *sliceStream) slot(ctx context.Context, idx int64) (*fetchedSlice, error) {
	e := st.e
	if data := e.storedSlice(st.res.key, st.epoch, idx, st.identity); data != nil {
		return &fetchedSlice{data: data, cs: cachestatus.Status{Hit: true}}, nil
	}
	head := st.slotHead()
	f, _ := e.fills.Join(ctx, st.slotKey(idx), func(_ context.Context, f *fill.Fill) {
		// The stream is not writing this slice (any more): stored meanwhile, or gone.
		data := e.storedSlice(st.res.key, st.epoch, idx, st.identity)
		if data == nil {
			f.Fail(errSliceGone)
			return
		}
		body := fill.NewMemoryBodySize(int64(len(data)))
		body.Write(data)
		body.Finish(nil)
		f.SetHead(head, body)
	})
	_, body, err := f.Head(ctx, true, 0)
	if err != nil {
		f.Done()
		return nil, err
	}
	return &fetchedSlice{body: body, f: f}, nil
}

// reader reads the whole object from the stream, slice after slice.
func (st *sliceStream) reader(ctx context.Context) *sliceSeqReader {
	return &sliceSeqReader{ctx: ctx, size: int64(st.e.cfg.SliceSize), state: st.state,
		get: func(idx int64) (*fetchedSlice, error) { return st.slot(ctx, idx) }}
}

// sliceSeqReader reads an object slice after slice from the start, returning each slice's
// bytes as they arrive. A short slice is the object's last; the object's length, once known,
// must agree.
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
}

func (sr *sliceSeqReader) Read(p []byte) (int, error) {
	for {
		if sr.cur == nil {
			total, _ := sr.state()
			if sr.eof || total >= 0 && sr.idx*sr.size >= total {
				return 0, io.EOF
			}
			s, err := sr.get(sr.idx)
			if err != nil {
				return 0, err
			}
			sr.cur, sr.off = s, 0
			if s.data != nil {
				sr.rd = bytes.NewReader(s.data)
			} else {
				sr.rd = s.body.NewReader(sr.ctx, 0)
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
	return nil
}

// serveStream answers a plain GET or HEAD of an object of unknown length that a stream is
// storing as slices: the origin's header and, as the stream writes them, its bytes. It
// reports false, having written nothing, when the stream already failed.
func (e *Edge) serveStream(w http.ResponseWriter, r *http.Request, st *sliceStream, res lookupResult) bool {
	if _, err := st.state(); err != nil {
		return false
	}
	h := clientHeader(st.client)
	cs := cachestatus.Status{Fwd: res.fwd, FwdStatus: http.StatusOK, Stored: true, Collapsed: true}
	if policy.NotModified(r, policy.Stored{Status: http.StatusOK, Header: st.header, RequestTime: st.reqTime, ResponseTime: st.respTime}) {
		e.writeHead(w, r, http.StatusNotModified, h, 0, cs)
		return true
	}
	e.writeHead(w, r, http.StatusOK, h, 0, cs)
	if r.Method == http.MethodHead {
		return true
	}
	rd := st.reader(r.Context())
	defer rd.Close()
	if err := copyFlushing(w, rd); err != nil && r.Context().Err() == nil {
		panic(http.ErrAbortHandler) // mid-response: only an abrupt end is honest
	}
	return true
}

// streamableUnknownLength reports whether a response of unknown length may be stored as
// slices while it streams: a 200 with a strong ETag (its identity, which slices fetched
// later by range must match) from an origin that says it serves byte ranges.
func streamableUnknownLength(resp *http.Response) bool {
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
