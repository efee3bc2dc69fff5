// Package rangecache will hold byte-range handling for the edge: Range and If-Range parsing
// (RFC 9110 §14, §13.1.5), slice arithmetic for large objects stored as aligned slices, and
// assembling 206 and multipart/byteranges replies.
package rangecache
