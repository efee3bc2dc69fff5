package cachestatus

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// A tiny strict RFC 8941 §4.2 parser for Lists of Items whose bare items are Integers, Strings,
// Tokens or Booleans (all Cache-Status uses). Anything else, and any syntax error, fails.

type token string

type member struct {
	value  any // token or string
	params map[string]any
	order  []string
}

func parseList(s string) ([]member, error) {
	s = strings.TrimLeft(s, " ") // §4.2 step 2
	var out []member
	if s == "" {
		return nil, nil
	}
	for {
		var m member
		var err error
		if m.value, s, err = parseBareItem(s); err != nil {
			return nil, err
		}
		if _, ok := m.value.(int64); ok {
			return nil, errors.New("member value is an Integer, Cache-Status wants a Token or String")
		}
		if _, ok := m.value.(bool); ok {
			return nil, errors.New("member value is a Boolean, Cache-Status wants a Token or String")
		}
		m.params = map[string]any{}
		for strings.HasPrefix(s, ";") { // §4.2.3.2
			s = strings.TrimLeft(s[1:], " ")
			var key string
			if key, s, err = parseKey(s); err != nil {
				return nil, err
			}
			var v any = true
			if strings.HasPrefix(s, "=") {
				if v, s, err = parseBareItem(s[1:]); err != nil {
					return nil, err
				}
			}
			if _, dup := m.params[key]; dup {
				return nil, fmt.Errorf("parameter %q repeated", key) // legal, but we never write it
			}
			m.params[key] = v
			m.order = append(m.order, key)
		}
		out = append(out, m)
		s = strings.TrimLeft(s, " \t") // §4.2.1: OWS
		if s == "" {
			return out, nil
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("expected ',' at %q", s)
		}
		s = strings.TrimLeft(s[1:], " \t")
		if s == "" {
			return nil, errors.New("trailing comma")
		}
	}
}

func parseKey(s string) (string, string, error) { // §4.2.3.3
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] == '*') {
		return "", s, fmt.Errorf("bad key start at %q", s)
	}
	i := 1
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9' || strings.IndexByte("_-.*", s[i]) >= 0) {
		i++
	}
	return s[:i], s[i:], nil
}

func parseBareItem(s string) (any, string, error) { // §4.2.3.1
	if s == "" {
		return nil, s, errors.New("empty item")
	}
	c := s[0]
	switch {
	case c == '-' || c >= '0' && c <= '9': // §4.2.4, Integers only
		i := 0
		if c == '-' {
			i = 1
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j-i > 15 {
			return nil, s, fmt.Errorf("bad integer at %q", s)
		}
		if j < len(s) && s[j] == '.' {
			return nil, s, errors.New("decimal not expected")
		}
		n, _ := strconv.ParseInt(s[:j], 10, 64)
		return n, s[j:], nil
	case c == '"': // §4.2.5
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch d := s[i]; {
			case d == '\\':
				if i+1 == len(s) || s[i+1] != '"' && s[i+1] != '\\' {
					return nil, s, fmt.Errorf("bad escape in %q", s)
				}
				i++
				b.WriteByte(s[i])
			case d == '"':
				return b.String(), s[i+1:], nil
			case d < 0x20 || d > 0x7e:
				return nil, s, fmt.Errorf("byte %#x in string", d)
			default:
				b.WriteByte(d)
			}
		}
		return nil, s, errors.New("unterminated string")
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*': // §4.2.6
		i := 1
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~:/", s[i]) >= 0) {
			i++
		}
		return token(s[:i]), s[i:], nil
	case c == '?': // §4.2.8
		if len(s) >= 2 && (s[1] == '0' || s[1] == '1') {
			return s[1] == '1', s[2:], nil
		}
		return nil, s, errors.New("bad boolean")
	}
	return nil, s, fmt.Errorf("unexpected item %q", s)
}

func mustParse(t testing.TB, s string) []member {
	t.Helper()
	ms, err := parseList(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return ms
}

func sameMember(a, b member) bool {
	return a.value == b.value && maps.Equal(a.params, b.params)
}

func ttl(n int) *int { return &n }

// TestRFC9211Examples: each §3 example, built with Status, parses to the same member.
func TestRFC9211Examples(t *testing.T) {
	for _, tc := range []struct {
		s       Status
		example string
	}{
		{Status{Cache: "ExampleCache", Hit: true}, "ExampleCache; hit"},
		{Status{Cache: "ExampleCache", Hit: true, TTL: ttl(376)}, "ExampleCache; hit; ttl=376"},
		{Status{Cache: "ExampleCache", Hit: true, TTL: ttl(-412)}, "ExampleCache; hit; ttl=-412"},
		{Status{Cache: "ExampleCache", Fwd: FwdURIMiss}, "ExampleCache; fwd=uri-miss"},
		{Status{Cache: "ExampleCache", Fwd: FwdStale, FwdStatus: 304}, "ExampleCache; fwd=stale; fwd-status=304"},
		{Status{Cache: "ExampleCache", Fwd: FwdURIMiss, Collapsed: true}, "ExampleCache; fwd=uri-miss; collapsed"},
		{Status{Cache: "OriginCache", Hit: true, TTL: ttl(1100)}, "OriginCache; hit; ttl=1100"},
		{Status{Cache: "CDN Company Here", Hit: true, TTL: ttl(545)}, `"CDN Company Here"; hit; ttl=545`},
		{Status{Cache: "ReverseProxyCache", Hit: true}, "ReverseProxyCache; hit"},
		{Status{Cache: "ForwardProxyCache", Fwd: FwdURIMiss, Collapsed: true, Stored: true}, "ForwardProxyCache; fwd=uri-miss; collapsed; stored"},
		{Status{Cache: "BrowserCache", Fwd: FwdURIMiss}, "BrowserCache; fwd=uri-miss"},
	} {
		got := tc.s.String()
		g, w := mustParse(t, got), mustParse(t, tc.example)
		if len(g) != 1 || len(w) != 1 || !sameMember(g[0], w[0]) {
			t.Errorf("%+v → %q, which doesn't parse like the RFC's %q", tc.s, got, tc.example)
		}
		if err := tc.s.Validate(); err != nil {
			t.Errorf("%+v: Validate: %v", tc.s, err)
		}
	}
	// The two-layer example of RFC 9211 §3, built by two caches each calling Append.
	h := http.Header{}
	Append(h, Status{Cache: "OriginCache", Hit: true, TTL: ttl(1100)})
	Append(h, Status{Cache: "CDN Company Here", Hit: true, TTL: ttl(545)})
	g := mustParse(t, h.Get(Header))
	w := mustParse(t, `OriginCache; hit; ttl=1100, "CDN Company Here"; hit; ttl=545`)
	if len(g) != 2 || !sameMember(g[0], w[0]) || !sameMember(g[1], w[1]) {
		t.Errorf("two layers: %q", h.Get(Header))
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Status
		want string
	}{
		{"bare member: all parameters optional (§2)", Status{Cache: "reel"}, "reel"},
		{"§2.1 hit, §2.4 ttl", Status{Cache: "reel", Hit: true, TTL: ttl(3599)}, "reel; hit; ttl=3599"},
		{"§2.2–§2.6 full miss", Status{Cache: "reel", Fwd: FwdURIMiss, FwdStatus: 200, Stored: true, TTL: ttl(60), Collapsed: true},
			"reel; fwd=uri-miss; fwd-status=200; stored; ttl=60; collapsed"},
		{"§2.1 hit and fwd are exclusive: fwd kept", Status{Cache: "reel", Hit: true, Fwd: FwdStale, FwdStatus: 304}, "reel; fwd=stale; fwd-status=304"},
		{"§2.2 unregistered fwd token kept", Status{Cache: "reel", Fwd: "x-shield"}, "reel; fwd=x-shield"},
		{"§2.2 invalid fwd token becomes miss", Status{Cache: "reel", Fwd: "uri miss"}, "reel; fwd=miss"},
		{"§2.2 fwd values", Status{Cache: "reel", Fwd: FwdVaryMiss}, "reel; fwd=vary-miss"},
		{"§2.3 fwd-status needs fwd", Status{Cache: "reel", Hit: true, FwdStatus: 200}, "reel; hit"},
		{"§2.3 fwd-status must be a status code", Status{Cache: "reel", Fwd: FwdMiss, FwdStatus: 42}, "reel; fwd=miss"},
		{"§2.4 ttl zero is written", Status{Cache: "reel", Hit: true, TTL: ttl(0)}, "reel; hit; ttl=0"},
		{"§2.4 negative ttl: stale", Status{Cache: "reel", Hit: true, TTL: ttl(-5)}, "reel; hit; ttl=-5"},
		{"§2.4 ttl clamped to RFC 8941 §3.3.1", Status{Cache: "reel", TTL: ttl(1 << 60)}, "reel; ttl=999999999999999"},
		{"§2.4 negative ttl clamped", Status{Cache: "reel", TTL: ttl(-1 << 60)}, "reel; ttl=-999999999999999"},
		{"§2.5 stored needs fwd", Status{Cache: "reel", Hit: true, Stored: true}, "reel; hit"},
		{"§2.6 collapsed needs fwd", Status{Cache: "reel", Hit: true, Collapsed: true}, "reel; hit"},
		{"§2.7 key is a String even when token-like", Status{Cache: "reel", Hit: true, Key: "k"}, `reel; hit; key="k"`},
		{"§2.7 key escapes (RFC 8941 §3.3.3)", Status{Cache: "reel", Key: `http://h/p?a="b"\c`}, `reel; key="http://h/p?a=\"b\"\\c"`},
		{"§2.8 detail token", Status{Cache: "reel", Hit: true, Detail: "MEMORY"}, "reel; hit; detail=MEMORY"},
		{"§2.8 detail string", Status{Cache: "reel", Hit: true, Detail: "disk tier"}, `reel; hit; detail="disk tier"`},
		{"RFC 8941 §3.3.4 token may start with *, hold : and /", Status{Cache: "*edge:1/a"}, "*edge:1/a"},
		{"RFC 8941 §3.3.4 token can't start with a digit", Status{Cache: "1edge"}, `"1edge"`},
		{"RFC 8941 §3.3.4 token can't hold a space", Status{Cache: "Example CDN"}, `"Example CDN"`},
		{"RFC 8941 §3.3.3 empty name is the empty String", Status{Cache: ""}, `""`},
		{"RFC 8941 §3.3.3 non-printable bytes percent-encoded", Status{Cache: "é\n"}, `"%C3%A9%0A"`},
		{"order of every parameter", Status{Cache: "reel", Fwd: FwdStale, FwdStatus: 304, Stored: true, TTL: ttl(10), Collapsed: true, Key: "k", Detail: "d"},
			`reel; fwd=stale; fwd-status=304; stored; ttl=10; collapsed; key="k"; detail=d`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.s.String()
			if got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if string(tc.s.AppendTo([]byte("x, "))) != "x, "+tc.want {
				t.Errorf("AppendTo disagrees with String")
			}
			mustParse(t, got)
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		want string // "" for valid
	}{
		{Status{Cache: "reel", Fwd: FwdURIMiss, FwdStatus: 200, Stored: true, TTL: ttl(-1), Collapsed: true, Key: "k", Detail: "d e"}, ""},
		{Status{Cache: "reel", Hit: true, Fwd: FwdStale}, "exclusive"},
		{Status{Cache: "reel", Fwd: "a b"}, "not a Token"},
		{Status{Cache: "reel", Fwd: FwdMiss, FwdStatus: 1000}, "not a status code"},
		{Status{Cache: "reel", Stored: true}, "only meaningful with fwd"},
		{Status{Cache: "reel", TTL: ttl(maxInteger + 1)}, "clamped"},
		{Status{Cache: "reel", Key: "\x7f"}, "key"},
		{Status{Cache: "ré"}, "cache"},
		{Status{Cache: "reel", Detail: "\t"}, "detail"},
	} {
		err := tc.s.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected %v", tc.s, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one mentioning %q", tc.s, err, tc.want)
		}
	}
}

func TestAppend(t *testing.T) {
	ours := Status{Cache: "reel", Fwd: FwdURIMiss, FwdStatus: 200, Stored: true}
	for _, tc := range []struct {
		name     string
		existing []string
		want     string
	}{
		{"first cache", nil, "reel; fwd=uri-miss; fwd-status=200; stored"},
		{"after the origin-side cache (§2: last member is closest to the client)", []string{"OriginCache; hit; ttl=10"},
			"OriginCache; hit; ttl=10, reel; fwd=uri-miss; fwd-status=200; stored"},
		{"several lines kept in order (RFC 9110 §5.3)", []string{`A; hit`, `"B C"; fwd=miss, D; hit`},
			`A; hit, "B C"; fwd=miss, D; hit, reel; fwd=uri-miss; fwd-status=200; stored`},
		{"empty lines and stray commas dropped", []string{"", " A; hit ,", ", "},
			"A; hit, reel; fwd=uri-miss; fwd-status=200; stored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Other": {"x"}}
			for _, v := range tc.existing {
				h.Add(Header, v)
			}
			Append(h, ours)
			if got := h.Values(Header); len(got) != 1 || got[0] != tc.want {
				t.Errorf("Cache-Status = %q, want [%q]", got, tc.want)
			}
			ms := mustParse(t, h.Get(Header))
			last := mustParse(t, ours.String())[0]
			if !sameMember(ms[len(ms)-1], last) {
				t.Errorf("our member isn't last: %q", h.Get(Header))
			}
			if h.Get("Other") != "x" {
				t.Error("other fields touched")
			}
		})
	}
}

// The parser must reject what the RFCs reject, or the parse-back checks prove nothing.
func TestParserIsStrict(t *testing.T) {
	for _, bad := range []string{
		`reel; hit,`, `reel;hit=`, `"a\b"`, `"unterminated`, `reel; HIT`, `1x`, `reel ;hit`,
		`reel; ttl=1.5`, `reel; ttl=1234567890123456`, "\"a\x01\"", `reel, , x`, `reel; hit; hit`,
	} {
		if ms, err := parseList(bad); err == nil {
			t.Errorf("parseList(%q) = %+v, want an error", bad, ms)
		}
	}
	ms := mustParse(t, `a;x=?0;y, "b\"\\";z=-1`)
	if len(ms) != 2 || ms[0].value != token("a") || ms[0].params["x"] != false || ms[0].params["y"] != true ||
		ms[1].value != `b"\` || ms[1].params["z"] != int64(-1) {
		t.Errorf("parse = %+v", ms)
	}
}

// fromMember rebuilds the Status a member describes.
func fromMember(m member) Status {
	var s Status
	switch v := m.value.(type) {
	case token:
		s.Cache = string(v)
	case string:
		s.Cache = v
	}
	str := func(v any) string {
		switch v := v.(type) {
		case token:
			return string(v)
		case string:
			return v
		}
		return fmt.Sprintf("<%T>", v)
	}
	for k, v := range m.params {
		switch k {
		case "hit":
			s.Hit = v == true
		case "fwd":
			s.Fwd = str(v)
		case "fwd-status":
			s.FwdStatus = int(v.(int64))
		case "stored":
			s.Stored = v == true
		case "collapsed":
			s.Collapsed = v == true
		case "ttl":
			s.TTL = ttl(int(v.(int64)))
		case "key":
			s.Key = v.(string)
		case "detail":
			s.Detail = str(v)
		}
	}
	return s
}

func equalStatus(a, b Status) bool {
	if (a.TTL == nil) != (b.TTL == nil) || a.TTL != nil && *a.TTL != *b.TTL {
		return false
	}
	a.TTL, b.TTL = nil, nil
	return a == b
}

// FuzzStatus: String always parses strictly as a one-member List with only the RFC 9211
// parameters, and when Validate finds nothing to repair it round-trips exactly.
func FuzzStatus(f *testing.F) {
	f.Add("reel", true, "", 0, false, int64(3599), true, false, "", "")
	f.Add("CDN Company Here", false, "uri-miss", 200, true, int64(-1), true, true, `k"\`, "MEMORY")
	f.Add("", true, "stale", 304, false, int64(0), false, false, "é", "a b")
	f.Fuzz(func(t *testing.T, cache string, hit bool, fwd string, fwdStatus int, stored bool, ttlv int64, hasTTL, collapsed bool, key, detail string) {
		s := Status{Cache: cache, Hit: hit, Fwd: fwd, FwdStatus: fwdStatus, Stored: stored, Collapsed: collapsed, Key: key, Detail: detail}
		if hasTTL {
			s.TTL = ttl(int(ttlv))
		}
		out := s.String()
		ms, err := parseList(out)
		if err != nil || len(ms) != 1 {
			t.Fatalf("%+v → %q: %v (%d members)", s, out, err, len(ms))
		}
		for _, k := range ms[0].order {
			switch k {
			case "hit", "fwd", "fwd-status", "ttl", "stored", "collapsed", "key", "detail":
			default:
				t.Fatalf("%q: unknown parameter %q", out, k)
			}
		}
		if _, ok := ms[0].params["hit"]; ok && ms[0].params["fwd"] != nil {
			t.Fatalf("%q: hit and fwd together (RFC 9211 §2.1)", out)
		}
		if s.Validate() == nil {
			if back := fromMember(ms[0]); !equalStatus(back, s) {
				t.Fatalf("%+v → %q → %+v", s, out, back)
			}
		}
		h := http.Header{Header: {"up; hit"}}
		Append(h, s)
		if ms, err := parseList(h.Get(Header)); err != nil || len(ms) != 2 {
			t.Fatalf("Append: %q: %v", h.Get(Header), err)
		}
	})
}

func BenchmarkString(b *testing.B) {
	s := Status{Cache: "reel", Fwd: FwdURIMiss, FwdStatus: 200, Stored: true, TTL: ttl(60), Collapsed: true}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.String()
	}
}
