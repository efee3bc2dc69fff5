package edge

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/reelvideo/reel/edge/cachekey"
	"github.com/reelvideo/reel/edge/policy"
)

// routes is the routing part of a validated configuration: the rules (resolve.go chooses
// which apply to a request and what they say) and the origins they and the Host choose from.
type routes struct {
	rules  *ruleResolver
	byHost map[string]int // index in the origins of each Origin.Host ("*": any host)
	byName map[string]int // index in the origins of each Origin.Name
}

// newRoutes indexes the origins of a validated configuration and compiles its rules.
func newRoutes(origins []Origin, rs []Rule, keyer *cachekey.Keyer, pol policy.Options, client clientDirectives) (routes, error) {
	rt := routes{byHost: map[string]int{}, byName: map[string]int{}}
	for i, o := range origins {
		if o.Host != "" {
			rt.byHost[o.Host] = i
		}
		if o.Name != "" {
			rt.byName[o.Name] = i
		}
	}
	var err error
	rt.rules, err = newRuleResolver(rs, rt.byName, keyer, pol, client)
	return rt, err
}

// originFor is the origin a request for host goes to under rl: the one its rules name, else
// the exact host's, else the "*" one; -1 when none is configured.
func (rt *routes) originFor(host string, rl *ruling) int {
	if rl.origin >= 0 {
		return rl.origin
	}
	if i, ok := rt.byHost[host]; ok {
		return i
	}
	if i, ok := rt.byHost["*"]; ok {
		return i
	}
	return -1
}

// requestHost is r's host as routes.choose wants it.
func requestHost(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(host, ".")
}

// route picks the origin and the rules' settings for a request: its upstream strips the prefix
// its rules say (upstream.strip); nil when no origin is configured for it.
func (e *Edge) route(r *http.Request) (*upstream, *ruling) {
	host := requestHost(r)
	rt := e.rt() // once: a reload swaps it whole (reload.go)
	rl := rt.routes.rules.forRequest(host, routePath(r), r.Method, r.Header)
	i := rt.routes.originFor(host, rl)
	if i < 0 {
		return nil, rl
	}
	if rl.strip != "" {
		return rt.stripping[stripKey{i, rl.strip}], rl
	}
	return rt.upstreams[i], rl
}

// rulingFor is what the rules say about r, for the phases that have r but not route's answer
// (the shield tier's choice, the query forwarded): the same cached answer route had.
func (e *Edge) rulingFor(r *http.Request) *ruling {
	return e.rt().routes.rules.forRequest(requestHost(r), routePath(r), r.Method, r.Header)
}

// rulingForURL is what the rules that look at the URL alone say about u (absolute): enough for
// its cache key, which only such rules set (purges, invalidations, live prefetch).
func (e *Edge) rulingForURL(u *url.URL) *ruling {
	host := strings.ToLower(u.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	p := u.Path
	if strings.Contains(p, "/.") {
		if d, err := url.PathUnescape(cachekey.NormalizePath(u.EscapedPath())); err == nil {
			p = d
		}
	}
	return e.rt().routes.rules.forURL(strings.TrimSuffix(host, "."), p)
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

// keyOf is r's cache key, under the key settings of its rules.
func (e *Edge) keyOf(r *http.Request) string { return e.keyer.Key(r, e.rulingFor(r).key) }

// keyOfURL is the cache key of a request for u (absolute) with header h (nil: none).
func (e *Edge) keyOfURL(u *url.URL, h http.Header) string {
	return e.keyer.KeyURL(u, h, e.rulingForURL(u).key)
}
