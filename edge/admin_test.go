package edge

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func adminCall(t *testing.T, method, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminPurge: purge by URL, prefix and surrogate key, hard and soft; the token is required.
func TestAdminPurge(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600, stale-if-error=600")
		w.Header().Set("Surrogate-Key", "show-1 all")
		w.Header().Set("Cache-Tag", "season-2")
		io.WriteString(w, r.URL.Path)
	})
	e, srv := newEdge(t, o.URL, nil)
	admin := httptest.NewServer(e.AdminHandler("s3cret"))
	defer admin.Close()

	warm := func(paths ...string) {
		for _, p := range paths {
			get(t, srv.URL+p)
		}
	}
	isHit := func(p string) bool { return strings.Contains(get(t, srv.URL+p).cacheStatus(), "hit") }
	host := strings.TrimPrefix(srv.URL, "http://")

	if code, _ := adminCall(t, "POST", admin.URL+"/purge?url="+url.QueryEscape("http://"+host+"/a"), ""); code != http.StatusUnauthorized {
		t.Fatalf("purge without token: %d", code)
	}
	if code, _ := adminCall(t, "POST", admin.URL+"/purge?url=x", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("purge with a wrong token: %d", code)
	}
	if code, _ := adminCall(t, "GET", admin.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}

	// Clients never see the surrogate keys.
	if r := get(t, srv.URL+"/a"); r.header.Get("Surrogate-Key") != "" || r.header.Get("Cache-Tag") != "" {
		t.Fatalf("surrogate headers leaked: %v", r.header)
	}
	warm("/a", "/vod/1", "/vod/2", "/other")

	code, body := adminCall(t, "POST", admin.URL+"/purge?url="+url.QueryEscape("http://"+host+"/a"), "s3cret")
	if code != 200 || !strings.Contains(body, `"purged":1`) || isHit("/a") {
		t.Fatalf("purge url: %d %s", code, body)
	}
	code, body = adminCall(t, "POST", admin.URL+"/purge?prefix="+url.QueryEscape("http://"+host+"/vod/"), "s3cret")
	if code != 200 || !strings.Contains(body, `"purged":2`) || isHit("/vod/1") || isHit("/vod/2") || !isHit("/other") {
		t.Fatalf("purge prefix: %d %s", code, body)
	}
	warm("/a", "/vod/1", "/vod/2", "/other")
	code, body = adminCall(t, "POST", admin.URL+"/purge?tag=season-2", "s3cret")
	var res map[string]any
	json.Unmarshal([]byte(body), &res)
	if code != 200 || res["purged"].(float64) < 4 || isHit("/other") {
		t.Fatalf("purge tag: %d %s", code, body)
	}

	// Soft purge: stale, so revalidated (a miss now), but it still covers an origin outage.
	warm("/soft")
	if code, _ := adminCall(t, "POST", admin.URL+"/purge?mode=soft&url="+url.QueryEscape("http://"+host+"/soft"), "s3cret"); code != 200 {
		t.Fatal("soft purge failed")
	}
	o.set(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	r := get(t, srv.URL+"/soft")
	if r.status != 200 || r.body != "/soft" || !strings.Contains(r.cacheStatus(), "stale") {
		t.Fatalf("after soft purge with origin down: %d %q %q", r.status, r.body, r.cacheStatus())
	}
	if code, _ := adminCall(t, "POST", admin.URL+"/purge?mode=bogus&url=x", "s3cret"); code != http.StatusBadRequest {
		t.Fatalf("bad mode: %d", code)
	}
}

// TestMetrics: /metrics exposes the request, origin and collapsing series.
func TestMetrics(t *testing.T) {
	o := newOrigin(t, cacheable("m", "max-age=60"))
	e, srv := newEdge(t, o.URL, nil)
	admin := httptest.NewServer(e.AdminHandler("tok"))
	defer admin.Close()
	get(t, srv.URL+"/m")
	get(t, srv.URL+"/m")
	code, body := adminCall(t, "GET", admin.URL+"/metrics", "tok")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`reel_edge_requests_total{cache="hit"} 1`,
		`reel_edge_requests_total{cache="miss"} 1`,
		`reel_edge_origin_requests_total 1`,
		`reel_edge_response_bytes_total{source="cache"} 1`,
		`reel_edge_time_to_first_byte_seconds_count 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, _ := adminCall(t, "GET", admin.URL+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("metrics without token: %d", code)
	}
}

// TestPurgeDuringFill: a response whose fetch began before a purge is served to its waiting
// clients but not stored, so the purge isn't undone by a fill that was already running.
func TestPurgeDuringFill(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		if calls.Add(1) == 1 {
			// The pre-purge response: its head and a first part now, the rest on release.
			w.Header().Set("Content-Length", "12")
			io.WriteString(w, "before-")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "purge")
			return
		}
		io.WriteString(w, "after-purge")
	})
	e, srv := newEdge(t, o.URL, nil)
	admin := httptest.NewServer(e.AdminHandler("t"))
	defer admin.Close()
	done := make(chan result, 1)
	go func() { done <- get(t, srv.URL+"/race") }()
	for i := 0; i < 500 && calls.Load() == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	u := "http://" + strings.TrimPrefix(srv.URL, "http://") + "/race"
	adminCall(t, "POST", admin.URL+"/purge?url="+url.QueryEscape(u), "t")
	// A request after the purge, while the pre-purge fill still runs, must not join it.
	after := make(chan result, 1)
	go func() { after <- get(t, srv.URL+"/race") }()
	select {
	case r := <-after:
		if r.body != "after-purge" {
			t.Errorf("a request after the purge got %q (%s)", r.body, r.cacheStatus())
		}
	case <-time.After(5 * time.Second):
		t.Error("a request after the purge joined the fill that began before it")
	}
	close(release)
	if r := <-done; r.body != "before-purge" {
		t.Fatalf("waiting client got %q", r.body)
	}
	if r := get(t, srv.URL+"/race"); r.body != "after-purge" {
		t.Fatalf("the pre-purge response was stored: %q %q", r.body, r.cacheStatus())
	}
}

// TestRequireBearer: RFC 6750 §3 — a request without the right bearer token gets 401 with a
// challenge naming the realm; an empty configured token lets nothing through.
func TestRequireBearer(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "in") })
	tests := []struct {
		token, auth string
		want        int
	}{
		{"s3cret", "", 401},
		{"s3cret", "Bearer wrong", 401},
		{"s3cret", "Basic s3cret", 401},
		{"s3cret", "Bearer s3cret", 200},
		{"", "Bearer ", 401},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		RequireBearer("test", tc.token, ok).ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("token %q, Authorization %q: %d, want %d", tc.token, tc.auth, rec.Code, tc.want)
		}
		if tc.want == 401 && rec.Header().Get("WWW-Authenticate") != `Bearer realm="test"` {
			t.Errorf("401 without the challenge: %q", rec.Header().Get("WWW-Authenticate"))
		}
	}
}
