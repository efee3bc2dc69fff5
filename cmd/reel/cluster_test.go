package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clusterHost is the site every client asks for, whichever edge it reaches (as a CDN's
// clients do): the cache key, and so each object's shield, is the same at every edge.
const clusterHost = "video.example"

// clusterOrigin serves /cold.m4s (1 MiB, sent slowly, so that all the cold requests overlap
// its one fetch) and small objects elsewhere, counting requests by path.
type clusterOrigin struct {
	*httptest.Server
	mu     sync.Mutex
	byPath map[string]int
	total  atomic.Int64
}

var coldBody = bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB

func newClusterOrigin(t *testing.T) *clusterOrigin {
	o := &clusterOrigin{byPath: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.total.Add(1)
		o.mu.Lock()
		o.byPath[r.URL.Path]++
		o.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path == "/cold.m4s" {
			w.Header().Set("Content-Length", fmt.Sprint(len(coldBody)))
			for i := 0; i < len(coldBody); i += 64 << 10 {
				w.Write(coldBody[i : i+64<<10])
				w.(http.Flusher).Flush()
				time.Sleep(20 * time.Millisecond)
			}
			return
		}
		body := "object " + r.URL.Path
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, body)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *clusterOrigin) requests(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byPath[path]
}

// clusterGet fetches path from an edge as the site's clients do; it returns the status, the
// body and the Cache-Status field.
func clusterGet(c *http.Client, edge, path string) (int, []byte, string, error) {
	req, err := http.NewRequest(http.MethodGet, edge+path, nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Host = clusterHost
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("Cache-Status"), err
}

// shieldOf is the name of the first (origin-side) member of a Cache-Status field: the shield
// that answered a request an edge forwarded.
func shieldOf(cacheStatus string) string {
	name, _, _ := strings.Cut(cacheStatus, ";")
	return strings.TrimSpace(name)
}

// TestCluster: a loopback cluster of separate `reel edge` processes — 3 edges → 2 shields →
// 1 origin. 300 concurrent requests for a cold object spread over the edges make one origin
// request; every object is fetched once however many edges miss it (the offload is measured
// against the same edges without the tier); adding a third shield moves about a third of the
// keys, all to it; a shield killed mid-test leaves every request answered through the other.
func TestCluster(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	bin := buildReel(t)
	origin := newClusterOrigin(t)
	var shieldCmds []interface{ Kill() error }
	var shields []string
	for i := 1; i <= 2; i++ {
		cmd, url := startEdge(t, bin, "--name", fmt.Sprintf("shield-%d", i), "--origin", origin.URL)
		shieldCmds, shields = append(shieldCmds, cmd.Process), append(shields, url)
	}
	parentArgs := func(urls ...string) []string {
		var a []string
		for _, u := range urls {
			a = append(a, "--parent", u)
		}
		return a
	}
	var edges []string
	for i := 1; i <= 3; i++ {
		_, url := startEdge(t, bin, append([]string{"--name", fmt.Sprintf("edge-%d", i), "--origin", origin.URL}, parentArgs(shields...)...)...)
		edges = append(edges, url)
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

	t.Run("coalescing", func(t *testing.T) {
		const n = 300
		var wg sync.WaitGroup
		var bad atomic.Int64
		hops := make(chan string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body, cs, err := clusterGet(client, edges[i%3], "/cold.m4s")
				if err != nil || status != 200 || !bytes.Equal(body, coldBody) {
					if bad.Add(1) <= 3 {
						t.Errorf("request %d: %d, %d bytes, %v", i, status, len(body), err)
					}
					return
				}
				hops <- cs
			}()
		}
		wg.Wait()
		close(hops)
		if got := origin.requests("/cold.m4s"); got != 1 {
			t.Errorf("%d concurrent requests over 3 edges → %d origin requests, want 1", n, got)
		}
		// Each answer names both hops, the shield's member first (RFC 9211 §2).
		for cs := range hops {
			if !strings.HasPrefix(cs, "shield-") || !strings.Contains(cs, ", edge-") {
				t.Errorf("Cache-Status %q does not show the shield then the edge", cs)
				break
			}
		}
		t.Logf("%d client requests over 3 edges → %d origin request(s) (%d failed)", n, origin.requests("/cold.m4s"), bad.Load())
	})

	t.Run("offload", func(t *testing.T) {
		// The same audience — 3600 requests for 120 objects spread over 3 edges — through the
		// shields, and through 3 edges of their own going straight to the origin.
		var direct []string
		for i := 1; i <= 3; i++ {
			_, url := startEdge(t, bin, "--name", fmt.Sprintf("direct-%d", i), "--origin", origin.URL)
			direct = append(direct, url)
		}
		const objects, requests = 120, 3600
		run := func(edges []string, prefix string) int {
			var wg sync.WaitGroup
			work := make(chan int, requests)
			for i := range requests {
				work <- i
			}
			close(work)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						path := fmt.Sprintf("%s%d.m4s", prefix, (i*7)%objects)
						// Each object is asked at every edge in turn.
						status, body, _, err := clusterGet(client, edges[(i/objects)%3], path)
						if err != nil || status != 200 || string(body) != "object "+path {
							t.Errorf("%s: %d %q %v", path, status, body, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			n := 0
			for i := range objects {
				n += origin.requests(fmt.Sprintf("%s%d.m4s", prefix, i))
			}
			return n
		}
		tiered, flat := run(edges, "/o/tiered-"), run(direct, "/o/direct-")
		t.Logf("%d requests for %d objects over 3 edges: origin requests %d with the shield tier (offload %.0f×), %d without (%.0f×): %.1f× fewer",
			requests, objects, tiered, float64(requests)/float64(tiered), flat, float64(requests)/float64(flat), float64(flat)/float64(tiered))
		if tiered != objects {
			t.Errorf("with the shield tier the origin got %d requests for %d objects; want one each", tiered, objects)
		}
	})

	// Which shield owns each of these keys, as edge-1 finds it.
	const keys = 300
	owners := make([]string, keys)
	for i := range keys {
		status, _, cs, err := clusterGet(client, edges[0], fmt.Sprintf("/k/%d.m4s", i))
		if err != nil || status != 200 {
			t.Fatalf("/k/%d.m4s: %d %v", i, status, err)
		}
		owners[i] = shieldOf(cs)
	}

	t.Run("third shield moves a third of the keys", func(t *testing.T) {
		_, s3 := startEdge(t, bin, "--name", "shield-3", "--origin", origin.URL)
		_, edge4 := startEdge(t, bin, append([]string{"--name", "edge-4", "--origin", origin.URL}, parentArgs(shields[0], shields[1], s3)...)...)
		moved, elsewhere := 0, 0
		for i := range keys {
			status, _, cs, err := clusterGet(client, edge4, fmt.Sprintf("/k/%d.m4s", i))
			if err != nil || status != 200 {
				t.Fatalf("/k/%d.m4s via edge-4: %d %v", i, status, err)
			}
			switch now := shieldOf(cs); {
			case now == owners[i]:
			case now == "shield-3":
				moved++
			default:
				elsewhere++
			}
		}
		frac := float64(moved) / keys
		t.Logf("adding a third shield moved %d of %d keys (%.2f; ideal 0.33), %d between the old shields", moved, keys, frac, elsewhere)
		if elsewhere != 0 {
			t.Errorf("%d keys moved between the old shields; only the new one may take keys", elsewhere)
		}
		// Binomial(300, 1/3): standard deviation 0.027; the bounds are five of them away.
		if frac < 0.2 || frac > 0.47 {
			t.Errorf("moved fraction %.2f, want about 1/3", frac)
		}
	})

	t.Run("shield killed", func(t *testing.T) {
		// Load on all three edges while shield-1 is killed (SIGKILL: no goodbye) mid-way.
		const workers, perWorker = 6, 60
		var failed, failedAfter, done atomic.Int64
		var killedAt atomic.Int64 // the request count when the kill happened (0: not yet)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perWorker {
					after := killedAt.Load() != 0
					path := fmt.Sprintf("/m/%d-%d.m4s", w, j)
					status, body, _, err := clusterGet(client, edges[w%3], path)
					if err != nil || status != 200 || string(body) != "object "+path {
						failed.Add(1)
						if after {
							failedAfter.Add(1)
							t.Errorf("%s after the kill: %d %q %v", path, status, body, err)
						}
					}
					if done.Add(1) == workers*perWorker/3 {
						shieldCmds[0].Kill()
						killedAt.Store(done.Load())
					}
				}
			}()
		}
		wg.Wait()
		// Keys shield-1 owned, asked at edges that never fetched them: answered by shield-2.
		checked := 0
		for i := range keys {
			if owners[i] != "shield-1" {
				continue
			}
			status, _, cs, err := clusterGet(client, edges[1+i%2], fmt.Sprintf("/k/%d.m4s", i))
			if err != nil || status != 200 || shieldOf(cs) != "shield-2" {
				t.Errorf("/k/%d.m4s (shield-1's) after the kill: %d, Cache-Status %q, %v", i, status, cs, err)
			}
			checked++
		}
		if checked == 0 {
			t.Error("shield-1 owned none of the keys: failover not exercised")
		}
		t.Logf("shield-1 killed after %d of %d requests: %d failed in flight, %d after; %d of its keys answered by shield-2",
			killedAt.Load(), workers*perWorker, failed.Load()-failedAfter.Load(), failedAfter.Load(), checked)
		if failed.Load() > workers {
			t.Errorf("%d requests failed; at most the %d in flight at the kill may", failed.Load(), workers)
		}
	})
}
