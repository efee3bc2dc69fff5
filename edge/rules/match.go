// Package rules is the edge's rule matcher: which of the configured rules apply to a request,
// most specific first. It knows nothing of what a rule does (origin, TTL, key, token…): the
// edge takes each setting from the most specific matching rule that sets it (edge/resolve.go),
// so that one matcher chooses every part of a request's handling.
//
// A rule's conditions all have to hold for it to match:
//
//   - hosts: the request's host (lower case, no port, no trailing dot) is one of them; a
//     name starting with "*." matches every subdomain of the rest (not the rest itself);
//   - path_prefix: the decoded path starts with it (a plain string prefix: "/video" also
//     matches "/videos/x"; end it with "/" for a directory);
//   - path_glob: the decoded path matches it: '*' is any run of characters but '/', "**" any
//     run at all, '?' one character but '/';
//   - extensions: the path's last segment ends in "." and one of them (case-insensitive);
//   - methods: the request method is one of them;
//   - headers, cookies: for each name, a field (a cookie) of that name has a value matching
//     the value glob ('*' any run, '?' one character; case-insensitive for headers, exact for
//     cookies); a glob starting with '!' matches when no value matches the rest ("!*": absent).
//     "*" matches any value, the empty one included, so {session: "*"} is "a cookie named
//     session is present". A cookie name may itself be a glob ('*', '?': exact case), standing
//     for every cookie whose name matches: {"wordpress_logged_in_*": "*"} matches a request
//     carrying any cookie so named (WordPress appends a hash to the name).
//
// Specificity orders the matching rules: an exact host before a wildcard host before no host;
// then the longer literal path — the path_prefix, or the path_glob up to its first wildcard,
// whichever is longer ("/" counting as nothing, like no path at all); then a rule with a
// path_glob or extensions before one without; then the one with more method, header and cookie
// conditions; then the one listed first.
// Methods, headers and cookies are the request conditions: they are not part of the cache key,
// so a rule that has them must not change what is stored (the edge checks that).
package rules

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Match is a rule's conditions; the zero Match matches every request.
type Match struct {
	Hosts      []string
	PathPrefix string
	PathGlob   string
	Extensions []string
	Methods    []string
	Headers    map[string]string
	Cookies    map[string]string
}

// HasRequestConditions reports whether m looks at more than the URL (host and path): the
// method, header fields or cookies, which the cache key doesn't hold.
func (m *Match) HasRequestConditions() bool {
	return len(m.Methods) > 0 || len(m.Headers) > 0 || len(m.Cookies) > 0
}

// Request is what a rule looks at. Host is lower case without port or trailing dot; Path is
// decoded with dot segments removed. With URLOnly, rules with request conditions never match:
// the edge asks that way for what depends on the URL alone (cache keys of purged or prefetched
// URLs).
type Request struct {
	Host    string
	Path    string
	Method  string
	Header  http.Header
	URLOnly bool
}

// Set is a compiled list of rules. It is immutable and safe for concurrent use.
type Set struct {
	rules []compiled // in specificity order
}

type compiled struct {
	index     int // in the list given to New
	exact     []string
	wild      []string // ".example.com" for "*.example.com"
	prefix    string
	glob      string
	exts      []string // ".m3u8", lower case
	methods   []string
	headers   []fieldCond
	cookies   []fieldCond
	requestCd bool
}

type fieldCond struct {
	name     string // canonical header name, or the cookie name
	glob     string // lower case for headers
	negate   bool
	nameGlob bool // cookies: name is a glob
}

// New compiles rules. Errors name the rule by its index and the condition at fault.
func New(rules []Match) (*Set, error) {
	s := &Set{rules: make([]compiled, 0, len(rules))}
	for i, m := range rules {
		c, err := compile(i, m)
		if err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
		s.rules = append(s.rules, c)
	}
	sort.SliceStable(s.rules, func(i, j int) bool { return s.rules[i].moreSpecific(&s.rules[j]) })
	return s, nil
}

func compile(index int, m Match) (compiled, error) {
	c := compiled{index: index, prefix: m.PathPrefix, glob: m.PathGlob}
	for _, h := range m.Hosts {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		switch {
		case h == "" || strings.ContainsAny(h, "/: ") || strings.Contains(h[min(1, len(h)):], "*"):
			return c, fmt.Errorf("host %q: want a host name, or *.name for its subdomains", h)
		case strings.HasPrefix(h, "*."):
			c.wild = append(c.wild, h[1:])
		case h == "*":
			return c, errors.New(`host "*": leave hosts out to match every host`)
		default:
			c.exact = append(c.exact, h)
		}
	}
	if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
		return c, fmt.Errorf("path_prefix %q must start with /", m.PathPrefix)
	}
	if m.PathGlob != "" {
		if !strings.HasPrefix(m.PathGlob, "/") && !strings.HasPrefix(m.PathGlob, "*") {
			return c, fmt.Errorf("path_glob %q must start with / or *", m.PathGlob)
		}
		if strings.Contains(m.PathGlob, "***") {
			return c, fmt.Errorf("path_glob %q: '***' means nothing more than '**'", m.PathGlob)
		}
	}
	for _, e := range m.Extensions {
		e = strings.ToLower(strings.TrimPrefix(e, "."))
		if e == "" || strings.ContainsAny(e, "/*?") {
			return c, fmt.Errorf("extensions: %q is not a file extension", e)
		}
		c.exts = append(c.exts, "."+e)
	}
	for _, mt := range m.Methods {
		if mt == "" || strings.ToUpper(mt) != mt || strings.ContainsAny(mt, " \t/") {
			return c, fmt.Errorf("methods: %q is not a method name (upper case: GET, HEAD…)", mt)
		}
		c.methods = append(c.methods, mt)
	}
	for _, name := range sortedKeys(m.Headers) {
		if !httpguts.ValidHeaderFieldName(name) {
			return c, fmt.Errorf("headers: %q is not a header field name", name)
		}
		c.headers = append(c.headers, newCond(textproto.CanonicalMIMEHeaderKey(name), strings.ToLower(m.Headers[name])))
	}
	for _, name := range sortedKeys(m.Cookies) {
		// A cookie name is a token (RFC 6265 §4.1.1); '*' is one of its characters and '?'
		// isn't, so both can stand for glob characters without hiding a real name.
		if !httpguts.ValidHeaderFieldName(strings.ReplaceAll(name, "?", "x")) {
			return c, fmt.Errorf("cookies: %q is not a cookie name (or a glob of names: '*', '?')", name)
		}
		fc := newCond(name, m.Cookies[name])
		fc.nameGlob = strings.ContainsAny(name, "*?")
		c.cookies = append(c.cookies, fc)
	}
	c.requestCd = m.HasRequestConditions()
	return c, nil
}

func newCond(name, glob string) fieldCond {
	if g, ok := strings.CutPrefix(glob, "!"); ok {
		return fieldCond{name: name, glob: g, negate: true}
	}
	return fieldCond{name: name, glob: glob}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// hostRank: 2 for an exact host condition, 1 for wildcards only, 0 for none.
func (c *compiled) hostRank() int {
	switch {
	case len(c.exact) > 0:
		return 2
	case len(c.wild) > 0:
		return 1
	}
	return 0
}

func (c *compiled) moreSpecific(o *compiled) bool {
	if a, b := c.hostRank(), o.hostRank(); a != b {
		return a > b
	}
	if a, b := c.literal(), o.literal(); a != b {
		return a > b
	}
	if a, b := c.glob != "" || len(c.exts) > 0, o.glob != "" || len(o.exts) > 0; a != b {
		return a
	}
	if a, b := c.conditions(), o.conditions(); a != b {
		return a > b
	}
	return c.index < o.index
}

// literal is how much of the path the rule fixes: the longer of its path_prefix and its
// path_glob's part before the first wildcard, the leading '/' not counted.
func (c *compiled) literal() int {
	n := len(c.prefix)
	if i := strings.IndexAny(c.glob, "*?"); i >= 0 {
		n = max(n, i)
	} else {
		n = max(n, len(c.glob))
	}
	return max(n-1, 0)
}

func (c *compiled) conditions() int {
	n := len(c.headers) + len(c.cookies)
	if len(c.methods) > 0 {
		n++
	}
	return n
}

// Len is the number of rules.
func (s *Set) Len() int { return len(s.rules) }

// Match appends to dst the indices (in the list given to New) of the rules q matches, most
// specific first, and returns the extended slice.
func (s *Set) Match(q *Request, dst []int) []int {
	for i := range s.rules {
		if s.rules[i].matches(q) {
			dst = append(dst, s.rules[i].index)
		}
	}
	return dst
}

func (c *compiled) matches(q *Request) bool {
	if c.requestCd && q.URLOnly {
		return false
	}
	if len(c.exact) > 0 || len(c.wild) > 0 {
		if !slices.Contains(c.exact, q.Host) && !slices.ContainsFunc(c.wild, func(w string) bool {
			return len(q.Host) > len(w) && strings.HasSuffix(q.Host, w)
		}) {
			return false
		}
	}
	if !strings.HasPrefix(q.Path, c.prefix) {
		return false
	}
	if c.glob != "" && !globMatch(c.glob, q.Path, true) {
		return false
	}
	if len(c.exts) > 0 {
		last := q.Path[strings.LastIndexByte(q.Path, '/')+1:]
		if !slices.ContainsFunc(c.exts, func(e string) bool {
			return len(last) > len(e) && strings.EqualFold(last[len(last)-len(e):], e)
		}) {
			return false
		}
	}
	if len(c.methods) > 0 && !slices.Contains(c.methods, q.Method) {
		return false
	}
	for _, h := range c.headers {
		if !h.holds(q.Header[h.name], true) {
			return false
		}
	}
	if len(c.cookies) > 0 {
		for _, k := range c.cookies {
			if !k.holds(cookieValues(q.Header, k.name, k.nameGlob), false) {
				return false
			}
		}
	}
	return true
}

// holds reports whether one of values matches the condition's glob (none does, for a negated
// condition).
func (f *fieldCond) holds(values []string, fold bool) bool {
	found := false
	for _, v := range values {
		if fold {
			v = strings.ToLower(v)
		}
		if globMatch(f.glob, v, false) {
			found = true
			break
		}
	}
	return found != f.negate
}

// cookieValues are the values of the cookies named name (matching it, when it is a glob) in
// h's Cookie fields — every field: HTTP/2 may split them (RFC 9113 §8.2.3).
func cookieValues(h http.Header, name string, glob bool) []string {
	var out []string
	for _, line := range h["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && (k == name || glob && globMatch(name, k, false)) {
				out = append(out, strings.Trim(v, `"`))
			}
		}
	}
	return out
}

// globMatch matches s against g: '*' is any run of characters ('/' excluded when path is
// set, where "**" is any run at all) and '?' any one character (not '/' in a path).
func globMatch(g, s string, path bool) bool {
	// Iterative matching with backtracking to the last star, as in most glob matchers: linear
	// in practice, never exponential.
	gi, si := 0, 0
	starG, starS, starAny := -1, 0, false
	for si < len(s) {
		if gi < len(g) {
			switch {
			case g[gi] == '*':
				any := !path
				n := 1
				if path && gi+1 < len(g) && g[gi+1] == '*' {
					any, n = true, 2
				}
				starG, starS, starAny = gi+n, si, any
				gi += n
				continue
			case g[gi] == '?' && !(path && s[si] == '/'):
				gi++
				si++
				continue
			case g[gi] == s[si]:
				gi++
				si++
				continue
			}
		}
		// Mismatch: let the last star take one more character, if it may.
		if starG < 0 || (!starAny && s[starS] == '/') {
			return false
		}
		starS++
		gi, si = starG, starS
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}
