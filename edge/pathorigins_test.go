package edge

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// pathOrigin is a loopback origin that names itself in every body, serves a large object
// with ranges, and records the paths it was asked for.
type pathOrigin struct {
	*testOrigin
	name  string
	mu    sync.Mutex
	paths []string
}

// bigBody is the large object both origins serve (under the same origin path): each
// origin's own bytes, so that a mix-up shows.
func bigBody(name string) []byte {
	return bytes.Repeat([]byte(name+"0123456789"), 20000)
}

func newPathOrigin(t *testing.T, name string) *pathOrigin {
	o := &pathOrigin{name: name}
	o.testOrigin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.paths = append(o.paths, r.URL.Path)
		o.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=600")
		switch {
		case strings.HasSuffix(r.URL.Path, ".m4s"):
			http.ServeContent(w, r, "seg.m4s", time.Unix(1e9, 0), bytes.NewReader(bigBody(name)))
		case strings.HasSuffix(r.URL.Path, ".m3u8"):
			// Relative URIs: they resolve under the client's path, prefix and all.
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			io.WriteString(w, "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg.m4s\n#EXT-X-ENDLIST\n")
		default:
			fmt.Fprintf(w, "%s:%s", name, r.URL.Path)
		}
	})
	return o
}

// asked reports the paths o was asked for since the last call.
func (o *pathOrigin) asked() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.paths
	o.paths = nil
	return p
}

// pathConfig fronts /vod/ (prefix stripped) on vod and /live/ (whole path) on live, and
// everything else on def, under any host.
func pathConfig(vod, live, def string) func(*Config) {
	return func(c *Config) {
		c.Origins = []Origin{
			{Host: "*", URL: def},
			{Name: "vod", URL: vod},
			{Name: "live", URL: live},
		}
		c.Rules = []Rule{
			{PathPrefix: "/vod/", Origin: "vod", StripPrefix: true},
			{PathPrefix: "/vod/seg/", TTL: time.Hour}, // inherits the origin and its strip
			{PathPrefix: "/live/", Origin: "live"},
			{PathPrefix: "/strip/", Origin: "live", StripPrefix: true}, // the same origin path as /vod/'s
		}
	}
}

// TestPathOrigins: one edge, one host, two real origins chosen by path: the origin asked is
// the right one and is sent the path its rule says (strip_prefix), misses then hits, ranges,
// purges and relative manifest URIs keep the client's path in the cache key, so two origins'
// objects at the same origin path never collide.
func TestPathOrigins(t *testing.T) {
	vod, live, def := newPathOrigin(t, "vod"), newPathOrigin(t, "live"), newPathOrigin(t, "default")
	e, srv := newEdge(t, def.URL, pathConfig(vod.URL, live.URL, def.URL))
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct {
		path, body string
		o          *pathOrigin
		asked      string
	}{
		{"/vod/a/x.txt", "vod:/a/x.txt", vod, "/a/x.txt"},
		{"/strip/a/x.txt", "live:/a/x.txt", live, "/a/x.txt"}, // the same origin path, another origin
		{"/live/a/x.txt", "live:/live/a/x.txt", live, "/live/a/x.txt"},
		{"/other/x.txt", "default:/other/x.txt", def, "/other/x.txt"},
		{"/vod/../live/b.txt", "live:/live/b.txt", live, "/live/b.txt"}, // routed as keyed
	} {
		r := get(t, srv.URL+tc.path)
		if r.status != 200 || r.body != tc.body || !strings.Contains(r.cacheStatus(), "fwd=uri-miss") {
			t.Fatalf("%s: %d %q %q, want a miss with %q", tc.path, r.status, r.body, r.cacheStatus(), tc.body)
		}
		if got := tc.o.asked(); len(got) != 1 || got[0] != tc.asked {
			t.Errorf("%s: %s origin asked for %q, want [%s]", tc.path, tc.o.name, got, tc.asked)
		}
	}
	for _, o := range []*pathOrigin{vod, live, def} {
		if got := o.asked(); len(got) != 0 {
			t.Errorf("%s origin asked for %q besides", o.name, got)
		}
	}
	// Hits, each with its own origin's body.
	for path, body := range map[string]string{"/vod/a/x.txt": "vod:/a/x.txt", "/strip/a/x.txt": "live:/a/x.txt", "/live/a/x.txt": "live:/live/a/x.txt"} {
		if r := get(t, srv.URL+path); r.body != body || !strings.Contains(r.cacheStatus(), "hit") {
			t.Errorf("%s again: %q %q, want a hit with %q", path, r.body, r.cacheStatus(), body)
		}
	}

	// A relative URI in a manifest resolves under the client's path: through the prefix again.
	r := get(t, srv.URL+"/vod/seg/pres/index.m3u8")
	if r.status != 200 || !strings.Contains(r.body, "\nseg.m4s\n") {
		t.Fatalf("manifest: %d %q", r.status, r.body)
	}
	base, _ := url.Parse(srv.URL + "/vod/seg/pres/index.m3u8")
	seg := base.ResolveReference(&url.URL{Path: "seg.m4s"}).String()
	want := bigBody("vod")
	// A Range first (sliced), then the whole object.
	r = get(t, seg, "Range", "bytes=100-199")
	if r.status != http.StatusPartialContent || r.body != string(want[100:200]) {
		t.Fatalf("range of %s: %d %q", seg, r.status, r.body)
	}
	if got := vod.asked(); len(got) == 0 || got[0] != "/seg/pres/index.m3u8" || got[len(got)-1] != "/seg/pres/seg.m4s" {
		t.Errorf("vod origin asked for %q, want the manifest then its segment without /vod", got)
	}
	// Again: from the slice stored (or being stored: joined), not from the origin again.
	if r = get(t, seg, "Range", "bytes=100-199"); r.body != string(want[100:200]) {
		t.Errorf("range again: %q %q", r.body, r.cacheStatus())
	}
	if got := vod.asked(); len(got) != 0 {
		t.Errorf("range again asked the vod origin for %q", got)
	}
	// The same origin path under /strip/ is live's object.
	r = get(t, srv.URL+"/strip/seg/pres/seg.m4s", "Range", "bytes=0-9")
	if r.status != http.StatusPartialContent || r.body != string(bigBody("live")[:10]) {
		t.Errorf("/strip/ range: %d %q, want live's bytes", r.status, r.body)
	}

	// A purge of one origin's object leaves the other's at the same origin path.
	admin := httptest.NewServer(e.AdminHandler("s3cret"))
	defer admin.Close()
	code, body := adminCall(t, "POST", admin.URL+"/purge?url="+url.QueryEscape("http://"+host+"/vod/a/x.txt"), "s3cret")
	if code != 200 || !strings.Contains(body, `"purged":1`) {
		t.Fatalf("purge: %d %s", code, body)
	}
	if r := get(t, srv.URL+"/strip/a/x.txt"); r.body != "live:/a/x.txt" || !strings.Contains(r.cacheStatus(), "hit") {
		t.Errorf("/strip/a/x.txt after purging /vod/a/x.txt: %q %q, want still a hit", r.body, r.cacheStatus())
	}
	vod.asked()
	if r := get(t, srv.URL+"/vod/a/x.txt"); r.body != "vod:/a/x.txt" || !strings.Contains(r.cacheStatus(), "fwd=uri-miss") {
		t.Errorf("/vod/a/x.txt after its purge: %q %q, want a miss", r.body, r.cacheStatus())
	}
	if got := vod.asked(); len(got) != 1 || got[0] != "/a/x.txt" {
		t.Errorf("refill asked the vod origin for %q", got)
	}
}

// TestPathOriginsShield: an edge sends its misses to the shield with the client's path (the
// shield routes it as the edge would, by its own copy of the rules); the shield makes the
// same origin choice and strips the prefix itself.
func TestPathOriginsShield(t *testing.T) {
	vod, live, def := newPathOrigin(t, "vod"), newPathOrigin(t, "live"), newPathOrigin(t, "default")
	conf := pathConfig(vod.URL, live.URL, def.URL)

	var mu sync.Mutex
	var shieldPaths []string
	scfg := DefaultConfig()
	scfg.Memory, scfg.Name = 64<<20, "shield-1"
	conf(&scfg)
	se, err := New(scfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { se.Close() })
	shield := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != HealthPath {
			mu.Lock()
			shieldPaths = append(shieldPaths, r.URL.Path)
			mu.Unlock()
		}
		se.ServeHTTP(w, r)
	}))
	t.Cleanup(shield.Close)

	_, srv := newEdge(t, def.URL, func(c *Config) {
		conf(c)
		c.Name = "edge-1"
		c.Parents.URLs = []string{shield.URL}
		c.Parents.HealthInterval = 50 * time.Millisecond
	})
	for _, tc := range []struct {
		path, body string
		o          *pathOrigin
		asked      string
	}{
		{"/vod/a/x.txt", "vod:/a/x.txt", vod, "/a/x.txt"},
		{"/strip/a/x.txt", "live:/a/x.txt", live, "/a/x.txt"},
		{"/live/c.txt", "live:/live/c.txt", live, "/live/c.txt"},
		{"/d.txt", "default:/d.txt", def, "/d.txt"},
	} {
		r := get(t, srv.URL+tc.path)
		if r.status != 200 || r.body != tc.body || !strings.HasPrefix(r.cacheStatus(), "shield-1; fwd=uri-miss") {
			t.Fatalf("%s: %d %q, Cache-Status %q: want %q through shield-1", tc.path, r.status, r.body, r.cacheStatus(), tc.body)
		}
		mu.Lock()
		got := shieldPaths
		shieldPaths = nil
		mu.Unlock()
		if len(got) != 1 || got[0] != tc.path {
			t.Errorf("%s: the shield was asked for %q, want the client's path", tc.path, got)
		}
		if got := tc.o.asked(); len(got) != 1 || got[0] != tc.asked {
			t.Errorf("%s: %s origin asked for %q by the shield, want [%s]", tc.path, tc.o.name, got, tc.asked)
		}
		if r := get(t, srv.URL+tc.path); r.body != tc.body || !strings.Contains(r.cacheStatus(), "edge-1; hit") {
			t.Errorf("%s again: %q %q, want edge-1's hit", tc.path, r.body, r.cacheStatus())
		}
	}
}

// TestPathOriginsTokenPath: a path-form token (/tok/<t>/vod/…) is taken out before the origin
// is chosen, so the rules route the path behind it — here where no "*" origin would catch it.
func TestPathOriginsTokenPath(t *testing.T) {
	vod, live := newPathOrigin(t, "vod"), newPathOrigin(t, "live")
	_, srv := newEdge(t, vod.URL, func(c *Config) {
		pathConfig(vod.URL, live.URL, vod.URL)(c)
		c.Origins = c.Origins[1:] // named origins only
		withTokens(c)
	})
	tok := url.PathEscape(mint(t, "/*", "k1", nil))
	for path, body := range map[string]string{"/vod/a.txt": "vod:/a.txt", "/live/b.txt": "live:/live/b.txt"} {
		if r := get(t, srv.URL+"/tok/"+tok+path); r.status != 200 || r.body != body {
			t.Errorf("/tok/…%s: %d %q, want %q", path, r.status, r.body, body)
		}
	}
	if r := get(t, srv.URL+"/tok/"+tok+"/other.txt"); r.status != http.StatusMisdirectedRequest {
		t.Errorf("/tok/…/other.txt with no origin for it: %d, want 421", r.status)
	}
}

// TestPathOriginsLogName: an origin chosen by path that fails (an untrusted certificate) is
// named in the log by its name and URL; the other origin, under the same host, still serves.
func TestPathOriginsLogName(t *testing.T) {
	pki, stranger := newTestPKI(t), newTestPKI(t)
	untrusted := stranger.issue(t, []string{"127.0.0.1"}, false, time.Now().Add(time.Hour))
	bad := newTLSOrigin(t, &tls.Config{Certificates: []tls.Certificate{untrusted}}, false, []byte("x"))
	vod := newPathOrigin(t, "vod")
	var logs syncBuffer
	cfg := DefaultConfig()
	cfg.Memory = 64 << 20
	cfg.Origins = []Origin{{Name: "vod", URL: vod.URL}, {Name: "live", URL: bad.URL, Connection: Connection{CAFile: pki.caFile}}}
	cfg.Rules = []Rule{{PathPrefix: "/vod/", Origin: "vod", StripPrefix: true}, {PathPrefix: "/live/", Origin: "live"}}
	e, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := serveEdge(t, e, cfg)
	t.Cleanup(srv.Close)
	if r := get(t, srv.URL+"/live/a"); r.status != http.StatusBadGateway {
		t.Fatalf("/live/a from an untrusted origin: %d", r.status)
	}
	if r := get(t, srv.URL+"/vod/a"); r.status != 200 || r.body != "vod:/a" {
		t.Fatalf("/vod/a: %d %q", r.status, r.body)
	}
	text := logs.String()
	if want := `origin="live ` + bad.URL + `"`; !strings.Contains(text, "origin TLS failed") || !strings.Contains(text, want) {
		t.Errorf("log does not name the failing origin as %s:\n%s", want, text)
	}
	if strings.Contains(text, "vod ") {
		t.Errorf("log names the vod origin:\n%s", text)
	}
}
