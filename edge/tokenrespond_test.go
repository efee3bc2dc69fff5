package edge

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/token"
)

// manifestOrigin serves a master playlist, an MPD and segments, counting requests by path.
type manifestOrigin struct {
	*testOrigin
	mu     sync.Mutex
	byPath map[string]int
	big    string // the body of /vod/demo/big.m3u8
}

const (
	tokMaster = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv0/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2000\nhttp://other.test/v1/index.m3u8\n"
	tokMPD    = `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period><AdaptationSet><SegmentTemplate media="v0/seg_$Number$.m4s" initialization="v0/init.mp4"/><Representation id="0" bandwidth="1"/></AdaptationSet></Period></MPD>`
)

func newManifestOrigin(t *testing.T) *manifestOrigin {
	o := &manifestOrigin{byPath: map[string]int{}}
	o.testOrigin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.byPath[r.URL.Path]++
		o.mu.Unlock()
		if strings.Contains(r.URL.RawQuery, "token") {
			w.WriteHeader(http.StatusTeapot) // the edge must never pass a token on
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=300, s-maxage=600")
		h.Set("ETag", `"v1"`)
		switch r.URL.Path {
		case "/vod/demo/master.m3u8":
			h.Set("Content-Type", "application/vnd.apple.mpegurl")
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(tokMaster))
		case "/vod/demo/manifest.mpd":
			h.Set("Content-Type", "application/dash+xml")
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(tokMPD))
		case "/vod/demo/big.m3u8":
			h.Set("Content-Type", "application/vnd.apple.mpegurl")
			w.Write([]byte(o.big))
		default:
			h.Set("Content-Type", "video/iso.segment")
			w.Write([]byte("segment " + r.URL.Path))
		}
	})
	return o
}

func (o *manifestOrigin) requests(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byPath[path]
}

// TestTokenCarriedIntoManifests: a manifest asked for with its token in the query comes back
// with the token on every URI of this edge (not on the other host's), from the one token-free
// object the edge stored: miss and hit give the same body, two tokens two bodies from one
// origin fetch, each marked private with its own weak ETag, which a 304 honours. Range gets the
// whole rewritten manifest; segments and the path form are served as stored.
func TestTokenCarriedIntoManifests(t *testing.T) {
	o := newManifestOrigin(t)
	_, srv := newEdge(t, o.URL, withTokens)
	self := srv.URL + "/vod/demo/"
	tokA := mint(t, "/vod/demo/*", "k1", nil)
	tokB := mint(t, "/vod/demo/*", "k2", nil)
	qa, qb := "token="+url.QueryEscape(tokA), "token="+url.QueryEscape(tokB)
	wantMaster := func(q string) string {
		return "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv0/index.m3u8?" + q + "\n#EXT-X-STREAM-INF:BANDWIDTH=2000\nhttp://other.test/v1/index.m3u8\n"
	}

	var etagA string
	for i, c := range []struct{ q, want, cache string }{
		{qa, wantMaster(qa), "fwd=uri-miss"},
		{qa, wantMaster(qa), "hit"},
		{qb, wantMaster(qb), "hit"},
	} {
		res := get(t, self+"master.m3u8?"+c.q)
		if res.status != http.StatusOK || res.body != c.want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, res.status, res.body, c.want)
		}
		if !strings.Contains(res.cacheStatus(), c.cache) {
			t.Errorf("request %d: Cache-Status %q, want %s", i, res.cacheStatus(), c.cache)
		}
		if cl := res.header.Get("Content-Length"); cl != strconv.Itoa(len(c.want)) {
			t.Errorf("request %d: Content-Length %s for %d bytes", i, cl, len(c.want))
		}
		if cc := res.header.Get("Cache-Control"); cc != "private, max-age=300" {
			t.Errorf("request %d: Cache-Control %q, want private, max-age=300", i, cc)
		}
		et := res.header.Get("ETag")
		if !strings.HasPrefix(et, `W/"v1-t`) {
			t.Errorf("request %d: ETag %q, want a weak per-token one", i, et)
		}
		if i == 0 {
			etagA = et
		} else if (et == etagA) != (c.q == qa) {
			t.Errorf("request %d: ETag %q against token A's %q: one ETag per token", i, et, etagA)
		}
	}
	if n := o.requests("/vod/demo/master.m3u8"); n != 1 {
		t.Errorf("the origin saw %d requests for the master, want 1", n)
	}
	// The stored object stays token-free: the path form gets it as stored.
	if res := get(t, srv.URL+"/tok/"+url.PathEscape(tokA)+"/vod/demo/master.m3u8"); res.status != http.StatusOK || res.body != tokMaster {
		t.Errorf("path form: %d %q, want the master unchanged", res.status, res.body)
	}
	// The client's validator is this token's body's: a 304 for it, a 200 for another token.
	if res := get(t, self+"master.m3u8?"+qa, "If-None-Match", etagA); res.status != http.StatusNotModified || res.header.Get("ETag") != etagA {
		t.Errorf("If-None-Match %s: %d ETag %q, want 304 with the same ETag", etagA, res.status, res.header.Get("ETag"))
	}
	if res := get(t, self+"master.m3u8?"+qb, "If-None-Match", etagA); res.status != http.StatusOK || res.body != wantMaster(qb) {
		t.Errorf("token B with token A's ETag: %d, want 200 and B's body", res.status)
	}
	// Range: the whole rewritten manifest.
	if res := get(t, self+"master.m3u8?"+qa, "Range", "bytes=0-9"); res.status != http.StatusOK || res.body != wantMaster(qa) {
		t.Errorf("Range: %d %q, want 200 and the whole rewritten master", res.status, res.body)
	}
	// The MPD: a miss, then a hit, both rewritten alike.
	wantMPD := strings.ReplaceAll(strings.ReplaceAll(tokMPD, `.m4s"`, `.m4s?`+strings.ReplaceAll(qa, "&", "&amp;")+`"`), `.mp4"`, `.mp4?`+qa+`"`)
	for i := range 2 {
		if res := get(t, self+"manifest.mpd?"+qa); res.status != http.StatusOK || res.body != wantMPD {
			t.Errorf("MPD %d: %d %q, want %q", i, res.status, res.body, wantMPD)
		}
	}
	// A segment with a query token: as stored, no rewriting, no private.
	res := get(t, self+"v0/seg_1.m4s?"+qa)
	if res.status != http.StatusOK || res.body != "segment /vod/demo/v0/seg_1.m4s" || strings.Contains(res.header.Get("Cache-Control"), "private") {
		t.Errorf("segment: %d %q Cache-Control %q", res.status, res.body, res.header.Get("Cache-Control"))
	}
	// A token refused on the manifest is refused, not carried.
	bad := mint(t, "/vod/other/*", "k1", nil)
	if res := get(t, self+"master.m3u8?token="+url.QueryEscape(bad)); res.status != http.StatusForbidden {
		t.Errorf("a token for another path: %d, want 403", res.status)
	}
}

// TestTokenManifestTooLarge: a manifest over maxTokenManifest asked for with a query token is a
// 502 that says so and names the path form, which serves it.
func TestTokenManifestTooLarge(t *testing.T) {
	o := newManifestOrigin(t)
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-TARGETDURATION:2\n")
	for i := 0; b.Len() <= maxTokenManifest; i++ {
		b.WriteString("#EXTINF:2.0,\nseg_" + strconv.Itoa(i) + ".m4s\n")
	}
	o.big = b.String()
	_, srv := newEdge(t, o.URL, func(c *Config) { withTokens(c); c.Memory = 256 << 20 })
	tok := mint(t, "/vod/demo/*", "k1", func(c *token.Claims) {})
	res := get(t, srv.URL+"/vod/demo/big.m3u8?token="+url.QueryEscape(tok))
	if res.status != http.StatusBadGateway || !strings.Contains(res.body, "/tok/") {
		t.Errorf("%d %.100q, want 502 naming the path form", res.status, res.body)
	}
	res = get(t, srv.URL+"/tok/"+url.PathEscape(tok)+"/vod/demo/big.m3u8")
	if res.status != http.StatusOK || len(res.body) != len(o.big) {
		t.Errorf("path form: %d, %d bytes, want 200 and %d", res.status, len(res.body), len(o.big))
	}
}

// TestTokenCarriedWhereverServed: the token is carried into manifests however the edge answers
// them — uncacheable (passed on), streamed without a length, HEAD — and on paths that don't
// need one when it is valid (a rule can leave masters open and protect the media); an invalid
// one there is neither refused nor carried.
func TestTokenCarriedWhereverServed(t *testing.T) {
	const media = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg_1.m4s\n"
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "token") {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/x-mpegURL; charset=utf-8")
		if strings.HasPrefix(r.URL.Path, "/gzip/") {
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Vary", "Accept-Encoding")
			zw := gzip.NewWriter(w)
			zw.Write([]byte(media))
			zw.Close()
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/nostore/"):
			w.Header().Set("Cache-Control", "no-store")
		case strings.HasPrefix(r.URL.Path, "/chunked/"):
			w.Header().Set("Cache-Control", "max-age=60")
			w.Write([]byte(media[:10]))
			w.(http.Flusher).Flush() // no Content-Length: chunked
		default:
			w.Header().Set("Cache-Control", "max-age=60")
		}
		if strings.HasPrefix(r.URL.Path, "/chunked/") {
			w.Write([]byte(media[10:]))
			return
		}
		w.Write([]byte(media))
	})
	_, srv := newEdge(t, o.URL, func(c *Config) {
		withTokens(c)
		c.Rules = []Rule{{PathPrefix: "/open/", Token: "off"}}
	})
	good := mint(t, "/*", "k1", nil)
	q := "token=" + url.QueryEscape(good)
	want := strings.Replace(media, "seg_1.m4s", "seg_1.m4s?"+q, 1)
	for _, path := range []string{"/nostore/a.m3u8", "/chunked/a.m3u8", "/chunked/a.m3u8", "/open/a.m3u8"} {
		res := get(t, srv.URL+path+"?"+q)
		if res.status != http.StatusOK || res.body != want || res.header.Get("Content-Length") != strconv.Itoa(len(want)) {
			t.Errorf("%s: %d %q (Content-Length %s), want 200 %q", path, res.status, res.body, res.header.Get("Content-Length"), want)
		}
	}
	// A gzipped playlist goes out rewritten, uncompressed.
	for i := range 2 {
		res := get(t, srv.URL+"/gzip/a.m3u8?"+q, "Accept-Encoding", "gzip")
		if res.status != http.StatusOK || res.body != want || res.header.Get("Content-Encoding") != "" {
			t.Errorf("gzip %d: %d %q Content-Encoding %q, want 200 %q uncompressed", i, res.status, res.body, res.header.Get("Content-Encoding"), want)
		}
	}
	res := do(t, http.MethodHead, srv.URL+"/open/a.m3u8?"+q)
	if res.status != http.StatusOK || res.header.Get("Content-Length") != "" || !strings.HasPrefix(res.header.Get("Cache-Control"), "private") {
		t.Errorf("HEAD: %d, Content-Length %q, Cache-Control %q; want 200, no length (the rewritten one is unknown), private",
			res.status, res.header.Get("Content-Length"), res.header.Get("Cache-Control"))
	}
	if res := get(t, srv.URL+"/open/a.m3u8?token=forged"); res.status != http.StatusOK || res.body != media {
		t.Errorf("an invalid token where none is needed: %d %q, want 200 and the playlist as stored", res.status, res.body)
	}
}

// TestTokenManifestManyViewers: 100 viewers at once with 100 distinct query tokens cost one
// origin request for the master, and each gets the master with its own token.
func TestTokenManifestManyViewers(t *testing.T) {
	o := newManifestOrigin(t)
	_, srv := newEdge(t, o.URL, withTokens)
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var mu sync.Mutex
	bodies := map[string]bool{}
	for i := range 100 {
		tok := mint(t, "/vod/demo/*", "k1", func(c *token.Claims) { c.Expires = c.Expires.Add(time.Duration(i) * time.Second) })
		q := "token=" + url.QueryEscape(tok)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(srv.URL + "/vod/demo/master.m3u8?" + q)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			want := strings.Replace(tokMaster, "v0/index.m3u8", "v0/index.m3u8?"+q, 1)
			if resp.StatusCode != http.StatusOK || string(b) != want {
				t.Errorf("viewer %d: %d %q, want its own token in %q", i, resp.StatusCode, b, want)
				return
			}
			mu.Lock()
			bodies[string(b)] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(bodies) != 100 {
		t.Errorf("%d distinct bodies for 100 tokens", len(bodies))
	}
	if n := o.requests("/vod/demo/master.m3u8"); n != 1 {
		t.Errorf("the origin saw %d requests for the master, want 1", n)
	}
}
