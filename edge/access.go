package edge

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// access is a ruling's access settings (Rule.RuleAccess, merged by resolve.go), checked by
// checkAccess on every request right after route and the token check, before the cache: a
// refused request is answered here, hit or not. A ruling without any has none (nil), and the
// request flow then costs one nil check.
type access struct {
	referers          []string // refererPattern's; nil: any Referer
	allowEmptyReferer bool
	allowIPs, denyIPs []netip.Prefix // allowIPs nil: any address
	allowCountries    []string       // nil: any country
	denyCountries     []string
	denyUnknown       bool
	limit             *rateLimiter // nil: none
}

// Values of the reason label of reel_edge_access_refused_total, each with its status and the
// one line the client is told.
const (
	refusedReferer = iota
	refusedIP
	refusedCountry
	refusedRate
)

var accessRefusals = [...]struct {
	label, reason string
	status        int
}{
	refusedReferer: {"referer", "referer not allowed", http.StatusForbidden},
	refusedIP:      {"ip", "client address not allowed", http.StatusForbidden},
	refusedCountry: {"country", "country not allowed", http.StatusForbidden},
	refusedRate:    {"rate", "rate limit exceeded", http.StatusTooManyRequests},
}

// refuseAccess is the access step of the request flow: it answers a request its ruling's
// access settings refuse (403, or 429 with Retry-After) and reports whether it did. The cheap
// checks go first, and the rate limit last, so that requests refused otherwise take no token.
func (e *Edge) refuseAccess(w http.ResponseWriter, r *http.Request, a *access) bool {
	// Without its zone (a link-local peer's %eth0): a zoned address is in no prefix, and
	// would slip past deny_ips.
	addr := clientAddr(r).WithZone("")
	refused := -1
	var retry time.Duration
	switch {
	case !a.addressAllowed(addr):
		refused = refusedIP
	case !a.countryAllowed(e.geo, addr):
		refused = refusedCountry
	case !a.refererAllowed(r.Header["Referer"]):
		refused = refusedReferer
	case a.limit != nil:
		if retry = a.limit.take(addr, e.now()); retry > 0 {
			refused = refusedRate
		}
	}
	if refused < 0 {
		return false
	}
	ref := accessRefusals[refused]
	e.m.accessRefused[refused].Inc()
	if refused == refusedRate {
		secs := int64(math.Ceil(retry.Seconds()))
		httpError(w, ref.status, ref.reason, "Retry-After", strconv.FormatInt(max(1, secs), 10))
	} else {
		httpError(w, ref.status, ref.reason)
	}
	return true
}

// addressAllowed: not in deny_ips, and in allow_ips when it is set. An address the edge can't
// tell is in no list.
func (a *access) addressAllowed(addr netip.Addr) bool {
	for _, p := range a.denyIPs {
		if p.Contains(addr) {
			return false
		}
	}
	if a.allowIPs == nil {
		return true
	}
	for _, p := range a.allowIPs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// countryAllowed looks addr up when the settings name countries: not in deny_countries, and in
// allow_countries when it is set; an address the database doesn't place passes unless
// deny_unknown_country.
func (a *access) countryAllowed(geo *maxminddb.Reader, addr netip.Addr) bool {
	if a.allowCountries == nil && a.denyCountries == nil && !a.denyUnknown {
		return true
	}
	c := country(geo, addr)
	switch {
	case c == "":
		return !a.denyUnknown
	case slices.Contains(a.denyCountries, c):
		return false
	}
	return a.allowCountries == nil || slices.Contains(a.allowCountries, c)
}

// country is addr's country code in geo: country.iso_code, else registered_country.iso_code
// (anycast and satellite networks often have that one only); "" when it has neither.
func country(geo *maxminddb.Reader, addr netip.Addr) string {
	if geo == nil || !addr.IsValid() {
		return ""
	}
	res := geo.Lookup(addr)
	if !res.Found() {
		return ""
	}
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
		Registered struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"registered_country"`
	}
	if res.Decode(&rec) != nil {
		return ""
	}
	if rec.Country.ISOCode != "" {
		return strings.ToUpper(rec.Country.ISOCode)
	}
	return strings.ToUpper(rec.Registered.ISOCode)
}

// refererAllowed checks the Referer's host against referers: an exact host, or a subdomain of
// a "*." entry. No Referer (or an empty one) passes when allow_empty_referer; one whose host
// can't be told (not an absolute URL) never does.
func (a *access) refererAllowed(ref []string) bool {
	if a.referers == nil {
		return true
	}
	if len(ref) == 0 || strings.TrimSpace(ref[0]) == "" {
		return a.allowEmptyReferer
	}
	u, err := url.Parse(strings.TrimSpace(ref[0]))
	if err != nil {
		return false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return false
	}
	for _, p := range a.referers {
		if p == host || (p[0] == '.' && strings.HasSuffix(host, p)) {
			return true
		}
	}
	return false
}

// accessSettings records which access settings a merge has taken already (resolve.go).
type accessSettings struct {
	referers, empty, allowIPs, denyIPs, allowC, denyC, unknown, limit bool
	a                                                                 access
}

// take copies the access settings r (rules[i]) sets that no more specific rule did; limiters
// are the rules' rate limiters, by index.
func (s *accessSettings) take(r *Rule, i int, limiters []*rateLimiter) {
	if !s.referers && r.Referers != nil {
		s.referers = true
		s.a.referers = make([]string, 0, len(r.Referers))
		for _, ref := range r.Referers {
			p, _ := refererPattern(ref) // checked by Rule.check
			s.a.referers = append(s.a.referers, p)
		}
	}
	if !s.empty && r.AllowEmptyReferer != nil {
		s.empty, s.a.allowEmptyReferer = true, *r.AllowEmptyReferer
	}
	if !s.allowIPs && r.AllowIPs != nil {
		s.allowIPs = true
		s.a.allowIPs, _ = parsePrefixes("allow_ips", r.AllowIPs)
	}
	if !s.denyIPs && r.DenyIPs != nil {
		s.denyIPs = true
		s.a.denyIPs, _ = parsePrefixes("deny_ips", r.DenyIPs)
	}
	if !s.allowC && r.AllowCountries != nil {
		s.allowC, s.a.allowCountries = true, r.AllowCountries
	}
	if !s.denyC && r.DenyCountries != nil {
		s.denyC, s.a.denyCountries = true, r.DenyCountries
	}
	if !s.unknown && r.DenyUnknownCountry != nil {
		s.unknown, s.a.denyUnknown = true, *r.DenyUnknownCountry
	}
	if !s.limit && r.RateLimit != nil {
		s.limit, s.a.limit = true, limiters[i]
	}
}

// finish gives the ruling's access settings: nil when they check nothing.
func (s *accessSettings) finish() *access {
	if !s.empty {
		s.a.allowEmptyReferer = true
	}
	a := s.a
	// An empty list undoes a less specific rule's: [] referers or allow lists allow any.
	if len(a.referers) == 0 {
		a.referers = nil
	}
	if len(a.allowIPs) == 0 {
		a.allowIPs = nil
	}
	if len(a.allowCountries) == 0 {
		a.allowCountries = nil
	}
	if len(a.denyIPs) == 0 {
		a.denyIPs = nil
	}
	if len(a.denyCountries) == 0 {
		a.denyCountries = nil
	}
	if a.referers == nil && a.allowIPs == nil && a.denyIPs == nil && a.allowCountries == nil &&
		a.denyCountries == nil && !a.denyUnknown && a.limit == nil {
		return nil
	}
	return &a
}

// newLimiters makes each rule's rate limiter (nil for a rule without one, or with off).
func newLimiters(rs []Rule) []*rateLimiter {
	ls := make([]*rateLimiter, len(rs))
	for i := range rs {
		if l := rs[i].RateLimit; l != nil && !l.off {
			ls[i] = newRateLimiter(l.perSec, l.maxBurst, cmp.Or(l.MaxClients, defaultMaxClients))
		}
	}
	return ls
}

// openGeoIP opens geoip.database (nil when there is none).
func openGeoIP(g GeoIP) (*maxminddb.Reader, error) {
	if g.Database == "" {
		return nil, nil
	}
	db, err := maxminddb.Open(g.Database)
	if err != nil {
		return nil, fmt.Errorf("geoip.database: %w", err)
	}
	return db, nil
}
