package rangecache

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/reelvideo/reel/rangecache/fill"
)

// Entry is a stored response as the byte-range cache sees it: a sliced object's meta (its
// whole-object header, no body) or one slice (a 206 with its bytes).
type Entry struct {
	Status int
	Header http.Header
	// RequestTime and ResponseTime bracket the origin exchange (RFC 9111 §4.2.3).
	RequestTime, ResponseTime time.Time
	Body                      []byte
	// Invalidated marks a soft purge: the meta must be confirmed by the origin before reuse.
	Invalidated bool
}

// Store is where a sliced object's meta and slices are kept. The edge implements it over its
// memory and disk tiers (slices written through to disk); a request's Store may apply the
// cache policy of the request's URL when it stores a meta.
type Store interface {
	// Meta returns the meta stored for the object at key (no body), or nil.
	Meta(key string) *Entry
	// PutMeta stores the object's meta (replacing any).
	PutMeta(key string, m *Entry)
	// Slice returns a stored slice's header and bytes, or a nil header.
	Slice(key string) (http.Header, []byte)
	// SliceHeader returns a stored slice's header without reading its bytes, or nil.
	SliceHeader(key string) http.Header
	// PutSlice stores a slice.
	PutSlice(key string, s *Entry)
	// Forget drops what is known of the object at key: its meta (and with it the epoch its
	// slices are reached by) and whatever else the URL stores, and makes fills in flight for
	// it store nothing (Cache.Gen moves on).
	Forget(key string)
}

// Origin is a request's way to the object's origin.
type Origin interface {
	// Fetch sends a fill's request upstream (the edge adds its Via, CDN-Loop, X-Forwarded-For
	// and the upstream's Host) and returns the response with a Date and the exchange's times
	// (RFC 9111 §4.2.3).
	Fetch(ctx context.Context, out *http.Request) (resp *http.Response, reqTime, respTime time.Time, err error)
}

// Policy is the cache policy for a request's URL, as the caller applies it (RFC 9111).
type Policy interface {
	// Fresh reports whether a plain request may use the stored meta m now (the response's own
	// freshness, RFC 9111 §4.2, and not soft-purged).
	Fresh(m *Entry) bool
	// Storable reports whether the object a slice of which came with header h may be stored
	// (asked as for whole, a plain GET of it), and with which header.
	Storable(whole *http.Request, h http.Header) (stored http.Header, ok bool)
}

// WholePath is the caller's whole-object cache, for what is not the byte-range cache's.
type WholePath interface {
	// StoredWhole publishes f from the whole object if it was stored whole meanwhile, and
	// reports whether it did.
	StoredWhole(f *fill.Fill, whole *http.Request) bool
	// Publish hands a slice request's answer that is not a usable slice (the whole object
	// from an origin that ignores ranges, an error…) to the whole-object path, which publishes
	// it on f as a fill of whole (gen: the URL's invalidation count when the fill began).
	Publish(f *fill.Fill, whole *http.Request, resp *http.Response, gen uint64, reqTime, respTime time.Time)
}

// Observer counts what the byte-range cache does (for the edge's stats and metrics).
type Observer interface {
	Collapsed()          // a request joined another request's slice fill
	Stored()             // a slice was stored
	OriginBytes(n int64) // body bytes received from the origin
	ReadAheadStarted()   // a slice was fetched ahead of the requests for it
	ReadAheadUsed()      // a request used a slice fetched ahead
}

// Request is one client request for a sliced object and its surroundings.
type Request struct {
	HTTP   *http.Request
	Key    string // the object's cache key
	Fwd    string // the Cache-Status fwd reason of a response the request itself fetches (RFC 9211 §2.2)
	Store  Store
	Origin Origin
	Policy Policy
	Whole  WholePath
}

// Cache is the byte-range cache: it answers requests from slices and stores responses as
// slices. Its exported fields are all required, and set once, before use.
type Cache struct {
	SliceSize         int64
	CoalesceWait      time.Duration // how long a request waits for another's slice fill's head
	OriginReadTimeout time.Duration // how long a stream waits for its readers (see await)
	Fills             *fill.Table
	// Inflight counts running fills, so that the edge's Close lets them store what they fetched.
	Inflight *sync.WaitGroup
	// Gen returns the URL's invalidation count: a fill that began before a purge must not
	// store what it fetched, nor be joined by requests that come after it.
	Gen func(key string) uint64
	Now func() time.Time
	Log *slog.Logger
	// Counters is told what happens, for the edge's stats and metrics.
	Counters Observer
	// ClientHeader is the copy of a stored or origin header sent to a client.
	ClientHeader func(http.Header) http.Header
	// Age is the current age of a stored meta (RFC 9111 §4.2.3).
	Age func(m *Entry, now time.Time) time.Duration
	// NotModified reports whether r's conditionals match a response with status, header
	// and exchange times m (RFC 9110 §13.1): a 304 answers it.
	NotModified func(r *http.Request, m *Entry) bool

	ahead aheadSet // slices read ahead, for counting the ones used
	// metaLocks serialise recording sliced objects' metas (by key hash; sliceEpoch).
	metaLocks [64]sync.Mutex
	// streams are the objects of unknown length being stored as slices, by key
	// (*sliceStream), for the requests that join their fills.
	streams sync.Map
}
