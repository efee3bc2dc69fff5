package edge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPoisoning: nothing one client sends can make the edge store a response others get
// that differs from what their own request would produce.
func TestPoisoning(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Match") != "" || r.Header.Get("If-None-Match") != "" {
			w.Header().Set("Cache-Control", "public, max-age=300")
			w.WriteHeader(http.StatusPreconditionFailed)
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(w, "lang=%s host=%s fwd=%s", r.Header.Get("Accept-Language"), r.Host, r.Header.Get("Forwarded"))
	})
	_, srv := newEdge(t, o.URL, nil)
	tests := []struct {
		name     string
		attacker []string
		victim   []string
		path     string
	}{
		// RFC 9110 §7.6.1: a field listed in Connection is removed before the key sees it.
		{"connection-listed field", []string{"Accept-Language", "en", "Connection", "Accept-Language"}, []string{"Accept-Language", "en"}, "/c"},
		// RFC 9111 §4.3.2: a client's precondition never reaches a fill.
		{"client If-None-Match", []string{"If-None-Match", `"nope"`}, nil, "/p"},
		{"forwarded header", []string{"Forwarded", "host=evil"}, nil, "/f"},
		{"host spelling", []string{"Host", "EXAMPLE.com.:80"}, []string{"Host", "example.com"}, "/h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			get(t, srv.URL+tc.path, tc.attacker...)
			got := get(t, srv.URL+tc.path, tc.victim...)
			if got.status != 200 || strings.Contains(got.body, "evil") || strings.Contains(got.body, "EXAMPLE") || strings.Contains(got.body, "com.") {
				t.Fatalf("victim got %d %q (%s)", got.status, got.body, got.cacheStatus())
			}
			if tc.name == "connection-listed field" && !strings.Contains(got.body, "lang=en") {
				t.Fatalf("victim asking for en got %q", got.body)
			}
		})
	}
	// A client's If-Match never reaches a fill: ignored (client_preconditions' default), the
	// origin never sees it, so it can't answer 412 for everyone (forwarded, it goes for that
	// client alone: TestClientPreconditions).
	if r := get(t, srv.URL+"/m", "If-Match", `"x"`); r.status != 200 {
		t.Fatalf("If-Match: %d %q", r.status, r.cacheStatus())
	}
	if r := get(t, srv.URL+"/m"); r.status != 200 {
		t.Fatalf("after If-Match, a plain GET got %d", r.status)
	}
}

// TestTruncatedPassThrough: a response that is not stored and breaks off mid-body reaches
// the client as a broken response, never as a clean short one.
func TestTruncatedPassThrough(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private")
		io.WriteString(w, "partial-")
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	})
	_, srv := newEdge(t, o.URL, nil)
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("a truncated pass-through response ended cleanly")
	}
}

// TestStalledOriginBody: an origin that stops sending mid-body is cut off after the read
// timeout, and the next request is not stuck behind the dead fill.
func TestStalledOriginBody(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	defer close(release)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", "100")
		if calls.Add(1) == 1 {
			io.WriteString(w, "half")
			w.(http.Flusher).Flush()
			<-release
			return
		}
		io.WriteString(w, strings.Repeat("z", 100))
	})
	_, srv := newEdge(t, o.URL, func(c *Config) { c.Limits.OriginReadTimeout = 200 * time.Millisecond })
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.Get(srv.URL + "/s"); err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled origin body held the client past the read timeout")
	}
	if r := get(t, srv.URL+"/s"); r.body != strings.Repeat("z", 100) {
		t.Fatalf("after the stall: %q", r.body)
	}
}

// TestErrorRelayedToWaiters: collapsed requests share a short origin error instead of each
// asking the failing origin again.
func TestErrorRelayedToWaiters(t *testing.T) {
	gate := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		<-gate
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	e, srv := newEdge(t, o.URL, nil)
	var wg sync.WaitGroup
	var got503 atomic.Int64
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := get(t, srv.URL+"/e"); r.status == http.StatusServiceUnavailable {
				got503.Add(1)
			}
		}()
	}
	// Open the gate only once all 20 requests are in: 1 fill and 19 collapsed.
	waitCollapsed(e, 19)
	close(gate)
	wg.Wait()
	if got503.Load() != 20 || o.hits.Load() != 1 {
		t.Fatalf("%d clients got the 503 from %d origin requests", got503.Load(), o.hits.Load())
	}
}

// TestLeaderLeavesEarly: a client that disconnects before a non-shareable response arrives
// doesn't leak the origin connection.
func TestLeaderLeavesEarly(t *testing.T) {
	gate := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		<-gate
		w.Header().Set("Cache-Control", "private")
		io.WriteString(w, "mine")
	})
	_, srv := newEdge(t, o.URL, nil)
	for range 5 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "GET /l HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(20 * time.Millisecond)
		conn.Close()
	}
	close(gate)
	// httptest's Close blocks until every origin connection is closed: a leak hangs here.
	done := make(chan struct{})
	go func() { o.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("origin connections leaked after clients left early")
	}
}
