package edge

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RuleAccess are a rule's access settings (access.go; README "Access rules"): who may get what
// the rule matches, checked on every request before the cache (hits are refused too). Each
// comes from the most specific matching rule that sets it (resolve.go); a list set to []
// undoes a less specific rule's. They don't change what is stored, so rules with request
// conditions may set them.
type RuleAccess struct {
	// Referers allow-lists the Referer's host (hotlink protection): "example.com" is that host,
	// "*.example.com" any of its subdomains (not example.com itself: list both). Unset: any.
	Referers []string `yaml:"referers"`
	// AllowEmptyReferer lets requests without a Referer (or with an empty one) through when
	// Referers is set: players, apps and privacy settings often send none. Default true.
	AllowEmptyReferer *bool `yaml:"allow_empty_referer"`
	// AllowIPs and DenyIPs are CIDRs (or single addresses) of the client's address, the TCP
	// peer's: DenyIPs wins; with AllowIPs set, an address outside it is refused.
	AllowIPs []string `yaml:"allow_ips"`
	DenyIPs  []string `yaml:"deny_ips"`
	// AllowCountries and DenyCountries are ISO 3166-1 alpha-2 codes (FR, BE) looked up in
	// geoip.database; DenyCountries wins. An address the database doesn't place is let through
	// (as CloudFront's geo restriction does) unless DenyUnknownCountry.
	AllowCountries     []string `yaml:"allow_countries"`
	DenyCountries      []string `yaml:"deny_countries"`
	DenyUnknownCountry *bool    `yaml:"deny_unknown_country"`
	// RateLimit is a token bucket per client address (an IPv6 client: its /64) for the
	// requests the rule that sets it matches (its more specific rules share it): `{rate: 10/s,
	// burst: 20}`, or `off` to undo a less specific rule's.
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// GeoIP is the country database the rules' allow_countries and deny_countries look up.
type GeoIP struct {
	// Database is a MaxMind DB file (GeoLite2-Country, GeoIP2-Country or City, or any with
	// country.iso_code), read at start.
	Database string `yaml:"database"`
}

// RateLimit is a token bucket: Rate requests a second on average, Burst at once.
type RateLimit struct {
	// Rate is "N/s", "N/m" or "N/h" (N may have a fraction: 0.5/s).
	Rate string `yaml:"rate"`
	// Burst is how many requests a client may make at once (the bucket's size); default:
	// one second's worth of Rate, at least 1.
	Burst int `yaml:"burst"`
	// MaxClients bounds the clients tracked per rule (default 65536): past it, the least
	// recently seen one is forgotten.
	MaxClients int `yaml:"max_clients"`

	off      bool
	perSec   float64 // Rate, parsed by check
	maxBurst float64
}

// UnmarshalYAML takes `off` or a mapping.
func (l *RateLimit) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "off" {
			return fmt.Errorf("line %d: rate_limit: want off or {rate: 10/s, burst: 20}", n.Line)
		}
		l.off = true
		return nil
	}
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "rate" && k != "burst" && k != "max_clients" {
			return fmt.Errorf("line %d: field %s not found in rate_limit (rate, burst, max_clients)", n.Content[i].Line, k)
		}
	}
	type plain RateLimit
	return n.Decode((*plain)(l))
}

// defaultMaxClients bounds a rate limit's table of clients.
const defaultMaxClients = 65536

// parseRate parses "10/s", "600/m", "0.5/s" into requests per second.
func parseRate(s string) (float64, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	}
	if !ok || err != nil || per == 0 || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("rate_limit.rate %q: want requests per second, minute or hour (10/s, 600/m)", s)
	}
	return f / per.Seconds(), nil
}

// check reports the first access setting that can't work, and parses the rate limit.
func (a *RuleAccess) check() error {
	for _, ref := range a.Referers {
		if _, err := refererPattern(ref); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"allow_ips", a.AllowIPs}, {"deny_ips", a.DenyIPs}} {
		if _, err := parsePrefixes(l.key, l.list); err != nil {
			return err
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"allow_countries", a.AllowCountries}, {"deny_countries", a.DenyCountries}} {
		for _, c := range l.list {
			if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
				return fmt.Errorf("%s: %q is not an ISO 3166-1 alpha-2 code (two capital letters: FR, BE)", l.key, c)
			}
		}
	}
	if l := a.RateLimit; l != nil && !l.off {
		r, err := parseRate(l.Rate)
		if err != nil {
			return err
		}
		switch {
		case l.Burst < 0:
			return fmt.Errorf("rate_limit.burst %d: want 1 or more", l.Burst)
		case l.MaxClients < 0:
			return fmt.Errorf("rate_limit.max_clients %d: want 1 or more", l.MaxClients)
		}
		l.perSec, l.maxBurst = r, float64(l.Burst)
		if l.Burst == 0 {
			l.maxBurst = math.Max(1, math.Ceil(r))
		}
	}
	return nil
}

// usesCountries reports whether the settings need geoip.database.
func (a *RuleAccess) usesCountries() bool {
	return len(a.AllowCountries) > 0 || len(a.DenyCountries) > 0 || (a.DenyUnknownCountry != nil && *a.DenyUnknownCountry)
}

// refererPattern is a referers entry as matched against a Referer's host: the lower-case host,
// or ".example.com" for "*.example.com".
func refererPattern(s string) (string, error) {
	p := strings.ToLower(strings.TrimSuffix(s, "."))
	host := strings.TrimPrefix(p, "*.")
	if host == "" || strings.ContainsAny(host, "*/:@ ") {
		return "", fmt.Errorf("referers: %q: want a host (example.com) or *.host (any subdomain)", s)
	}
	if host != p {
		return "." + host, nil
	}
	return p, nil
}

// parsePrefixes parses CIDRs and single addresses.
func parsePrefixes(key string, list []string) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, err2 := netip.ParseAddr(s)
			if err2 != nil {
				return nil, fmt.Errorf("%s: %q is not a CIDR (10.0.0.0/8, 2001:db8::/32) or an address", key, s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
		}
		ps = append(ps, p.Masked())
	}
	return ps, nil
}

// checkAccess checks the rules' access settings against the geoip section.
func (c *Config) checkAccess() error {
	for i := range c.Rules {
		if c.Rules[i].usesCountries() && c.GeoIP.Database == "" {
			return fmt.Errorf("rules[%d]: allow_countries, deny_countries and deny_unknown_country need geoip.database (a MaxMind DB file)", i)
		}
	}
	if c.GeoIP.Database != "" && strings.TrimSpace(c.GeoIP.Database) == "" {
		return errors.New("geoip.database: want a file")
	}
	return nil
}
