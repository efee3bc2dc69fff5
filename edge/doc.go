// Package edge will hold Reel's caching reverse proxy: RFC 9111 cache policy and keys, request
// coalescing with read-while-write fills, memory and disk tiers, purge, metrics and servers.
// It arrives with the edge issue; packager and edge never import each other.
package edge
