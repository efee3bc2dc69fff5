package rangecache

import (
	"errors"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// epochField carries a sliced object's epoch in its meta's header and in the heads of slice
// fills; clients never see it.
const epochField = "X-Reel-Slice-Epoch"

// identityField is the object's identity stored with each slice, checked when it is read.
const identityField = "X-Reel-Identity"

// ErrChanged reports that the origin's object changed between two slices of one response.
var ErrChanged = errors.New("object changed while its slices were read")

// ErrNotSliceable reports a 206 that can't be cached as a slice (Vary, private, no
// identity…), or ranges not worth filling as slices: the request goes to the origin
// uncached.
var ErrNotSliceable = errors.New("response cannot be cached as a slice")

// ErrMultipart reports a multipart/byteranges reply that can't be built (MultipartLength's
// errors: the caller answers 500, never the origin's fault).
var ErrMultipart = errors.New("cannot build the multipart reply")

// ErrDecline reports a request the byte-range cache leaves to the whole-object path: a Range
// of an object not yet known that is not a byte range it can read a first byte from (another
// unit, a malformed set), which the whole object's fill answers as RFC 9110 §14.2 says.
var ErrDecline = errors.New("request not served from slices")

// meta is what the first slice taught us about a sliced object.
type meta struct {
	total    int64
	identity string
	epoch    uint64      // what the object's slices are keyed with; 0: none stored
	header   http.Header // the object's header, as for a 200 of the whole object
	obj      *Entry      // the stored meta (for its freshness), nil for a fill's head
}

func loadMeta(st Store, key string) (*meta, bool) {
	o := st.Meta(key)
	if o == nil {
		return nil, false
	}
	total, err := strconv.ParseInt(o.Header.Get("Content-Length"), 10, 64)
	if err != nil {
		return nil, false
	}
	return &meta{total: total, identity: Identity(o.Header, total), epoch: epochOf(o.Header), header: o.Header, obj: o}, true
}

func epochOf(h http.Header) uint64 {
	n, _ := strconv.ParseUint(h.Get(epochField), 10, 64)
	return n
}

// Known reports whether the URL at key is known as a sliced object.
func Known(st Store, key string) bool {
	_, ok := loadMeta(st, key)
	return ok
}

// Identity is what must stay equal between slices of one object: a strong ETag, else
// Last-Modified with the length; "" when the origin gives neither (such objects aren't sliced).
func Identity(h http.Header, total int64) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return "etag:" + et
	}
	if lm := h.Get("Last-Modified"); lm != "" {
		return "lm:" + lm + "/" + strconv.FormatInt(total, 10)
	}
	return ""
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

// storedSlice returns a stored slice's bytes, or nil.
func storedSlice(st Store, key string, epoch uint64, idx int64, id string) []byte {
	if epoch == 0 {
		return nil
	}
	h, data := st.Slice(sliceKey(key, epoch, idx))
	if h == nil || h.Get(identityField) != id {
		return nil
	}
	return data
}

// hasSlice reports whether slice idx is stored, without reading it.
func hasSlice(st Store, key string, epoch uint64, idx int64, id string) bool {
	if epoch == 0 {
		return false
	}
	h := st.SliceHeader(sliceKey(key, epoch, idx))
	return h != nil && h.Get(identityField) == id
}

// sliceEpoch returns the epoch to store slices of the object described by header (its
// whole-object header: Content-Length = the object's length) under, recording the object's
// meta if it is new, or refreshing it if it was stale and the origin has now confirmed it
// (same identity: its epoch and slices stay). It returns 0 — store nothing — if the URL was
// invalidated since gen, and forgets the object if the origin's version is not the one
// recorded.
func (c *Cache) sliceEpoch(q *Request, gen uint64, header http.Header, reqTime, respTime time.Time) uint64 {
	// One meta per object: concurrent first slices must agree on the epoch, or all but one
	// would store slices no meta leads to.
	mu := c.metaLock(q.Key)
	mu.Lock()
	defer mu.Unlock()
	if c.Gen(q.Key) != gen {
		return 0
	}
	total, _ := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
	m, ok := loadMeta(q.Store, q.Key)
	if ok && m.identity != Identity(header, total) {
		q.Store.Forget(q.Key) // another version: start over
		return 0
	}
	if ok && m.epoch != 0 && q.Policy.Fresh(m.obj) {
		return m.epoch
	}
	epoch := uint64(0)
	if ok {
		epoch = m.epoch
	}
	for epoch == 0 {
		epoch = rand.Uint64()
	}
	putMeta(q, header, epoch, reqTime, respTime)
	return epoch
}

// recordMeta records the meta of an object whose slices are stored under epoch already (one
// of unknown length, complete now: header has its length), unless the URL was invalidated
// since gen or another version of the object was recorded meanwhile. A meta of the same
// version is replaced: the slices under epoch are complete.
func (c *Cache) recordMeta(q *Request, gen uint64, header http.Header, epoch uint64, reqTime, respTime time.Time) bool {
	mu := c.metaLock(q.Key)
	mu.Lock()
	defer mu.Unlock()
	if c.Gen(q.Key) != gen {
		return false
	}
	total, _ := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
	if m, ok := loadMeta(q.Store, q.Key); ok && m.identity != Identity(header, total) {
		return false
	}
	putMeta(q, header, epoch, reqTime, respTime)
	return true
}

func (c *Cache) metaLock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &c.metaLocks[h.Sum32()%uint32(len(c.metaLocks))]
}

// putMeta stores a sliced object's meta; the caller holds its meta lock.
func putMeta(q *Request, header http.Header, epoch uint64, reqTime, respTime time.Time) {
	mh := header.Clone()
	mh.Set(epochField, strconv.FormatUint(epoch, 10))
	q.Store.PutMeta(q.Key, &Entry{Status: http.StatusOK, Header: mh, RequestTime: reqTime, ResponseTime: respTime})
}

// storeSlice stores slice idx of an object under epoch (from sliceEpoch; 0 stores nothing),
// unless the URL was invalidated since gen.
func (c *Cache) storeSlice(q *Request, gen, epoch uint64, idx int64, header http.Header, data []byte, reqTime, respTime time.Time) {
	if epoch == 0 || c.Gen(q.Key) != gen {
		return
	}
	total, _ := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
	sh := header.Clone()
	sh.Set(identityField, Identity(header, total))
	q.Store.PutSlice(sliceKey(q.Key, epoch, idx), &Entry{Status: http.StatusPartialContent, Header: sh, RequestTime: reqTime, ResponseTime: respTime, Body: data})
	c.Counters.Stored()
}

// Keep stores the whole slices among the first n bytes of an abandoned fill's body (read
// from src) as the object's slices, so that the next request for it fetches only the rest.
// header is the object's stored header, size its length, gen the URL's invalidation count
// when the fill began.
func (c *Cache) Keep(q *Request, gen uint64, header http.Header, size int64, src io.ReaderAt, n int64, reqTime, respTime time.Time) {
	S := c.SliceSize
	if S <= 0 || n < S {
		return
	}
	header = header.Clone()
	header.Set("Content-Length", strconv.FormatInt(size, 10))
	epoch := c.sliceEpoch(q, gen, header, reqTime, respTime)
	if epoch == 0 {
		return
	}
	header.Set(epochField, strconv.FormatUint(epoch, 10))
	for i := int64(0); (i+1)*S <= n; i++ {
		data := make([]byte, S)
		if _, err := src.ReadAt(data, i*S); err != nil {
			return
		}
		c.storeSlice(q, gen, epoch, i, header, data, reqTime, respTime)
	}
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

// contentRangeUnknownTotal parses "bytes a-b/total" or "bytes a-b/*".
func contentRangeUnknownTotal(v string) (a, b int64, ok bool) {
	if rest, star := strings.CutSuffix(v, "/*"); star {
		v = rest + "/" + strconv.FormatInt(math.MaxInt64, 10)
	}
	a, b, _, ok = contentRange(v)
	return a, b, ok
}
