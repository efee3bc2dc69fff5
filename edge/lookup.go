package edge

import (
	"net/http"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
)

// lookupResult is what the store holds for a request.
type lookupResult struct {
	key  string
	vary []string       // the Vary lines stored for the URL (nil when nothing is stored)
	vk   string         // the request's secondary key under vary
	obj  *cached        // nil on a miss
	fwd  string         // uri-miss or vary-miss when obj is nil
	pol  policy.Options // the cache policy for this request (its rules' TTL applied)
}

// lookup is the fourth phase of the request flow: the request's cache key (cachekey, with
// the key settings of its rules), and what the tiers hold under it for the request's header
// (its Vary match), under its rules' cache policy.
func (e *Edge) lookup(r *http.Request, rl *ruling) lookupResult {
	return e.tiers.lookup(e.keyer.Key(r, rl.key), r.Header, rl.pol)
}

// lookup finds what is stored under key for a request with header h: memory first, then disk
// (a small disk object is promoted to memory on the way).
func (t *tiers) lookup(key string, h http.Header, pol policy.Options) lookupResult {
	res := lookupResult{key: key, fwd: cachestatus.FwdURIMiss, pol: pol}
	if entry, ok := t.mem.Lookup(res.key); ok {
		res.vary = entry.Vary
		if vk, ok := policy.VaryKey(entry.Vary, h); ok {
			res.vk = vk
			if o := entry.Variants[vk]; o != nil {
				res.obj = fromMemory(o)
				return res
			}
		}
		res.fwd = cachestatus.FwdVaryMiss
	}
	if t.disk == nil {
		return res
	}
	vary, variant, ok := t.disk.Lookup(res.key)
	if !ok {
		return res
	}
	res.vary = vary
	vk, ok := policy.VaryKey(vary, h)
	if !ok {
		res.fwd = cachestatus.FwdVaryMiss
		return res
	}
	res.vk = vk
	o := variant(vk)
	if o == nil {
		res.fwd = cachestatus.FwdVaryMiss
		return res
	}
	res.obj = fromDisk(o)
	t.promote(res, o)
	return res
}
