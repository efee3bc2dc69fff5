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
}

func fromMemory(o *store.Object) *cached {
	return &cached{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime,
		Size: int64(len(o.Body)), mem: o.Body, invalidated: o.Invalidated}
}

func fromDisk(o *store.DiskObject) *cached {
	return &cached{Status: o.Status, Header: o.Header, RequestTime: o.RequestTime, ResponseTime: o.ResponseTime,
		Size: o.Size, disk: o, invalidated: o.Invalidated}
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
