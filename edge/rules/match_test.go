package rules

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestMatch: which rules a request matches, most specific first (the package documentation's
// order), one condition at a time and together.
func TestMatch(t *testing.T) {
	rules := []Match{
		0:  {},                    // every request
		1:  {PathPrefix: "/"},     // every path: as specific as no path, listed later
		2:  {PathPrefix: "/vod/"}, //
		3:  {PathPrefix: "/vod/", Hosts: []string{"cdn.example.com"}},
		4:  {Hosts: []string{"*.example.com"}}, // subdomains only
		5:  {PathGlob: "/live/*/index.m3u8"},   // one segment for '*'
		6:  {PathGlob: "/assets/**.js"},        // any depth for '**'
		7:  {Extensions: []string{"m3u8", ".MPD"}},
		8:  {PathPrefix: "/api/", Methods: []string{"POST", "PUT"}},
		9:  {PathPrefix: "/api/", Headers: map[string]string{"X-Debug": "1"}},
		10: {PathPrefix: "/api/", Cookies: map[string]string{"session": "*"}},
		11: {PathPrefix: "/api/", Headers: map[string]string{"Authorization": "!*"}}, // absent
		12: {Headers: map[string]string{"User-Agent": "*mobile*"}},                   // case-insensitive
	}
	set, err := New(rules)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		req    Request
		header http.Header
		want   []int
	}{
		{"no host, no path rule", Request{Host: "other.org", Path: "/x"}, nil, []int{0, 1}},
		{"prefix", Request{Host: "other.org", Path: "/vod/a.mp4"}, nil, []int{2, 0, 1}},
		{"exact host first, then the longer prefix", Request{Host: "cdn.example.com", Path: "/vod/a.mp4"}, nil, []int{3, 4, 2, 0, 1}},
		{"wildcard host is not its apex", Request{Host: "example.com", Path: "/x"}, nil, []int{0, 1}},
		{"wildcard host, deeper subdomain", Request{Host: "a.b.example.com", Path: "/x"}, nil, []int{4, 0, 1}},
		{"glob: one segment", Request{Path: "/live/ch1/index.m3u8"}, nil, []int{5, 7, 0, 1}},
		{"glob: '*' doesn't cross '/'", Request{Path: "/live/a/b/index.m3u8"}, nil, []int{7, 0, 1}},
		{"glob: '**' does", Request{Path: "/assets/js/vendor/x.js"}, nil, []int{6, 0, 1}},
		{"extension, case-insensitive", Request{Path: "/a/B.MPD"}, nil, []int{7, 0, 1}},
		{"extension needs a name before it", Request{Path: "/a/.mpd"}, nil, []int{0, 1}},
		{"extension of the last segment only", Request{Path: "/a.m3u8/x"}, nil, []int{0, 1}},
		{"method", Request{Path: "/api/x", Method: "POST"}, http.Header{"Authorization": {"Bearer x"}}, []int{8, 0, 1}},
		{"method not listed", Request{Path: "/api/x", Method: "GET"}, http.Header{"Authorization": {"Bearer x"}}, []int{0, 1}},
		{"header value", Request{Path: "/api/x", Method: "GET"}, http.Header{"X-Debug": {"1"}, "Authorization": {"x"}}, []int{9, 0, 1}},
		{"header absent (negated)", Request{Path: "/api/x", Method: "GET"}, http.Header{}, []int{11, 0, 1}},
		{"cookie present", Request{Path: "/api/x", Method: "GET"}, http.Header{"Cookie": {"a=1; session=abc"}, "Authorization": {"x"}}, []int{10, 0, 1}},
		{"cookie absent", Request{Path: "/api/x", Method: "GET"}, http.Header{"Cookie": {"sessionx=abc"}, "Authorization": {"x"}}, []int{0, 1}},
		{"user agent glob", Request{Path: "/x"}, http.Header{"User-Agent": {"Foo Mobile Safari"}}, []int{12, 0, 1}},
		{"URLOnly leaves request conditions out", Request{Path: "/api/x", Method: "POST", URLOnly: true}, http.Header{"User-Agent": {"mobile"}}, []int{0, 1}},
	} {
		q := tc.req
		q.Header = tc.header
		if got := set.Match(&q, nil); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %+v matches %v, want %v", tc.name, tc.req, got, tc.want)
		}
	}
}

// TestSpecificityTies: between rules equally specific, the one listed first comes first; more
// request conditions are more specific.
func TestSpecificityTies(t *testing.T) {
	set, err := New([]Match{
		{PathPrefix: "/a/", Methods: []string{"GET"}},
		{PathPrefix: "/a/", Methods: []string{"GET"}, Headers: map[string]string{"X": "1"}},
		{PathPrefix: "/a/", Extensions: []string{"ts"}},
		{PathPrefix: "/a/", Methods: []string{"GET", "HEAD"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	q := Request{Path: "/a/b.ts", Method: "GET", Header: http.Header{"X": {"1"}}}
	if got, want := set.Match(&q, nil), []int{2, 1, 0, 3}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		m    Match
		want string
	}{
		{Match{Hosts: []string{"*"}}, `host "*"`},
		{Match{Hosts: []string{"a.*.com"}}, "want a host name"},
		{Match{Hosts: []string{"a.com:80"}}, "want a host name"},
		{Match{PathPrefix: "vod/"}, "must start with /"},
		{Match{PathGlob: "live/*"}, "must start with / or *"},
		{Match{PathGlob: "/a/***"}, "'***'"},
		{Match{Extensions: []string{"*.ts"}}, "not a file extension"},
		{Match{Methods: []string{"get"}}, "not a method name"},
		{Match{Headers: map[string]string{"X Y": "1"}}, "not a header field name"},
		{Match{Cookies: map[string]string{"a=b": "1"}}, "not a cookie name"},
	} {
		_, err := New([]Match{{}, tc.m})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "rules[1]: ") {
			t.Errorf("%+v: error %v, want rules[1]: …%s…", tc.m, err, tc.want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		g, s string
		path bool
		want bool
	}{
		{"*", "", false, true},
		{"*", "a/b", false, true},
		{"*", "a/b", true, false},
		{"**", "a/b", true, true},
		{"/a/*.ts", "/a/x.ts", true, true},
		{"/a/*.ts", "/a/b/x.ts", true, false},
		{"/a/**.ts", "/a/b/x.ts", true, true},
		{"/a/**/x.ts", "/a/b/c/x.ts", true, true},
		{"/a/?.ts", "/a/x.ts", true, true},
		{"/a/?.ts", "/a//.ts", true, false},
		{"*mobile*", "foo mobile bar", false, true},
		{"*mobile*", "foo mobil", false, false},
		{"a*b*c", "aXbYbZc", false, true},
		{"a*b*c", "aXbYbZ", false, false},
		{strings.Repeat("*a", 20) + "b", strings.Repeat("a", 60), false, false}, // no blow-up
	} {
		if got := globMatch(tc.g, tc.s, tc.path); got != tc.want {
			t.Errorf("globMatch(%q, %q, path=%v) = %v, want %v", tc.g, tc.s, tc.path, got, tc.want)
		}
	}
}

// FuzzGlobMatch: the matcher never panics, and a glob without wildcards matches only itself.
func FuzzGlobMatch(f *testing.F) {
	f.Add("/a/**.ts", "/a/b/c.ts", true)
	f.Add("*x?", "abxy", false)
	f.Fuzz(func(t *testing.T, g, s string, path bool) {
		got := globMatch(g, s, path)
		if !strings.ContainsAny(g, "*?") && got != (g == s) {
			t.Errorf("globMatch(%q, %q) = %v without wildcards", g, s, got)
		}
	})
}

// TestCookieConditions: a cookie condition on a name glob matches every cookie so named;
// "*" is presence whatever the value (empty included); "!*" absence; every Cookie field
// counts (HTTP/2 may split them, RFC 9113 §8.2.3).
func TestCookieConditions(t *testing.T) {
	set, err := New([]Match{
		0: {Cookies: map[string]string{"wordpress_logged_in_*": "*"}},
		1: {Cookies: map[string]string{"session": "*"}},
		2: {Cookies: map[string]string{"sess?on": "!*"}},
		3: {Cookies: map[string]string{"ab_*": "b*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cookie []string
		want   []int
	}{
		{"no cookie", nil, []int{2}},
		{"hashed WordPress name", []string{"wordpress_logged_in_9f86d081884c7d65=admin%7C1700000000"}, []int{0, 2}},
		{"the glob's literal part alone", []string{"wordpress_logged_in=x"}, []int{2}},
		{"a name that only contains the prefix", []string{"xwordpress_logged_in_1=x"}, []int{2}},
		{"present, empty value", []string{"session="}, []int{1}},
		{"present among others, in a second field", []string{"a=1", "b=2; session=abc"}, []int{1}},
		{"name is case-sensitive", []string{"Session=abc"}, []int{2}},
		{"'?' in a name", []string{"sessXon=1"}, []int{}},
		{"value glob over globbed names", []string{"ab_x=a; ab_y=bee"}, []int{2, 3}}, // equally specific: listed order
		{"value glob fails for every name", []string{"ab_x=a; ab_y=c"}, []int{2}},
	} {
		q := Request{Path: "/", Method: "GET", Header: http.Header{}}
		if tc.cookie != nil {
			q.Header["Cookie"] = tc.cookie
		}
		if got := set.Match(&q, nil); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Cookie %q matches %v, want %v", tc.name, tc.cookie, got, tc.want)
		}
	}
	if _, err := New([]Match{{Cookies: map[string]string{"a b*": "*"}}}); err == nil {
		t.Error("a cookie name glob with a space compiled")
	}
}
