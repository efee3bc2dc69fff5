// Package rangecache evaluates HTTP byte-range requests and assembles the replies to them
// (RFC 9110 §14, §13.1.5).
//
// A request is evaluated in two steps, both pure functions of header values and the
// representation's length, so they work the same for objects served from cache, objects still
// filling (once their length is known) and HEAD requests:
//
//  1. [IfRange] decides whether the Range header applies at all (RFC 9110 §13.1.5): only a
//     strong entity-tag match, or an HTTP-date that exactly matches a strong Last-Modified,
//     lets it apply.
//  2. [Parse] evaluates the Range header against the representation's length and says what to
//     send: [Ignore] (200 with the full representation), [Satisfiable] (206 with one range, or a
//     multipart/byteranges body for several) or [Unsatisfiable] (416 with
//     "Content-Range: bytes */LEN", see [UnsatisfiedContentRange]).
//
// Parse bounds the work and the reply a client can ask for: at most [Options.MaxRanges]
// range-specs, overlapping and adjacent ranges are coalesced, and a request whose ranges add up to
// more than twice the representation is ignored, as RFC 9110 §14.2 allows — so range-abuse
// requests such as "bytes=0-,0-,0-…" or a thousand "0-0" cannot amplify a reply.
//
// For several ranges, [MultipartLength] gives the exact length of the multipart/byteranges body
// (RFC 9110 §14.6) before [WriteMultipart] writes it, so the 206 reply can carry Content-Length;
// [MultipartContentType] and [RandomBoundary] give its Content-Type. [Evaluate] applies both
// steps to a request.
//
// # Byte-range caching
//
// [Cache] is the byte-range cache. Range requests for objects not stored whole are answered
// from slices: fixed-size, aligned pieces of the object ([Cache.SliceSize]), each fetched from
// the origin with its own Range request, coalesced and stored as its own cache entry. A client
// asking for bytes=0-99 of an uncached 4 GB object makes the origin send one slice, and its
// first byte goes out as soon as that slice's first bytes arrive. A read of several slices
// asks for slice i+1 while slice i is sent, and a range longer than one slice reads one slice
// past its end: the origin never sends more than the requested bytes rounded out to slices,
// plus that one.
//
// The object's identity — its strong ETag, or Last-Modified with its length — is recorded
// with the first slice (the slice "meta", which the edge keeps as a special variant of the URL
// so that purges and invalidations drop it) and checked on every slice: bytes of two versions
// are never mixed into one response.
//
// A whole-object response that is to be stored as slices — too large for any tier whole,
// above slice_threshold, or of unknown length at an origin that serves ranges — is cut into
// them as it streams, every request of its fill reading the one origin response
// ([Cache.Stream], stream.go).
//
// Slices are keyed with an epoch: a random number chosen when the meta is recorded and kept
// in it (so on disk too). Dropping the meta — a purge, an invalidation, a changed object —
// drops the epoch, and the next meta has a new one, so every slice stored before is
// unreachable in both tiers, after a restart as well; while the meta stays, its slices are
// found again after a restart. (The in-memory invalidation counts, gens, start from zero at
// every start: slices keyed with them would come back after a purge and a restart, and be
// lost after a restart without one. They still stop a fill that began before a purge from
// storing what it fetched.)
//
// The cache talks to its surroundings through small interfaces the caller implements, given
// with each [Request]: a [Store] for metas and slices, an [Origin] for the way upstream, a
// [Policy] for the URL's cache policy, a [WholePath] for answers that are not slices; and an
// [Observer] for counters. It writes no response head itself: [Cache.Serve]
// returns a [Response] describing what to send (or a typed error: [ErrDecline],
// [ErrNotSliceable], [ErrChanged], [ErrMultipart]), and the caller adds its own Via, Age and
// Cache-Status.
//
// Slices are filled like every other body: through the fill table of package fill (a
// sub-package: the one read-while-write mechanism, which the edge's whole-object fills use too).
//
// Files: range.go, ifrange.go and multipart.go (evaluating ranges, multipart replies);
// meta.go (identity, keys, the meta and its epoch, storing slices), slicefill.go (slice
// fills), assemble.go (answers from slices), readahead.go, stream.go (whole responses cut into
// slices as they stream), store.go (the interfaces).
package rangecache
