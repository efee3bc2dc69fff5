// Package policy holds the HTTP caching rules of Reel's edge as pure functions over
// http.Header values and times: no I/O, no clocks, no state. The proxy calls them at fixed
// points (after a fill: Storable, HeaderToStore, Lifetime; on a hit: VaryKey, Reuse,
// NotModified; on an origin failure: CanServeStaleOnError; on revalidation:
// ConditionalRequestHeaders, MergeNotModified; after unsafe methods: Invalidations; on every
// head a client gets, where a rule says what clients are told: BrowserTTL), and the
// tests table-check them against the RFCs:
//
//   - RFC 9111 (HTTP caching) as a shared cache,
//   - RFC 9110 §13 (conditional requests) and §7.6.1 (hop-by-hop fields),
//   - RFC 5861 (stale-while-revalidate, stale-if-error),
//   - RFC 8246 (immutable),
//   - RFC 9213 (CDN-Cache-Control, targeted cache control).
//
// Cache-Control directives are parsed with github.com/pquerna/cachecontrol, one directive at
// a time, so that a malformed directive only poisons itself and duplicates can be detected;
// the freshness and age arithmetic is ours (that library's expiry ignores Age).
//
// Malformed input is never fatal and always resolves to the more restrictive reading: an
// unreadable max-age makes the response stale, an unreadable no-store still forbids storing,
// an unreadable Age makes the response as old as it can be. Nothing in this package panics on
// header content.
package policy
