// Package edge is Reel's caching reverse proxy: a general-purpose HTTP cache that follows
// RFC 9111 (with RFC 5861 stale handling, RFC 8246 immutable, RFC 9213 CDN-Cache-Control and
// RFC 9211 Cache-Status), coalesces concurrent misses into one origin fetch that streams to
// every waiting client as it arrives, and keeps a memory tier and a crash-safe disk tier.
//
// A request goes through the phases of ServeHTTP (flow.go): admit → route (→ token) → pass →
// lookup → decide → upstream → respond; ARCHITECTURE.md at the repository's root maps them to
// files and says where each kind of change goes. Sub-packages hold the parts: policy (the RFC
// rules as pure functions), cachekey (keys), cachestatus (the Cache-Status field), store (the
// tiers), live (live-manifest handling: freshness capped, segments prefetched as clients watch
// them), token (signed-URL tokens), h1 (the HTTP/1.1 server), tlscert (certificates by SNI), ui
// (the demo's status page). Byte-range caching and the fill mechanism are package rangecache's.
// packager and edge never import each other.
package edge
