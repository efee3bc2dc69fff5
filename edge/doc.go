// Package edge is Reel's caching reverse proxy: a general-purpose HTTP cache that follows
// RFC 9111 (with RFC 5861 stale handling, RFC 8246 immutable, RFC 9213 CDN-Cache-Control and
// RFC 9211 Cache-Status), coalesces concurrent misses into one origin fetch that streams to
// every waiting client as it arrives, and keeps a memory tier and a crash-safe disk tier.
//
// Sub-packages hold the parts: policy (the RFC rules as pure functions), cachekey (keys),
// cachestatus (the Cache-Status field), fill (read-while-write coalescing), store (tiers), live
// (live-manifest handling: freshness capped, blocking reloads told apart, segments prefetched
// as clients watch them). This package wires them into an http.Handler (edge.go; the request
// flow in flow.go, phase by phase; fill.go, respond.go; live.go is what the live module asks of the edge, detached.go the
// fills nobody waits for), with the admin API and metrics (admin.go, metrics.go) and
// configuration (config.go).
// packager and edge never import each other.
package edge
