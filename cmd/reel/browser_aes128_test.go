package main

import (
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/ui"
	"github.com/reelvideo/reel/internal/testkit"
)

// aes128Key is TestBrowserAES128's content key; aes128WrongKey what the wrong key server hands
// out instead.
const (
	aes128Key      = "00112233445566778899aabbccddeeff"
	aes128WrongKey = "ffeeddccbbaa99887766554433221100"
)

// aes128KeyServer serves the 16 key bytes at /key on its own loopback port, with CORS since the
// player's page comes from another origin: the publisher's key server, in miniature. It counts
// the requests for the key.
func aes128KeyServer(t *testing.T, keyHex string) (uri string, hits *atomic.Int64) {
	t.Helper()
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	hits = &atomic.Int64{}
	uri = "http://" + serveLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.URL.Path != "/key" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(key)
	})) + "/key"
	return uri, hits
}

// serveLoopback serves h on a free loopback port until the test ends and returns host:port.
func serveLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestBrowserAES128: the sample ladder packaged with --encrypt aes-128, served by `reel origin`
// through `reel edge`, plays in Debian's headless Chromium with hls.js (the demo page's player,
// driven by edge/ui/e2e/play.mjs): hls.js reads METHOD=AES-128 from the media playlists, fetches
// the key from the key URI itself (a loopback key server with CORS), decrypts every segment in
// script and plays past playSeconds with frames decoded and no error. The same presentation
// whose key URI hands out a wrong key does not play. The page is the demo's (edge/ui), served
// by this test on its own port with the edge's absolute URLs, since `reel edge` has no page.
func TestBrowserAES128(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	node := testkit.RequireTool(t, "node")
	chromium := testkit.RequireTool(t, "chromium")
	vendor := requireUIModules(t)
	started := time.Now()
	bin := buildReel(t)

	dir := t.TempDir()
	rightURI, rightHits := aes128KeyServer(t, aes128Key)
	wrongURI, wrongHits := aes128KeyServer(t, aes128WrongKey)
	for name, uri := range map[string]string{"right": rightURI, "wrong": wrongURI} {
		code, _, stderr := runReel(t, "package", "--quiet", "--encrypt", "aes-128", "--key", aes128Key, "--key-uri", uri,
			sample("ladder_720p.mp4"), sample("ladder_480p.mp4"), sample("ladder_360p.mp4"), "-o", filepath.Join(dir, name))
		if code != exitOK {
			t.Fatalf("reel package --encrypt aes-128: exit %d\n%s", code, stderr)
		}
	}
	origin := startOrigin(t, bin, dir)
	_, edgeBase := startEdge(t, bin, "--origin", origin, "--cache-dir", t.TempDir())

	// The master playlist, through the edge, signals AES-128 with the key URI and no key.
	master := getBody(t, edgeBase+"/right/master.m3u8")
	if !strings.Contains(master, `#EXT-X-SESSION-KEY:METHOD=AES-128,URI="`+rightURI+`"`) || strings.Contains(master, aes128Key) {
		t.Fatalf("master playlist through the edge:\n%s", master)
	}
	media := getBody(t, edgeBase+"/right/video_720p/index.m3u8")
	if m, k := strings.Index(media, "#EXT-X-MAP:"), strings.Index(media, "#EXT-X-KEY:METHOD=AES-128"); m < 0 || k < m {
		t.Fatalf("media playlist through the edge: want EXT-X-MAP then EXT-X-KEY\n%s", media)
	}

	// The page's Content-Security-Policy lets it connect to the edge only; hls.js fetches the
	// key with XHR, so the key servers' origins join connect-src, as a publisher's page would
	// list its key server.
	pageHandler := ui.Handler(ui.Options{Vendor: vendor, Presentations: []ui.Presentation{
		{Name: "aes-128", Kind: ui.VOD, HLS: edgeBase + "/right/master.m3u8"},
		{Name: "aes-128 wrong key", Kind: ui.VOD, HLS: edgeBase + "/wrong/master.m3u8"},
	}})
	keyOrigins := strings.TrimSuffix(rightURI, "/key") + " " + strings.TrimSuffix(wrongURI, "/key")
	page := "http://" + serveLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHandler.ServeHTTP(&cspConnect{ResponseWriter: w, extra: keyOrigins}, r)
	}))
	const wrongTimeout = 15
	cases := []browserCase{
		{Name: "AES-128 HLS", Path: "/_reel/?" + url.Values{"p": {"aes-128"}, "f": {"hls"}}.Encode(), Play: playSeconds, Timeout: 40},
		{Name: "AES-128 HLS, wrong key", Path: "/_reel/?" + url.Values{"p": {"aes-128 wrong key"}, "f": {"hls"}}.Encode(), Play: playSeconds, Timeout: wrongTimeout},
	}
	res := runPlay(t, node, map[string]any{"chromium": chromium, "base": page, "cases": cases})
	if len(res.Cases) != len(cases) {
		t.Fatalf("%d cases reported, want %d", len(res.Cases), len(cases))
	}
	for _, c := range res.Cases {
		if c.Player == nil {
			t.Fatalf("%s: the page has no player state (console errors %q)", c.Name, c.ConsoleErrors)
		}
		t.Logf("%-24s %s: played %.2f s in %.1f s, %d frames; errors %q, warnings %q", c.Name, c.Player.Library,
			c.Player.Played, c.Seconds, c.Player.Frames, c.Player.Errors, c.Player.Warnings)
	}
	right, wrong := res.Cases[0].Player, res.Cases[1].Player
	if len(right.Errors) > 0 || !strings.HasPrefix(right.Library, "hls.js") {
		t.Errorf("right key: %s errors %q", right.Library, right.Errors)
	}
	if right.Played < playSeconds || right.Frames < 60 {
		t.Errorf("right key: played %.2f s, %d frames decoded; want past %.1f s", right.Played, right.Frames, playSeconds)
	}
	if rightHits.Load() == 0 {
		t.Error("hls.js never asked the key server for the key")
	}
	// A wrong key decrypts to noise: hls.js fails on the padding or the demuxer on the bytes,
	// and in any case nothing plays in the bounded time.
	if wrongHits.Load() == 0 {
		t.Error("wrong key: hls.js never asked its key server")
	}
	if wrong.Played > 0.1 || wrong.Frames > 0 {
		t.Errorf("wrong key: played %.2f s, %d frames (errors %q); want nothing", wrong.Played, wrong.Frames, wrong.Errors)
	}
	t.Logf("key requests: right %d, wrong %d; took %s", rightHits.Load(), wrongHits.Load(), time.Since(started).Round(time.Millisecond))
}

// cspConnect adds origins to connect-src of the Content-Security-Policy a handler sets.
type cspConnect struct {
	http.ResponseWriter
	extra   string
	patched bool
}

func (c *cspConnect) patch() {
	if c.patched {
		return
	}
	c.patched = true
	h := c.Header()
	if p := h.Get("Content-Security-Policy"); p != "" {
		h.Set("Content-Security-Policy", strings.Replace(p, "connect-src ", "connect-src "+c.extra+" ", 1))
	}
}

func (c *cspConnect) WriteHeader(code int) { c.patch(); c.ResponseWriter.WriteHeader(code) }

func (c *cspConnect) Write(b []byte) (int, error) { c.patch(); return c.ResponseWriter.Write(b) }

// getBody returns the body of a 200 answer to GET u.
func getBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	return string(b)
}
