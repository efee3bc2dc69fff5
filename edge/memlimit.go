package edge

import (
	"os"
	"runtime/debug"
	"time"

	"github.com/reelvideo/reel/edge/store"
)

// The Go memory limit (runtime/debug.SetMemoryLimit) that `reel edge` sets from the tiers:
//
//	limit = memory + max(memory/8, 12 MiB) [+ store.DiskIndexMemory with a disk tier]
//
// Without it the garbage collector lets the heap grow to twice what is live (GOGC=100), and a
// full memory tier is nearly all of what is live: RSS reached 2.5× --memory. With it, the
// collector runs as the heap nears the limit instead. The tier's weight counts what its
// objects cost the heap (store.Object.Size); the budget beside it is for everything else:
// fills and connection buffers in flight, the runtime, and — with a disk tier — badger's
// bounded memtables and caches. What the limit does not cover is the binary itself (22–25 MiB
// of resident code and data on amd64 in December 2026; 18 MiB a year before: it grows with the
// code), so RSS ≈ limit + 25 MiB: ≤ 1.5× --memory from 80 MiB up (TestEdgeMemoryBound). Below
// that the binary is too large a share: at 64 MiB RSS is 1.45–1.50×. The disk tier's
// in-memory index (about 1.5 KiB an object, store.Disk.IndexMemory) grows with what the disk
// holds, not with --memory: FollowDiskIndex adds it as it changes.
// The limit is soft: a burst of large fills may pass it for a while (the
// collector then works harder; it never fails an allocation).
const (
	memoryBudgetMin      = 12 << 20
	memoryBudgetFraction = 8
)

// --memory bounds the cache's bodies in memory: the memory tier's and those of the fills in
// flight, together. The fills get fillMemoryFraction of it and the tier the rest. (When the
// tier had all of --memory and fills came on top, a full tier plus four 1 MB fills left the
// heap no room under the Go memory limit: the collector ran back to back and the heap passed
// the limit by what was allocated during each cycle — RSS 1.55× --memory.)
const fillMemoryFraction = 8

// fillMemory is the bytes of memory-backed fills that may be in flight at once.
func fillMemory(cfg Config) int64 { return int64(cfg.Memory) / fillMemoryFraction }

// tierMemory is the memory tier's capacity: what --memory leaves once fills have their share.
func tierMemory(cfg Config) int64 { return int64(cfg.Memory) - fillMemory(cfg) }

// GoMemoryLimit is the Go memory limit for cfg's tiers (the formula above).
func GoMemoryLimit(cfg Config) int64 {
	limit := int64(cfg.Memory) + max(int64(cfg.Memory)/memoryBudgetFraction, memoryBudgetMin)
	if cfg.CacheDir != "" {
		limit += store.DiskIndexMemory
	}
	return limit
}

// GCPercent is the collector's GOGC under the memory limit: a collection once the heap has
// grown by four times what is live, not once. With the memory tier small or empty, what is live
// is a few MiB, and GOGC=100 collected every 4 MiB or so — ten times a second at 40,000 1 KB
// hits a second — each collection's pauses and its mark worker, holding one of the CPUs
// meanwhile, adding to the latency of the requests that waited on them. At 400 the
// collections are a quarter as many (p99 of 1 KB hits at a fixed 19k and 45k requests a
// second: 2.7–3.3 ms against 3.2–4.4 ms; p99.9 4.0–4.9 against 5.2–7.5 ms), the heap stays
// within a few tens of MiB when little is live, and once the tier is fuller the memory limit
// decides when to collect, as before (4 × live passes it).
const GCPercent = 400

// GoMemory is what SetGoMemoryLimit left in force.
type GoMemory struct {
	Limit        int64 // the Go memory limit, bytes
	LimitFromEnv bool  // GOMEMLIMIT chose it
	GCPercent    int   // the collector's GOGC
	GCFromEnv    bool  // GOGC chose it
}

// SetGoMemoryLimit applies GoMemoryLimit(cfg) and GCPercent, each unless its environment
// variable (GOMEMLIMIT, GOGC) chose one: the runtime has applied it already, and an operator's
// word wins. It returns the settings in force.
func SetGoMemoryLimit(cfg Config) GoMemory {
	m := GoMemory{GCPercent: GCPercent}
	if _, set := os.LookupEnv("GOGC"); set {
		m.GCPercent, m.GCFromEnv = debug.SetGCPercent(100), true // reads the runtime's (put back below)
	}
	debug.SetGCPercent(m.GCPercent)
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		m.Limit, m.LimitFromEnv = debug.SetMemoryLimit(-1), true // -1 reads the limit without changing it
		return m
	}
	m.Limit = GoMemoryLimit(cfg)
	debug.SetMemoryLimit(m.Limit)
	return m
}

// FollowDiskIndex keeps the Go memory limit at base plus what the disk tier's index holds in
// memory (10 GiB of 100 KB objects: some 150 MiB, loaded at start and growing as it fills),
// re-read every interval: a limit below what is live would make the collector run without
// pause. It does nothing without a disk tier; stop ends it.
func (e *Edge) FollowDiskIndex(base int64, interval time.Duration) (stop func()) {
	if e.tiers.disk == nil {
		return func() {}
	}
	apply := func() { debug.SetMemoryLimit(base + e.tiers.disk.IndexMemory()) }
	apply()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				apply()
			}
		}
	}()
	return func() { close(done) }
}
