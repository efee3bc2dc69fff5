package live

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/manifest"
)

// fakeEdge is the edge as the module sees it: keys are URL paths; a fill ends when the test
// releases it, with the result the test set.
type fakeEdge struct {
	mu      sync.Mutex
	cached  map[string]bool // stored: no fill
	running map[string]bool // being filled: no fill
	fresh   map[string]bool // FreshInCache
	filled  []string        // the fills started, in order
	result  FillResult
	release chan struct{}
	between bool // a request starts the fill between admit and the join
}

func newFakeEdge() *fakeEdge {
	return &fakeEdge{cached: map[string]bool{}, running: map[string]bool{}, fresh: map[string]bool{},
		result: FillResult{Stored: true, Status: 200}, release: make(chan struct{})}
}

func (f *fakeEdge) Key(u *url.URL, _ http.Header) string { return u.Path }

func (f *fakeEdge) FreshInCache(key string, _ time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fresh[key]
}

func (f *fakeEdge) Fill(r *http.Request, hooks FillHooks) <-chan struct{} {
	key := r.URL.Path
	f.mu.Lock()
	skip, between := f.cached[key] || f.running[key], f.between
	f.mu.Unlock()
	if skip || !hooks.Admit(key) {
		return nil
	}
	if between {
		hooks.Abandoned()
		return nil
	}
	hooks.Started()
	f.mu.Lock()
	f.filled = append(f.filled, key)
	f.running[key] = true
	res := f.result
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-f.release
		f.mu.Lock()
		delete(f.running, key)
		f.cached[key] = res.Stored
		f.fresh[key] = res.Stored
		f.mu.Unlock()
		hooks.Ended(res)
	}()
	return done
}

func (f *fakeEdge) fills() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.filled...)
}

// testManifests is a module with its own counters, prefetching into f.
func testManifests(f *fakeEdge, change func(*Config)) (*Manifests, Metrics) {
	cfg := Config{MaxTTLFraction: 0.5, MaxStaleFraction: 1, MaxManifestSize: 1 << 20,
		Prefetch: PrefetchConfig{Segments: 3, Concurrency: 16}}
	if change != nil {
		change(&cfg)
	}
	m := Metrics{
		Manifests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "m"}, []string{"kind"}),
		Prefetch:  map[string]prometheus.Counter{},
		Started:   new(atomic.Int64), Used: new(atomic.Int64), Wasted: new(atomic.Int64),
	}
	for _, l := range []string{"started", "used", "wasted", "failed", "dropped"} {
		m.Prefetch[l] = prometheus.NewCounter(prometheus.CounterOpts{Name: l})
	}
	return New(cfg, f, m, slog.New(slog.DiscardHandler), time.Now), m
}

func count(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// playlist is a live HLS media playlist of target 2 s listing segs.
func playlist(segs ...string) string {
	b := "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n"
	for _, s := range segs {
		b += "#EXTINF:2.000,\n" + s + "\n"
	}
	return b
}

// originResponse is a 200 manifest response for path as the origin sends it, at respTime.
func originResponse(t *testing.T, path, ct, cc, body string) (*http.Request, *http.Response) {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, "http://h"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {ct}, "Cache-Control": {cc}, "Date": {time.Now().UTC().Format(http.TimeFormat)}}
	return r, &http.Response{StatusCode: 200, Header: h, ContentLength: int64(len(body)), Body: io.NopCloser(strings.NewReader(body))}
}

// TestOnResponseFreshness: a live manifest's freshness is capped before it is stored, its
// body left intact for the edge to store; other manifests, and other responses, are left as
// the origin sent them (the edge's TestLiveManifestClassification covers the kinds).
func TestOnResponseFreshness(t *testing.T) {
	l, m := testManifests(newFakeEdge(), func(c *Config) { c.Prefetch.Off = true })
	pol := policy.Options{}
	for _, tc := range []struct{ path, ct, body, wantCC, kind string }{
		{"/v/index.m3u8", "application/vnd.apple.mpegurl", playlist("s1.m4s"), "max-age=1, s-maxage=1", "hls-media-live"},
		{"/v/ended.m3u8", "application/vnd.apple.mpegurl", playlist("s1.m4s") + "#EXT-X-ENDLIST\n", "max-age=60", "hls-media"},
		{"/v/by-type", "audio/mpegurl", playlist("s1.m4s"), "max-age=1, s-maxage=1", "hls-media-live"},
		{"/v/seg.m4s", "video/mp4", playlist("s1.m4s"), "max-age=60", ""},
	} {
		r, resp := originResponse(t, tc.path, tc.ct, "max-age=60", tc.body)
		before := 0.0
		if tc.kind != "" {
			before = count(m.Manifests.WithLabelValues(tc.kind))
		}
		l.OnResponse(r, pol, resp, time.Now())
		if got := strings.Join(resp.Header.Values("Cache-Control"), ", "); got != tc.wantCC {
			t.Errorf("%s: Cache-Control %q, want %q", tc.path, got, tc.wantCC)
		}
		if body, err := io.ReadAll(resp.Body); err != nil || string(body) != tc.body {
			t.Errorf("%s: body %q, %v", tc.path, body, err)
		}
		if tc.kind != "" && count(m.Manifests.WithLabelValues(tc.kind))-before != 1 {
			t.Errorf("%s: not counted as %s", tc.path, tc.kind)
		}
	}
}

// TestReadManifest: a chunked manifest is read whole and given its length; a truncated one is
// not classified, and the edge still reads its truncation; one above MaxManifestSize is not
// read ahead beyond the limit, and its body stays whole.
func TestReadManifest(t *testing.T) {
	l, _ := testManifests(newFakeEdge(), func(c *Config) { c.MaxManifestSize = 64 })
	body := playlist("s1.m4s")[:40]
	resp := &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1, Body: io.NopCloser(strings.NewReader(body))}
	if got := l.readManifest(resp); string(got) != body || resp.ContentLength != 40 || resp.Header.Get("Content-Length") != "40" {
		t.Errorf("chunked: %q, length %d %q", got, resp.ContentLength, resp.Header.Get("Content-Length"))
	}
	broken := errors.New("origin went away")
	resp = &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: 50,
		Body: io.NopCloser(io.MultiReader(strings.NewReader(body), errReader{broken}))}
	if got := l.readManifest(resp); got != nil {
		t.Errorf("truncated: classified %q", got)
	}
	if b, err := io.ReadAll(resp.Body); string(b) != body || !errors.Is(err, broken) {
		t.Errorf("truncated: read back %q, %v", b, err)
	}
	big := strings.Repeat("#", 100)
	resp = &http.Response{StatusCode: 200, Header: http.Header{}, ContentLength: -1, Body: io.NopCloser(strings.NewReader(big))}
	if got := l.readManifest(resp); got != nil {
		t.Errorf("too large: classified %d bytes", len(got))
	}
	if b, err := io.ReadAll(resp.Body); string(b) != big || err != nil || resp.ContentLength != -1 {
		t.Errorf("too large: read back %d bytes, %v, length %d", len(b), err, resp.ContentLength)
	}
}

// TestLimits: a fraction of the target duration, within an LL-HLS part target, never below
// 1 s; a manifest without a target counts as 2 s.
func TestLimits(t *testing.T) {
	l, _ := testManifests(newFakeEdge(), func(c *Config) { c.MaxTTLFraction, c.MaxStaleFraction = 0.25, 0.5 })
	for _, tc := range []struct {
		info       manifest.Info
		ttl, stale time.Duration
	}{
		{manifest.Info{Target: 8 * time.Second}, 2 * time.Second, 4 * time.Second},
		{manifest.Info{Target: 8 * time.Second, PartTarget: 1500 * time.Millisecond}, 1500 * time.Millisecond, 4 * time.Second},
		{manifest.Info{Target: time.Second}, time.Second, 500 * time.Millisecond},
		{manifest.Info{}, time.Second, time.Second},
	} {
		if ttl, stale := l.Limits(tc.info); ttl != tc.ttl || stale != tc.stale {
			t.Errorf("%+v: %v %v, want %v %v", tc.info, ttl, stale, tc.ttl, tc.stale)
		}
	}
	if !BlockingReload("_HLS_part=1&_HLS_msn=3") || BlockingReload("_HLS_skip=YES") {
		t.Error("BlockingReload")
	}
}

// TestPrefetchAccounting: what a live playlist newly lists is prefetched with fills nobody
// waits for, the playlist held until they ended; each prefetch counts once as started, then
// as used, wasted or failed; without a free slot, dropped; when a request's fill began in
// between, not at all.
func TestPrefetchAccounting(t *testing.T) {
	f := newFakeEdge()
	l, m := testManifests(f, func(c *Config) { c.Prefetch.Hold = 10 * time.Second })
	pol := policy.Options{}
	store := func(segs ...string) {
		r, resp := originResponse(t, "/v/index.m3u8", "application/vnd.apple.mpegurl", "max-age=60", playlist(segs...))
		l.OnResponse(r, pol, resp, time.Now())
	}
	// A first listing: its newest segment and the init segment; the playlist is held until
	// both are stored.
	held := make(chan struct{})
	go func() { defer close(held); store("s1.m4s", "s2.m4s", "s3.m4s") }()
	for i := 0; len(f.fills()) < 2; i++ {
		if i == 1000 {
			t.Fatalf("prefetched %q", f.fills())
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-held:
		t.Fatal("the playlist was not held for its prefetches")
	default:
	}
	if got := strings.Join(f.fills(), " "); got != "/v/init.mp4 /v/s3.m4s" {
		t.Errorf("prefetched %q", got)
	}
	if l.InFlight() != 2 {
		t.Errorf("%d in flight, want 2", l.InFlight())
	}
	close(f.release)
	<-held
	if s := count(m.Prefetch["started"]); s != 2 || m.Started.Load() != 2 || l.InFlight() != 0 {
		t.Errorf("started %v (stats %d), %d in flight", s, m.Started.Load(), l.InFlight())
	}
	// A client reads s3 (twice: counted once); init is never asked for, and leaves the cache.
	l.Used("/v/s3.m4s")
	l.Used("/v/s3.m4s")
	f.mu.Lock()
	f.fresh["/v/init.mp4"] = false
	f.mu.Unlock()
	l.SweepNow()
	if u, w := count(m.Prefetch["used"]), count(m.Prefetch["wasted"]); u != 1 || w != 1 || m.Used.Load() != 1 || m.Wasted.Load() != 1 {
		t.Errorf("used %v, wasted %v (stats %d, %d), want 1 and 1", u, w, m.Used.Load(), m.Wasted.Load())
	}

	// The next listing adds s4, s5 and s6, which are not stored (404: failed).
	f.mu.Lock()
	f.result = FillResult{Status: 404}
	f.mu.Unlock()
	store("s3.m4s", "s4.m4s", "s5.m4s", "s6.m4s")
	if got := strings.Join(f.fills(), " "); got != "/v/init.mp4 /v/s3.m4s /v/s6.m4s /v/s5.m4s /v/s4.m4s" {
		t.Errorf("prefetched %q (the newest first)", got)
	}
	if s, fl := count(m.Prefetch["started"]), count(m.Prefetch["failed"]); s != 5 || fl != 3 || l.pf.n.Load() != 0 {
		t.Errorf("started %v, failed %v, %d pending; want 5, 3, 0", s, fl, l.pf.n.Load())
	}

	// One slot: the init segment gets it, the newest segment (s8) finds none.
	f2 := newFakeEdge()
	l2, m2 := testManifests(f2, func(c *Config) { c.Prefetch.Concurrency = 1 })
	r, resp := originResponse(t, "/v/index.m3u8", "application/vnd.apple.mpegurl", "max-age=60", playlist("s7.m4s", "s8.m4s"))
	l2.OnResponse(r, pol, resp, time.Now())
	if s, d := count(m2.Prefetch["started"]), count(m2.Prefetch["dropped"]); s != 1 || d != 1 {
		t.Errorf("one slot: started %v, dropped %v; want 1 and 1", s, d)
	}
	close(f2.release)

	// A request's fill began between admit and the join: nothing counted, the slot free.
	f3 := newFakeEdge()
	f3.between = true
	l3, m3 := testManifests(f3, nil)
	r, resp = originResponse(t, "/v/index.m3u8", "application/vnd.apple.mpegurl", "max-age=60", playlist("s9.m4s"))
	l3.OnResponse(r, pol, resp, time.Now())
	if s := count(m3.Prefetch["started"]); s != 0 || l3.InFlight() != 0 || l3.pf.n.Load() != 0 {
		t.Errorf("lost the race: started %v, %d in flight, %d pending", s, l3.InFlight(), l3.pf.n.Load())
	}
}
