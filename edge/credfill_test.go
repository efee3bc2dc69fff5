package edge

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCredentialedLeaderKeepsCoalescing: a response that can't be stored because of the
// request that fetched it — Authorization without public (RFC 9111 §3.5), a Cookie on a
// response with only heuristic freshness — is that request's alone; the requests that had
// joined its fill then fill again together, once, instead of each going to the origin. So one
// client sending credentials with the first request for a new object (the newest live
// segment) can't turn its audience into as many origin requests.
func TestCredentialedLeaderKeepsCoalescing(t *testing.T) {
	lastModified := time.Now().Add(-24 * time.Hour).UTC().Format(http.TimeFormat)
	for _, c := range []struct {
		name   string
		leader []string // the leader's fields
		cc     string   // the origin's Cache-Control ("": heuristic freshness from Last-Modified)
	}{
		{"authorization", []string{"Authorization", "Basic dXNlcjpwYXNz"}, "max-age=60"},
		{"cookie, heuristic freshness", []string{"Cookie", "session=1"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, release := holdingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if c.cc != "" {
					w.Header().Set("Cache-Control", c.cc)
				}
				w.Header().Set("Last-Modified", lastModified)
				w.Write([]byte("segment"))
			})
			e, srv := newEdge(t, o.URL, nil)

			const followers = 5
			var wg sync.WaitGroup
			var ok atomic.Int64
			var statuses sync.Map
			for i := range followers + 1 {
				hdr := []string{}
				if i == 0 {
					hdr = append([]string{"X-Hold", "1"}, c.leader...)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := get(t, srv.URL+"/live/seg_1.m4s", hdr...)
					if r.status == 200 && r.body == "segment" {
						ok.Add(1)
					}
					statuses.Store(i, r.cacheStatus())
				}()
				if i == 0 {
					pollUntil(func() bool { return o.hits.Load() == 1 }) // the leader is at the origin
				}
			}
			waitCollapsed(e, followers)
			release()
			wg.Wait()
			if ok.Load() != followers+1 {
				t.Errorf("%d of %d requests got the body", ok.Load(), followers+1)
			}
			if n := o.hits.Load(); n != 2 {
				var all []string
				statuses.Range(func(k, v any) bool { all = append(all, v.(string)); return true })
				t.Errorf("origin requests: %d, want 2 (the leader's, one for the %d others); Cache-Status: %s",
					n, followers, strings.Join(all, " | "))
			}
			if r := get(t, srv.URL+"/live/seg_1.m4s"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
				t.Errorf("afterwards: %q, want a hit (stored by the followers' fill)", r.cacheStatus())
			}
		})
	}
}
