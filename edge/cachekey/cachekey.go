// Package cachekey computes the edge cache's primary keys (RFC 9111 §2): scheme, host, path and
// query of the target URI, normalised the way RFC 3986 §6.2.2 and RFC 9110 §4.2.3 allow, with
// configurable query parameters left out of the key and optional request headers added to it.
//
// A key has the shape
//
//	scheme "://" host path [ "?" query ] *( " " header-name "=" *( len ":" value ";" ) )
//	  [ " :cookie=" *( len ":" cookie-pair ";" ) ] [ " :device=" class ]
//
// and the mapping is injective on the normalised request: every part is either escaped so that
// it can't contain the separator that follows it, or length-prefixed. Two requests get the same
// key only when they are equivalent under the normalisation below (or differ only in parameters
// the configuration leaves out of the key):
//
//   - scheme: "https" when the request came over TLS, else "http", or the scheme forced with
//     [WithScheme]. The request's own absolute-form scheme is never trusted.
//   - host: ASCII letters lower-cased, one trailing dot removed, an empty or default port
//     (80 for http, 443 for https, leading zeros ignored) removed (RFC 3986 §6.2.3,
//     RFC 9110 §4.2.3); bytes that aren't valid in a host are percent-encoded, '%' included,
//     so a host can't contain the '/' that starts the path. Nothing is rejected: validating
//     Host is the proxy's job.
//   - path: percent-encodings upper-cased, percent-encoded unreserved characters decoded,
//     characters not allowed in a path percent-encoded, dot-segments removed (RFC 3986 §6.2.2.1,
//     §6.2.2.2, §6.2.2.3, §5.2.4); an empty path is "/" (RFC 9110 §4.2.3). Nothing else is
//     collapsed: "//", a trailing "/", "%2F" and "+" all stay distinct. A path that doesn't
//     start with "/" ("*" for OPTIONS, or one built by code) is written behind "%%".
//   - query: parameters split on '&' (empty ones ignored), each name and value normalised like
//     the path, dropped parameters removed, the rest sorted by name only, stably: repeated
//     parameters keep their order, since origins read "id=2&id=1" and "id=1&id=2" differently
//     (first wins, last wins, or a list in order). A query with no parameters left gives no "?".
//     "a" and "a=" stay distinct, so do "+" and "%20".
//     A name or value with a malformed percent-encoding is kept byte for byte behind a "%%"
//     marker (which normalised text never contains), so it can't collide with a valid one.
//
// With Rule.Cookies, the cookies the allow-list names are keyed, each cookie-pair as it is sent
// (so a cookie absent, "c=" and "c" differ), in name order whatever the request's order, and
// every other cookie is left out of the key — and, through [Keyer.ForwardCookie], out of the
// request the origin gets. With Rule.DeviceClass, the class of the User-Agent ([Classify]:
// mobile, tablet or desktop) is keyed, never the User-Agent itself; a proxy sends the origin
// [DeviceClass.UserAgent] in its place.
//
// Parameters are matched against globs ('*' any run, '?' one byte, '\' escapes) after
// percent-decoding the name; the match is case-sensitive. [Keyer.ForwardQuery] gives the query a
// proxy should send upstream: only the parameters the key holds (unless the rule says
// ForwardIgnored), so a parameter the key ignores can't change what is stored under it.
// The one normalisation an origin might not share is dot-segment removal: a proxy should
// forward the path as [NormalizePath] gives it (or refuse dot-segments), so that "/a/../b" can't
// fetch one resource into the key of another.
package cachekey

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// defaultDrop is the parameter list used when New is given a nil list: marketing and
// click-tracking parameters that never change the response.
var defaultDrop = []string{"utm_*", "gclid", "fbclid", "msclkid"}

// DefaultDropParams returns the globs dropped from every key when New gets a nil list:
// utm_*, gclid, fbclid and msclkid.
func DefaultDropParams() []string { return slices.Clone(defaultDrop) }

// Rule is how the key treats the query and which request headers it adds, for the requests
// the caller's rules give it to (the edge: edge/rules, each setting from the most specific
// matching rule). The zero Rule keys every parameter the drop list keeps, and no header.
type Rule struct {
	// IncludeParams, when not empty, is an allow-list of globs: only matching parameters count,
	// and the global drop list doesn't apply (listing a parameter here keys it explicitly).
	IncludeParams []string
	// ExcludeParams are globs dropped from the key, on top of the global drop list.
	ExcludeParams []string
	// Headers are request header fields added to the key, each field line's value verbatim.
	Headers []string
	// IgnoreQuery leaves the whole query out of the key.
	IgnoreQuery bool
	// ForwardIgnored makes ForwardQuery keep the parameters the key leaves out. Only for
	// origins known not to reflect them: a reflected one would poison the shared entry.
	ForwardIgnored bool
	// Cookies is an allow-list of cookie-name globs. When not empty, the cookies it names are
	// keyed (see the package documentation) and [Keyer.ForwardCookie] gives the Cookie field to
	// send upstream: those cookies alone, so that no cookie outside the key can shape what is
	// stored under it. Empty: cookies are not keyed and the rule says nothing of forwarding.
	Cookies []string
	// DeviceClass keys the device class told from the User-Agent ([Classify]) instead of
	// anything of the User-Agent itself.
	DeviceClass bool
}

// Option configures a Keyer.
type Option func(*Keyer) error

// WithScheme makes every key use scheme ("http" or "https") whatever the connection, for an edge
// behind a TLS terminator. Without it the scheme is "https" exactly when r.TLS is set.
func WithScheme(scheme string) Option {
	return func(k *Keyer) error {
		s := strings.ToLower(scheme)
		if s != "http" && s != "https" {
			return fmt.Errorf("cachekey: scheme %q: want http or https", scheme)
		}
		k.scheme = s
		return nil
	}
}

// Keyer computes cache keys. It is immutable after New and safe for concurrent use.
type Keyer struct {
	scheme string   // forced scheme, or "" to take it from r.TLS
	drop   []string // the global drop list
	def    *KeyRule // the zero Rule, compiled
}

// KeyRule is a Rule compiled by Keyer.Compile, for one Keyer.
type KeyRule struct {
	include     []string // allow-list globs (empty: all)
	exclude     []string // drop globs: rule's own, plus the global list when include is empty
	headers     []header
	ignoreQuery bool
	forwardAll  bool     // ForwardIgnored
	cookies     []string // Cookies: allow-list globs (empty: cookies not keyed)
	device      bool     // DeviceClass
}

// KeysCookies reports whether the rule keys cookies (Rule.Cookies): a proxy must then send
// upstream the Cookie field ForwardCookie gives.
func (ru *KeyRule) KeysCookies() bool { return ru != nil && len(ru.cookies) > 0 }

// KeysRequest reports whether the rule keys anything of the request beyond its URL (header
// fields, cookies, the device class): a URL then has one key per combination of those, which
// share its URLPart.
func (ru *KeyRule) KeysRequest() bool {
	return ru != nil && (len(ru.headers) > 0 || len(ru.cookies) > 0 || ru.device)
}

// URLPart is the part of a key that comes from the URL alone — the same for every key of the
// URL, whatever a rule keys of the request's fields, cookies or class — for purges that must
// find every variant of a URL or of a prefix. The URL part never holds a raw space, and what
// follows it always starts with one.
func URLPart(key string) string {
	if i := strings.IndexByte(key, ' '); i >= 0 {
		return key[:i]
	}
	return key
}

// KeysDeviceClass reports whether the rule keys the device class (Rule.DeviceClass): a proxy
// must then send upstream the class's DeviceClass.UserAgent, not the client's User-Agent.
func (ru *KeyRule) KeysDeviceClass() bool { return ru != nil && ru.device }

type header struct {
	canon string // canonical MIME form, the http.Header map key
	lower string // as written in the key
}

// New builds a Keyer. dropParams are globs left out of every key; nil means
// [DefaultDropParams], an empty non-nil slice drops nothing. It reports malformed globs.
func New(dropParams []string, opts ...Option) (*Keyer, error) {
	if dropParams == nil {
		dropParams = defaultDrop
	}
	drop, err := compileGlobs("drop list", dropParams)
	if err != nil {
		return nil, err
	}
	k := &Keyer{drop: drop}
	for _, o := range opts {
		if err := o(k); err != nil {
			return nil, err
		}
	}
	k.def, _ = k.Compile(Rule{}) // nothing to get wrong
	return k, nil
}

// Compile checks r (globs, header names) and prepares it for Key, KeyURL and ForwardQuery.
func (k *Keyer) Compile(r Rule) (*KeyRule, error) {
	cr := &KeyRule{ignoreQuery: r.IgnoreQuery, forwardAll: r.ForwardIgnored, device: r.DeviceClass}
	var err error
	if cr.cookies, err = compileGlobs("key_cookies", r.Cookies); err != nil {
		return nil, err
	}
	if cr.include, err = compileGlobs("include_params", r.IncludeParams); err != nil {
		return nil, err
	}
	if cr.exclude, err = compileGlobs("exclude_params", r.ExcludeParams); err != nil {
		return nil, err
	}
	if len(cr.include) == 0 {
		cr.exclude = append(cr.exclude, k.drop...)
	}
	if cr.headers, err = compileHeaders("key_headers", r.Headers); err != nil {
		return nil, err
	}
	return cr, nil
}

func compileGlobs(where string, globs []string) ([]string, error) {
	out := make([]string, 0, len(globs))
	for _, g := range globs {
		if err := checkGlob(g); err != nil {
			return nil, fmt.Errorf("cachekey: %s: glob %q: %w", where, g, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func checkGlob(g string) error {
	if g == "" {
		return errors.New("empty pattern")
	}
	for i := 0; i < len(g); i++ {
		if g[i] == '\\' {
			if i+1 == len(g) {
				return errors.New("trailing backslash")
			}
			i++
		}
	}
	return nil
}

func compileHeaders(where string, names []string) ([]header, error) {
	var hs []header
	for _, n := range names {
		if !isToken(n) {
			return nil, fmt.Errorf("cachekey: %s: header name %q is not a token (RFC 9110 §5.1)", where, n)
		}
		c := textproto.CanonicalMIMEHeaderKey(n)
		if c == "Host" {
			return nil, fmt.Errorf("cachekey: %s: Host is always in the key", where)
		}
		hs = append(hs, header{canon: c, lower: strings.ToLower(n)})
	}
	// A fixed order, independent of how the configuration lists them.
	slices.SortFunc(hs, func(a, b header) int { return strings.Compare(a.lower, b.lower) })
	hs = slices.CompactFunc(hs, func(a, b header) bool { return a.lower == b.lower })
	return hs, nil
}

// Key returns the cache key of r under rule (nil: the zero Rule; see the package
// documentation). The scheme comes from r.TLS (or WithScheme), the host from r.Host (or
// r.URL.Host when empty), path and query from r.URL, header values from r.Header. It never
// fails and never panics.
func (k *Keyer) Key(r *http.Request, rule *KeyRule) string {
	scheme := k.scheme
	if scheme == "" {
		scheme = "http"
		if r.TLS != nil {
			scheme = "https"
		}
	}
	host := r.Host
	if host == "" && r.URL != nil {
		host = r.URL.Host
	}
	return k.key(scheme, host, r.URL, r.Header, rule)
}

// KeyURL returns the key of a request for u (non-nil) with header h (which may be nil) under
// rule (nil: the zero Rule), for callers that hold a URL rather than a request: purge by URL,
// invalidation of Location and Content-Location (RFC 9111 §4.4). The scheme is u.Scheme
// ("http" when empty) unless WithScheme forces one; u must be absolute for the host to count.
func (k *Keyer) KeyURL(u *url.URL, h http.Header, rule *KeyRule) string {
	scheme := k.scheme
	if scheme == "" {
		scheme = strings.ToLower(u.Scheme)
		if scheme == "" {
			scheme = "http"
		}
	}
	return k.key(scheme, u.Host, u, h, rule)
}

// scratch holds the buffers one key computation needs; pooled so Key allocates only its result.
type scratch struct {
	out     []byte
	tmp     []byte // normalised path before dot removal; normalised query names and values
	name    []byte // percent-decoded parameter name for glob matching
	params  []param
	cookies []cookiePair
}

// param locates one kept query parameter in scratch.tmp: name tmp[start:eq], value tmp[eq:end].
type param struct {
	start, eq, end int
	hasEq          bool
}

var pool = sync.Pool{New: func() any { return new(scratch) }}

func (s *scratch) Len() int      { return len(s.params) }
func (s *scratch) Swap(i, j int) { s.params[i], s.params[j] = s.params[j], s.params[i] }

// Less orders by name only: with sort.Stable, repeated parameters keep their request order.
func (s *scratch) Less(i, j int) bool {
	a, b := s.params[i], s.params[j]
	return bytes.Compare(s.tmp[a.start:a.eq], s.tmp[b.start:b.eq]) < 0
}

func (k *Keyer) key(scheme, host string, u *url.URL, h http.Header, ru *KeyRule) string {
	if ru == nil {
		ru = k.def
	}
	s := pool.Get().(*scratch)
	out := s.out[:0]

	out = appendScheme(out, scheme)
	out = append(out, "://"...)
	defPort := ""
	switch scheme {
	case "http":
		defPort = "80"
	case "https":
		defPort = "443"
	}
	out = appendHost(out, host, defPort)

	var p, rawQuery string
	if u != nil {
		p, rawQuery = escapedPath(u), u.RawQuery
	}
	if p == "" {
		p = "/" // RFC 9110 §4.2.3
	} else if p[0] != '/' {
		// Not an absolute path ("*", or a relative one built by code): mark it so it can't
		// run into the host.
		out = append(out, "%%"...)
	}
	s.tmp = appendPercentNormalized(s.tmp[:0], p, &pathRaw)
	out = appendRemoveDotSegments(out, s.tmp)

	if !ru.ignoreQuery && rawQuery != "" {
		s.tmp = s.tmp[:0]
		s.params = s.params[:0]
		for q := rawQuery; q != ""; {
			seg := q
			if i := strings.IndexByte(q, '&'); i >= 0 {
				seg, q = q[:i], q[i+1:]
			} else {
				q = ""
			}
			if seg == "" {
				continue
			}
			name, value, hasEq := strings.Cut(seg, "=")
			if !ru.keepsSegment(s, seg, name) {
				continue
			}
			start := len(s.tmp)
			s.tmp = appendQueryComponent(s.tmp, name)
			eq := len(s.tmp)
			s.tmp = appendQueryComponent(s.tmp, value) // "" when there is no '='
			s.params = append(s.params, param{start: start, eq: eq, end: len(s.tmp), hasEq: hasEq})
		}
		if len(s.params) > 0 {
			sort.Stable(s)
			out = append(out, '?')
			for i, pr := range s.params {
				if i > 0 {
					out = append(out, '&')
				}
				out = append(out, s.tmp[pr.start:pr.eq]...)
				if pr.hasEq {
					out = append(out, '=')
					out = append(out, s.tmp[pr.eq:pr.end]...)
				}
			}
		}
	}

	// The URL part never holds a raw space; each header follows one, with its field lines
	// length-prefixed so values may hold any byte. An absent header and an empty one differ.
	for _, hd := range ru.headers {
		out = append(out, ' ')
		out = append(out, hd.lower...)
		out = append(out, '=')
		for _, v := range h[hd.canon] {
			out = strconv.AppendInt(out, int64(len(v)), 10)
			out = append(out, ':')
			out = append(out, v...)
			out = append(out, ';')
		}
	}
	// Then, marked by a ':' no header name holds, the kept cookies (each cookie-pair as it is
	// forwarded, length-prefixed: an absent cookie, "c=" and "c" all differ) and the class.
	if len(ru.cookies) > 0 {
		out = append(out, " :cookie="...)
		s.cookies = ru.keptCookies(s.cookies[:0], h)
		for _, c := range s.cookies {
			out = strconv.AppendInt(out, int64(len(c.pair)), 10)
			out = append(out, ':')
			out = append(out, c.pair...)
			out = append(out, ';')
		}
		clear(s.cookies) // drop references to the request's strings before pooling
	}
	if ru.device {
		out = append(out, " :device="...)
		out = append(out, Classify(firstValue(h, "User-Agent")).String()...)
	}

	key := string(out)
	s.out = out
	s.release()
	return key
}

// release returns s to the pool, unless a giant request made its buffers too large to keep.
func (s *scratch) release() {
	if cap(s.out) <= 64<<10 && cap(s.tmp) <= 64<<10 && cap(s.name) <= 64<<10 && cap(s.cookies) <= 1024 {
		pool.Put(s)
	}
}

// escapedPath returns u.EscapedPath() without the allocation EscapedPath makes to check
// RawPath (it unescapes RawPath into a new string and compares it with Path).
func escapedPath(u *url.URL) string {
	if u.RawPath != "" && validEncodedPath(u.RawPath) && unescapesTo(u.RawPath, u.Path) {
		return u.RawPath
	}
	return u.EscapedPath()
}

// validEncodedPath mirrors net/url's validEncoded(s, encodePath): the bytes RawPath may hold.
func validEncodedPath(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.~$&+,/:;=@!'()*[]%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// unescapesTo reports whether percent-decoding raw gives exactly path.
func unescapesTo(raw, path string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			b, ok := pctAt(raw, i)
			if !ok {
				return false
			}
			c = b
			i += 2
		}
		if j >= len(path) || path[j] != c {
			return false
		}
		j++
	}
	return j == len(path)
}

// keepsSegment reports whether the query segment seg, whose raw name is name, counts in the
// key. Some origins also split the query on ';', so "utm_x=1;callback=evil" would hide a real
// parameter inside a dropped one (parameter cloaking): a segment holding ';' is always keyed.
func (ru *KeyRule) keepsSegment(s *scratch, seg, name string) bool {
	return ru.keeps(s, name) || strings.IndexByte(seg, ';') >= 0
}

// ForwardQuery returns the raw query to send upstream for a request for u under rule (nil:
// the zero Rule): the parameters the key holds, byte for byte and in their order (empty
// segments removed), or the whole query when the rule forwards ignored parameters. What the
// key ignores must not reach an origin that could reflect it into the shared response
// (`?utm_source=<script>`).
func (k *Keyer) ForwardQuery(u *url.URL, ru *KeyRule) string {
	if u == nil || u.RawQuery == "" {
		return ""
	}
	if ru == nil {
		ru = k.def
	}
	s := pool.Get().(*scratch)
	defer s.release()
	switch {
	case ru.forwardAll:
		return u.RawQuery
	case ru.ignoreQuery:
		return ""
	}
	var b strings.Builder
	for q := u.RawQuery; q != ""; {
		seg := q
		if i := strings.IndexByte(q, '&'); i >= 0 {
			seg, q = q[:i], q[i+1:]
		} else {
			q = ""
		}
		name, _, _ := strings.Cut(seg, "=")
		if seg == "" || !ru.keepsSegment(s, seg, name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// keeps reports whether the parameter with the raw (still encoded) name counts in the key.
func (ru *KeyRule) keeps(s *scratch, raw string) bool {
	if len(ru.include) == 0 && len(ru.exclude) == 0 {
		return true
	}
	var name []byte
	decoded := false
	if strings.IndexByte(raw, '%') >= 0 && validPercent(raw) {
		s.name = percentDecode(s.name[:0], raw)
		name, decoded = s.name, true
	}
	if len(ru.include) > 0 && !matchAny(ru.include, decoded, name, raw) {
		return false
	}
	return !matchAny(ru.exclude, decoded, name, raw)
}

func matchAny(globs []string, decoded bool, name []byte, raw string) bool {
	for _, g := range globs {
		if decoded && globMatch(g, name) || !decoded && globMatch(g, raw) {
			return true
		}
	}
	return false
}

// NormalizePath returns the normalised form of an escaped path (as from url.URL.EscapedPath):
// percent-encoding normalised, characters not allowed in a path encoded and dot-segments
// removed (RFC 3986 §6.2.2, §5.2.4). It is what Key puts in the key, and what a proxy should
// forward so that the key and the origin agree on the resource. A '%' that doesn't start a
// valid percent-encoding (which EscapedPath never returns) is encoded as "%25".
func NormalizePath(escaped string) string {
	tmp := appendPercentNormalized(nil, escaped, &pathRaw)
	return string(appendRemoveDotSegments(nil, tmp))
}

// Character classes, RFC 3986 §2.2, §2.3, §3.2.2, §3.3, §3.4.
var pathRaw, queryRaw, hostRaw, unreserved [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		unreserved[c] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '-' || b == '.' || b == '_' || b == '~'
		subDelim := strings.IndexByte("!$&'()*+,;=", b) >= 0
		pathRaw[c] = unreserved[c] || subDelim || b == ':' || b == '@' || b == '/'
		queryRaw[c] = pathRaw[c] || b == '?'
		hostRaw[c] = (unreserved[c] && !('A' <= b && b <= 'Z')) || subDelim || b == ':' || b == '[' || b == ']'
	}
}

const upperHex = "0123456789ABCDEF"

func appendEscaped(dst []byte, b byte) []byte {
	return append(dst, '%', upperHex[b>>4], upperHex[b&15])
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// pctAt reports whether s[i:] starts with a valid percent-encoding and returns the byte.
func pctAt[S ~string | ~[]byte](s S, i int) (byte, bool) {
	if s[i] != '%' || i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

func validPercent(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if _, ok := pctAt(s, i); !ok {
				return false
			}
			i += 2
		}
	}
	return true
}

func percentDecode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if b, ok := pctAt(s, i); ok {
			dst = append(dst, b)
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

// appendPercentNormalized appends s with RFC 3986 §6.2.2.1/§6.2.2.2 percent-encoding
// normalisation: hex digits upper-cased, encoded unreserved characters decoded, bytes outside
// raw encoded. A '%' that doesn't start a valid triplet is encoded as "%25".
func appendPercentNormalized(dst []byte, s string, raw *[256]bool) []byte {
	for i := 0; i < len(s); i++ {
		// Copy the run of bytes that stay as they are in one go.
		j := i
		for j < len(s) && s[j] != '%' && raw[s[j]] {
			j++
		}
		dst = append(dst, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		if c == '%' {
			if b, ok := pctAt(s, i); ok {
				if unreserved[b] {
					dst = append(dst, b)
				} else {
					dst = appendEscaped(dst, b)
				}
				i += 2
				continue
			}
			dst = appendEscaped(dst, '%')
			continue
		}
		if raw[c] {
			dst = append(dst, c)
		} else {
			dst = appendEscaped(dst, c)
		}
	}
	return dst
}

// appendQueryComponent appends a query name or value in canonical form. A component with a
// malformed percent-encoding is not normalised (decoding part of it could make two different
// byte strings equal): it is written behind a "%%" marker with every '%' and every byte not
// allowed raw encoded, which is reversible and can't equal any normalised component.
func appendQueryComponent(dst []byte, s string) []byte {
	if validPercent(s) {
		return appendPercentNormalized(dst, s, &queryRaw)
	}
	dst = append(dst, "%%"...)
	for i := 0; i < len(s); i++ {
		if c := s[i]; queryRaw[c] { // queryRaw excludes '%'

			dst = append(dst, c)
		} else {
			dst = appendEscaped(dst, c)
		}
	}
	return dst
}

// hasDotSegment reports whether p has a "." or ".." segment (or starts with "./" or "../").
func hasDotSegment(p []byte) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '.' || i > 0 && p[i-1] != '/' {
			continue
		}
		j := i + 1
		if j < len(p) && p[j] == '.' {
			j++
		}
		if j == len(p) || p[j] == '/' {
			return true
		}
	}
	return false
}

var (
	slash            = []byte("/")
	dotSlash         = []byte("./")
	dotDotSlash      = []byte("../")
	slashDotSlash    = []byte("/./")
	slashDotDotSlash = []byte("/../")
)

// appendRemoveDotSegments appends in with dot-segments removed, RFC 3986 §5.2.4.
func appendRemoveDotSegments(dst, in []byte) []byte {
	if !hasDotSegment(in) {
		return append(dst, in...)
	}
	base := len(dst)
	pop := func() {
		if i := bytes.LastIndexByte(dst[base:], '/'); i >= 0 {
			dst = dst[:base+i]
		} else {
			dst = dst[:base]
		}
	}
	for len(in) > 0 {
		switch {
		case bytes.HasPrefix(in, dotDotSlash): // A
			in = in[3:]
		case bytes.HasPrefix(in, dotSlash): // A
			in = in[2:]
		case bytes.HasPrefix(in, slashDotSlash): // B
			in = in[2:]
		case string(in) == "/.": // B
			in = slash
		case bytes.HasPrefix(in, slashDotDotSlash): // C
			in = in[3:]
			pop()
		case string(in) == "/..": // C
			in = slash
			pop()
		case string(in) == "." || string(in) == "..": // D
			in = nil
		default: // E
			end := 0
			if in[0] == '/' {
				end = 1
			}
			if i := bytes.IndexByte(in[end:], '/'); i >= 0 {
				end += i
			} else {
				end = len(in)
			}
			dst = append(dst, in[:end]...)
			in = in[end:]
		}
	}
	return dst
}

// appendScheme writes a scheme lower-cased; any byte a scheme can't hold (RFC 3986 §3.1) is
// percent-encoded so the "://" that follows stays unambiguous.
func appendScheme(dst []byte, scheme string) []byte {
	if scheme == "http" || scheme == "https" {
		return append(dst, scheme...)
	}
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		switch {
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '-', c == '.':
			dst = append(dst, c)
		default:
			dst = appendEscaped(dst, c)
		}
	}
	return dst
}

// appendHost writes host normalised (see the package documentation).
func appendHost(dst []byte, host, defPort string) []byte {
	h, port, hasPort := splitHostPort(host)
	if len(h) > 1 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	dst = appendHostBytes(dst, h)
	if !hasPort {
		return dst
	}
	if port != "" && allDigits(port) {
		if port = strings.TrimLeft(port, "0"); port == "" {
			port = "0"
		}
	}
	if port == "" || port == defPort {
		return dst
	}
	dst = append(dst, ':')
	return appendHostBytes(dst, port)
}

func appendHostBytes(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		j := i
		for j < len(s) && hostRaw[s[j]] {
			j++
		}
		dst = append(dst, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		case hostRaw[c]:
			dst = append(dst, c)
		default:
			dst = appendEscaped(dst, c)
		}
	}
	return dst
}

// splitHostPort splits "host:port" and "[v6]:port"; a host with several colons and no brackets
// has no port.
func splitHostPort(s string) (host, port string, ok bool) {
	if strings.HasPrefix(s, "[") {
		if i := strings.LastIndexByte(s, ']'); i >= 0 && i+1 < len(s) && s[i+1] == ':' {
			return s[:i+1], s[i+2:], true
		}
		return s, "", false
	}
	i := strings.IndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[i+1:], ':') >= 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// globMatch reports whether name matches the glob p: '*' matches any run of bytes, '?' one
// byte, '\' makes the next byte literal.
func globMatch[S ~string | ~[]byte](p string, name S) bool {
	px, nx := 0, 0
	starPx, starNx := -1, 0 // last '*' seen, and where its match currently ends
	for px < len(p) || nx < len(name) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					px++
					nx++
					continue
				}
			case '\\':
				if px+1 < len(p) && nx < len(name) && name[nx] == p[px+1] {
					px += 2
					nx++
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		// Mismatch: let the last '*' swallow one more byte, if there is one.
		if starPx >= 0 && starNx < len(name) {
			starNx++
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
