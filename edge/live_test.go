package edge

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/reelvideo/reel/edge/cachekey"
	"github.com/reelvideo/reel/manifest"
	"github.com/reelvideo/reel/rangecache"
)

// fakeLive is a live HLS origin the test drives: a media playlist at /live/v/index.m3u8 (or
// any path under /live/v/ ending in .m3u8) listing the segments added so far, each served
// immutable; what is not listed yet is 404 no-store, like packager/live. It counts requests by
// path (query included).
type fakeLive struct {
	mu       sync.Mutex
	segs     []int
	target   int
	partInf  string // e.g. "PART-TARGET=1.0"
	hint     string // preload-hint URI
	maxAge   string // the playlist's Cache-Control
	ended    bool
	counts   map[string]int
	hold     chan struct{} // when set, hinted parts and blocking reloads wait for it
	segDelay time.Duration
}

func newFakeLive(target int, maxAge string, segs ...int) *fakeLive {
	return &fakeLive{segs: segs, target: target, maxAge: maxAge, counts: map[string]int{}}
}

func (l *fakeLive) add(n int) {
	l.mu.Lock()
	l.segs = append(l.segs, n)
	l.mu.Unlock()
}

func (l *fakeLive) count(path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[path]
}

func (l *fakeLive) playlist() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:%d\n", l.target)
	if l.partInf != "" {
		b.WriteString("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3\n#EXT-X-PART-INF:" + l.partInf + "\n")
	}
	if len(l.segs) > 0 {
		fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", l.segs[0])
	}
	b.WriteString("#EXT-X-MAP:URI=\"init.mp4\"\n")
	for _, n := range l.segs {
		fmt.Fprintf(&b, "#EXTINF:%d.000,\nseg_%d.m4s\n", l.target, n)
	}
	if l.hint != "" {
		b.WriteString("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"" + l.hint + "\"\n")
	}
	if l.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.String()
}

func (l *fakeLive) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.counts[r.URL.RequestURI()]++
	hold, delay := l.hold, l.segDelay
	l.mu.Unlock()
	name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	switch {
	case strings.HasSuffix(name, ".m3u8"):
		if r.URL.Query().Get("_HLS_msn") != "" && hold != nil {
			<-hold
		}
		l.mu.Lock()
		pl, cc := l.playlist(), l.maxAge
		l.mu.Unlock()
		w.Header().Set("Cache-Control", cc)
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		io.WriteString(w, pl)
	case name == "init.mp4":
		w.Header().Set("Cache-Control", "max-age=31536000, immutable")
		io.WriteString(w, "init")
	default:
		var n, p int
		isPart := false
		if _, err := fmt.Sscanf(name, "seg_%d.%d.m4s", &n, &p); err == nil {
			isPart = true
		} else if _, err := fmt.Sscanf(name, "seg_%d.m4s", &n); err != nil {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		l.mu.Lock()
		listed := false
		for _, s := range l.segs {
			listed = listed || s == n
		}
		l.mu.Unlock()
		if isPart && hold != nil {
			<-hold
			listed = true
		}
		if !listed {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "not yet", http.StatusNotFound)
			return
		}
		time.Sleep(delay)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("Content-Type", "video/iso.segment")
		io.WriteString(w, name+strings.Repeat(".", 1000))
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

func liveEdge(t *testing.T, l *fakeLive, change func(*Config)) (*Edge, *edgeServer, *testOrigin) {
	o := newOrigin(t, l.ServeHTTP)
	e, srv := newEdge(t, o.URL, change)
	t.Cleanup(func() { e.Close() })
	return e, srv, o
}

// TestLiveManifestClassification: which responses are live manifests, and the freshness the
// edge stores for them (and sends on) when the origin says max-age=60. RFC 8216 §6.2.1 (live
// playlists have no EXT-X-ENDLIST), §4.3.3.1 (target duration), rfc8216bis §4.4.3.7 (part
// target); ISO/IEC 23009-1 §5.4 (dynamic MPDs, minimumUpdatePeriod); RFC 9111 §5.2.2.10.
func TestLiveManifestClassification(t *testing.T) {
	live6 := "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:6,\ns1.ts\n"
	ll := "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=1.0\n#EXTINF:4,\ns1.m4s\n#EXT-X-PART:DURATION=1,URI=\"s2.0.m4s\"\n"
	vod := "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6,\ns1.ts\n#EXT-X-ENDLIST\n"
	ended := "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\ns1.ts\n#EXT-X-ENDLIST\n"
	master := "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv/index.m3u8\n"
	dynamic := `<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT4S"><Period/></MPD>`
	static := `<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT60S"><Period/></MPD>`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, live6)
	zw.Close()

	type answer struct{ ct, ce, body, cc string }
	routes := map[string]answer{
		"/live.m3u8":        {"application/vnd.apple.mpegurl", "", live6, "max-age=60"},
		"/ll.m3u8":          {"application/vnd.apple.mpegurl", "", ll, "max-age=60"},
		"/vod.m3u8":         {"application/vnd.apple.mpegurl", "", vod, "max-age=60"},
		"/ended.m3u8":       {"application/x-mpegURL", "", ended, "max-age=60"},
		"/master.m3u8":      {"application/vnd.apple.mpegurl", "", master, "max-age=60"},
		"/live.mpd":         {"application/dash+xml", "", dynamic, "max-age=60"},
		"/static.mpd":       {"application/dash+xml", "", static, "max-age=60"},
		"/by-type":          {"audio/mpegurl; charset=utf-8", "", live6, "max-age=60"},
		"/by-ext.m3u8":      {"text/plain", "", live6, "max-age=60"},
		"/not-manifest.txt": {"text/plain", "", live6, "max-age=60"},
		"/gzip.m3u8":        {"application/vnd.apple.mpegurl", "gzip", gz.String(), "max-age=60"},
		"/swr.m3u8":         {"application/vnd.apple.mpegurl", "", live6, "max-age=60, stale-while-revalidate=600, stale-if-error=86400"},
		"/cdn.m3u8":         {"application/vnd.apple.mpegurl", "", live6, "max-age=60"},
	}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		a := routes[r.URL.Path]
		w.Header().Set("Content-Type", a.ct)
		w.Header().Set("Cache-Control", a.cc)
		if r.URL.Path == "/cdn.m3u8" {
			w.Header().Set("CDN-Cache-Control", "max-age=600")
		}
		if a.ce != "" {
			w.Header().Set("Content-Encoding", a.ce)
		}
		io.WriteString(w, a.body)
	})
	e, srv := newEdge(t, o.URL, func(c *Config) { c.Cache.StaleIfError = time.Hour })
	for _, tc := range []struct {
		path, wantCC, wantCDN, kind string
	}{
		{"/live.m3u8", "max-age=3, s-maxage=3, stale-if-error=6", "", "hls-media-live"},                          // target/2; stale ≤ target
		{"/ll.m3u8", "max-age=1, s-maxage=1, stale-if-error=4", "", "hls-media-live"},                            // the part target
		{"/vod.m3u8", "max-age=60", "", "hls-media"},                                                             // normal rules
		{"/ended.m3u8", "max-age=60", "", "hls-media"},                                                           // normal rules
		{"/master.m3u8", "max-age=60", "", "hls-master"},                                                         // normal rules
		{"/live.mpd", "max-age=2, s-maxage=2, stale-if-error=4", "", "dash-live"},                                // minimumUpdatePeriod/2
		{"/static.mpd", "max-age=60", "", "dash"},                                                                // normal rules
		{"/by-type", "max-age=3, s-maxage=3, stale-if-error=6", "", "hls-media-live"},                            // Content-Type alone
		{"/by-ext.m3u8", "max-age=3, s-maxage=3, stale-if-error=6", "", "hls-media-live"},                        // extension alone
		{"/not-manifest.txt", "max-age=60", "", ""},                                                              // neither
		{"/gzip.m3u8", "max-age=3, s-maxage=3, stale-if-error=6", "", "hls-media-live"},                          // gzip read
		{"/swr.m3u8", "max-age=3, s-maxage=3, stale-while-revalidate=6, stale-if-error=6", "", "hls-media-live"}, // RFC 5861 windows capped
		{"/cdn.m3u8", "max-age=3", "s-maxage=3, stale-if-error=6", "hls-media-live"},                             // RFC 9213: the field in force
	} {
		t.Run(tc.path, func(t *testing.T) {
			before := 0.0
			if tc.kind != "" {
				before = counterValue(e.m.manifests.WithLabelValues(tc.kind))
			}
			miss := get(t, srv.URL+tc.path, "Accept-Encoding", "gzip")
			hit := get(t, srv.URL+tc.path, "Accept-Encoding", "gzip")
			if miss.status != 200 || hit.status != 200 || !strings.Contains(hit.cacheStatus(), "hit") {
				t.Fatalf("miss %d, then %d %q", miss.status, hit.status, hit.cacheStatus())
			}
			for _, r := range []result{miss, hit} {
				if got := strings.Join(r.header.Values("Cache-Control"), ", "); got != tc.wantCC {
					t.Errorf("Cache-Control %q, want %q", got, tc.wantCC)
				}
				if got := strings.Join(r.header.Values("Cdn-Cache-Control"), ", "); got != tc.wantCDN && tc.wantCDN != "" {
					t.Errorf("CDN-Cache-Control %q, want %q", got, tc.wantCDN)
				}
			}
			if tc.kind != "" && counterValue(e.m.manifests.WithLabelValues(tc.kind))-before != 1 {
				t.Errorf("not counted as %s", tc.kind)
			}
		})
	}
}

// TestLiveTTLCap: the origin says max-age=60 for a live playlist of target duration 2 s; the
// edge refreshes it at least every second (target/2), and no more often.
func TestLiveTTLCap(t *testing.T) {
	l := newFakeLive(2, "max-age=60", 1, 2, 3)
	_, srv, _ := liveEdge(t, l, nil)
	pl := srv.URL + "/live/v/index.m3u8"
	get(t, pl)
	l.add(4) // the origin moves on
	start := time.Now()
	for !strings.Contains(get(t, pl).body, "seg_4.m4s") {
		if time.Since(start) > 2*time.Second { // 1 s lifetime (+ up to 1 s of Date rounding)
			t.Fatalf("the edge still serves the old playlist after %v", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Polling hard for 3 s: about one origin request per second.
	n0 := l.count("/live/v/index.m3u8")
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		get(t, pl)
		time.Sleep(5 * time.Millisecond)
	}
	if n := l.count("/live/v/index.m3u8") - n0; n < 2 || n > 4 {
		t.Errorf("%d playlist requests at the origin in 3 s, want about 3 (TTL 1 s)", n)
	}
}

// TestLiveStaleBound: with stale-if-error granted generously (the origin's 1 day, the
// configured default 1 h), a live playlist (target 2 s, lifetime capped at 1 s) is served
// stale when the origin fails at most one target duration (2 s) past its lifetime, then the
// client gets the error (RFC 5861 §4 windows, capped).
func TestLiveStaleBound(t *testing.T) {
	l := newFakeLive(2, "max-age=60, stale-if-error=86400", 1, 2)
	_, srv, o := liveEdge(t, l, func(c *Config) { c.Cache.StaleIfError = time.Hour })
	pl := srv.URL + "/live/v/index.m3u8"
	first := get(t, pl)
	if first.status != 200 {
		t.Fatal(first.status)
	}
	fetched := time.Now()
	if cc := strings.Join(first.header.Values("Cache-Control"), ", "); cc != "max-age=1, s-maxage=1, stale-if-error=2" {
		t.Errorf("stored Cache-Control %q", cc)
	}
	o.Close() // the origin goes down
	time.Sleep(time.Until(fetched.Add(1500 * time.Millisecond)))
	if r := get(t, pl); r.status != 200 || !strings.Contains(r.cacheStatus(), "stale-if-error") {
		t.Errorf("within the window: %d %q", r.status, r.cacheStatus())
	}
	// Lifetime 1 s + stale 2 s, measured from the origin's Date (whole seconds: up to 1 s
	// earlier than the fetch); past that, errors — even with a client's max-stale.
	time.Sleep(time.Until(fetched.Add(3200 * time.Millisecond)))
	for _, hdr := range [][]string{nil, {"Cache-Control", "max-stale=3600"}} {
		if r := get(t, pl, hdr...); r.status != http.StatusBadGateway && r.status != http.StatusGatewayTimeout {
			t.Errorf("%v, %v after the fetch: %d %q, want 502/504", hdr, time.Since(fetched), r.status, r.cacheStatus())
		}
	}
}

// TestLiveRefreshCoalesced: 200 viewers polling a live playlist (lifetime 1 s) for 3 s
// through one edge → about one origin request per second, however many viewers.
func TestLiveRefreshCoalesced(t *testing.T) {
	viewers := 200
	if raceEnabled {
		viewers = 50
	}
	l := newFakeLive(2, "max-age=1", 1, 2)
	l.segDelay = 0
	_, srv, _ := liveEdge(t, l, nil)
	pl := srv.URL + "/live/v/index.m3u8"
	tr := &http.Transport{MaxIdleConnsPerHost: viewers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var served atomic.Int64
	end := time.Now().Add(3 * time.Second)
	for range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				resp, err := c.Get(pl)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					served.Add(1)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	n := l.count("/live/v/index.m3u8")
	t.Logf("%d playlist responses to %d viewers, %d origin requests", served.Load(), viewers, n)
	if n > 3+1 {
		t.Errorf("%d origin requests in 3 s, want ≤ 1 per second (+1)", n)
	}
}

// TestLiveBlockingReloadCoalesced: clients blocking on the same part (rfc8216bis §6.2.5.2,
// _HLS_msn/_HLS_part) share one origin request held open for longer than the coalescing wait
// and the origin first-byte timeout, fanned out when it answers; other parts are other keys.
func TestLiveBlockingReloadCoalesced(t *testing.T) {
	clients := 50
	l := newFakeLive(2, "max-age=1", 1, 2)
	l.partInf = "PART-TARGET=0.5"
	l.hold = make(chan struct{})
	_, srv, _ := liveEdge(t, l, func(c *Config) {
		c.Limits.CoalesceWait = 300 * time.Millisecond
		c.Limits.OriginFirstByteTimeout = 500 * time.Millisecond
	})
	var wg sync.WaitGroup
	bodies := make(chan string, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "_HLS_msn=3&_HLS_part=1"
			if i%2 == 1 {
				q = "_HLS_part=1&_HLS_msn=3" // the same request: the key sorts parameters
			}
			r := get(t, srv.URL+"/live/v/index.m3u8?"+q)
			if r.status != 200 {
				t.Errorf("%d %q", r.status, r.cacheStatus())
			}
			bodies <- r.body
		}()
	}
	time.Sleep(time.Second) // past CoalesceWait and the origin first-byte timeout
	l.mu.Lock()
	l.segs = append(l.segs, 3)
	l.mu.Unlock()
	close(l.hold)
	wg.Wait()
	close(bodies)
	n := l.count("/live/v/index.m3u8?_HLS_msn=3&_HLS_part=1") + l.count("/live/v/index.m3u8?_HLS_part=1&_HLS_msn=3")
	if n != 1 {
		t.Errorf("%d origin requests for %d blocked clients, want 1", n, clients)
	}
	for b := range bodies {
		if !strings.Contains(b, "seg_3.m4s") {
			t.Errorf("body %q", b)
		}
	}
	// Each _HLS_ combination is its own key, the query order is not.
	k, _ := cachekey.New(nil)
	keys := map[string]string{}
	for _, q := range []string{"", "_HLS_msn=3", "_HLS_msn=3&_HLS_part=1", "_HLS_msn=3&_HLS_part=2", "_HLS_msn=4&_HLS_part=1",
		"_HLS_msn=3&_HLS_part=1&_HLS_skip=YES", "_HLS_msn=3&_HLS_part=1&_HLS_skip=v2", "_HLS_skip=YES"} {
		r, _ := http.NewRequest(http.MethodGet, "http://h/live/v/index.m3u8?"+q, nil)
		key := k.Key(r, nil)
		if other, dup := keys[key]; dup {
			t.Errorf("%q and %q share the key %q", q, other, key)
		}
		keys[key] = q
	}
	a, _ := http.NewRequest(http.MethodGet, "http://h/p.m3u8?_HLS_part=1&_HLS_msn=3&_HLS_skip=YES", nil)
	b, _ := http.NewRequest(http.MethodGet, "http://h/p.m3u8?_HLS_skip=YES&_HLS_msn=3&_HLS_part=1", nil)
	if k.Key(a, nil) != k.Key(b, nil) {
		t.Errorf("parameter order changes the key: %q, %q", k.Key(a, nil), k.Key(b, nil))
	}
}

// TestLivePrefetch: a live playlist's newest segment (and its init segment) is prefetched
// before the playlist is served, so the first viewer's segment request is a hit; then what
// each refreshed playlist adds — not what it listed before (a viewer joins at the live edge,
// and what was listed before is cached or was not wanted). Each segment costs the origin at
// most one request; the metrics count the use, and the waste.
func TestLivePrefetch(t *testing.T) {
	l := newFakeLive(2, "max-age=1", 1, 2, 3)
	l.segDelay = 50 * time.Millisecond // the hold must cover a slow segment
	e, srv, _ := liveEdge(t, l, nil)
	pl := srv.URL + "/live/v/index.m3u8"
	if r := get(t, pl); r.status != 200 {
		t.Fatal(r.status)
	}
	for _, seg := range []string{"seg_3.m4s", "init.mp4"} {
		r := get(t, srv.URL+"/live/v/"+seg)
		if r.status != 200 || !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
			t.Errorf("%s: %d %q, want a hit", seg, r.status, r.cacheStatus())
		}
	}
	l.add(4)
	l.add(5)
	waitUntil(t, func() bool { return strings.Contains(get(t, pl).body, "seg_5.m4s") })
	for _, seg := range []string{"seg_4.m4s", "seg_5.m4s"} {
		if l.count("/live/v/"+seg) != 1 {
			t.Errorf("%s: not prefetched", seg)
		}
	}
	if r := get(t, srv.URL+"/live/v/seg_4.m4s"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("seg_4: %q, want a hit", r.cacheStatus())
	}
	for seg, want := range map[string]int{"seg_1.m4s": 0, "seg_2.m4s": 0, "seg_3.m4s": 1, "seg_4.m4s": 1, "seg_5.m4s": 1, "init.mp4": 1} {
		if n := l.count("/live/v/" + seg); n != want {
			t.Errorf("%s: %d origin requests, want %d", seg, n, want)
		}
	}
	started, used := counterValue(e.m.livePrefetch["started"]), counterValue(e.m.livePrefetch["used"])
	if started != 4 || used != 3 || e.stats.PrefetchUsed.Load() != 3 {
		t.Errorf("prefetch started %v, used %v (stats %d); want 4 and 3", started, used, e.stats.PrefetchUsed.Load())
	}

	// seg_5 was never asked for; purged, it counts as wasted at the next sweep.
	e.tiers.invalidate(e.keyOf(mustRequest(t, srv.URL+"/live/v/seg_5.m4s")))
	e.manifests.SweepNow()
	if w := counterValue(e.m.livePrefetch["wasted"]); w != 1 || e.stats.PrefetchWasted.Load() != 1 {
		t.Errorf("wasted %v, want 1", w)
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Host = r.URL.Host
	return r
}

// TestLivePrefetchHint: an LL-HLS playlist's preload-hint part (rfc8216bis §4.4.5.3) is
// prefetched once its clients ask for hinted parts — held open by the origin until it exists
// — and the players asking for it join that one origin request; the playlist itself is not
// held for it. Its whole segments are prefetched only once its clients ask for some (LL-HLS
// players read parts: prefetching segments too doubled the origin's bytes, issue 12).
func TestLivePrefetchHint(t *testing.T) {
	l := newFakeLive(2, "max-age=1", 1, 2)
	l.partInf = "PART-TARGET=0.5"
	l.hint = "seg_3.0.m4s"
	l.hold = make(chan struct{})
	e, srv, _ := liveEdge(t, l, nil)
	pl := srv.URL + "/live/v/index.m3u8"
	start := time.Now()
	if r := get(t, pl); r.status != 200 {
		t.Fatal(r.status)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the LL-HLS playlist waited %v for its prefetch", d)
	}
	// A player asks for the hinted part: the rendition's clients read parts.
	first := make(chan result, 1)
	go func() { first <- get(t, srv.URL+"/live/v/seg_3.0.m4s") }()
	waitUntil(t, func() bool { return l.count("/live/v/seg_3.0.m4s") == 1 })
	l.mu.Lock()
	l.hint = "seg_3.1.m4s"
	l.mu.Unlock()
	waitUntil(t, func() bool { return strings.Contains(get(t, pl).body, "seg_3.1.m4s") })
	waitUntil(t, func() bool { return l.count("/live/v/seg_3.1.m4s") == 1 }) // prefetched
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := get(t, srv.URL+"/live/v/seg_3.1.m4s"); r.status != 200 {
				t.Errorf("part: %d", r.status)
			}
		}()
	}
	waitUntil(t, func() bool { return counterValue(e.m.livePrefetch["used"]) >= 1 })
	close(l.hold)
	wg.Wait()
	if r := <-first; r.status != 200 {
		t.Errorf("first part: %d", r.status)
	}
	if n := l.count("/live/v/seg_3.1.m4s"); n != 1 {
		t.Errorf("hinted part: %d origin requests, want 1", n)
	}
	if n := l.count("/live/v/seg_2.m4s"); n != 0 {
		t.Errorf("a whole segment of an LL-HLS playlist whose clients read parts was prefetched (%d requests)", n)
	}

	// A client reads whole segments: the next one is prefetched.
	get(t, srv.URL+"/live/v/seg_2.m4s")
	l.add(3)
	waitUntil(t, func() bool { return strings.Contains(get(t, pl).body, "seg_3.m4s") })
	waitUntil(t, func() bool { return l.count("/live/v/seg_3.m4s") == 1 })
}

// TestLivePrefetchBounds: nothing cached twice, nothing on another host, at most
// Prefetch.Concurrency at a time, at most Prefetch.Segments of what a refresh adds, newest
// first; the ended playlist (VOD rules) prefetches nothing.
func TestLivePrefetchBounds(t *testing.T) {
	l := newFakeLive(2, "max-age=1", 1, 2)
	l.segDelay = 300 * time.Millisecond
	e, srv, _ := liveEdge(t, l, func(c *Config) {
		c.Live.Prefetch.Concurrency = 2
		c.Live.Prefetch.Segments = 3
		c.Live.Prefetch.Hold = 100 * time.Millisecond
	})
	pl := srv.URL + "/live/v/index.m3u8"
	get(t, pl)
	// The init segment and the newest segment; then their slots are free again.
	waitUntil(t, func() bool {
		return counterValue(e.m.livePrefetch["started"]) == 2 && e.manifests.InFlight() == 0
	})
	for _, n := range []int{3, 4, 5, 6, 7} {
		l.add(n)
	}
	waitUntil(t, func() bool { return strings.Contains(get(t, pl).body, "seg_7.m4s") })
	// Five added, three wanted (7, 6, 5), two slots: seg_7 and seg_6 got them.
	waitUntil(t, func() bool {
		return counterValue(e.m.livePrefetch["started"])+counterValue(e.m.livePrefetch["dropped"]) >= 5 &&
			l.count("/live/v/seg_6.m4s") >= 1
	})
	if s, d := counterValue(e.m.livePrefetch["started"]), counterValue(e.m.livePrefetch["dropped"]); s != 4 || d != 1 {
		t.Errorf("started %v, dropped %v; want 4 and 1", s, d)
	}
	for seg, want := range map[string]int{"seg_7.m4s": 1, "seg_6.m4s": 1, "seg_5.m4s": 0, "seg_4.m4s": 0, "seg_3.m4s": 0, "seg_1.m4s": 0} {
		if n := l.count("/live/v/" + seg); n != want {
			t.Errorf("%s: %d origin requests, want %d (the newest first, at most 3, 2 at a time)", seg, n, want)
		}
	}
	l2 := newFakeLive(2, "max-age=1", 1, 2)
	l2.ended = true
	e2, srv2, _ := liveEdge(t, l2, nil)
	get(t, srv2.URL+"/live/v/index.m3u8")
	time.Sleep(100 * time.Millisecond)
	if s := counterValue(e2.m.livePrefetch["started"]); s != 0 {
		t.Errorf("an ended playlist prefetched %v", s)
	}
}

// TestLiveConfig: the live section of the YAML file, its defaults and its checks.
func TestLiveConfig(t *testing.T) {
	p := t.TempDir() + "/edge.yaml"
	os.WriteFile(p, []byte(`
origins: [{host: "*", url: "http://127.0.0.1:8080"}]
live:
  max_ttl_fraction: 0.25
  max_stale_fraction: 0.5
  blocking_wait: 20s
  max_manifest_size: 1MiB
  prefetch: {segments: 2, concurrency: 4, hold: 500ms}
`), 0o644)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := Live{MaxTTLFraction: 0.25, MaxStaleFraction: 0.5, BlockingWait: 20 * time.Second, MaxManifestSize: 1 << 20,
		Prefetch: LivePrefetch{Segments: 2, Concurrency: 4, Hold: 500 * time.Millisecond}}
	if cfg.Live != want {
		t.Errorf("got %+v", cfg.Live)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Target 8 s, parts of 3 s: a quarter of the target (2 s), then within the part target.
	if ttl, stale := e.manifests.Limits(manifest.Info{Target: 8 * time.Second}); ttl != 2*time.Second || stale != 4*time.Second {
		t.Errorf("limits %v %v", ttl, stale)
	}
	if ttl, _ := e.manifests.Limits(manifest.Info{Target: 8 * time.Second, PartTarget: 1500 * time.Millisecond}); ttl != 1500*time.Millisecond {
		t.Errorf("LL-HLS ttl %v", ttl)
	}
	if ttl, stale := e.manifests.Limits(manifest.Info{Target: time.Second}); ttl != time.Second || stale != 500*time.Millisecond {
		t.Errorf("1 s target: %v %v (the lifetime is never below 1 s)", ttl, stale)
	}
	e.Close()
	// Zero values are the defaults (but a zero hold is no hold).
	d := (Live{}).withDefaults()
	d.Prefetch.Hold = 2 * time.Second
	if d != DefaultConfig().Live {
		t.Errorf("zero Live → %+v, DefaultConfig %+v", d, DefaultConfig().Live)
	}
	for _, bad := range []func(*Live){
		func(l *Live) { l.MaxTTLFraction = 1.5 },
		func(l *Live) { l.MaxStaleFraction = -1 },
		func(l *Live) { l.BlockingWait = -time.Second },
		func(l *Live) { l.Prefetch.Concurrency = -1 },
		func(l *Live) { l.Prefetch.Hold = -time.Second },
	} {
		c := cfg
		bad(&c.Live)
		if c.Validate() == nil {
			t.Errorf("accepted %+v", c.Live)
		}
	}
}

// TestLiveManifestReadBack: reading a manifest ahead to classify it leaves its body intact —
// a chunked one (classified, and stored with its length), one above max_manifest_size (not
// classified: normal rules), a truncated one (not stored, the client sees the truncation).
func TestLiveManifestReadBack(t *testing.T) {
	big := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + strings.Repeat("#EXTINF:2,\nseg.m4s\n", 200)
	small := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\ns.m4s\n"
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		switch r.URL.Path {
		case "/chunked.m3u8":
			io.WriteString(w, small[:10])
			w.(http.Flusher).Flush()
			io.WriteString(w, small[10:])
		case "/big.m3u8":
			io.WriteString(w, big)
		case "/short.m3u8":
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, small)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
	})
	_, srv := newEdge(t, o.URL, func(c *Config) { c.Live.MaxManifestSize = 1 << 10; c.Live.Prefetch.Off = true })
	for _, tc := range []struct{ path, body, cc string }{
		{"/chunked.m3u8", small, "max-age=1, s-maxage=1"},
		{"/big.m3u8", big, "max-age=60"},
	} {
		miss, hit := get(t, srv.URL+tc.path), get(t, srv.URL+tc.path)
		for _, r := range []result{miss, hit} {
			if r.status != 200 || r.body != tc.body || strings.Join(r.header.Values("Cache-Control"), ", ") != tc.cc {
				t.Errorf("%s: %d, %d bytes, %q", tc.path, r.status, len(r.body), r.header.Values("Cache-Control"))
			}
		}
		if !strings.Contains(hit.cacheStatus(), "hit") {
			t.Errorf("%s: not stored: %q", tc.path, hit.cacheStatus())
		}
	}
	resp, err := http.Get(srv.URL + "/short.m3u8")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a truncated manifest read as complete")
	}
	n := o.hits.Load()
	if resp, err := (&http.Client{Transport: &http.Transport{}}).Get(srv.URL + "/short.m3u8"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if o.hits.Load() != n+1 {
		t.Error("a truncated manifest was stored")
	}
}

// TestLivePrefetchDASH: a dynamic MPD lists every representation, but only those whose
// segments clients ask for are prefetched — what each refreshed MPD adds to them, and their
// init segments (ISO/IEC 23009-1 §5.3.9.4 templates with a §5.3.9.6 timeline); a low-latency
// MPD's newest segment, in progress, is not.
func TestLivePrefetchDASH(t *testing.T) {
	var mu sync.Mutex
	counts := map[string]int{}
	listed := map[string]int{"d": 5, "ll": 5} // segments 10… in the timeline, by MPD folder
	mpdFor := func(dir string) string {
		extra := ""
		if dir == "ll" {
			extra = ` availabilityTimeOffset="1.5" availabilityTimeComplete="false"`
		}
		mu.Lock()
		n := listed[dir]
		mu.Unlock()
		return `<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" minimumUpdatePeriod="PT2S">
<Period id="0" start="PT0S"><AdaptationSet>
<SegmentTemplate media="$RepresentationID$/seg_$Number$.m4s" initialization="$RepresentationID$/init.mp4" startNumber="10" timescale="1000"` + extra + `>
<SegmentTimeline><S t="0" d="2000" r="` + fmt.Sprint(n-1) + `"/></SegmentTimeline></SegmentTemplate>
<Representation id="hi" bandwidth="2000000"/><Representation id="lo" bandwidth="500000"/>
</AdaptationSet></Period></MPD>`
	}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.URL.Path]++
		mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, ".mpd"):
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Type", "application/dash+xml")
			io.WriteString(w, mpdFor(strings.Split(r.URL.Path, "/")[1]))
		default:
			w.Header().Set("Cache-Control", "max-age=31536000, immutable")
			io.WriteString(w, r.URL.Path)
		}
	})
	var srv func(dir string) string
	count := func(p string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[p]
	}
	grow := func(dir string) {
		mu.Lock()
		listed[dir]++
		want := fmt.Sprintf(`r="%d"`, listed[dir]-1)
		mu.Unlock()
		waitUntil(t, func() bool { return strings.Contains(get(t, srv(dir)).body, want) })
	}
	e, es := newEdge(t, o.URL, func(c *Config) { c.Live.Prefetch.Segments = 2 })
	srv = func(dir string) string { return es.URL + "/" + dir + "/manifest.mpd" }
	if r := get(t, srv("d")); r.status != 200 || strings.Join(r.header.Values("Cache-Control"), ", ") != "max-age=1, s-maxage=1" {
		t.Fatalf("%d %q", r.status, r.header.Values("Cache-Control"))
	}
	if s := counterValue(e.m.livePrefetch["started"]); s != 0 {
		t.Errorf("%v prefetches before any client watched a representation, want 0", s)
	}
	// A player starts on "hi": its init segment and newest segment.
	get(t, es.URL+"/d/hi/init.mp4")
	get(t, es.URL+"/d/hi/seg_14.m4s")
	grow("d")
	if r := get(t, es.URL+"/d/hi/seg_15.m4s"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("hi/seg_15: %q, want a hit (prefetched)", r.cacheStatus())
	}
	for _, p := range []string{"/d/lo/seg_15.m4s", "/d/lo/seg_14.m4s", "/d/lo/init.mp4", "/d/hi/seg_13.m4s"} {
		if n := count(p); n != 0 {
			t.Errorf("%s: %d origin requests, want 0 (not watched)", p, n)
		}
	}
	if s := counterValue(e.m.livePrefetch["started"]); s != 1 {
		t.Errorf("%v prefetches, want 1 (hi/seg_15)", s)
	}

	get(t, srv("ll"))
	get(t, es.URL+"/ll/hi/seg_13.m4s") // the newest complete one; seg_14 is in progress
	grow("ll")
	waitUntil(t, func() bool { return count("/ll/hi/seg_14.m4s") == 1 })
	if count("/ll/hi/seg_15.m4s") != 0 || count("/ll/lo/seg_14.m4s") != 0 {
		t.Errorf("low-latency MPD: in progress %d, not watched %d (want 0, 0)", count("/ll/hi/seg_15.m4s"), count("/ll/lo/seg_14.m4s"))
	}
}

// TestManifestBodyStaysPausable: a manifest's body read back after classification still lets a
// slice stream stop the origin's idle clock (rangecache.Pausable, found by method names only:
// a rename on either side would silently stop it).
func TestManifestBodyStaysPausable(t *testing.T) {
	e, _ := newEdge(t, "http://127.0.0.1:1", nil)
	text := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:2.0,\nseg_1.m4s\n"
	_, cancel := context.WithCancel(context.Background())
	body := newIdleBody(io.NopCloser(strings.NewReader(text)), time.Minute, cancel)
	defer body.Close()
	resp := &http.Response{StatusCode: http.StatusOK, Body: body, ContentLength: int64(len(text)),
		Header: http.Header{"Content-Type": {"application/vnd.apple.mpegurl"}, "Cache-Control": {"max-age=60"}}}
	r := httptest.NewRequest(http.MethodGet, "http://example.com/live/v.m3u8", nil)
	e.manifests.OnResponse(r, e.pol, resp, time.Now())
	if resp.Body == io.ReadCloser(body) {
		t.Fatal("the manifest was not read back (not classified?)")
	}
	if _, ok := resp.Body.(rangecache.Pausable); !ok {
		t.Fatalf("the read-back body %T is not a rangecache.Pausable", resp.Body)
	}
	if got, err := io.ReadAll(resp.Body); err != nil || string(got) != text {
		t.Fatalf("read back: %q, %v", got, err)
	}
}
