package edge

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/edge/cachekey"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/rules"
)

// ruling is what the rules say about one request: each setting from the most specific
// matching rule that sets it, else its default. It is shared by every request matching the
// same rules, and never changed.
type ruling struct {
	first  int    // index in the configuration of the most specific matching rule; -1: none
	origin int    // index in the origins of the one a rule names; -1: the Host chooses
	strip  string // the prefix the origin is not sent ("": the whole path)
	bypass bool
	parent bool   // through the parents (when there are any)
	token  string // "required", "off", or "" (tokens.require decides)
	pol    policy.Options
	key    *cachekey.KeyRule
	// browserTTL, when not negative, is what clients are told (policy.BrowserTTL); -1: the
	// origin's Cache-Control as it is.
	browserTTL time.Duration
	// access is what access.go checks on every request (nil: nothing).
	access *access
	// compress is the rules' Compress: 1 on, -1 off, 0 unset (compression.off decides, compress.go).
	compress int8
	// client is what the client's own caching directives and origin-only preconditions do
	// (clientcc.go): honoured or forwarded, or taken out by keyedView.
	client clientDirectives
	// reqHeaders and respHeaders are the header rules to the origin and to clients
	// (headers.go), field by field from the most specific rule naming each; nil: none.
	reqHeaders, respHeaders *headerRules
}

// ruleResolver turns the rules a request matches into its ruling. Rulings are cached by the set of
// matching rules — few distinct sets in practice — so that a request costs one pass of the
// matcher and one map read.
type ruleResolver struct {
	set    *rules.Set
	rules  []Rule // as configured; the matcher returns indices into it
	byName map[string]int
	keyer  *cachekey.Keyer
	pol    policy.Options
	// client is cache.client_cache_control and cache.client_preconditions, the rules' defaults.
	client clientDirectives
	none   *ruling // no rule matches
	// limiters are the rules' rate limiters, by index (nil: none): one table of clients per
	// rule that sets rate_limit, shared by the rulings that inherit it.
	limiters []*rateLimiter
	// headers are the rules' header rules, compiled, by index (headers.go); reqHeaders: some
	// rule has request_headers.
	headers    []ruleHeaderOps
	reqHeaders bool

	cache atomic.Pointer[map[string]*ruling] // replaced whole when one is added
	mu    sync.Mutex                         // serialises additions
}

// maxRulings bounds the cache: rules with request conditions could, in theory, combine into
// many sets; past the bound a ruling is worked out for each request instead.
const maxRulings = 4096

func newRuleResolver(rs []Rule, byName map[string]int, keyer *cachekey.Keyer, pol policy.Options, client clientDirectives) (*ruleResolver, error) {
	ms := make([]rules.Match, len(rs))
	for i := range rs {
		ms[i] = rs[i].conditions()
	}
	set, err := rules.New(ms)
	if err != nil {
		return nil, err
	}
	res := &ruleResolver{set: set, rules: rs, byName: byName, keyer: keyer, pol: pol, client: client, limiters: newLimiters(rs)}
	res.cache.Store(&map[string]*ruling{})
	if res.headers, err = compileRuleHeaders(rs); err != nil {
		return nil, err
	}
	for i := range res.headers {
		res.reqHeaders = res.reqHeaders || len(res.headers[i].req) > 0
	}
	// Each rule's own key settings compile (globs, header names), so no merge of them fails.
	for i := range rs {
		if _, err := keyer.Compile(keyRule(&rs[i], cachekey.Rule{})); err != nil {
			return nil, fmt.Errorf("rules[%d]: %w", i, err)
		}
	}
	if res.none, err = res.merge(nil); err != nil {
		return nil, err
	}
	return res, nil
}

// forRequest is the ruling of a request for path (decoded, dot segments removed) at host
// (lower case, no port).
func (res *ruleResolver) forRequest(host, path, method string, h map[string][]string) *ruling {
	q := rules.Request{Host: host, Path: path, Method: method, Header: h}
	return res.lookup(&q)
}

// forURL is the ruling of the rules that look at the URL alone.
func (res *ruleResolver) forURL(host, path string) *ruling {
	q := rules.Request{Host: host, Path: path, URLOnly: true}
	return res.lookup(&q)
}

func (res *ruleResolver) lookup(q *rules.Request) *ruling {
	var buf [16]int
	matched := res.set.Match(q, buf[:0])
	if len(matched) == 0 {
		return res.none
	}
	var kb [64]byte
	k := kb[:0]
	for _, i := range matched {
		k = append(k, byte(i>>8), byte(i))
	}
	if rl := (*res.cache.Load())[string(k)]; rl != nil {
		return rl
	}
	rl, err := res.merge(matched)
	if err != nil {
		return res.none // unreachable: newResolver compiled every rule's key settings
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	old := *res.cache.Load()
	if len(old) < maxRulings {
		m := make(map[string]*ruling, len(old)+1)
		for key, v := range old {
			m[key] = v
		}
		m[string(k)] = rl
		res.cache.Store(&m)
	}
	return rl
}

// merge works out the ruling of the rules matched (indices, most specific first): each
// setting from the first of them that sets it.
func (res *ruleResolver) merge(matched []int) (*ruling, error) {
	rl := &ruling{first: -1, origin: -1, parent: true, pol: res.pol, browserTTL: -1, client: res.client}
	if len(matched) > 0 {
		rl.first = matched[0]
	}
	var originSet, bypassSet, parentSet, clientCCSet, clientPreSet bool
	var ttl time.Duration
	var key cachekey.Rule
	var keySet keySettings
	var ttls ttlSettings
	var acc accessSettings
	var hdrs headerSettings
	for _, i := range matched {
		r := &res.rules[i]
		if !originSet && r.Origin != "" {
			originSet, rl.origin = true, res.byName[r.Origin]
			if r.StripPrefix {
				rl.strip = r.prefix()
			}
		}
		if ttl == 0 {
			ttl = r.TTL
		}
		if !bypassSet && r.Bypass != nil {
			bypassSet, rl.bypass = true, *r.Bypass
		}
		if !parentSet && r.Parent != nil {
			parentSet, rl.parent = true, *r.Parent
		}
		if rl.token == "" {
			rl.token = r.Token
		}
		if !clientCCSet && r.ClientCacheControl != "" {
			clientCCSet, rl.client.honorCC = true, r.ClientCacheControl == clientCCHonor
		}
		if !clientPreSet && r.ClientPreconditions != "" {
			clientPreSet, rl.client.forwardPreconditions = true, r.ClientPreconditions == clientPreForward
		}
		if rl.compress == 0 && r.Compress != nil {
			rl.compress = -1
			if *r.Compress {
				rl.compress = 1
			}
		}
		keySet.take(r, &key)
		ttls.take(r, rl)
		acc.take(r, i, res.limiters)
		hdrs.take(&res.headers[i])
	}
	rl.reqHeaders, rl.respHeaders = hdrs.finish(rl.bypass, rl.first)
	ttls.finish(rl)
	rl.access = acc.finish()
	if ttl > 0 {
		rl.pol.TTL = ttl
	}
	var err error
	rl.key, err = res.keyer.Compile(key)
	return rl, err
}

// keySettings records which cache key settings a merge has taken already.
type keySettings struct{ include, exclude, headers, ignore, forward, cookies, device bool }

// take copies into key the key settings r sets that no more specific rule did.
func (s *keySettings) take(r *Rule, key *cachekey.Rule) {
	if !s.include && r.IncludeParams != nil {
		s.include, key.IncludeParams = true, r.IncludeParams
	}
	if !s.exclude && r.ExcludeParams != nil {
		s.exclude, key.ExcludeParams = true, r.ExcludeParams
	}
	if !s.headers && r.KeyHeaders != nil {
		s.headers, key.Headers = true, r.KeyHeaders
	}
	if !s.ignore && r.IgnoreQuery != nil {
		s.ignore, key.IgnoreQuery = true, *r.IgnoreQuery
	}
	if !s.forward && r.ForwardIgnoredParams != nil {
		s.forward, key.ForwardIgnored = true, *r.ForwardIgnoredParams
	}
	if !s.cookies && r.KeyCookies != nil {
		s.cookies, key.Cookies = true, r.KeyCookies
	}
	if !s.device && r.KeyDeviceClass != nil {
		s.device, key.DeviceClass = true, *r.KeyDeviceClass
	}
}

// keyRule is r's key settings over base.
func keyRule(r *Rule, base cachekey.Rule) cachekey.Rule {
	var s keySettings
	s.take(r, &base)
	return base
}
