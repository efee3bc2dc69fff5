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
// [MultipartContentType] and [RandomBoundary] give its Content-Type.
package rangecache
