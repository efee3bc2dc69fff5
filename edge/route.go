package edge

import (
	"net"
	"net/http"
	"strings"

	"github.com/reelvideo/reel/edge/policy"
)

// route picks the origin for a request's Host and the rule for its path.
func (e *Edge) route(r *http.Request) (*upstream, *Rule) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	up := e.origins[strings.TrimSuffix(host, ".")]
	if up == nil {
		up = e.origins["*"]
	}
	for i := range e.rules {
		if strings.HasPrefix(r.URL.Path, e.rules[i].PathPrefix) {
			return up, &e.rules[i]
		}
	}
	return up, nil
}

// policyFor is the cache policy for requests matching rule.
func (e *Edge) policyFor(rule *Rule) policy.Options {
	p := e.pol
	if rule != nil && rule.TTL > 0 {
		p.TTL = rule.TTL
	}
	return p
}
