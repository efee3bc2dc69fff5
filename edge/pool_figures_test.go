package edge

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoolFailoverFigures (make bench, REEL_POOLBENCH=1) reports how long an origin pool
// takes to move traffic off a killed member, and to take it back once it listens again:
// under load (the requests' failures mark it down) and with light traffic (one request each
// 20 ms) and with none (the probe alone, every 500 ms, does), median of 5 kills each.
func TestPoolFailoverFigures(t *testing.T) {
	if os.Getenv("REEL_POOLBENCH") != "1" {
		t.Skip("a figure for make bench: set REEL_POOLBENCH=1")
	}
	const interval = 500 * time.Millisecond
	for _, tc := range []struct {
		name    string
		workers int
		pause   time.Duration
	}{{"under load (8 clients back to back)", 8, 0}, {"light traffic (1 request / 20 ms)", 1, 20 * time.Millisecond},
		{"no traffic (the probe alone)", 0, 0}} {
		a, b := newKillableOrigin(t, "a"), newKillableOrigin(t, "b")
		e, srv := newEdge(t, a.url(), func(c *Config) {
			c.Origins = []Origin{{Host: "*", URLs: []PoolMember{{URL: a.url()}, {URL: b.url()}},
				Pool: Pool{HealthCheck: &HealthCheck{Path: "/health", Interval: interval}}}}
		})
		upB := `reel_edge_origin_member_up{member="` + b.url() + `",origin="*"}`
		var stop atomic.Bool
		var failed atomic.Int64
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 20 * time.Second}
		for w := range tc.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					resp, err := client.Get(fmt.Sprintf("%s/u/%d-%d", srv.URL, w, i))
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failed.Add(1)
					}
					time.Sleep(tc.pause) // the traffic's pace, not a wait
				}
			}()
		}
		var down, back []time.Duration
		for range 5 {
			start := time.Now()
			b.kill()
			waitFor(t, 30*time.Second, "b marked down", func() bool { return metric(t, e, upB) == 0 })
			down = append(down, time.Since(start))
			start = time.Now()
			b.restart()
			waitFor(t, 30*time.Second, "b taken back", func() bool { return metric(t, e, upB) == 1 })
			back = append(back, time.Since(start))
		}
		stop.Store(true)
		wg.Wait()
		retries := metric(t, e, `reel_edge_origin_retries_total{origin="*"}`)
		slices.Sort(down)
		slices.Sort(back)
		t.Logf("%s: traffic off a killed member in %v (median of 5; max %v), taken back %v after it listens again (probe interval %v); %d failed client requests, %v retries",
			tc.name, down[2].Round(time.Millisecond), down[4].Round(time.Millisecond), back[2].Round(time.Millisecond), interval, failed.Load(), retries)
		if failed.Load() != 0 {
			t.Errorf("%s: %d client requests failed", tc.name, failed.Load())
		}
	}
}
