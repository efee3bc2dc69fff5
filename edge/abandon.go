package edge

import (
	"errors"
	"io"

	"github.com/reelvideo/reel/rangecache/fill"
)

// A fill reads the origin on a context no client can cancel, so that one client's disconnect
// doesn't stop it for the others. But once every client that asked has gone — five
// cache-busting GETs of a large object, each dropped after a kilobyte — reading on would make
// the origin send whole objects nobody wants. So a fill with no request left may take
// Limits.AbandonedFillBytes more and then stops; the whole slices that arrived are kept when
// the object can be sliced, so a client that comes back resumes from them.

// errAbandoned ends a fill nobody reads any more.
var errAbandoned = errors.New("fill abandoned: no request reads it any more")

// abandonGuard reads a fill's origin body until no request holds the fill and limit more bytes
// have arrived since.
type abandonGuard struct {
	io.Reader
	f     *fill.Fill
	limit int64
	spent int64 // bytes read while no request held the fill
}

func (g *abandonGuard) Read(p []byte) (int, error) {
	if g.f.Holders() > 0 {
		return g.Reader.Read(p)
	}
	left := g.limit - g.spent
	if left <= 0 {
		return 0, errAbandoned
	}
	n, err := g.Reader.Read(p[:min(int64(len(p)), left)])
	g.spent += int64(n)
	return n, err
}
