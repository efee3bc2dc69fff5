package edge

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/reelvideo/reel/edge/cachekey"
	"github.com/reelvideo/reel/edge/policy"
)

// routes is the routing part of a validated configuration: which rule applies to a request
// and which origin it goes to. One matcher (the rules, longest path prefix first) chooses
// both, the origin being one of a rule's actions (Rule.Origin) with the Host as the fallback:
// when the rules learn to match more (hosts, globs, methods), the origin choice follows.
type routes struct {
	rules  []Rule         // longest PathPrefix first
	byHost map[string]int // index in the origins of each Origin.Host ("*": any host)
	byName map[string]int // index in the origins of each Origin.Name
	// owner[i] is the index in rules of the rule whose Origin rules[i] goes by: itself, or
	// the next shorter matching rule naming one; -1 when none does (the Host chooses).
	owner []int
}

// choice is where a request goes.
type choice struct {
	rule   int    // index in routes.rules of the most specific matching rule; -1: none
	origin int    // index in the origins; -1: none is configured for the request
	strip  string // the path prefix the origin is not sent ("": the whole path)
}

// newRoutes orders the rules of a validated configuration and indexes its origins.
func newRoutes(origins []Origin, rules []Rule) routes {
	rt := routes{rules: append([]Rule(nil), rules...), byHost: map[string]int{}, byName: map[string]int{}}
	// Longest prefix first, so the first match is the most specific rule (stable: validated
	// prefixes are distinct anyway).
	for i := 1; i < len(rt.rules); i++ {
		for j := i; j > 0 && len(rt.rules[j].PathPrefix) > len(rt.rules[j-1].PathPrefix); j-- {
			rt.rules[j], rt.rules[j-1] = rt.rules[j-1], rt.rules[j]
		}
	}
	for i, o := range origins {
		if o.Host != "" {
			rt.byHost[o.Host] = i
		}
		if o.Name != "" {
			rt.byName[o.Name] = i
		}
	}
	rt.owner = make([]int, len(rt.rules))
	for i := range rt.rules {
		rt.owner[i] = -1
		// The shorter rules that match every path rules[i] matches come after it.
		for j := i; j < len(rt.rules); j++ {
			if rt.rules[j].Origin != "" && strings.HasPrefix(rt.rules[i].PathPrefix, rt.rules[j].PathPrefix) {
				rt.owner[i] = j
				break
			}
		}
	}
	return rt
}

// choose routes a request for path at host (lower case, without port or trailing dot): the
// most specific rule whose prefix the path starts with; the origin named by it or by the next
// shorter matching rule naming one, with that rule's prefix to strip if it says so; else the
// origin of the exact host; else the "*" origin.
func (rt *routes) choose(host, path string) choice {
	c := choice{rule: -1, origin: -1}
	for i := range rt.rules {
		if strings.HasPrefix(path, rt.rules[i].PathPrefix) {
			c.rule = i
			break
		}
	}
	if c.rule >= 0 {
		if o := rt.owner[c.rule]; o >= 0 {
			c.origin = rt.byName[rt.rules[o].Origin]
			if rt.rules[o].StripPrefix {
				c.strip = rt.rules[o].PathPrefix
			}
			return c
		}
	}
	if i, ok := rt.byHost[host]; ok {
		c.origin = i
	} else if i, ok := rt.byHost["*"]; ok {
		c.origin = i
	}
	return c
}

// requestHost is r's host as routes.choose wants it.
func requestHost(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(host, ".")
}

// route picks the origin and the rule for a request (nil when none): its upstream strips the
// prefix its rule says (upstream.strip).
func (e *Edge) route(r *http.Request) (*upstream, *Rule) {
	c := e.routes.choose(requestHost(r), routePath(r))
	var up *upstream
	if c.origin >= 0 {
		up = e.upstreams[c.origin]
		if c.strip != "" {
			up = e.stripping[stripKey{c.origin, c.strip}]
		}
	}
	if c.rule < 0 {
		return up, nil
	}
	return up, &e.routes.rules[c.rule]
}

// stripKey names an origin's upstream that strips a prefix.
type stripKey struct {
	origin int
	prefix string
}

// stripped is up for a rule that strips prefix: the same connection pools and settings,
// sending paths without the prefix.
func (up *upstream) stripped(prefix string) *upstream {
	s := *up
	s.strip = prefix
	s.stripEscaped = (&url.URL{Path: prefix}).EscapedPath()
	return &s
}

// originPath is the path (escaped, dot segments removed) to send up for the client's path p
// (escaped, normalised): without the prefix up strips, if any.
func (up *upstream) originPath(p string) string {
	if up.strip == "" {
		return p
	}
	if rest, ok := strings.CutPrefix(p, up.stripEscaped); ok {
		return "/" + rest
	}
	// The client escaped some of the prefix's characters that need no escaping: the route
	// matched the decoded path, so cut there and escape the rest again.
	if d, err := url.PathUnescape(p); err == nil {
		if rest, ok := strings.CutPrefix(d, up.strip); ok {
			return (&url.URL{Path: "/" + rest}).EscapedPath()
		}
	}
	return p
}

// routePath is the path r is routed by: the one its cache key and its origin request see,
// dot segments removed, so that /vod/../live/x can't go to one origin and be stored under
// another's key.
func routePath(r *http.Request) string {
	p := r.URL.Path
	if strings.Contains(p, "/.") {
		if d, err := url.PathUnescape(cachekey.NormalizePath(r.URL.EscapedPath())); err == nil {
			p = d
		}
	}
	return p
}

// policyFor is the cache policy for requests matching rule.
func (e *Edge) policyFor(rule *Rule) policy.Options {
	p := e.pol
	if rule != nil && rule.TTL > 0 {
		p.TTL = rule.TTL
	}
	return p
}
