package rangecache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reelvideo/reel/rangecache/fill"
)

// Status is what a response from slices tells in its Cache-Status (RFC 9211).
type Status struct {
	Hit       bool   // from stored slices only
	Fwd       string // why the origin was asked (a §2.2 fwd reason), when it was
	FwdStatus int    // the status the origin answered with
	Stored    bool   // what the origin sent is stored
	Collapsed bool   // the request joined another request's fill
}

// Response is the answer to a request from slices: the caller writes its head (Status,
// Header; Age and Cache for its own Age and Cache-Status fields), then, unless the request
// is a HEAD, calls WriteBody; it calls Close in any case.
//
// When Direct is set the origin answered the slice request with something other than a 206
// — the whole object (it ignores Range), an error… — and the caller serves that as the
// whole-object path would (Status and Header are unset).
type Response struct {
	Status int
	Header http.Header
	Age    time.Duration // when the response comes from stored slices
	Cache  Status
	Direct *Direct

	write func(w http.ResponseWriter, first *fetchedSlice) error
	first *fetchedSlice // held until the body is written or the response closed
}

// WriteBody writes the response's body. An error means the body broke off midway: only an
// abrupt end of the response is honest then.
func (resp *Response) WriteBody(w http.ResponseWriter) error {
	write, first := resp.write, resp.first
	resp.write, resp.first = nil, nil
	if write == nil {
		return nil
	}
	return write(w, first)
}

// Close releases what the response holds (fills it joined, an origin body).
func (resp *Response) Close() {
	if resp.first != nil {
		resp.first.release()
		resp.first = nil
	}
	if resp.Direct != nil {
		resp.Direct.release()
	}
}

// Serve answers a GET or HEAD from slices. It returns a Response whose Direct is set when the
// origin answered a slice request with something else than a slice (the whole object from an
// origin that ignores ranges, an error), or else ErrDecline to leave the request to the
// whole-object path (see ErrDecline), ErrNotSliceable to send it to the origin uncached (no
// identity, Vary, private; ranges scattered over slices not stored), ErrChanged when the
// object changed at the origin while its slices were read, ErrMultipart when a multipart reply
// can't be built, or the origin's error.
func (c *Cache) Serve(q *Request) (*Response, error) {
	r := q.HTTP
	S := c.SliceSize
	m, known := loadMeta(q.Store, q.Key)
	if known {
		// Judged on the response alone: one client's no-cache must not discard everyone's
		// slices. A stale meta is treated as unknown: the first slice is fetched again, and
		// sliceEpoch refreshes the meta if the object is the same (its slices stay valid) or
		// forgets them all if it changed.
		if !q.Policy.Fresh(m.obj) {
			m, known = nil, false
		}
	}
	var storedMeta *Entry // for Age when the response comes from stored slices
	if known {
		storedMeta = m.obj
	}
	rng := r.Header.Get("Range")
	gen := c.Gen(q.Key)
	if !known && rng == "" {
		// An object of unknown length being stored as slices by a stream: read from it.
		if v, ok := c.streams.Load(q.Key); ok {
			if st := v.(*sliceStream); st.gen == gen && st.size < 0 {
				if resp, ok := c.serveStream(q, st); ok {
					return resp, nil
				}
			}
		}
	}
	var start int64
	if !known && rng != "" {
		if suffixRange(rng) {
			return c.serveColdSuffix(q, gen)
		}
		// Cold: the lowest first byte says which slice to fetch before the length is known
		// (a whole GET starts at slice 0).
		first, ok := firstByte(rng)
		if !ok {
			return nil, ErrDecline
		}
		start = first
	}

	// The slice holding the first requested byte, fetched (or found) first: it tells the
	// object's length and identity when they are not known yet.
	idx := start / S
	if known {
		kind, rs := Evaluate(r, m.header, m.total)
		switch {
		case rng != "" && kind == Unsatisfiable:
			h := http.Header{"Content-Range": {UnsatisfiedContentRange(m.total)}}
			return &Response{Status: http.StatusRequestedRangeNotSatisfiable, Header: h, Cache: Status{Hit: true}}, nil
		case kind == Satisfiable && len(rs) == 1:
			idx = rs[0].Start / S
		case rng != "" && kind == Satisfiable:
			idx = rs[0].Start / S // several ranges: multipart, from the first one's slice
		}
	}
	first, err := c.slice(q, gen, idx, m)
	if err != nil && notSliceable(err) {
		// Not sliceable (Vary, private, no identity…), or another request's answer we may
		// not share: the client's own request goes to the origin, uncached.
		return nil, fmt.Errorf("%w: %w", ErrNotSliceable, err)
	}
	if err != nil {
		return nil, err
	}
	if first.direct != nil {
		// The origin answered the slice request with something other than a 206: the whole
		// object (it ignores Range), an error… — served as the whole-object path would.
		return &Response{Cache: first.cs, Direct: first.direct}, nil
	}
	m = first.meta
	kind, rs := Evaluate(r, m.header, m.total)
	status, lo, hi := http.StatusOK, int64(0), m.total-1
	h := c.ClientHeader(m.header)
	h.Del(epochField)
	h.Set("Accept-Ranges", "bytes")
	switch {
	case rng != "" && kind == Unsatisfiable:
		first.release()
		h := http.Header{"Content-Range": {UnsatisfiedContentRange(m.total)}}
		return &Response{Status: http.StatusRequestedRangeNotSatisfiable, Header: h, Cache: first.cs}, nil
	case kind == Satisfiable && len(rs) == 1:
		status, lo, hi = http.StatusPartialContent, rs[0].Start, rs[0].Start+rs[0].Length-1
		h.Set("Content-Range", rs[0].ContentRange(m.total))
	case kind == Satisfiable:
		fetched := int64(-1)
		if !first.cs.Hit {
			fetched = idx
		}
		first.release()
		if !c.rangesFillFit(q, m, rs, fetched) {
			// Small ranges scattered over many slices not stored: filling them would cost
			// the origin far more than the client gets. The ranges go to the origin as
			// asked, uncached.
			return nil, fmt.Errorf("%w: ranges scattered over slices not stored", ErrNotSliceable)
		}
		return c.multipart(q, gen, m, rs, h, first.cs)
	}
	h.Set("Content-Length", strconv.FormatInt(hi-lo+1, 10))
	if lo/S != idx {
		// Known only now (a suffix range on a cold object): not the slice we fetched.
		first.release()
		if first, err = c.slice(q, gen, lo/S, m); err != nil || first.direct != nil {
			if first != nil {
				first.release()
			}
			return nil, errors.Join(err, ErrChanged)
		}
	}
	var age time.Duration
	if storedMeta != nil && first.cs.Hit {
		age = c.Age(storedMeta, c.Now())
	}
	write := func(w http.ResponseWriter, first *fetchedSlice) error {
		return c.writeRange(w, q, gen, m, rng != "", lo, hi, first)
	}
	return &Response{Status: status, Header: h, Age: age, Cache: first.cs, write: write, first: first}, nil
}

// errMidResponse reports a slice that could not be had once the response's head was sent:
// only an abrupt end is honest then.
var errMidResponse = errors.New("slice not available mid-response")

// writeRange writes bytes lo to hi of the object, slice after slice, from first (the slice
// holding lo).
func (c *Cache) writeRange(w http.ResponseWriter, q *Request, gen uint64, m *meta, ranged bool, lo, hi int64, first *fetchedSlice) error {
	S := c.SliceSize
	r := q.HTTP
	// A range longer than one slice reads like a player fetching media in sequence: its
	// next request most likely starts where this one ends, so the slice after it is read
	// ahead. Shorter ranges (probes, index boxes, seeks) don't, so that bytes=0-99 of a cold
	// object still costs one slice.
	readAhead := ranged && hi/S > lo/S && (hi/S+1)*S < m.total
	cur := first
	for i := lo / S; i <= hi/S; i++ {
		if cur == nil {
			var err error
			if cur, err = c.slice(q, gen, i, m); err != nil || !cur.usable() {
				return errors.Join(fmt.Errorf("slice %d: %w", i, errMidResponse), err)
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
				s, err := c.slice(q, gen, i, m)
				if err != nil {
					s = nil
				}
				next <- s
			}(i + 1)
		} else if readAhead {
			c.readAhead(q, gen, i+1, m)
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
			return err
		}
		cur = nil
		if next != nil {
			if cur = <-next; !cur.usable() {
				return fmt.Errorf("slice %d: %w", i+1, errMidResponse)
			}
		}
	}
	return nil
}

// multipart answers several ranges of a sliced object as multipart/byteranges (RFC 9110
// §14.6), reading only the slices the ranges cover.
func (c *Cache) multipart(q *Request, gen uint64, m *meta, rs []Range, h http.Header, cs Status) (*Response, error) {
	boundary := RandomBoundary()
	ctype := m.header.Get("Content-Type")
	n, err := MultipartLength(boundary, ctype, m.total, rs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMultipart, err)
	}
	h.Set("Content-Type", MultipartContentType(boundary))
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	write := func(w http.ResponseWriter, _ *fetchedSlice) error {
		src := &sliceReader{c: c, q: q, gen: gen, meta: m}
		defer src.close()
		return WriteMultipart(w, boundary, ctype, m.total, rs, src)
	}
	return &Response{Status: http.StatusPartialContent, Header: h, Cache: cs, write: write}, nil
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
func (c *Cache) serveColdSuffix(q *Request, gen uint64) (*Response, error) {
	r := q.HTTP
	out := fill.Request(r)
	out.Header.Set("Range", r.Header.Get("Range"))
	whole := fill.Request(r)
	c.Inflight.Add(1)
	key := q.Key + "\x00suffix\x00" + strconv.FormatUint(gen, 10) + "\x00" + out.Header.Get("Range")
	f, leader := c.Fills.Join(r.Context(), key, func(ctx context.Context, f *fill.Fill) {
		defer c.Inflight.Done()
		resp, reqTime, respTime, err := q.Origin.Fetch(ctx, out)
		if err != nil {
			f.Fail(err)
			return
		}
		if resp.StatusCode == http.StatusPartialContent {
			f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: resp.Body, Reason: "unsliced"}, nil)
			return
		}
		q.Whole.Publish(f, whole, resp, gen, reqTime, respTime)
	})
	if !leader {
		c.Inflight.Done()
	}
	wait := c.CoalesceWait
	if leader {
		wait = 0
	}
	head, body, err := f.Head(r.Context(), leader, wait)
	switch {
	case errors.Is(err, fill.ErrNotShareable), errors.Is(err, fill.ErrHeadTimeout):
		f.Done()
		return nil, fmt.Errorf("%w: %w", ErrNotSliceable, err)
	case err != nil:
		f.Done()
		return nil, err
	}
	cs := Status{Fwd: q.Fwd, FwdStatus: head.Status, Stored: head.Stored, Collapsed: !leader}
	return &Response{Cache: cs, Direct: &Direct{Head: head, Body: body, f: f}}, nil
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
func (c *Cache) rangesFillFit(q *Request, m *meta, rs []Range, fetched int64) bool {
	S := c.SliceSize
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
			if i != fetched && !hasSlice(q.Store, q.Key, m.epoch, i, m.identity) {
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
	c    *Cache
	q    *Request
	gen  uint64
	meta *meta
	cur  *fetchedSlice // kept across reads: the multipart writer reads in small chunks
	idx  int64
}

func (sr *sliceReader) ReadAt(p []byte, off int64) (int, error) {
	S := sr.c.SliceSize
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= sr.meta.total {
			return n, io.EOF
		}
		if sr.cur == nil || sr.idx != pos/S {
			sr.close()
			s, err := sr.c.slice(sr.q, sr.gen, pos/S, sr.meta)
			if err == nil && !s.usable() {
				err = ErrChanged
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
		} else if _, err := io.ReadFull(sr.cur.body.NewReader(sr.q.HTTP.Context(), in), p[n:n+int(want)]); err != nil {
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
