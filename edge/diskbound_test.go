package edge

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reelvideo/reel/edge/store"
)

// TestDiskTierHoldsItsCapacity: an edge with a 20 MiB disk tier, sent three times that in
// distinct objects of mixed sizes by four clients at once, never holds more than 20 MiB in
// its cache folder — as du counts it (allocated blocks of the bodies, the folders, badger's
// files, fills in progress) — sampled continuously while it fills and after every response.
func TestDiskTierHoldsItsCapacity(t *testing.T) {
	const capacity = 20 << 20
	const objects, clients = 400, 4
	sizeOf := func(i int) int { return 10<<10 + (i*7919)%(300<<10) } // 10 KB to 310 KB
	block := make([]byte, 310<<10)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/obj/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Length", strconv.Itoa(sizeOf(i)))
		w.Write(block[:sizeOf(i)])
	})
	dir := t.TempDir()
	e, srv := newEdge(t, o.URL, func(c *Config) {
		c.Memory = 1 << 20 // bodies over 128 KiB go straight to disk, the others through memory
		c.CacheDir = dir
		c.Disk = capacity
	})
	e.tiers.disk.SetMinFree(0)

	var peak atomic.Int64
	sample := func() {
		if n := store.FolderUsage(dir); n > peak.Load() {
			peak.Store(n) // samplers race only to raise it; a lost raise is re-sampled
		}
	}
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // samples continuously while the clients run
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			default:
				sample()
			}
		}
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= objects; i = int(next.Add(1)) {
				resp, err := http.Get(fmt.Sprintf("%s/obj/%d", srv.URL, i))
				if err != nil {
					errs <- err
					return
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || n != int64(sizeOf(i)) {
					errs <- fmt.Errorf("object %d: %d of %d bytes (%v)", i, n, sizeOf(i), err)
					return
				}
				sample()
			}
		}()
	}
	wg.Wait()
	close(done)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	final := store.FolderUsage(dir)
	t.Logf("cache folder: peak %d KiB, final %d KiB, tier's own count %d KiB, capacity %d KiB",
		peak.Load()>>10, final>>10, e.tiers.disk.Size()>>10, capacity>>10)
	if peak.Load() > capacity {
		t.Errorf("the cache folder held %d bytes, over the disk tier's %d (%.3f×)", peak.Load(), capacity, float64(peak.Load())/capacity)
	}
	if final < capacity/2 {
		t.Errorf("the tier holds only %d bytes of its %d after a fill three times its size", final, capacity)
	}
}
