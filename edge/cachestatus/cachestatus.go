// Package cachestatus writes RFC 9211 Cache-Status header field members: a List (RFC 8941
// §3.1) whose members name a cache (Token or String) with parameters describing how that cache
// handled the request.
//
// Serialisation follows RFC 8941 §4.1 with the "; " parameter separator RFC 9211's examples use
// (parsers skip the space, RFC 8941 §4.2.3.2). String never produces an invalid member: values
// that don't fit their type are repaired, and Validate reports what would be repaired.
package cachestatus

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Header is the field name, RFC 9211 §2.
const Header = "Cache-Status"

// Reasons for forwarding a request, the fwd parameter's values (RFC 9211 §2.2).
const (
	FwdBypass   = "bypass"    // the cache was configured not to handle this request
	FwdMethod   = "method"    // the request method's semantics require forwarding
	FwdURIMiss  = "uri-miss"  // no stored response matched the request URI
	FwdVaryMiss = "vary-miss" // responses matched the URI, none the request's Vary'd header fields
	FwdMiss     = "miss"      // no usable response (uri-miss and vary-miss not told apart)
	FwdRequest  = "request"   // a fresh response existed but the request's semantics forbade its use
	FwdStale    = "stale"     // a response was selected but it was stale
	FwdPartial  = "partial"   // a partial response was selected, not covering the requested ranges
)

// Status is one cache's member of the Cache-Status list.
type Status struct {
	// Cache names the cache, e.g. "reel" (written as a Token when it is one, else as a String).
	Cache string
	// Hit: the response came from the cache without forwarding the request (RFC 9211 §2.1).
	// Hit and Fwd are exclusive; when both are set Fwd wins.
	Hit bool
	// Fwd is why the request went forward (RFC 9211 §2.2), one of the Fwd* constants or
	// another Token; "" when not forwarded. An invalid Token is written as FwdMiss.
	Fwd string
	// FwdStatus is the status code the next hop returned (RFC 9211 §2.3); written only with
	// Fwd and when it is a three-digit code, 0 leaves it out.
	FwdStatus int
	// Stored: the cache stored the forwarded response (RFC 9211 §2.5); written only with Fwd.
	Stored bool
	// TTL is the remaining freshness lifetime in seconds, negative when stale (RFC 9211 §2.4);
	// nil leaves it out. Clamped to the RFC 8941 Integer range.
	TTL *int
	// Collapsed: the request was collapsed with other forward requests (RFC 9211 §2.6);
	// written only with Fwd.
	Collapsed bool
	// Key is a representation of the cache key (RFC 9211 §2.7), written as a String; "" leaves
	// it out.
	Key string
	// Detail is implementation-specific detail (RFC 9211 §2.8), a Token when it is one, else a
	// String; "" leaves it out.
	Detail string
}

// maxInteger bounds an RFC 8941 Integer (§3.3.1: at most 15 decimal digits).
const maxInteger = 999_999_999_999_999

// String returns the member, e.g. `reel; hit; ttl=3599` or
// `reel; fwd=uri-miss; fwd-status=200; stored; ttl=60; collapsed`.
func (s Status) String() string { return string(s.AppendTo(make([]byte, 0, 64))) }

// AppendTo appends the member to dst (see String).
func (s Status) AppendTo(dst []byte) []byte {
	dst = appendTokenOrString(dst, s.Cache)
	fwd := s.Fwd != ""
	switch {
	case fwd:
		dst = append(dst, "; fwd="...)
		if IsToken(s.Fwd) {
			dst = append(dst, s.Fwd...)
		} else {
			dst = append(dst, FwdMiss...)
		}
		if s.FwdStatus >= 100 && s.FwdStatus <= 999 {
			dst = append(dst, "; fwd-status="...)
			dst = strconv.AppendInt(dst, int64(s.FwdStatus), 10)
		}
		if s.Stored {
			dst = append(dst, "; stored"...)
		}
	case s.Hit:
		dst = append(dst, "; hit"...)
	}
	if s.TTL != nil {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, int64(max(-maxInteger, min(*s.TTL, maxInteger))), 10)
	}
	if fwd && s.Collapsed {
		dst = append(dst, "; collapsed"...)
	}
	if s.Key != "" {
		dst = append(dst, "; key="...)
		dst = appendString(dst, s.Key)
	}
	if s.Detail != "" {
		dst = append(dst, "; detail="...)
		dst = appendTokenOrString(dst, s.Detail)
	}
	return dst
}

// Validate reports what String would have to repair or leave out.
func (s Status) Validate() error {
	var errs []error
	if s.Hit && s.Fwd != "" {
		errs = append(errs, errors.New("hit and fwd are exclusive (RFC 9211 §2.1); fwd is kept"))
	}
	if s.Fwd != "" && !IsToken(s.Fwd) {
		errs = append(errs, fmt.Errorf("fwd %q is not a Token (RFC 8941 §3.3.4); written as %s", s.Fwd, FwdMiss))
	}
	if s.FwdStatus != 0 && (s.FwdStatus < 100 || s.FwdStatus > 999) {
		errs = append(errs, fmt.Errorf("fwd-status %d is not a status code; left out", s.FwdStatus))
	}
	if s.Fwd == "" && (s.FwdStatus != 0 || s.Stored || s.Collapsed) {
		errs = append(errs, errors.New("fwd-status, stored and collapsed are only meaningful with fwd (RFC 9211 §2.3, §2.5, §2.6); left out"))
	}
	if s.TTL != nil && (*s.TTL > maxInteger || *s.TTL < -maxInteger) {
		errs = append(errs, fmt.Errorf("ttl %d is outside the Integer range (RFC 8941 §3.3.1); clamped", *s.TTL))
	}
	for _, f := range []struct{ name, v string }{{"cache", s.Cache}, {"key", s.Key}, {"detail", s.Detail}} {
		if !printable(f.v) {
			errs = append(errs, fmt.Errorf("%s %q has bytes a String can't hold (RFC 8941 §3.3.3); percent-encoded", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// Append adds s's member at the end of h's Cache-Status list, after the members of caches
// nearer the origin, keeping them (RFC 9211 §2: the first member is the cache closest to the
// origin, each cache appends, existing members SHOULD be preserved). The list is written as one
// field line; empty lines and stray commas at the ends of existing lines are dropped, nothing
// else is changed. Per RFC 9211 §2 a proxy shouldn't call this for responses it generates
// itself (a 400 for a malformed request, say) unless they are based on a stored response.
func Append(h http.Header, s Status) {
	var buf [160]byte
	h[Header] = []string{string(s.AppendTo(AppendPrefix(buf[:0], h)))}
}

// AppendPrefix appends what Append writes before s's member: the members already in h, each
// followed by ", ". A cache that serves one stored response many times computes it once.
func AppendPrefix(dst []byte, h http.Header) []byte {
	for _, v := range h[Header] {
		v = strings.Trim(v, " \t,")
		if v == "" {
			continue
		}
		dst = append(dst, v...)
		dst = append(dst, ", "...)
	}
	return dst
}

func appendTokenOrString(dst []byte, s string) []byte {
	if IsToken(s) {
		return append(dst, s...)
	}
	return appendString(dst, s)
}

// appendString writes s as an RFC 8941 §3.3.3 String: quoted, with '"' and '\' escaped. A
// String holds only printable ASCII (%x20-7E); other bytes are written percent-encoded ("%0A"),
// which loses the distinction from a literal "%0A": the field is diagnostic.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// IsToken reports whether s is an RFC 8941 §3.3.4 Token:
// ( ALPHA / "*" ) *( tchar / ":" / "/" ).
func IsToken(s string) bool {
	if s == "" || !(isAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isAlpha(c) || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
