package edge

import (
	"hash/fnv"
	"os"
	"sync/atomic"

	"github.com/reelvideo/reel/edge/store"
)

// persist writes a memory-tier object through to the disk tier, so that it survives a restart.
func (e *Edge) persist(obj *store.DiskObject, data []byte) {
	if e.disk == nil {
		return
	}
	room := e.disk.Reserve(int64(len(data)))
	if room == nil {
		return
	}
	defer room.Release()
	f, err := e.disk.TempFile()
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
		e.log.Warn("disk tier: storing a body", "key", obj.Primary, "err", err)
	}
}

// invalidate forgets every variant of primary in both tiers.
func (e *Edge) invalidate(primary string) bool {
	e.gen(primary).Add(1)
	found := e.mem.Invalidate(primary)
	if e.disk != nil && e.disk.Invalidate(primary) {
		found = true
	}
	return found
}

func (e *Edge) gen(key string) *atomic.Uint64 {
	return &e.gens[fnv32(key)%uint32(len(e.gens))]
}

func fnv32(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}
