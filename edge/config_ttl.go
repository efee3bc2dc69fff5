package edge

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// RuleTTLs are a rule's lifetime settings (policy.Options says how each acts; README "Cache
// policy" tells the whole story). Each comes from the most specific matching rule that sets
// it (resolve.go); DefaultTTL entry by entry, over cache.default_ttl, and MaxNegativeTTL over
// cache.max_negative_ttl. All but BrowserTTL change what is stored, so a rule with request
// conditions may not set them (shapesStored).
type RuleTTLs struct {
	// DefaultTTL is the lifetime, by status, of a response whose origin is silent (no max-age,
	// s-maxage or Expires): {200: 1h, 301: 1h, 302: 5m, 404: 5s}. An entry makes its status
	// storable without explicit freshness (302 and 307 too) and beats the Last-Modified
	// heuristic. Not for temporary errors (5xx, 408, 429), nor 206 or 304.
	DefaultTTL map[int]time.Duration `yaml:"default_ttl"`
	// MinTTL and MaxTTL clamp the lifetime of responses below 400 for the edge (0: none): the
	// origin's, the heuristic's or DefaultTTL's. min_ttl raises max-age=0 too, but never makes
	// no-cache, no-store or private responses reusable.
	MinTTL time.Duration `yaml:"min_ttl"`
	MaxTTL time.Duration `yaml:"max_ttl"`
	// MaxNegativeTTL caps the lifetime of 4xx responses (but 408 and 429, temporary errors
	// capped by cache.max_error_ttl) whatever the origin says: 0 stores them to be revalidated
	// every time.
	MaxNegativeTTL *time.Duration `yaml:"max_negative_ttl"`
	// BrowserTTL is what clients are told: the Cache-Control they receive says max-age = Age +
	// browser_ttl, and Expires goes; the edge keeps its own lifetime (policy.BrowserTTL says
	// what is left alone). It does not change what is stored, so any rule may set it.
	BrowserTTL *time.Duration `yaml:"browser_ttl"`
}

// check reports the first setting that can't work.
func (t *RuleTTLs) check() error {
	switch {
	case t.MinTTL < 0 || t.MaxTTL < 0:
		return errors.New("min_ttl and max_ttl must not be negative")
	case t.MinTTL > 0 && t.MaxTTL > 0 && t.MinTTL > t.MaxTTL:
		return fmt.Errorf("min_ttl (%v) is longer than max_ttl (%v)", t.MinTTL, t.MaxTTL)
	case t.MaxNegativeTTL != nil && *t.MaxNegativeTTL < 0:
		return errors.New("max_negative_ttl must not be negative")
	case t.BrowserTTL != nil && *t.BrowserTTL < 0:
		return errors.New("browser_ttl must not be negative")
	}
	return checkDefaultTTL("default_ttl", t.DefaultTTL, "max_negative_ttl", t.MaxNegativeTTL)
}

// checkDefaultTTL checks default_ttl entries (named key in messages) against the negative cap,
// when one is known here.
func checkDefaultTTL(key string, m map[int]time.Duration, capKey string, maxNegative *time.Duration) error {
	statuses := make([]int, 0, len(m))
	for s := range m {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	for _, s := range statuses {
		ttl := m[s]
		switch {
		case s < 200 || s > 599:
			return fmt.Errorf("%s: %d is not a final status", key, s)
		case s == http.StatusPartialContent || s == http.StatusNotModified:
			return fmt.Errorf("%s: %d is never stored as such (206: slices of the 200; 304: an update of what is stored)", key, s)
		case s >= 500 || s == http.StatusRequestTimeout || s == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %d is a temporary error: configuration alone never keeps it fresh (cache.max_error_ttl caps what the origin says)", key, s)
		case ttl < 0:
			return fmt.Errorf("%s: %d: the lifetime must not be negative", key, s)
		case s >= 400 && maxNegative != nil && ttl > *maxNegative:
			return fmt.Errorf("%s: %d: %v is longer than %s (%v), which caps it: lower it, or raise %s", key, s, ttl, capKey, *maxNegative, capKey)
		}
	}
	return nil
}

// checkTTLs checks the cache section's lifetime defaults, and folds error_ttl (the old name of
// default_ttl's 4xx entries) into default_ttl.
func (p *Policy) checkTTLs() error {
	switch {
	case p.MaxNegativeTTL < 0:
		return errors.New("cache.max_negative_ttl must not be negative")
	case p.MaxErrorTTL < 0:
		return errors.New("cache.max_error_ttl must not be negative")
	}
	for s, ttl := range p.ErrorTTL {
		if s < 400 || s > 499 {
			return fmt.Errorf("cache.error_ttl: %d: error_ttl is now cache.default_ttl, which takes 4xx entries (but 408 and 429) and others: move it there", s)
		}
		if ttl > p.MaxNegativeTTL {
			return fmt.Errorf("cache.error_ttl: %d: %v is longer than cache.max_negative_ttl (%v), which now caps it: lower it, or raise max_negative_ttl", s, ttl, p.MaxNegativeTTL)
		}
		if d, ok := p.DefaultTTL[s]; ok && d != ttl {
			return fmt.Errorf("cache.error_ttl and cache.default_ttl both give %d a lifetime: error_ttl is default_ttl's old name, keep one", s)
		}
		if p.DefaultTTL == nil {
			p.DefaultTTL = map[int]time.Duration{}
		}
		p.DefaultTTL[s] = ttl
	}
	p.ErrorTTL = nil
	return checkDefaultTTL("cache.default_ttl", p.DefaultTTL, "cache.max_negative_ttl", &p.MaxNegativeTTL)
}

// negativeOption is a max_negative_ttl as policy.Options takes it (there 0 means the default).
func negativeOption(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// ttlSettings records which lifetime settings a merge has taken already (resolve.go).
type ttlSettings struct {
	min, max, negative, browser bool
	defaults                    map[int]time.Duration // entries taken, then the result
}

// take copies into rl the lifetime settings r sets that no more specific rule did.
func (s *ttlSettings) take(r *Rule, rl *ruling) {
	if !s.min && r.MinTTL != 0 {
		s.min, rl.pol.MinTTL = true, r.MinTTL
	}
	if !s.max && r.MaxTTL != 0 {
		s.max, rl.pol.MaxTTL = true, r.MaxTTL
	}
	if !s.negative && r.MaxNegativeTTL != nil {
		s.negative, rl.pol.MaxNegativeTTL = true, negativeOption(*r.MaxNegativeTTL)
	}
	if !s.browser && r.BrowserTTL != nil {
		s.browser, rl.browserTTL = true, *r.BrowserTTL
	}
	for status, ttl := range r.DefaultTTL {
		if s.defaults == nil {
			s.defaults = map[int]time.Duration{}
		}
		if _, taken := s.defaults[status]; !taken {
			s.defaults[status] = ttl
		}
	}
}

// finish puts the default_ttl entries taken over the cache section's.
func (s *ttlSettings) finish(rl *ruling) {
	if s.defaults == nil {
		return
	}
	for status, ttl := range rl.pol.DefaultTTL {
		if _, taken := s.defaults[status]; !taken {
			s.defaults[status] = ttl
		}
	}
	rl.pol.DefaultTTL = s.defaults
}
