package edge

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMemoryTierWeighsItsHeap: what the memory tier holds costs the Go heap no more than the
// tier's weight, with the edge's hit structures (prepared headers) built as for real hits —
// for segment-sized bodies, whose allocation is rounded to whole pages, and for small ones,
// where the per-object structures dominate. The Go memory limit is set from the tier's size
// (cmd/reel): a tier that holds more than it weighs defeats it.
func TestMemoryTierWeighsItsHeap(t *testing.T) {
	for _, tc := range []struct {
		body, memory int64
		objects      int
	}{
		{100 << 10, 32 << 20, 600}, // about twice the tier: it is full and evicting
		{2000, 2 << 20, 1500},
	} {
		t.Run(strconv.FormatInt(tc.body, 10), func(t *testing.T) {
			block := make([]byte, tc.body)
			o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(block)))
				w.Header().Set("Cache-Control", "public, max-age=3600")
				w.Header().Set("ETag", `"`+strings.TrimPrefix(r.URL.Path, "/obj/")+`"`)
				w.Write(block)
			})
			e, s := newEdge(t, o.URL, func(c *Config) { c.Memory = Size(tc.memory) })
			c := &http.Client{}
			fetch := func(i int) {
				resp, err := c.Get(fmt.Sprintf("%s/obj/%d", s.URL, i))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			fetch(-1) // connections and their buffers exist before the base is taken
			base := liveHeap()
			for i := range tc.objects {
				fetch(i)
			}
			e.tiers.mem.CleanUp()
			held := liveHeap() - base
			entries := 0
			for range e.tiers.mem.Keys() {
				entries++
			}
			weight := int64(e.tiers.mem.Weight())
			t.Logf("%d entries: heap %d B/entry, weight %d B/entry", entries, held/int64(entries), weight/int64(entries))
			if held > weight {
				t.Errorf("the memory tier holds %d bytes of heap but weighs %d (%.3f×)", held, weight, float64(held)/float64(weight))
			}
			c.CloseIdleConnections()
		})
	}
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestGoMemoryLimitFollowsDiskIndex: with a disk tier, the Go memory limit rises with what the
// disk tier's index holds in memory as objects are stored.
func TestGoMemoryLimitFollowsDiskIndex(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // restore the test binary's limit
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write([]byte("segment"))
	})
	e, s := newEdge(t, o.URL, func(c *Config) { c.CacheDir, c.Disk = t.TempDir(), 64<<20 })
	e.tiers.disk.SetMinFree(0)
	const base = 1 << 40
	stop := e.FollowDiskIndex(base, time.Millisecond)
	defer stop()
	for i := range 50 {
		get(t, fmt.Sprintf("%s/seg-%d", s.URL, i))
	}
	index := e.tiers.disk.IndexMemory()
	if index < 50*1024 {
		t.Fatalf("50 objects on disk, index memory counted %d", index)
	}
	waitUntil(t, func() bool { return debug.SetMemoryLimit(-1) == base+e.tiers.disk.IndexMemory() })
}

// TestFillsShareTheMemoryBudget: --memory bounds the memory tier and the memory-backed fills
// in flight together. With a full tier and more concurrent misses than the fills' share
// holds, what is held in memory for the cache stays within --memory (a tier holding all of
// it, with fills on top, left the heap no room under the Go memory limit: RSS 1.55×).
func TestFillsShareTheMemoryBudget(t *testing.T) {
	const memory, body, slow = 8 << 20, 100 << 10, 12 // 12 slow fills: 1.2 MB > memory/8
	block := make([]byte, body)
	release := make(chan struct{})
	var stop sync.Once
	end := func() { stop.Do(func() { close(release) }) }
	t.Cleanup(end) // the origin's handlers return before it closes, even if the test fails
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(body))
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if !strings.HasPrefix(r.URL.Path, "/slow/") {
			w.Write(block)
			return
		}
		w.Write(block[:body/2]) // half now, the rest once the test has measured
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write(block[body/2:])
	})
	e, s := newEdge(t, o.URL, func(c *Config) { c.Memory = memory })
	c := &http.Client{}
	defer c.CloseIdleConnections()
	for i := range 2 * memory / body { // twice the tier's worth: it is full and evicting
		resp, err := c.Get(fmt.Sprintf("%s/obj/%d", s.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	e.tiers.mem.CleanUp()

	var started, finished sync.WaitGroup
	for i := range slow {
		started.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			resp, err := c.Get(fmt.Sprintf("%s/slow/%d", s.URL, i))
			if err != nil {
				t.Error(err)
				started.Done()
				return
			}
			defer resp.Body.Close()
			io.ReadFull(resp.Body, make([]byte, 1)) // the fill has begun: its memory is reserved or not
			started.Done()
			io.Copy(io.Discard, resp.Body)
		}()
	}
	started.Wait()
	e.tiers.mem.CleanUp()
	tier, fills := int64(e.tiers.mem.Weight()), e.fillMem.Load()
	end()
	finished.Wait()
	t.Logf("tier %d B + fills in flight %d B, --memory %d B", tier, fills, memory)
	if tier+fills > memory {
		t.Errorf("the memory tier holds %d bytes and fills in flight %d: %d > --memory %d", tier, fills, tier+fills, memory)
	}
}
