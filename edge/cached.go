package edge

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
)

// cached is a stored response from either tier, as the handler sees it. It is never modified
// once built: a memory object's is built once, when the object is stored, and shared by its hits.
type cached struct {
	Status                    int
	Header                    http.Header
	RequestTime, ResponseTime time.Time
	Size                      int64
	mem                       []byte            // memory tier body, or nil
	disk                      *store.DiskObject // disk tier body, or nil
	invalidated               bool              // soft-purged: revalidate before reuse
	freshUntil                time.Time         // see store.Object
	initialAge                time.Duration
	hit                       *hitHeader    // memory tier: the header prepared for hits, or nil
	src                       *store.Object // memory tier: the object this was built from
	// codable caches whether the edge compresses the object (compress.go): 0 not known yet,
	// 1 yes, 2 no.
	codable atomic.Uint32
}

// fromMemory is the memory object o as the handler sees it: the view withFreshness prepared, or
// for a copy of a stored object (a soft purge stores one with Invalidated set, sharing Prepared)
// a view of its own.
func fromMemory(o *store.Object) *cached {
	c, _ := o.Prepared.(*cached)
	if c != nil && c.src == o {
		return c
	}
	var hit *hitHeader
	if c != nil {
		hit = c.hit
	}
	return memoryView(o, hit)
}

func memoryView(o *store.Object, hit *hitHeader) *cached {
	return &cached{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime,
		Size: int64(len(o.Body)), mem: o.Body, invalidated: o.Invalidated, freshUntil: o.FreshUntil, initialAge: o.InitialAge,
		hit: hit, src: o}
}

func fromDisk(o *store.DiskObject) *cached {
	return &cached{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime,
		Size: o.Size, disk: o, invalidated: o.Invalidated}
}

// quickFresh reports whether r may use c without evaluating any header (see
// store.Object.FreshUntil), and the response's age and remaining lifetime.
func (c *cached) quickFresh(r *http.Request, now time.Time) (age, ttl time.Duration, ok bool) {
	if c.invalidated || !now.Before(c.freshUntil) || len(r.Header["Cache-Control"]) > 0 || len(r.Header["Pragma"]) > 0 {
		return 0, 0, false
	}
	return c.initialAge + now.Sub(c.ResponseTime), c.freshUntil.Sub(now), true
}

// withFreshness fills o's precomputed freshness under pol and prepares the view hits will use
// (see fromMemory), with the header they will send (see hitHeader). o must not be modified
// afterwards.
func withFreshness(o *store.Object, pol policy.Options) *store.Object {
	setFreshness(o, pol)
	var hit *hitHeader
	if o.Body != nil {
		hit = prepareHit(o)
	}
	o.Prepared = memoryView(o, hit)
	return o
}

// setFreshness sets o fresh until the instant its age reaches its lifetime, provided a plain
// request may reuse it at all right now.
func setFreshness(o *store.Object, pol policy.Options) {
	st := policy.Stored{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime}
	plain := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	if policy.Reuse(plain, st, o.ResponseTime, pol) != policy.Fresh {
		return
	}
	age := policy.CurrentAge(o.Header, o.RequestTime, o.ResponseTime, o.ResponseTime)
	life, _ := policy.Lifetime(o.Status, o.Header, o.ResponseTime, pol)
	if life > age {
		o.InitialAge = age
		o.FreshUntil = o.ResponseTime.Add(life - age)
	}
}

func (c *cached) stored() policy.Stored {
	return policy.Stored{Status: c.Status, Header: c.Header, RequestTime: c.RequestTime, ResponseTime: c.ResponseTime}
}

// readSeekCloser is a body to serve.
type readSeekCloser interface {
	io.ReadSeeker
	io.ReaderAt
	io.Closer
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// open returns the body. A disk body is an *os.File, which lets the server use sendfile.
func (c *cached) open() (readSeekCloser, error) {
	if c.disk == nil {
		return nopCloser{bytes.NewReader(c.mem)}, nil
	}
	return os.Open(c.disk.Path())
}

// bytes is c's body, from memory or the disk tier's file (nil with neither).
func (c *cached) bytes() ([]byte, error) {
	if c.mem == nil && c.disk != nil {
		return os.ReadFile(c.disk.Path())
	}
	return c.mem, nil
}
