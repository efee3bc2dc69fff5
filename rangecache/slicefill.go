package rangecache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/reelvideo/reel/rangecache/fill"
)

// fwdURIMiss is the Cache-Status fwd reason of a slice fetched from the origin (RFC 9211
// §2.2: no stored response matched).
const fwdURIMiss = "uri-miss"

// fetchedSlice is one slice ready to be read: stored bytes, or a fill in progress.
type fetchedSlice struct {
	meta   *meta
	data   []byte     // a stored slice
	body   *fill.Body // or a fill's body
	f      *fill.Fill
	cs     Status
	direct *Direct // the origin did not answer with a slice
}

func (s *fetchedSlice) release() {
	if s.f != nil {
		s.f.Done()
		s.f = nil
	}
	if d := s.direct; d != nil {
		d.release()
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
	return fill.CopyFlushing(w, io.LimitReader(s.body.NewReader(ctx, off), n))
}

// Direct is a non-slice origin answer passed to the client as is: Head.Direct, the origin's
// body for this request alone, or else Body, a fill's body to serve as the whole-object path
// would.
type Direct struct {
	Head fill.Head
	Body *fill.Body
	f    *fill.Fill
}

// release ends the answer: the origin's body closed, the fill left.
func (d *Direct) release() {
	if d.f == nil {
		return
	}
	if d.Head.Direct != nil {
		d.Head.Direct.Close()
	}
	d.f.Done()
	d.f = nil
}

// slice returns slice idx of the object: stored, or fetched through a coalesced fill.
func (c *Cache) slice(q *Request, gen uint64, idx int64, m *meta) (*fetchedSlice, error) {
	if m != nil {
		if data := storedSlice(q.Store, q.Key, m.epoch, idx, m.identity); data != nil {
			if c.ahead.take(q.Key, idx) {
				c.Counters.ReadAheadUsed()
			}
			return &fetchedSlice{meta: m, data: data, cs: Status{Hit: true}}, nil
		}
	}
	f, leader := c.joinSlice(q, gen, idx, m)
	if c.ahead.take(q.Key, idx) && !leader {
		c.Counters.ReadAheadUsed() // still on its way from the origin, but already asked for
	}
	if !leader {
		c.Counters.Collapsed()
	}
	wait := c.CoalesceWait
	if leader {
		wait = 0
	}
	head, body, err := f.Head(q.HTTP.Context(), leader, wait)
	if err != nil {
		f.Done()
		return nil, err
	}
	cs := Status{Fwd: fwdURIMiss, FwdStatus: head.Status, Stored: head.Stored, Collapsed: !leader}
	if head.Status != http.StatusPartialContent {
		return &fetchedSlice{cs: cs, direct: &Direct{Head: head, Body: body, f: f}}, nil
	}
	total, _ := strconv.ParseInt(head.Header.Get("Content-Length"), 10, 64)
	got := &meta{total: total, identity: Identity(head.Header, total), epoch: epochOf(head.Header), header: head.Header}
	if m != nil && got.identity != m.identity {
		f.Done()
		q.Store.Forget(q.Key)
		return nil, ErrChanged
	}
	return &fetchedSlice{meta: got, body: body, f: f, cs: cs}, nil
}

// joinSlice joins (or starts) the coalesced fill of slice idx; the caller must call f.Done.
func (c *Cache) joinSlice(q *Request, gen uint64, idx int64, m *meta) (f *fill.Fill, leader bool) {
	S := c.SliceSize
	out := fill.Request(q.HTTP)
	out.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", idx*S, idx*S+S-1))
	c.Inflight.Add(1)
	f, leader = c.Fills.Join(q.HTTP.Context(), sliceFillKey(q.Key, gen, idx), func(ctx context.Context, f *fill.Fill) {
		defer c.Inflight.Done()
		c.runSliceFill(ctx, f, q, out, gen, idx, m)
	})
	if !leader {
		c.Inflight.Done()
	}
	return f, leader
}

// runSliceFill fetches one slice. A 206 for exactly the slice's bytes is stored as the slice
// (and, for the first one, the object's meta); anything else goes the whole-object way.
// The head it publishes for a slice carries the whole object's header (Content-Length = the
// object's length), so followers learn the length and identity from it.
func (c *Cache) runSliceFill(ctx context.Context, f *fill.Fill, q *Request, r *http.Request, gen uint64, idx int64, m *meta) {
	whole := r.Clone(r.Context())
	whole.Header.Del("Range")
	if q.Whole.StoredWhole(f, whole) {
		return // stored whole meanwhile: the whole-object path answers the range from it
	}
	if m != nil {
		// The previous fill of this slice may have stored it and left the table between
		// the request's look and its join (readers of one object in step, a prefetch
		// overtaken by a reader): served from the store, not fetched twice. (Without a
		// meta — a cold or stale object — the origin is asked, as it must be.)
		if data := storedSlice(q.Store, q.Key, m.epoch, idx, m.identity); data != nil {
			body := fill.NewMemoryBodySize(int64(len(data)))
			body.Write(data)
			body.Finish(nil)
			f.SetHead(fill.Head{Status: http.StatusPartialContent, Header: m.header, Shareable: true, Stored: true}, body)
			return
		}
	}
	resp, reqTime, respTime, err := q.Origin.Fetch(ctx, r)
	if err != nil {
		f.Fail(err)
		return
	}
	S := c.SliceSize
	a, b, total, ok := contentRange(resp.Header.Get("Content-Range"))
	header, storable := q.Policy.Storable(whole, resp.Header)
	if resp.StatusCode != http.StatusPartialContent || !ok || a != idx*S || b != min(idx*S+S, total)-1 ||
		resp.ContentLength != b-a+1 || !storable || len(resp.Header.Values("Vary")) > 0 || Identity(resp.Header, total) == "" {
		if resp.StatusCode == http.StatusPartialContent {
			// A partial answer we can't keep as a slice: every waiting request asks the origin
			// for its own range instead, and is passed the answer uncached. That includes a
			// 206 whose Content-Range says "bytes a-b/*" (complete length unknown, RFC 9110
			// §14.4): a slice's meta needs the object's length.
			resp.Body.Close()
			f.Fail(ErrNotSliceable)
			return
		}
		q.Whole.Publish(f, whole, resp, gen, reqTime, respTime)
		return
	}
	header.Del("Content-Range")
	header.Set("Content-Length", strconv.FormatInt(total, 10))
	// The meta is recorded before the body is read, so that the head can tell everyone
	// waiting which epoch the object's other slices are stored under.
	epoch := c.sliceEpoch(q, gen, header, reqTime, respTime)
	if epoch != 0 {
		header.Set(epochField, strconv.FormatUint(epoch, 10))
	}
	body := fill.NewMemoryBodySize(b - a + 1)
	f.SetHead(fill.Head{Status: http.StatusPartialContent, Header: header, Shareable: true, Stored: true}, body)
	n, err := body.CopyHoldingLast(resp.Body)
	resp.Body.Close()
	c.Counters.OriginBytes(n)
	if err == nil && n != b-a+1 {
		err = fmt.Errorf("origin sent %d of %d slice bytes", n, b-a+1)
	}
	if err != nil {
		body.Finish(err)
		return
	}
	defer body.Finish(nil) // after storing, as in the whole-object path
	c.storeSlice(q, gen, epoch, idx, header, body.Written(), reqTime, respTime)
}

// notSliceable maps the errors of a first slice that send the request to the origin
// uncached: not sliceable (Vary, private, no identity…), or another request's answer we may
// not share, or one too slow to wait for.
func notSliceable(err error) bool {
	return errors.Is(err, ErrNotSliceable) || errors.Is(err, fill.ErrNotShareable) || errors.Is(err, fill.ErrHeadTimeout)
}
