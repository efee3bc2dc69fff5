package edge

import (
	"net/http"
	"os"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
)

// lookupResult is what the store holds for a request.
type lookupResult struct {
	key  string
	vary []string       // the Vary lines stored for the URL (nil when nothing is stored)
	vk   string         // the request's secondary key under vary
	obj  *cached        // nil on a miss
	fwd  string         // uri-miss or vary-miss when obj is nil
	pol  policy.Options // the cache policy for this request's path (rule TTL applied)
}

func (e *Edge) lookup(r *http.Request, pol policy.Options) lookupResult {
	res := lookupResult{key: e.keyer.Key(r), fwd: cachestatus.FwdURIMiss, pol: pol}
	if entry, ok := e.mem.Lookup(res.key); ok {
		res.vary = entry.Vary
		if vk, ok := policy.VaryKey(entry.Vary, r.Header); ok {
			res.vk = vk
			if o := entry.Variants[vk]; o != nil {
				res.obj = fromMemory(o)
				return res
			}
		}
		res.fwd = cachestatus.FwdVaryMiss
	}
	if e.disk == nil {
		return res
	}
	vary, variant, ok := e.disk.Lookup(res.key)
	if !ok {
		return res
	}
	res.vary = vary
	vk, ok := policy.VaryKey(vary, r.Header)
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
	e.promote(res, o)
	return res
}

// promote copies a small disk object into the memory tier, where the next hits are cheaper.
func (e *Edge) promote(res lookupResult, o *store.DiskObject) {
	if !e.mem.Fits(o.Size) {
		return
	}
	data, err := os.ReadFile(o.Path())
	if err != nil || int64(len(data)) != o.Size {
		return
	}
	e.mem.Put(res.key, res.vary, res.vk, withFreshness(&store.Object{Status: o.Status, Header: o.Header,
		RequestTime: o.RequestTime, ResponseTime: o.ResponseTime, Body: data, Invalidated: o.Invalidated}, res.pol))
}
