package edge

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
)

// cached is a stored response from either tier, as the handler sees it.
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
	hit                       *hitHeader // memory tier: the header prepared for hits, or nil
}

func fromMemory(o *store.Object) *cached {
	hit, _ := o.Prepared.(*hitHeader)
	return &cached{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime,
		Size: int64(len(o.Body)), mem: o.Body, invalidated: o.Invalidated, freshUntil: o.FreshUntil, initialAge: o.InitialAge,
		hit: hit}
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

// withFreshness fills o's precomputed freshness under pol: fresh until the instant its age
// reaches its lifetime, provided a plain request may reuse it at all right now. It also
// prepares the header hits will send (see hitHeader).
func withFreshness(o *store.Object, pol policy.Options) *store.Object {
	if o.Body != nil {
		o.Prepared = prepareHit(o)
	}
	st := policy.Stored{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime}
	plain := &http.Request{Method: http.MethodGet, Header: http.Header{}}
	if policy.Reuse(plain, st, o.ResponseTime, pol) != policy.Fresh {
		return o
	}
	age := policy.CurrentAge(o.Header, o.RequestTime, o.ResponseTime, o.ResponseTime)
	life, _ := policy.Lifetime(o.Status, o.Header, o.ResponseTime, pol)
	if life > age {
		o.InitialAge = age
		o.FreshUntil = o.ResponseTime.Add(life - age)
	}
	return o
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
