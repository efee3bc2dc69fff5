package edge

import (
	"net/http"
	"strings"
	"time"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
)

// verdict is what the decide phase makes of a request and what the cache holds for it.
type verdict uint8

const (
	// verdictFresh: a hit, fresh by the object's precomputed freshness (the hot path: no
	// header is evaluated).
	verdictFresh verdict = iota
	// verdictHit: a hit, fresh or a stale one the request accepts (max-stale).
	verdictHit
	// verdictStaleRefresh: a stale hit served while one background request refreshes it
	// (stale-while-revalidate, RFC 5861 §3).
	verdictStaleRefresh
	// verdictRevalidate: the stored object is validated with the origin before it is
	// served (stale, soft-purged, or the request's no-cache or max-age).
	verdictRevalidate
	// verdictFill: nothing stored the request may use: join or start the key's fill.
	verdictFill
	// verdictRefuse: only-if-cached, and nothing usable is stored: 504 (RFC 9111 §5.2.1.7).
	verdictRefuse
)

// decision is the decide phase's result.
type decision struct {
	verdict  verdict
	age, ttl time.Duration // verdictFresh: the object's current age and remaining lifetime
	fwd      string        // verdictRevalidate, verdictFill: the Cache-Status forward reason
	reason   string        // verdictRefuse: the reason sent with the 504
}

// decide is the fifth phase of the request flow: whether a request is answered from what the
// lookup found (res.obj, nil when nothing is stored for it) at now, under the lookup's cache
// policy — or goes upstream, and why (RFC 9111 §4.2 freshness, §5.2.1 request directives,
// RFC 5861 stale extensions). It reads nothing else: no store, no clock, no configuration.
func decide(r *http.Request, res *lookupResult, now time.Time) decision {
	obj, pol := res.obj, res.pol
	if obj == nil {
		if onlyIfCached(r.Header) {
			return decision{verdict: verdictRefuse, reason: "not in cache (only-if-cached)"}
		}
		return decision{verdict: verdictFill, fwd: res.fwd}
	}
	if age, ttl, ok := obj.quickFresh(r, now); ok {
		return decision{verdict: verdictFresh, age: age, ttl: ttl}
	}
	v := policy.Reuse(r, obj.stored(), now, pol)
	if obj.invalidated && v != policy.GatewayTimeout {
		v = policy.Revalidate // soft-purged
	}
	switch v {
	case policy.Fresh, policy.StaleAllowed:
		return decision{verdict: verdictHit}
	case policy.StaleWhileRevalidate:
		return decision{verdict: verdictStaleRefresh}
	case policy.GatewayTimeout:
		return decision{verdict: verdictRefuse, reason: "stored response is stale (only-if-cached)"}
	case policy.RevalidateRequest:
		return decision{verdict: verdictRevalidate, fwd: cachestatus.FwdRequest}
	default: // policy.Revalidate
		return decision{verdict: verdictRevalidate, fwd: cachestatus.FwdStale}
	}
}

// onlyIfCached reports whether a request's header carries Cache-Control: only-if-cached.
func onlyIfCached(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "only-if-cached") {
				return true
			}
		}
	}
	return false
}
