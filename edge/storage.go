package edge

import (
	"hash/fnv"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/reelvideo/reel/edge/store"
)

// tiers is the edge's storage: the memory tier, the disk tier (nil without a cache folder),
// the invalidation counts that keep a fill begun before a purge from storing what it fetched,
// and the surrogate-key index of what is stored. A request's lookup walks the tiers (lookup.go);
// fills store into them (fill.go, sliced.go); purges and unsafe methods invalidate them. A new
// storage tier goes here.
type tiers struct {
	mem  *store.Memory
	disk *store.Disk // nil without a cache folder
	tags *tagIndex
	log  *slog.Logger
	// gens counts invalidations per key (hashed into a fixed table): a fill that started
	// before a purge or an unsafe method must not store the response it fetched.
	gens [4096]atomic.Uint64
}

// freshVariant reports whether some variant of key is stored and fresh for a plain request
// (the disk tier's: stored at all).
func (t *tiers) freshVariant(key string, now time.Time) bool {
	if entry, ok := t.mem.Lookup(key); ok {
		for _, o := range entry.Variants {
			if now.Before(o.FreshUntil) {
				return true
			}
		}
	}
	if t.disk != nil {
		if _, _, ok := t.disk.Lookup(key); ok {
			return true
		}
	}
	return false
}

// persist writes a memory-tier object through to the disk tier, so that it survives a restart.
func (t *tiers) persist(obj *store.DiskObject, data []byte) {
	if t.disk == nil {
		return
	}
	room := t.disk.Reserve(int64(len(data)))
	if room == nil {
		return
	}
	defer room.Release()
	f, err := t.disk.TempFile()
	if err != nil {
		return
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if err := room.Commit(f.Name(), obj); err != nil {
		t.log.Warn("disk tier: storing a body", "key", obj.Primary, "err", err)
	}
}

// invalidate forgets every variant of primary in both tiers.
func (t *tiers) invalidate(primary string) bool {
	t.gen(primary).Add(1)
	found := t.mem.Invalidate(primary)
	if t.disk != nil && t.disk.Invalidate(primary) {
		found = true
	}
	return found
}

func (t *tiers) gen(key string) *atomic.Uint64 {
	return &t.gens[fnv32(key)%uint32(len(t.gens))]
}

func fnv32(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}

// promote copies a small disk object into the memory tier, where the next hits are cheaper.
func (t *tiers) promote(res lookupResult, o *store.DiskObject) {
	if !t.mem.Fits(o.Size) {
		return
	}
	data, err := os.ReadFile(o.Path())
	if err != nil || int64(len(data)) != o.Size {
		return
	}
	t.mem.Put(res.key, res.vary, res.vk, withFreshness(&store.Object{Status: o.Status, Header: o.Header,
		RequestTime: o.RequestTime, ResponseTime: o.ResponseTime, Body: data, Invalidated: o.Invalidated}, res.pol))
}

// diskObject loads a small internal object (slice meta, slice) from the disk tier.
func (t *tiers) diskObject(primary, vk string, withBody bool) *store.Object {
	if t.disk == nil {
		return nil
	}
	_, variant, ok := t.disk.Lookup(primary)
	if !ok {
		return nil
	}
	d := variant(vk)
	if d == nil {
		return nil
	}
	o := &store.Object{Status: d.Status, Header: d.Header, RequestTime: d.RequestTime, ResponseTime: d.ResponseTime}
	if withBody {
		data, err := os.ReadFile(d.Path())
		if err != nil || int64(len(data)) != d.Size {
			return nil
		}
		o.Body = data
	}
	return o
}
