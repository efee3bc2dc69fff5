package cachekey

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// serverReq builds the request a Go server would hand the edge for this request line and
// header block (https: as if it came over TLS).
func serverReq(t testing.TB, tls_ bool, target, host string, hdr ...string) *http.Request {
	t.Helper()
	raw := "GET " + target + " HTTP/1.1\r\n"
	if host != "" {
		raw += "Host: " + host + "\r\n"
	}
	for _, h := range hdr {
		raw += h + "\r\n"
	}
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n")))
	if err != nil {
		t.Fatalf("ReadRequest(%q): %v", raw, err)
	}
	if tls_ {
		r.TLS = &tls.ConnectionState{}
	}
	return r
}

// rawReq builds a request with fields a server would never produce (to test that Key is total
// and injective on whatever it is given).
func rawReq(host, escapedPath, rawQuery string, h http.Header) *http.Request {
	u := &url.URL{RawQuery: rawQuery}
	if p, err := url.PathUnescape(escapedPath); err == nil {
		u.Path, u.RawPath = p, escapedPath
	} else {
		u.Path = escapedPath
	}
	if h == nil {
		h = http.Header{}
	}
	return &http.Request{Method: "GET", Host: host, URL: u, Header: h}
}

// prefixRule is a Rule for the paths starting with PathPrefix: the tests choose rules by path
// the simple way the edge did before its rules learnt more (the edge's matcher is edge/rules).
type prefixRule struct {
	PathPrefix                            string
	IncludeParams, ExcludeParams, Headers []string
	IgnoreQuery, ForwardIgnored           bool
}

// prefixKeyer is a Keyer with rules chosen by the longest prefix of the normalised path.
type prefixKeyer struct {
	*Keyer
	prefixes []string
	rules    []*KeyRule
}

func newPrefixKeyer(drop []string, rules []prefixRule, opts ...Option) (*prefixKeyer, error) {
	k, err := New(drop, opts...)
	if err != nil {
		return nil, err
	}
	pk := &prefixKeyer{Keyer: k}
	for _, r := range rules {
		c, err := k.Compile(Rule{IncludeParams: r.IncludeParams, ExcludeParams: r.ExcludeParams, Headers: r.Headers,
			IgnoreQuery: r.IgnoreQuery, ForwardIgnored: r.ForwardIgnored})
		if err != nil {
			return nil, err
		}
		pk.prefixes = append(pk.prefixes, NormalizePath(r.PathPrefix))
		pk.rules = append(pk.rules, c)
	}
	return pk, nil
}

func (k *prefixKeyer) rule(u *url.URL) *KeyRule {
	p, best := "", -1
	if u != nil {
		p = NormalizePath(u.EscapedPath())
	}
	for i, pre := range k.prefixes {
		if strings.HasPrefix(p, pre) && (best < 0 || len(pre) > len(k.prefixes[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	return k.rules[best]
}

func (k *prefixKeyer) Key(r *http.Request) string { return k.Keyer.Key(r, k.rule(r.URL)) }
func (k *prefixKeyer) KeyURL(u *url.URL, h http.Header) string {
	return k.Keyer.KeyURL(u, h, k.rule(u))
}
func (k *prefixKeyer) ForwardQuery(u *url.URL) string { return k.Keyer.ForwardQuery(u, k.rule(u)) }

func mustNew(t testing.TB, drop []string, rules []prefixRule, opts ...Option) *prefixKeyer {
	t.Helper()
	k, err := newPrefixKeyer(drop, rules, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyExact(t *testing.T) {
	k := mustNew(t, nil, nil)
	tests := []struct {
		name, target, host string
		tls                bool
		want               string
	}{
		// RFC 9110 §4.2.3: these three are equivalent; the normal form has no port, a lower-case
		// host and "~" decoded.
		{"9110 4.2.3 a", "/~smith/home.html", "example.com:80", false, "http://example.com/~smith/home.html"},
		{"9110 4.2.3 b", "/%7Esmith/home.html", "EXAMPLE.com", false, "http://example.com/~smith/home.html"},
		{"9110 4.2.3 c", "/%7esmith/home.html", "EXAMPLE.com:", false, "http://example.com/~smith/home.html"},
		// RFC 3986 §6.2.2.1: hex digits of percent-encodings are upper-cased.
		{"3986 6.2.2.1 hex case", "/a%2fb%3a", "h", false, "http://h/a%2Fb%3A"},
		// RFC 3986 §6.2.2.2: encoded unreserved characters are decoded, others stay encoded.
		{"3986 6.2.2.2 unreserved", "/%41%62%2D%2e%5F%7E%2F%20", "h", false, "http://h/Ab-._~%2F%20"},
		// RFC 3986 §6.2.2.3 / §5.2.4: dot-segments removed, also once decoded.
		{"3986 6.2.2.3 dots", "/a/b/c/./../../g", "h", false, "http://h/a/g"},
		{"3986 6.2.2.3 encoded dots", "/a/%2E%2e/b/%2E/c", "h", false, "http://h/b/c"},
		{"3986 5.2.4 above root", "/../../x", "h", false, "http://h/x"},
		{"3986 5.2.4 trailing dot-dot", "/a/b/..", "h", false, "http://h/a/"},
		// Nothing else collapses: empty segments and a trailing slash stay.
		{"double slash kept", "//a//b/", "h", false, "http://h//a//b/"},
		// RFC 9110 §4.2.3: an empty path is "/" (absolute-form target with no path).
		{"9110 4.2.3 empty path", "http://h", "", false, "http://h/"},
		// RFC 3986 §6.2.3: default port dropped per scheme, leading zeros ignored.
		{"https default port", "/", "h:443", true, "https://h/"},
		{"https keeps 80", "/", "h:80", true, "https://h:80/"},
		{"http keeps 443", "/", "h:443", false, "http://h:443/"},
		{"port leading zeros", "/", "h:0080", false, "http://h/"},
		{"other port", "/", "h:08080", false, "http://h:8080/"},
		{"ipv6 default port", "/", "[2001:DB8::1]:80", false, "http://[2001:db8::1]/"},
		{"ipv6 port", "/", "[::1]:8081", false, "http://[::1]:8081/"},
		{"trailing dot", "/", "Example.COM.", false, "http://example.com/"},
		{"trailing dot and port", "/", "example.com.:80", false, "http://example.com/"},
		// Query: sorted by name only (repeats keep their order), tracking parameters dropped,
		// empty ones ignored.
		{"query sorted", "/p?b=2&a=2&a=1&c", "h", false, "http://h/p?a=2&a=1&b=2&c"},
		{"query default drops", "/p?utm_source=x&gclid=1&x=1&fbclid=2&msclkid=3&utm_=", "h", false, "http://h/p?x=1"},
		{"query all dropped", "/p?utm_medium=email", "h", false, "http://h/p"},
		{"query empty", "/p?", "h", false, "http://h/p"},
		{"query only separators", "/p?&&", "h", false, "http://h/p"},
		{"query normalised", "/p?%7e=%7e&q=%2f%61", "h", false, "http://h/p?q=%2Fa&~=~"},
		{"query encoded tracking name dropped", "/p?utm%5Fsource=1&gcl%69d=2", "h", false, "http://h/p"},
		{"query a vs a=", "/p?a=&a", "h", false, "http://h/p?a=&a"},
		{"query disallowed bytes encoded", `/p?q=a"b<c>|d^` + "`", "h", false, "http://h/p?q=a%22b%3Cc%3E%7Cd%5E%60"},
		{"query bad escape kept behind marker", "/p?q=%zz%41", "h", false, "http://h/p?q=%%%25zz%2541"},
		{"OPTIONS *", "*", "h", false, "http://h%%*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := k.Key(serverReq(t, tc.tls, tc.target, tc.host))
			if got != tc.want {
				t.Errorf("Key(%q, Host %q) = %q, want %q", tc.target, tc.host, got, tc.want)
			}
		})
	}
}

// TestKeyDistinct lists pairs that must not share a key: different resources for an origin,
// or separator tricks.
func TestKeyDistinct(t *testing.T) {
	k := mustNew(t, nil, []prefixRule{{PathPrefix: "/h/", Headers: []string{"Accept-Language", "X-Variant"}}})
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	type req struct {
		host, path, query string
		h                 http.Header
	}
	pairs := []struct {
		why  string
		a, b req
	}{
		{"path case (RFC 3986 §6.2.2.1: only scheme and host are case-insensitive)", req{"h", "/A", "", nil}, req{"h", "/a", "", nil}},
		{"encoded slash is not a slash (§6.2.2.2: reserved stays encoded)", req{"h", "/a%2Fb", "", nil}, req{"h", "/a/b", "", nil}},
		{"empty segment", req{"h", "/a//b", "", nil}, req{"h", "/a/b", "", nil}},
		{"trailing slash", req{"h", "/a/", "", nil}, req{"h", "/a", "", nil}},
		{"plus is not space", req{"h", "/", "q=a+b", nil}, req{"h", "/", "q=a%20b", nil}},
		{"encoded plus is not plus", req{"h", "/", "q=a%2Bb", nil}, req{"h", "/", "q=a+b", nil}},
		{"& inside a value", req{"h", "/", "a=b%26c", nil}, req{"h", "/", "a=b&c", nil}},
		{"= inside a name vs a value", req{"h", "/", "a%3Db=c", nil}, req{"h", "/", "a=b%3Dc", nil}},
		{"raw = in value vs encoded", req{"h", "/", "a=b=c", nil}, req{"h", "/", "a=b%3Dc", nil}},
		{"no value vs empty value", req{"h", "/", "a", nil}, req{"h", "/", "a=", nil}},
		{"value case", req{"h", "/", "a=X", nil}, req{"h", "/", "a=x", nil}},
		{"name case (drop globs are case-sensitive too)", req{"h", "/", "UTM_source=1", nil}, req{"h", "/", "", nil}},
		{"query in path", req{"h", "/a%3Fb=1", "", nil}, req{"h", "/a", "b=1", nil}},
		{"bad escape vs its encoding", req{"h", "/", "q=%zz", nil}, req{"h", "/", "q=%25zz", nil}},
		{"bad escape then valid one", req{"h", "/", "q=%%41", nil}, req{"h", "/", "q=%A", nil}},
		{"bad escape vs marker look-alike", req{"h", "/", "q=%zz", nil}, req{"h", "/", "q=%25%25%25zz", nil}},
		{"slash in host vs path", req{"a/b", "/c", "", nil}, req{"a", "/b/c", "", nil}},
		{"question mark in host vs query", req{"a?b=1", "/", "", nil}, req{"a", "/", "b=1", nil}},
		{"percent in host is literal", req{"%41", "/", "", nil}, req{"a", "/", "", nil}},
		{"at sign in host", req{"u@h", "/", "", nil}, req{"h", "/", "", nil}},
		{"star path vs host", req{"a*", "/", "", nil}, req{"a", "*", "", nil}},
		{"two trailing dots", req{"h..", "/", "", nil}, req{"h", "/", "", nil}},
		{"port", req{"h:8080", "/", "", nil}, req{"h", "/", "", nil}},
		{"header absent vs empty", req{"h", "/h/x", "", hdr()}, req{"h", "/h/x", "", hdr("X-Variant", "")}},
		{"header one line vs two", req{"h", "/h/x", "", hdr("Accept-Language", "en, fr")}, req{"h", "/h/x", "", hdr("Accept-Language", "en", "Accept-Language", "fr")}},
		{"header value with separators", req{"h", "/h/x", "", hdr("Accept-Language", "1:a;", "X-Variant", "b")}, req{"h", "/h/x", "", hdr("Accept-Language", "1:a;1:b;")}},
		{"header value mimicking the next header", req{"h", "/h/x", "", hdr("Accept-Language", "a x-variant=1:b;")}, req{"h", "/h/x", "", hdr("Accept-Language", "a", "X-Variant", "b")}},
		{"header names swap", req{"h", "/h/x", "", hdr("Accept-Language", "v")}, req{"h", "/h/x", "", hdr("X-Variant", "v")}},
		{"header value vs path", req{"h", "/h/x%20accept-language=1:v;", "", nil}, req{"h", "/h/x", "", hdr("Accept-Language", "v")}},
	}
	for _, p := range pairs {
		ka := k.Key(rawReq(p.a.host, p.a.path, p.a.query, p.a.h))
		kb := k.Key(rawReq(p.b.host, p.b.path, p.b.query, p.b.h))
		if ka == kb {
			t.Errorf("%s: both give %q", p.why, ka)
		}
	}
}

func TestKeyQueryOrder(t *testing.T) {
	k := mustNew(t, nil, nil)
	// Distinct names may come in any order: no origin reads "a=1&b=2" unlike "b=2&a=1".
	a := k.Key(serverReq(t, false, "/x?c=3&a=1&b=1&a=2&utm_campaign=z", "h"))
	b := k.Key(serverReq(t, false, "/x?a=1&utm_campaign=q&b=1&a=2&c=3", "h"))
	if a != b {
		t.Errorf("order or dropped param changed the key: %q vs %q", a, b)
	}
	// A repeated name keeps its order: origins take the first (many CGI and Java frameworks),
	// the last (PHP, Express's last-wins helpers) or the list in order, so "id=2&id=1" and
	// "id=1&id=2" are different requests and must not share an entry (issue 13 item 4).
	for _, tc := range []struct{ x, y string }{
		{"/x?id=2&id=1", "/x?id=1&id=2"},
		{"/x?id=2&z=0&id=1", "/x?id=1&z=0&id=2"},
		{"/x?id&id=", "/x?id=&id"},
		{"/x?i%64=2&id=1", "/x?id=1&i%64=2"}, // equal once normalised: still two occurrences of "id"
	} {
		if kx, ky := k.Key(serverReq(t, false, tc.x, "h")), k.Key(serverReq(t, false, tc.y, "h")); kx == ky {
			t.Errorf("%q and %q share the key %q", tc.x, tc.y, kx)
		}
	}
}

// TestForwardQuery: what goes upstream is what the key holds, byte for byte and in order, so a
// parameter the key ignores can't be reflected into the entry other clients get (item 6).
func TestForwardQuery(t *testing.T) {
	k := mustNew(t, nil, []prefixRule{
		{PathPrefix: "/api/", IncludeParams: []string{"id"}},
		{PathPrefix: "/raw/", IgnoreQuery: true},
		{PathPrefix: "/track/", ForwardIgnored: true},
		{PathPrefix: "/rawfwd/", IgnoreQuery: true, ForwardIgnored: true},
	})
	for _, tc := range []struct{ target, want string }{
		{"/p?utm_source=%3Cscript%3E&b=2&&a=%41", "b=2&a=%41"},
		{"/p?gclid=1&fbclid=2", ""},
		{"/p?utm_source=x;callback=evil&a=1", "utm_source=x;callback=evil&a=1"}, // keyed, so forwarded
		{"/p?id=2&id=1", "id=2&id=1"},
		{"/api/q?id=7&other=1&utm_x=2", "id=7"},
		{"/api/x/../q?x=1", ""}, // the rule is matched on the normalised path
		{"/raw/q?id=7", ""},
		{"/track/q?utm_source=x&a=1", "utm_source=x&a=1"},
		{"/rawfwd/q?id=7", "id=7"},
		{"/p", ""},
	} {
		if got := k.ForwardQuery(serverReq(t, false, tc.target, "h").URL); got != tc.want {
			t.Errorf("ForwardQuery(%q) = %q, want %q", tc.target, got, tc.want)
		}
	}
}

func TestScheme(t *testing.T) {
	plain := serverReq(t, false, "/", "h")
	secure := serverReq(t, true, "/", "h")
	// An absolute-form target can't claim https over a plain connection.
	claim := serverReq(t, false, "https://h/", "")

	k := mustNew(t, nil, nil)
	for _, tc := range []struct {
		r    *http.Request
		want string
	}{{plain, "http://h/"}, {secure, "https://h/"}, {claim, "http://h/"}} {
		if got := k.Key(tc.r); got != tc.want {
			t.Errorf("Key = %q, want %q", got, tc.want)
		}
	}
	forced := mustNew(t, nil, nil, WithScheme("HTTPS"))
	if got := forced.Key(plain); got != "https://h/" {
		t.Errorf("WithScheme(https): Key = %q", got)
	}
	if _, err := New(nil, WithScheme("ftp")); err == nil {
		t.Error("WithScheme(ftp): no error")
	}
}

func TestRules(t *testing.T) {
	k := mustNew(t, []string{"session", "utm_*"}, []prefixRule{
		{PathPrefix: "/api/", IncludeParams: []string{"id", "v?", "utm_source"}, ExcludeParams: []string{"v2"}},
		{PathPrefix: "/api/raw/", IgnoreQuery: true},
		{PathPrefix: "/img/", ExcludeParams: []string{"w*", `lit\*`}, Headers: []string{"DPR", "accept", "Accept"}},
		{PathPrefix: "/%7Eu/", IgnoreQuery: true}, // normalised to /~u/
	})
	tests := []struct {
		name, target string
		hdr          []string
		want         string
	}{
		{"no rule: global drops only", "/x?session=1&a=1&utm_x=2&gclid=3", nil, "http://h/x?a=1&gclid=3"},
		{"include list, exclude within it", "/api/q?v1=a&v2=b&id=7&other=1&vvv=2", nil, "http://h/api/q?id=7&v1=a"},
		{"include list overrides global drop", "/api/q?utm_source=s&utm_medium=m&session=1", nil, "http://h/api/q?utm_source=s"},
		{"longest prefix wins", "/api/raw/q?id=7", nil, "http://h/api/raw/q"},
		{"prefix is matched on the normalised path", "/api/x/../raw/q?id=7", nil, "http://h/api/raw/q"},
		{"prefix normalised too", "/~u/q?a=1", nil, "http://h/~u/q"},
		{"exclude adds to global drops", "/img/a.png?w=10&width=3&x=1&session=2&lit*=1&litx=2", nil, "http://h/img/a.png?litx=2&x=1 accept= dpr="},
		{"headers sorted and deduplicated", "/img/a.png", []string{"DPR: 2", "Accept: image/avif", "Accept: image/webp"}, "http://h/img/a.png accept=10:image/avif;10:image/webp; dpr=1:2;"},
		{"headers absent", "/img/a.png", nil, "http://h/img/a.png accept= dpr="},
		{"prefix is not a directory unless it ends in /", "/imgx/a.png?w=1", nil, "http://h/imgx/a.png?w=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := k.Key(serverReq(t, false, tc.target, "h", tc.hdr...)); got != tc.want {
				t.Errorf("Key(%q) = %q, want %q", tc.target, got, tc.want)
			}
		})
	}
}

func TestDropLists(t *testing.T) {
	r := serverReq(t, false, "/?utm_source=1&gclid=2&a=3", "h")
	if got, want := mustNew(t, nil, nil).Key(r), "http://h/?a=3"; got != want {
		t.Errorf("nil drop list: %q, want %q", got, want)
	}
	if got, want := mustNew(t, []string{}, nil).Key(r), "http://h/?a=3&gclid=2&utm_source=1"; got != want {
		t.Errorf("empty drop list: %q, want %q", got, want)
	}
	// A root rule replaces the implicit default rule but still gets the global drops.
	k := mustNew(t, nil, []prefixRule{{PathPrefix: "", Headers: []string{"X-A"}}})
	if got, want := k.Key(r), "http://h/?a=3 x-a="; got != want {
		t.Errorf("root rule: %q, want %q", got, want)
	}
	if d := DefaultDropParams(); !slices.Equal(d, []string{"utm_*", "gclid", "fbclid", "msclkid"}) {
		t.Errorf("DefaultDropParams = %q", d)
	}
	DefaultDropParams()[0] = "x" // a copy: can't change the defaults
	if got := mustNew(t, nil, nil).Key(r); got != "http://h/?a=3" {
		t.Errorf("defaults changed through DefaultDropParams: %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drop  []string
		rules []prefixRule
	}{
		{"empty glob", []string{""}, nil},
		{"trailing backslash", []string{`a\`}, nil},
		{"bad include", nil, []prefixRule{{PathPrefix: "/a", IncludeParams: []string{""}}}},
		{"bad exclude", nil, []prefixRule{{PathPrefix: "/a", ExcludeParams: []string{`x\`}}}},
		{"bad header name", nil, []prefixRule{{Headers: []string{"Bad Header"}}}},
		{"empty header name", nil, []prefixRule{{Headers: []string{""}}}},
		{"host header", nil, []prefixRule{{Headers: []string{"host"}}}},
	} {
		if _, err := newPrefixKeyer(tc.drop, tc.rules); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"utm_*", "utm_source", true},
		{"utm_*", "utm_", true},
		{"utm_*", "utm", false},
		{"utm_*", "xutm_a", false},
		{"*id", "gclid", true},
		{"*id", "gclid2", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{`\?`, "?", true},
		{`\?`, "x", false},
		{"*", "", true},
		{"**", "x", true},
		{"gclid", "gclid", true},
		{"gclid", "gclidx", false},
	} {
		if got := globMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
		if got := globMatch(tc.p, []byte(tc.s)); got != tc.want {
			t.Errorf("globMatch(%q, []byte %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// RFC 3986 §5.2.4 examples.
		{"/a/b/c/./../../g", "/a/g"},
		{"mid/content=5/../6", "mid/6"},
		{"/./a", "/a"},
		{"/a/.", "/a/"},
		{"/..", "/"},
		{".", ""},
		{"../x", "x"},
		{"/a/..b/.c", "/a/..b/.c"}, // not dot-segments
		{"/%2e%2E/a", "/a"},
		{"/a%2F..", "/a%2F.."}, // an encoded slash doesn't make ".." a segment
		{"/é", "/%C3%A9"},
		{"/a b", "/a%20b"},
		{"/100%", "/100%25"},
	} {
		if got := NormalizePath(tc.in); got != tc.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestKeyURL(t *testing.T) {
	k := mustNew(t, nil, []prefixRule{{PathPrefix: "/v/", Headers: []string{"X-A"}}})
	u, _ := url.Parse("HTTPS://Example.com:443/v/%7Ea?b=1&a=2&utm_x=1")
	h := http.Header{"X-A": {"1"}}
	r := serverReq(t, true, "/v/~a?a=2&b=1", "example.com", "X-A: 1")
	if got, want := k.KeyURL(u, h), k.Key(r); got != want || want != "https://example.com/v/~a?a=2&b=1 x-a=1:1;" {
		t.Errorf("KeyURL = %q, Key = %q", got, want)
	}
	if got := k.KeyURL(&url.URL{Host: "h", Path: "/"}, nil); got != "http://h/" {
		t.Errorf("KeyURL without scheme = %q", got)
	}
}

func TestKeyNilURLAndOddFields(t *testing.T) {
	k := mustNew(t, nil, []prefixRule{{Headers: []string{"X-A"}}})
	r := &http.Request{Host: "H"}
	if got := k.Key(r); got != "http://h/ x-a=" {
		t.Errorf("nil URL: %q", got)
	}
	r = &http.Request{URL: &url.URL{Host: "From-URL", Path: "a/../../b"}}
	if got := k.Key(r); got != "http://from-url%%/b x-a=" {
		t.Errorf("relative path, host from URL: %q", got)
	}
}

func TestKeyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	k := mustNew(t, nil, []prefixRule{{PathPrefix: "/img/", Headers: []string{"Accept"}}})
	for _, target := range []string{"/video/720p/seg-00042.m4s", "/a/./b/%7e/../c?z=1&utm_source=x&b=%2f&a=1", "/img/x.png?w=1"} {
		r := serverReq(t, false, target, "Example.com:80", "Accept: image/webp")
		rule := k.rule(r.URL) // the edge's rules choose it once per request
		if n := testing.AllocsPerRun(200, func() { _ = k.Keyer.Key(r, rule) }); n > 1 {
			t.Errorf("Key(%q): %v allocations, want ≤ 1", target, n)
		}
	}
}

// canonical is the test's own statement of when two query values are equivalent (RFC 3986
// §6.2.2): the sequence of (byte, must-be-encoded) pairs, where unreserved characters never need
// encoding, other characters allowed in a query are distinct raw and encoded, and characters not
// allowed raw are the same as their encoding. Malformed percent-encodings compare verbatim.
func canonical(s string) string {
	isHex := func(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }
	isUnreserved := func(c byte) bool {
		return c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0)
	}
	allowedRaw := func(c byte) bool { return isUnreserved(c) || strings.IndexByte("!$&'()*+,;=:@/?", c) >= 0 }
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return "verbatim " + s
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			var c byte
			fmt.Sscanf(s[i+1:i+3], "%02x", &c)
			fmt.Fprintf(&b, "%02x%v,", c, !isUnreserved(c))
			i += 2
			continue
		}
		fmt.Fprintf(&b, "%02x%v,", s[i], !allowedRaw(s[i]))
	}
	return b.String()
}

func TestCanonicalOracle(t *testing.T) {
	// The oracle itself must tell these apart, or FuzzKey proves nothing.
	if canonical("a%41") != canonical("aA") || canonical("%2b") != canonical("%2B") || canonical("%22") != canonical(`"`) {
		t.Error("oracle misses an equivalence")
	}
	if canonical("+") == canonical("%2B") || canonical("%zz") == canonical("%25zz") || canonical("a") == canonical("b") {
		t.Error("oracle merges distinct values")
	}
}

// FuzzKey: Key never panics and is deterministic; permuting the query's parameters or adding
// dropped ones never changes the key; two values of a kept parameter give the same key exactly
// when they are equivalent (canonical, above).
func FuzzKey(f *testing.F) {
	f.Add("example.com", "/a/b", "x=1&y=2&x=0", "v", "w", uint64(1))
	f.Add("EXAMPLE.com:80", "/%7e/../%2F", "b=%41&a", "%61", "a", uint64(2))
	f.Add("[::1]:443", "/é", "q=%zz&&=&", "%zz", "%25zz", uint64(3))
	f.Add("h", "", "utm_source=1&gclid=2", "a+b", "a%20b", uint64(4))
	f.Add("h.", "*", "a=b=c", "b=c", "b%3Dc", uint64(5))
	k := mustNew(f, nil, []prefixRule{{PathPrefix: "/a/", Headers: []string{"X-A"}}})
	f.Fuzz(func(t *testing.T, host, path, query, v, w string, seed uint64) {
		h := http.Header{"X-A": {v, w}}
		base := k.Key(rawReq(host, path, query, h))
		if again := k.Key(rawReq(host, path, query, h)); again != base {
			t.Fatalf("not deterministic: %q then %q", base, again)
		}

		for _, u := range []*url.URL{rawReq(host, path, query, nil).URL, {Path: v, RawPath: w}} {
			if got, want := escapedPath(u), u.EscapedPath(); got != want {
				t.Fatalf("escapedPath(Path %q, RawPath %q) = %q, EscapedPath = %q", u.Path, u.RawPath, got, want)
			}
		}

		params := strings.Split(query, "&")
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		shuffled := strings.Join(shuffleNames(params, rng), "&")
		if got := k.Key(rawReq(host, path, shuffled, h)); got != base {
			t.Fatalf("query %q → %q but shuffled %q → %q", query, base, shuffled, got)
		}
		// (A dropped parameter holding ';' is keyed on purpose: TestSemicolonCloaking.)
		withDropped := strings.Join(append(params, "utm_x="+strings.NewReplacer("&", "", ";", "").Replace(v), "gclid"), "&")
		if got := k.Key(rawReq(host, path, withDropped, h)); got != base {
			t.Fatalf("dropped params changed the key: %q → %q, %q → %q", query, base, withDropped, got)
		}

		v = strings.ReplaceAll(v, "&", "")
		w = strings.ReplaceAll(w, "&", "")
		kv := k.Key(rawReq(host, path, query+"&kk="+v, h))
		kw := k.Key(rawReq(host, path, query+"&kk="+w, h))
		if same := canonical(v) == canonical(w); (kv == kw) != same {
			t.Fatalf("kk=%q vs kk=%q: equivalent=%v but keys %q, %q", v, w, same, kv, kw)
		}
	})
}

// shuffleNames permutes params but keeps the order of the occurrences of each (canonical)
// name: the permutations that must not change a key.
func shuffleNames(params []string, rng *rand.Rand) []string {
	name := func(p string) string { n, _, _ := strings.Cut(p, "="); return canonical(n) }
	byName := map[string][]string{}
	for _, p := range params {
		byName[name(p)] = append(byName[name(p)], p)
	}
	out := slices.Clone(params)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for i, p := range out {
		n := name(p)
		out[i], byName[n] = byName[n][0], byName[n][1:]
	}
	return out
}

func BenchmarkKey(b *testing.B) {
	k := mustNew(b, nil, []prefixRule{
		{PathPrefix: "/live/", IgnoreQuery: true},
		{PathPrefix: "/img/", Headers: []string{"Accept"}},
	})
	for _, bc := range []struct{ name, target string }{
		{"segment", "/vod/720p/seg-00042.m4s"},
		{"query", "/vod/master.m3u8?token=abc123&utm_source=news&b=2&a=1"},
		{"messy", "/a/./b/%7euser/../c%2f/d?z=%7a&y=1&y=0&gclid=x&x"},
		{"header", "/img/cat.png?w=640"},
	} {
		r := serverReq(b, true, bc.target, "Cdn.Example.com:443", "Accept: image/avif,image/webp,*/*")
		rule := k.rule(r.URL)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = k.Keyer.Key(r, rule)
			}
		})
	}
}

// TestSemicolonCloaking: a dropped parameter cannot smuggle another behind a ';'.
func TestSemicolonCloaking(t *testing.T) {
	k, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	key := func(raw string) string {
		return k.Key(httptest.NewRequest("GET", "http://h"+raw, nil), nil)
	}
	if key("/p?utm_source=x;callback=evil") == key("/p") {
		t.Fatal("a ';'-cloaked parameter shares the bare URL's key")
	}
	if key("/p?utm_source=x") != key("/p") {
		t.Fatal("a plain tracking parameter is keyed")
	}
}
