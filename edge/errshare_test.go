package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stormClients is how many concurrent requests an error storm test sends for one key.
const stormClients = 300

// storm sends n concurrent GETs of url (each on its own connection) and returns the answers.
func storm(t *testing.T, url string, n int, hdr ...string) []result {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Error(err)
				return
			}
			for j := 0; j+1 < len(hdr); j += 2 {
				req.Header.Set(hdr[j], hdr[j+1])
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Error(err)
			}
			out[i] = result{resp.StatusCode, resp.Header, string(b)}
		}()
	}
	wg.Wait()
	return out
}

// gatedOrigin answers with h, but holds every answer until the gate opens (or 20s pass): the
// storm's requests are all in the edge before the origin says anything.
func gatedOrigin(t *testing.T, h http.HandlerFunc) (*testOrigin, chan struct{}) {
	gate := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate:
		case <-time.After(20 * time.Second):
		}
		h(w, r)
	})
	return o, gate
}

// gatedStorm sends n concurrent GETs of url, opens the origin's gate once all but one joined
// the first one's fill, and returns the answers.
func gatedStorm(t *testing.T, e *Edge, gate chan struct{}, url string, n int, hdr ...string) []result {
	t.Helper()
	var answers []result
	done := make(chan struct{})
	go func() {
		defer close(done)
		answers = storm(t, url, n, hdr...)
	}()
	waitCollapsed(e, int64(n-1))
	close(gate)
	<-done
	return answers
}

// TestErrorStorm: 300 concurrent requests for one key whose origin fails cost the origin one
// request, the next 300 none (the error is held, Limits.ErrorHold), every client gets the
// error with the origin's Retry-After; per-user errors are never shared.
func TestErrorStorm(t *testing.T) {
	for _, tc := range []struct {
		name, cc string
	}{
		{"no-store", "no-store"}, // what reel origin's own errors carry
		{"no caching header", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, gate := gatedOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.cc != "" {
					w.Header().Set("Cache-Control", tc.cc)
				}
				w.Header().Set("Retry-After", "7")
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
			})
			e, srv := newEdge(t, o.URL, func(c *Config) { c.Limits.ErrorHold = time.Minute })
			answers := gatedStorm(t, e, gate, srv.URL+"/failing", stormClients)
			answers = append(answers, storm(t, srv.URL+"/failing", stormClients)...) // the next wave
			for _, a := range answers {
				if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "7" || a.body != "overloaded\n" {
					t.Fatalf("client got %d Retry-After %q %q", a.status, a.header.Get("Retry-After"), a.body)
				}
			}
			if n := o.hits.Load(); n != 1 {
				t.Errorf("origin saw %d requests for %d concurrent requests on a failing key, want 1", n, 2*stormClients)
			}
		})
	}
	t.Run("per-user errors", func(t *testing.T) {
		var n atomic.Int64
		o, gate := gatedOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Set-Cookie", fmt.Sprintf("session=%d", n.Add(1)))
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		})
		e, srv := newEdge(t, o.URL, func(c *Config) { c.Limits.ErrorHold = time.Minute })
		const clients = 50
		answers := gatedStorm(t, e, gate, srv.URL+"/cookie", clients)
		seen := map[string]bool{}
		for _, a := range answers {
			c := a.header.Get("Set-Cookie")
			if a.status != http.StatusServiceUnavailable || c == "" || seen[c] {
				t.Fatalf("client got %d with Set-Cookie %q (seen before: %v)", a.status, c, seen[c])
			}
			seen[c] = true
		}
	})
	for _, tc := range []struct{ name, cc, auth string }{
		{"private", "private", ""},
		{"Authorization", "no-store", "Bearer someone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, gate := gatedOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tc.cc)
				http.Error(w, "for "+r.Header.Get("Authorization"), http.StatusServiceUnavailable)
			})
			e, srv := newEdge(t, o.URL, func(c *Config) { c.Limits.ErrorHold = time.Minute })
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			for _, a := range gatedStorm(t, e, gate, srv.URL+"/private", 20, hdr...) {
				if strings.Contains(a.header.Get("Cache-Status"), "; collapsed") {
					t.Errorf("a per-user error was shared: %q", a.header.Get("Cache-Status"))
				}
			}
			if n := o.hits.Load(); n != 20 {
				t.Errorf("origin saw %d requests for 20 per-user errors", n)
			}
		})
	}
}

// TestErrorHoldStale: a client that may have stale content gets it at once while an error is
// held (RFC 5861 §4), and a held error ends: after ErrorHold the origin is asked again.
func TestErrorHoldStale(t *testing.T) {
	var failing atomic.Bool
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-if-error=600")
		io.WriteString(w, "good")
	})
	e, srv := newEdge(t, o.URL, func(c *Config) { c.Limits.ErrorHold = 300 * time.Millisecond })
	get(t, srv.URL+"/s")
	e.now = func() time.Time { return time.Now().Add(5 * time.Second) } // now stale
	failing.Store(true)
	for range 5 {
		if r := get(t, srv.URL+"/s"); r.status != 200 || r.body != "good" || !strings.Contains(r.cacheStatus(), "stale-if-error") {
			t.Fatalf("stale-if-error while the error is held: %d %q %q", r.status, r.body, r.cacheStatus())
		}
	}
	if n := o.hits.Load(); n != 2 {
		t.Fatalf("origin saw %d requests, want 2 (the fill, one revalidation held)", n)
	}
	waitUntil(t, func() bool {
		get(t, srv.URL+"/s")
		return o.hits.Load() > 2
	})
}
