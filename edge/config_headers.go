package edge

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
	"gopkg.in/yaml.v3"
)

// RuleHeaders are a rule's header rules (headers.go; README "Header rules"): fields set, added
// or removed on the request sent upstream and on the response sent to clients.
//
// Inheritance is by field name: for each field, the most specific matching rule that names it
// (in set, add or remove) says what happens to it, and the other fields still come from less
// specific rules. A rule for / setting Strict-Transport-Security and one for /api/ setting
// Access-Control-Allow-Origin give /api/ requests both; /api/ drops the first with
// `remove: [Strict-Transport-Security]`. (nginx's add_header instead inherits only when a level
// sets none, and CloudFront replaces the whole policy per behavior: both make a path that adds
// one field lose every security header it inherited, a classic mistake.)
//
// Values may hold variables: {client_ip} (the TCP peer's address), {host} (the request's host
// as the cache key holds it: lower case, no trailing dot, no default port) and, in
// response_headers only, {cache_status} (how the cache answered, a Cache-Status token: hit,
// miss, uri-miss, vary-miss, stale, bypass, method, request, partial; none for the edge's own
// responses). "{{" is a literal "{"; "}" alone is literal. Quote such values in YAML:
// `X-Cache: "{cache_status}"` (unquoted braces are a YAML mapping).
type RuleHeaders struct {
	// RequestHeaders change the request to the origin (and to a parent, or a pool member: every
	// fill, revalidation, retry and bypassed request). What the origin sees shapes what is
	// stored for every client of a key, so a rule with request conditions (methods, headers,
	// cookies) may set them only with bypass: true, and {client_ip} only with bypass: true.
	RequestHeaders *HeaderRules `yaml:"request_headers"`
	// ResponseHeaders change what clients get, on the way out: hits, misses, 304s, ranges,
	// compressed copies, and the edge's own responses to routed requests (403, 429, 502, 504…);
	// never what is stored. Any rule may set them.
	ResponseHeaders *HeaderRules `yaml:"response_headers"`
}

// HeaderRules set, add and remove header fields. A field name appears in one of the three.
type HeaderRules struct {
	// Set replaces every field of the name with the value (or values: one field line each).
	Set map[string]HeaderValues `yaml:"set"`
	// Add appends the value (or values) after the fields of the name already there.
	Add map[string]HeaderValues `yaml:"add"`
	// Remove deletes every field of each name.
	Remove HeaderValues `yaml:"remove"`
}

// HeaderValues is one string or a list of them.
type HeaderValues []string

// UnmarshalYAML takes a scalar or a sequence of scalars.
func (v *HeaderValues) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*v = HeaderValues{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(HeaderValues, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: want a string (quote a value holding braces: \"{cache_status}\")", c.Line)
			}
			out = append(out, c.Value)
		}
		*v = out
		return nil
	case yaml.MappingNode:
		return fmt.Errorf("line %d: want a string or a list of strings; a value holding braces must be quoted: \"{cache_status}\"", n.Line)
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// headerSide is which message a header rule changes.
type headerSide int

const (
	requestSide headerSide = iota
	responseSide
)

func (s headerSide) key() string {
	if s == requestSide {
		return "request_headers"
	}
	return "response_headers"
}

// framingFields are fields no header rule may touch, on either side: hop-by-hop fields (RFC
// 9110 §7.6.1), which concern one connection and are the servers' to write, and the fields
// that say how the content is framed or coded, which the edge writes from what it sends
// (Content-Length of a range, the coding of a compressed copy).
var framingFields = map[string]string{
	"Connection": "hop-by-hop", "Proxy-Connection": "hop-by-hop", "Keep-Alive": "hop-by-hop",
	"Te": "hop-by-hop", "Trailer": "hop-by-hop", "Transfer-Encoding": "framing", "Upgrade": "hop-by-hop",
	"Proxy-Authenticate": "hop-by-hop", "Proxy-Authorization": "hop-by-hop",
	"Content-Length": "framing", "Content-Range": "framing", "Content-Encoding": "framing",
	"Host": "the origin's host_header says what the origin sees as Host",
}

// requestFields are the request fields the edge manages itself: Via and CDN-Loop break
// request loops between caches (admit.go), and the range and conditional fields are how the
// cache revalidates what it stores and fetches slices (fill.go, rangecache): a rule's value
// would make the origin answer another question than the one the cache asked.
var requestFields = map[string]string{
	"Via": "loop detection", "Cdn-Loop": "loop detection",
	"Range": "slices and revalidation", "If-Range": "slices and revalidation",
	"If-None-Match": "slices and revalidation", "If-Modified-Since": "slices and revalidation",
	"If-Match": "slices and revalidation", "If-Unmodified-Since": "slices and revalidation",
	"Expect": "the request body's framing",
}

// responseFields are the response fields a rule may not set or remove, and why:
//   - Age, Cache-Status and Via are each cache's own account of the response (RFC 9111 §5.1,
//     RFC 9211, RFC 9110 §7.6.3): a cache downstream computes freshness from Age, and Via
//     breaks loops; a constant would lie about every response.
//   - ETag and Last-Modified are the validators: the edge answers conditional requests and
//     ranges (If-Range) against the stored ones, and a compressed copy has its own ETag; a
//     constant one would make browsers and caches downstream revalidate one representation
//     against another's validator and keep a stale or wrong body as current.
//   - Date is the server's.
//   - Cache-Control and Expires: what clients are told of freshness is browser_ttl's
//     (policy.BrowserTTL, which keeps no-store and private as they are, and the edge's own
//     error responses no-store).
//   - Accept-Ranges: the edge answers ranges itself, whatever the origin does.
//   - Vary may only be added to (responseAddOnly): more fields in Vary make a cache downstream
//     key more narrowly, which is always safe (Vary: Origin beside a CORS rule); setting or
//     removing it could drop Accept-Encoding, and a downstream cache would hand a brotli body
//     to a client that can't read it.
var responseFields = map[string]string{
	"Age": "each cache's own account (RFC 9111 §5.1)", "Cache-Status": "each cache's own account (RFC 9211)",
	"Via": "each cache's own account, and loop detection", "Etag": "a validator the edge answers conditionals with",
	"Last-Modified": "a validator the edge answers conditionals with", "Date": "the server's",
	"Cache-Control": "what clients are told of freshness is browser_ttl's", "Expires": "what clients are told of freshness is browser_ttl's",
	"Accept-Ranges": "the edge answers ranges itself",
}

// responseAddOnly are the response fields a rule may add to but not set or remove.
var responseAddOnly = map[string]string{
	"Vary": "adding to Vary only narrows what caches downstream reuse; setting or removing it could drop Accept-Encoding and serve one coding for another",
}

// check compiles both sides' rules and reports the first that can't work; bypass is whether
// the rule bypasses the cache itself.
func (h *RuleHeaders) check(bypass bool) error {
	if h.RequestHeaders != nil {
		ops, err := h.RequestHeaders.compile(requestSide)
		if err != nil {
			return err
		}
		for _, op := range ops {
			if op.perClient() && !bypass {
				return fmt.Errorf("%s.%s.%s: {client_ip} differs per client, which the cache key doesn't hold: only a rule with bypass: true may send it to the origin (one client's address would be in the response every client gets)", requestSide.key(), op.kind, op.raw)
			}
		}
	}
	if h.ResponseHeaders != nil {
		if _, err := h.ResponseHeaders.compile(responseSide); err != nil {
			return err
		}
	}
	return nil
}

// compile turns the rules into ops, one per field name, in name order.
func (h *HeaderRules) compile(side headerSide) ([]headerOp, error) {
	var ops []headerOp
	seen := map[string]string{}
	add := func(kind opKind, raw string, vals []string) error {
		at := side.key() + "." + kind.String() + "." + raw
		if kind == opRemove {
			at = side.key() + ".remove: " + raw
		}
		if !httpguts.ValidHeaderFieldName(raw) {
			return fmt.Errorf("%s: %q is not a header field name", at, raw)
		}
		name := http.CanonicalHeaderKey(raw)
		if prev, ok := seen[name]; ok {
			return fmt.Errorf("%s: %s is named twice (in %s and %s): give it once", at, name, prev, kind)
		}
		seen[name] = kind.String()
		if why, ok := framingFields[name]; ok {
			return fmt.Errorf("%s: %s is not for rules (%s): the edge writes it from what it sends", at, raw, why)
		}
		if why, ok := requestFields[name]; ok && side == requestSide {
			return fmt.Errorf("%s: %s is the edge's own on upstream requests (%s)", at, raw, why)
		}
		if why, ok := responseFields[name]; ok && side == responseSide {
			return fmt.Errorf("%s: %s can't be set or removed by a rule (%s)", at, raw, why)
		}
		if why, ok := responseAddOnly[name]; ok && side == responseSide && kind != opAdd {
			return fmt.Errorf("%s: %s may only be added to (%s)", at, raw, why)
		}
		if kind != opRemove && len(vals) == 0 {
			return fmt.Errorf("%s: give a value", at)
		}
		op := headerOp{name: name, raw: raw, kind: kind}
		for _, v := range vals {
			t, err := parseTemplate(v, side)
			if err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
			op.vals = append(op.vals, t)
		}
		ops = append(ops, op)
		return nil
	}
	for _, m := range []struct {
		kind opKind
		m    map[string]HeaderValues
	}{{opSet, h.Set}, {opAdd, h.Add}} {
		names := make([]string, 0, len(m.m))
		for k := range m.m {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			if err := add(m.kind, k, m.m[k]); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range h.Remove {
		if err := add(opRemove, k, nil); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(ops, func(a, b headerOp) int { return strings.Compare(a.name, b.name) })
	return ops, nil
}

// parseTemplate parses a header value with variables: "{name}" is a variable, "{{" a literal
// "{", any other "}" is literal. Constant parts must be valid field value bytes (no CR, LF,
// NUL or other control bytes but tab).
func parseTemplate(s string, side headerSide) (template, error) {
	var t template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '{' {
			lit.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			lit.WriteByte('{')
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return t, fmt.Errorf("%q: a '{' opens a variable that is never closed (write a literal '{' as '{{')", s)
		}
		name := s[i+1 : i+end]
		v, ok := variables[name]
		switch {
		case !ok:
			return t, fmt.Errorf("%q: unknown variable {%s} (known: {client_ip}, {host}, {cache_status}; a literal '{' is written '{{')", s, name)
		case v == varCacheStatus && side == requestSide:
			return t, fmt.Errorf("%q: {cache_status} is known only on the way out: use it in response_headers", s)
		}
		flush()
		t.parts = append(t.parts, part{v: v})
		i += end
	}
	flush()
	for _, p := range t.parts {
		if p.v == varNone && !httpguts.ValidHeaderFieldValue(p.lit) {
			return t, fmt.Errorf("%q is not a valid field value (no CR, LF or other control bytes)", s)
		}
	}
	if len(t.parts) == 1 && t.parts[0].v == varNone {
		t.lit, t.parts = t.parts[0].lit, nil
	} else if len(t.parts) == 0 {
		t.parts = nil
	}
	return t, nil
}
