package edge

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/internal/testkit"
)

// rawClient sends requests as they are: no Accept-Encoding added, no body decoded.
var rawClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

type coded struct {
	status int
	header http.Header
	raw    []byte // as received
	body   []byte // decoded by Content-Encoding
}

// fetchCoded sends method url with header fields hdr (name, value pairs) and decodes the
// body with the real decoders: compress/gzip and andybalholm/brotli's reader.
func fetchCoded(t *testing.T, method, url string, hdr ...string) coded {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	c := coded{status: resp.StatusCode, header: resp.Header, raw: raw, body: raw}
	if method == http.MethodHead || len(raw) == 0 {
		return c
	}
	var dec io.Reader
	switch ce := resp.Header.Get("Content-Encoding"); ce {
	case "":
		return c
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: gzip: %v", url, err)
		}
		dec = zr
	case "br":
		dec = brotli.NewReader(bytes.NewReader(raw))
	default:
		t.Fatalf("%s: unexpected Content-Encoding %q", url, ce)
	}
	if c.body, err = io.ReadAll(dec); err != nil {
		t.Fatalf("%s: decoding %s: %v", url, resp.Header.Get("Content-Encoding"), err)
	}
	return c
}

func (c coded) varies() bool {
	for _, v := range c.header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Accept-Encoding") {
				return true
			}
		}
	}
	return false
}

// textBody is a playlist-like text of about n bytes.
func textBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "#EXTINF:4.000,\nvideo/1080p/segment_%06d.m4s\n", i)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return b.Bytes()
}

// compressOrigin serves fixed objects by path: each with its type, ETag and freshness.
type compressObject struct {
	ct, etag, cc string
	body         []byte
	// originCodes: the origin itself gzips for clients that accept it (Vary: Accept-Encoding).
	originCodes bool
}

func compressOrigin(t *testing.T, objects map[string]compressObject) *testOrigin {
	return newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		o, ok := objects[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", o.ct)
		h.Set("Cache-Control", o.cc)
		if o.etag != "" {
			h.Set("ETag", o.etag)
		}
		body := o.body
		if o.originCodes {
			h.Set("Vary", "Accept-Encoding")
			if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				var zb bytes.Buffer
				zw := gzip.NewWriter(&zb)
				zw.Write(body)
				zw.Close()
				body = zb.Bytes()
				h.Set("Content-Encoding", "gzip")
				h.Set("ETag", `"origin-gz"`)
			}
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}

// TestCompressionRoundTrip: what a real client decodes is the origin's body — Go's net/http
// client with its own gzip, brotli's reader, and curl --compressed.
func TestCompressionRoundTrip(t *testing.T) {
	body := textBody(64 << 10)
	o := compressOrigin(t, map[string]compressObject{
		"/p.m3u8": {ct: "application/vnd.apple.mpegurl", etag: `"p1"`, cc: "max-age=60", body: body},
	})
	_, srv := newEdge(t, o.URL, nil)
	url := srv.URL + "/p.m3u8"

	// Go's client asks for gzip and decodes it itself.
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !resp.Uncompressed || !bytes.Equal(got, body) {
		t.Fatalf("net/http client: uncompressed=%v, body equal %v (%d bytes)", resp.Uncompressed, bytes.Equal(got, body), len(got))
	}
	for _, ae := range []string{"br", "gzip"} {
		c := fetchCoded(t, http.MethodGet, url, "Accept-Encoding", ae)
		if c.header.Get("Content-Encoding") != ae || !bytes.Equal(c.body, body) || len(c.raw) >= len(body)/3 {
			t.Fatalf("%s: Content-Encoding %q, decoded equal %v, %d bytes on the wire for %d", ae, c.header.Get("Content-Encoding"), bytes.Equal(c.body, body), len(c.raw), len(body))
		}
	}
	curl := testkit.RequireTool(t, "curl")
	for _, ae := range []string{"br", "gzip"} {
		out, err := exec.Command(curl, "-sS", "--compressed", "-H", "Accept-Encoding: "+ae, "-D", "/dev/stderr", url).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", ae, err)
		}
		if !bytes.Equal(out, body) {
			t.Fatalf("curl --compressed (%s): %d bytes, not the origin's %d", ae, len(out), len(body))
		}
	}
	if o.hits.Load() != 1 {
		t.Fatalf("origin asked %d times, want 1", o.hits.Load())
	}
}

// TestCompressionTable: a text type goes out in the coding each request prefers, with Vary
// and an ETag per coding, from one origin fetch and one stored copy per coding; media, the
// origin's own codings, small bodies and no-transform go out as they are; HEAD,
// If-None-Match and Range.
func TestCompressionTable(t *testing.T) {
	text := textBody(32 << 10)
	media := bytes.Repeat([]byte("mdat video bytes that would compress very well "), 1000)
	o := compressOrigin(t, map[string]compressObject{
		"/t.m3u8":    {ct: "application/vnd.apple.mpegurl", etag: `"t1"`, cc: "max-age=60", body: text},
		"/t.json":    {ct: "application/json; charset=utf-8", etag: `W/"j1"`, cc: "max-age=60", body: text},
		"/seg.m4s":   {ct: "video/iso.segment", etag: `"s1"`, cc: "max-age=60", body: media},
		"/a.mp4":     {ct: "video/mp4", etag: `"v1"`, cc: "max-age=60", body: media},
		"/i.png":     {ct: "image/png", etag: `"i1"`, cc: "max-age=60", body: media},
		"/small.vtt": {ct: "text/vtt", etag: `"w1"`, cc: "max-age=60", body: []byte("WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")},
		"/nt.mpd":    {ct: "application/dash+xml", etag: `"n1"`, cc: "max-age=60, no-transform", body: text},
		"/oc.js":     {ct: "application/javascript", etag: `"o1"`, cc: "max-age=60", body: text, originCodes: true},
		"/off/x.css": {ct: "text/css", etag: `"c1"`, cc: "max-age=60", body: text},
	})
	off := false
	e, srv := newEdge(t, o.URL, func(c *Config) {
		c.Rules = []Rule{{PathPrefix: "/off/", Compress: &off}}
	})

	// The first request, a miss, already goes out coded (once the fill is stored).
	first := fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", "Accept-Encoding", "gzip, deflate, br, zstd")
	if first.header.Get("Content-Encoding") != "br" || !strings.Contains(first.header.Get("Cache-Status"), "fwd=uri-miss") || !bytes.Equal(first.body, text) {
		t.Fatalf("miss: Content-Encoding %q, Cache-Status %q", first.header.Get("Content-Encoding"), first.header.Get("Cache-Status"))
	}
	etags := map[string]string{} // by coding
	for _, tc := range []struct {
		ae   []string // Accept-Encoding lines; none: no field
		want string   // the coding served ("" identity)
	}{
		{[]string{"br"}, "br"},
		{[]string{"gzip"}, "gzip"},
		{[]string{"x-gzip"}, "gzip"},
		{[]string{"gzip, br"}, "br"},
		{[]string{"gzip", "br"}, "br"},
		{[]string{"br;q=0.5, gzip"}, "gzip"},
		{[]string{"br;q=0.8, gzip;q=0.9"}, "gzip"},
		{[]string{"gzip;q=1.0, br;q=1"}, "br"},
		{[]string{"*"}, "br"},
		{[]string{"*;q=0.5, br;q=0"}, "gzip"},
		{[]string{"identity"}, ""},
		{[]string{"identity;q=0"}, ""}, // nothing else acceptable: identity anyway (RFC 9110 §12.5.3)
		{[]string{"br;q=0.5, identity"}, ""},
		{[]string{"gzip;q=0, br;q=0"}, ""},
		{[]string{"deflate, zstd"}, ""},
		{[]string{"br;q=2"}, ""}, // malformed qvalue: ignored
		{[]string{""}, ""},
		{nil, ""},
	} {
		for round := range 2 {
			var hdr []string
			for _, v := range tc.ae {
				hdr = append(hdr, "Accept-Encoding", v)
			}
			c := fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", hdr...)
			name := fmt.Sprintf("Accept-Encoding %q (round %d)", tc.ae, round)
			if c.status != 200 || c.header.Get("Content-Encoding") != tc.want || !bytes.Equal(c.body, text) {
				t.Fatalf("%s: %d, Content-Encoding %q want %q, body equal %v", name, c.status, c.header.Get("Content-Encoding"), tc.want, bytes.Equal(c.body, text))
			}
			if !c.varies() || !strings.Contains(c.header.Get("Cache-Status"), "reel; hit") {
				t.Fatalf("%s: Vary %q, Cache-Status %q", name, c.header.Values("Vary"), c.header.Get("Cache-Status"))
			}
			if cl := c.header.Get("Content-Length"); cl != strconv.Itoa(len(c.raw)) {
				t.Fatalf("%s: Content-Length %s for %d bytes", name, cl, len(c.raw))
			}
			coding := c.header.Get("Content-Encoding")
			if prev, ok := etags[coding]; ok && prev != c.header.Get("ETag") {
				t.Fatalf("%s: ETag %s, before %s", name, c.header.Get("ETag"), prev)
			}
			etags[coding] = c.header.Get("ETag")
		}
	}
	if etags[""] != `"t1"` || etags["br"] != `"t1-br"` || etags["gzip"] != `"t1-gzip"` {
		t.Fatalf("ETags per coding: %q", etags)
	}
	// One origin fetch for every coding; one stored copy per coding, made once.
	if n := o.hits.Load(); n != 1 {
		t.Fatalf("origin asked %d times for /t.m3u8, want 1", n)
	}
	key := e.keyOfURL(mustURL(t, srv.URL+"/t.m3u8"), http.Header{})
	entry, ok := e.tiers.mem.Lookup(key)
	if !ok || len(entry.Variants) != 1 || len(entry.Coded) != 3 {
		t.Fatalf("stored: %v, variants %d, coded copies %d (want 1 and 3: br, gzip, identity)", ok, len(entry.Variants), len(entry.Coded))
	}
	brCopy := entry.Coded[store.Coding{VK: "", Name: "br"}]
	if !bytes.Equal(brCopy.Body, e.comp.encode(codingBrotli, 4, text)) {
		t.Fatal("a response fresh for a minute was not coded at brotli_level (4)")
	}
	fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", "Accept-Encoding", "br")
	if entry, _ := e.tiers.mem.Lookup(key); entry.Coded[store.Coding{VK: "", Name: "br"}] != brCopy {
		t.Fatal("the br copy was made again for a hit")
	}

	// HEAD: the coding's header, its length, no body.
	brGet := fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", "Accept-Encoding", "br")
	head := fetchCoded(t, http.MethodHead, srv.URL+"/t.m3u8", "Accept-Encoding", "br")
	if head.status != 200 || head.header.Get("Content-Encoding") != "br" || head.header.Get("Content-Length") != strconv.Itoa(len(brGet.raw)) || len(head.raw) != 0 || !head.varies() {
		t.Fatalf("HEAD br: %d, %q, Content-Length %q (GET sent %d), body %d bytes", head.status, head.header.Get("Content-Encoding"), head.header.Get("Content-Length"), len(brGet.raw), len(head.raw))
	}
	// If-None-Match with a coding's ETag: 304 for that coding, the full response for another.
	nm := fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", "Accept-Encoding", "br", "If-None-Match", `"t1-br"`)
	if nm.status != 304 || nm.header.Get("ETag") != `"t1-br"` || !nm.varies() {
		t.Fatalf("If-None-Match br ETag, br: %d ETag %q", nm.status, nm.header.Get("ETag"))
	}
	other := fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", "Accept-Encoding", "gzip", "If-None-Match", `"t1-br"`)
	if other.status != 200 || other.header.Get("Content-Encoding") != "gzip" || !bytes.Equal(other.body, text) {
		t.Fatalf("If-None-Match br ETag, gzip: %d %q", other.status, other.header.Get("Content-Encoding"))
	}
	idm := fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", "If-None-Match", `"t1"`)
	if idm.status != 304 {
		t.Fatalf("If-None-Match identity ETag, identity: %d", idm.status)
	}
	// Range: bytes of the identity copy, whatever the client accepts.
	rg := fetchCoded(t, http.MethodGet, srv.URL+"/t.m3u8", "Accept-Encoding", "br, gzip", "Range", "bytes=100-1099")
	if rg.status != 206 || rg.header.Get("Content-Encoding") != "" || !bytes.Equal(rg.raw, text[100:1100]) || rg.header.Get("Content-Range") != fmt.Sprintf("bytes 100-1099/%d", len(text)) || rg.header.Get("ETag") != `"t1"` || !rg.varies() {
		t.Fatalf("Range: %d, %q, Content-Range %q, ETag %q, equal %v", rg.status, rg.header.Get("Content-Encoding"), rg.header.Get("Content-Range"), rg.header.Get("ETag"), bytes.Equal(rg.raw, text[100:1100]))
	}
	// A weak ETag stays weak, with the coding inside its quotes.
	if j := fetchCoded(t, http.MethodGet, srv.URL+"/t.json", "Accept-Encoding", "gzip"); j.header.Get("ETag") != `W/"j1-gzip"` || !bytes.Equal(j.body, text) {
		t.Fatalf("json: ETag %q", j.header.Get("ETag"))
	}

	// Never coded: media, small bodies, no-transform, a rule's compress: false.
	for _, p := range []string{"/seg.m4s", "/a.mp4", "/i.png", "/small.vtt", "/nt.mpd", "/off/x.css"} {
		for range 2 {
			c := fetchCoded(t, http.MethodGet, srv.URL+p, "Accept-Encoding", "br, gzip")
			want := map[string][]byte{"/small.vtt": nil, "/nt.mpd": text, "/off/x.css": text}[p]
			if want == nil && p != "/small.vtt" {
				want = media
			}
			if c.status != 200 || c.header.Get("Content-Encoding") != "" || c.varies() || (want != nil && !bytes.Equal(c.raw, want)) {
				t.Fatalf("%s: %d, Content-Encoding %q, Vary %q", p, c.status, c.header.Get("Content-Encoding"), c.header.Values("Vary"))
			}
		}
	}

	// The origin's own coding passes through as it is, never coded twice.
	before := o.hits.Load()
	for range 2 {
		c := fetchCoded(t, http.MethodGet, srv.URL+"/oc.js", "Accept-Encoding", "gzip")
		if c.header.Get("Content-Encoding") != "gzip" || c.header.Get("ETag") != `"origin-gz"` || !bytes.Equal(c.body, text) {
			t.Fatalf("origin gzip: %q ETag %q", c.header.Get("Content-Encoding"), c.header.Get("ETag"))
		}
		if _, err := gzip.NewReader(bytes.NewReader(c.body)); err == nil {
			t.Fatal("origin gzip: gzipped twice")
		}
	}
	if n := o.hits.Load() - before; n != 1 {
		t.Fatalf("origin's gzip variant fetched %d times, want 1", n)
	}
}

// TestCompressionConfig: compression.off turns it off where no rule turns it on; bad keys
// are refused naming the key.
func TestCompressionConfig(t *testing.T) {
	text := textBody(8 << 10)
	o := compressOrigin(t, map[string]compressObject{
		"/a/x.json": {ct: "application/json", etag: `"a"`, cc: "max-age=60", body: text},
		"/b/x.json": {ct: "application/json", etag: `"b"`, cc: "max-age=60", body: text},
		"/c/x.txt":  {ct: "text/plain", etag: `"c"`, cc: "max-age=60", body: text},
	})
	on := true
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.Compression = Compression{Off: true, Types: []string{"application/json"}, GzipLevel: 1, BrotliLevel: 1}
		c.Rules = []Rule{{PathPrefix: "/b/", Compress: &on}, {PathPrefix: "/c/", Compress: &on}}
	})
	for p, want := range map[string]string{"/a/x.json": "", "/b/x.json": "br", "/c/x.txt": ""} {
		c := fetchCoded(t, http.MethodGet, srv.URL+p, "Accept-Encoding", "br")
		if c.header.Get("Content-Encoding") != want || !bytes.Equal(c.body, text) {
			t.Fatalf("%s: Content-Encoding %q, want %q", p, c.header.Get("Content-Encoding"), want)
		}
	}
	for _, tc := range []struct {
		c    Compression
		want string
	}{
		{Compression{BrotliLevel: 12}, "compression.brotli_level"},
		{Compression{GzipLevel: -1}, "compression.gzip_level"},
		{Compression{MinSize: -1}, "compression.min_size"},
		{Compression{LiveBrotliLevel: 12}, "compression.live_brotli_level"},
		{Compression{LiveGzipLevel: 10}, "compression.live_gzip_level"},
		{Compression{Types: []string{"json"}}, "compression.types[0]"},
		{Compression{Types: []string{"text/[x"}}, "compression.types[0]"},
	} {
		cfg := DefaultConfig()
		cfg.Origins = []Origin{{Host: "*", URL: o.URL}}
		cfg.Compression = tc.c
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%+v: %v, want an error naming %s", tc.c, err, tc.want)
		}
	}
	// compress shapes what is stored: not on a rule with request conditions.
	cfg := DefaultConfig()
	cfg.Origins = []Origin{{Host: "*", URL: o.URL}}
	cfg.Rules = []Rule{{PathPrefix: "/x/", Match: RuleMatch{Methods: []string{"GET"}}, Compress: &on}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "compress") {
		t.Fatalf("compress on a rule with methods: %v", err)
	}
}

// TestCompressionLiveDVR: a long live playlist with a DVR window (EXT-X-MEDIA-SEQUENCE moving,
// no ENDLIST) goes out brotli-coded to browsers, and a coded client sees each new version as
// soon as an identity client does: the copy goes with the version it was made from.
func TestCompressionLiveDVR(t *testing.T) {
	start := time.Now()
	var version atomic.Int64
	playlist := func(seq int64) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:%d\n", seq)
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := seq; i < seq+3600; i++ { // an hour of one-second segments
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n#EXTINF:1.000,\nseg_%d.m4s\n", base.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), i)
		}
		return b.Bytes()
	}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".m3u8") {
			http.NotFound(w, r)
			return
		}
		seq := int64(time.Since(start) / (500 * time.Millisecond)) // a new segment every half second
		version.Store(seq)
		body := playlist(seq)
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	e, srv := newEdge(t, o.URL, func(c *Config) { c.Live.Prefetch.Off = true })
	url := srv.URL + "/live/video.m3u8"
	seqOf := func(body []byte) int64 {
		_, rest, _ := bytes.Cut(body, []byte("#EXT-X-MEDIA-SEQUENCE:"))
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		n, err := strconv.ParseInt(string(line), 10, 64)
		if err != nil {
			t.Fatalf("no media sequence in %.80q", body)
		}
		return n
	}
	seen := map[int64]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("saw %d versions in 30 s", len(seen))
		}
		id := fetchCoded(t, http.MethodGet, url)
		br := fetchCoded(t, http.MethodGet, url, "Accept-Encoding", "gzip, deflate, br")
		if br.header.Get("Content-Encoding") != "br" || !br.varies() || len(br.raw)*5 > len(br.body) {
			t.Fatalf("live playlist: Content-Encoding %q, %d bytes on the wire for %d", br.header.Get("Content-Encoding"), len(br.raw), len(br.body))
		}
		if a, b := seqOf(id.body), seqOf(br.body); b < a {
			t.Fatalf("the brotli client got media sequence %d after the identity client got %d", b, a)
		}
		if !bytes.Equal(br.body, playlist(seqOf(br.body))) {
			t.Fatal("decoded playlist differs from the origin's")
		}
		if !bytes.Equal(br.raw, e.comp.encode(codingBrotli, 1, br.body)) {
			t.Fatal("the live playlist was not coded at live_brotli_level (1)")
		}
		if id.header.Get("Cache-Control") != br.header.Get("Cache-Control") {
			t.Fatalf("Cache-Control: identity %q, brotli %q", id.header.Get("Cache-Control"), br.header.Get("Cache-Control"))
		}
		seen[seqOf(br.body)] = true
	}
}

// TestCompressionBlockingReload: an LL-HLS blocking playlist reload — a miss the origin holds
// until the asked-for part exists — goes out coded to every client waiting on it, from the
// one origin response.
func TestCompressionBlockingReload(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n#EXT-X-PART-INF:PART-TARGET=1.0\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0\n#EXT-X-MEDIA-SEQUENCE:0\n")
	for i := range 500 {
		fmt.Fprintf(&b, "#EXTINF:4.000,\nseg_%d.m4s\n", i)
	}
	b.WriteString("#EXT-X-PART:DURATION=1.0,URI=\"part_500_0.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_500_1.m4s\"\n")
	body := b.Bytes()
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, ".m3u8") {
			http.NotFound(w, r)
			return
		}
		select { // held until the test releases it, as an origin holds a blocking reload
		case <-release:
		case <-time.After(10 * time.Second):
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	_, srv := newEdge(t, o.URL, func(c *Config) { c.Live.Prefetch.Off = true })
	url := srv.URL + "/ll/video.m3u8?_HLS_msn=500&_HLS_part=1"
	type answer struct {
		c   coded
		err string
	}
	aes := []string{"br", "gzip", "gzip, deflate, br", ""}
	answers := make(chan answer, len(aes))
	for _, ae := range aes {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if ae != "" {
				req.Header.Set("Accept-Encoding", ae)
			}
			resp, err := rawClient.Do(req)
			if err != nil {
				answers <- answer{err: err.Error()}
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- answer{c: coded{status: resp.StatusCode, header: resp.Header, raw: raw}}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for o.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // poll: the origin has the reload
	}
	close(release)
	byCoding := map[string]int{}
	for range aes {
		a := <-answers
		if a.err != "" {
			t.Fatal(a.err)
		}
		ce := a.c.header.Get("Content-Encoding")
		byCoding[ce]++
		var dec []byte
		switch ce {
		case "br":
			dec, _ = io.ReadAll(brotli.NewReader(bytes.NewReader(a.c.raw)))
		case "gzip":
			zr, err := gzip.NewReader(bytes.NewReader(a.c.raw))
			if err != nil {
				t.Fatal(err)
			}
			dec, _ = io.ReadAll(zr)
		default:
			dec = a.c.raw
		}
		if a.c.status != 200 || !bytes.Equal(dec, body) || !a.c.varies() {
			t.Fatalf("%q: %d, decoded equal %v, Vary %q", ce, a.c.status, bytes.Equal(dec, body), a.c.header.Values("Vary"))
		}
	}
	if byCoding["br"] != 2 || byCoding["gzip"] != 1 || byCoding[""] != 1 {
		t.Fatalf("codings served: %v", byCoding)
	}
	if n := o.hits.Load(); n != 1 {
		t.Fatalf("origin asked %d times, want 1", n)
	}
}
