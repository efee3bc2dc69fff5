package h1

import (
	"net/url"

	"github.com/reelvideo/reel/edge/internal/reqctx"
)

// reqAlloc is what a request allocates besides its *http.Request and its header: its context
// and its URL, in one allocation, since both live as long as the request.
type reqAlloc struct {
	ctx reqctx.Context // watched by the conn: see conn.Watch
	url url.URL
}
