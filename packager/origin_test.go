package packager

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reelvideo/reel/rangecache"
)

// secretMarker is the content of the file outside the served folder; no response may carry it.
const secretMarker = "TOP-SECRET-OUTSIDE-ROOT"

// fixedMtime has no sub-second part so Last-Modified round-trips exactly (RFC 9110 §5.6.7
// dates have one-second resolution).
var fixedMtime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

type originFixture struct {
	srv     *httptest.Server
	origin  *Origin
	root    string
	outside string
	files   map[string][]byte
}

// segBytes is a recognisable, position-dependent body so range slices can be checked exactly.
func segBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func newOriginFixture(t testing.TB, opt OriginOptions) *originFixture {
	t.Helper()
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	outside := filepath.Join(parent, "outside")
	fx := &originFixture{root: root, outside: outside, files: map[string][]byte{
		"master.m3u8":                   []byte("#EXTM3U\n#EXT-X-VERSION:7\n"),
		"manifest.mpd":                  []byte(`<?xml version="1.0"?><MPD type="static"/>`),
		"video_720p/index.m3u8":         []byte("#EXTM3U\n#EXT-X-TARGETDURATION:4\n"),
		"video_720p/iframes.m3u8":       []byte("#EXTM3U\n#EXT-X-I-FRAMES-ONLY\n"),
		"video_720p/init.mp4":           []byte("ftypcmfc-video-init"),
		"video_720p/seg_00001.m4s":      segBytes(1000),
		"video_720p/media.mp4":          []byte("ftypiso6-video-single-file"),
		"audio_eng/init.mp4":            []byte("ftypcmfc-audio-init"),
		"audio_eng/seg_00001.m4s":       []byte("moof-audio-segment"),
		"audio_eng/media.mp4":           []byte("ftypiso6-audio-single-file"),
		"text_fr/seg_00001.vtt":         []byte("WEBVTT\n"),
		"text_fr_wvtt/init.mp4":         []byte("ftypcmfc-wvtt-init"),
		"text_fr_wvtt/seg_00001.m4s":    []byte("moof-wvtt-segment"),
		"notes.txt":                     []byte("not a media file"),
		"video_720p/seg_00009.M4S":      []byte("upper-case extension"),
		".tmp/video_720p/seg_00002.m4s": []byte("HIDDEN-TEMP-FOLDER"),
		"video_720p/.seg_00003.m4s":     []byte("HIDDEN-TEMP-FILE"),
		".hidden.m3u8":                  []byte("HIDDEN-PLAYLIST"),
	}}
	for name, body := range fx.files {
		writeFixtureFile(t, filepath.Join(root, filepath.FromSlash(name)), body)
	}
	writeFixtureFile(t, filepath.Join(outside, "secret.m4s"), []byte(secretMarker))
	writeFixtureFile(t, filepath.Join(outside, "secret.m3u8"), []byte(secretMarker))
	if err := os.MkdirAll(filepath.Join(root, "video_720p", "dir.m4s"), 0o755); err != nil {
		t.Fatal(err)
	}

	links := []struct{ target, link string }{
		{filepath.Join(outside, "secret.m4s"), "video_720p/escape_abs.m4s"},
		{"../../outside/secret.m4s", "video_720p/escape_rel.m4s"},
		{outside, "outlink"},
		{"seg_00001.m4s", "video_720p/alias.m4s"}, // stays inside: must work
	}
	for _, l := range links {
		if err := os.Symlink(l.target, filepath.Join(root, filepath.FromSlash(l.link))); err != nil {
			t.Skipf("symlinks unavailable: %v", err)
		}
	}

	o, err := NewOrigin(root, opt)
	if err != nil {
		t.Fatal(err)
	}
	fx.origin = o
	fx.srv = httptest.NewServer(o)
	t.Cleanup(func() {
		fx.srv.Close()
		if err := o.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return fx
}

func writeFixtureFile(t testing.TB, p string, body []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fixedMtime, fixedMtime); err != nil {
		t.Fatal(err)
	}
}

type originResp struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request with the standard client and reads the whole body.
func (fx *originFixture) do(t *testing.T, method, target string, hdr map[string]string) originResp {
	t.Helper()
	req, err := http.NewRequest(method, fx.srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := fx.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return originResp{resp.StatusCode, resp.Header, body}
}

// raw writes a request line byte for byte, so no client-side URL cleaning or escaping can
// hide what the server does with the target. It returns the parsed response and every byte
// that followed the header block.
func (fx *originFixture) raw(t *testing.T, method, target string) (originResp, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", fx.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n", method, target); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	headEnd := bytes.Index(all, []byte("\r\n\r\n"))
	if headEnd < 0 {
		t.Fatalf("%s %s: no header terminator in %q", method, target, all)
	}
	after := all[headEnd+4:]
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(all)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v in %q", method, target, err, all)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return originResp{resp.StatusCode, resp.Header, body}, after
}

// TestOriginContentTypeAndCaching checks the media type per extension (RFC 9110 §8.3) and the
// freshness policy: immutable, year-long segments (RFC 9111 §5.2.2.1, RFC 8246) and
// short-lived manifests.
func TestOriginContentTypeAndCaching(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	const seg = "public, max-age=31536000, immutable"
	const man = "public, max-age=60"
	cases := []struct {
		path, ctype, cc string
	}{
		{"/master.m3u8", "application/vnd.apple.mpegurl", man},
		{"/video_720p/index.m3u8", "application/vnd.apple.mpegurl", man},
		{"/video_720p/iframes.m3u8", "application/vnd.apple.mpegurl", man},
		{"/manifest.mpd", "application/dash+xml", man},
		{"/video_720p/init.mp4", "video/mp4", seg},
		{"/video_720p/media.mp4", "video/mp4", seg},
		{"/video_720p/seg_00001.m4s", "video/iso.segment", seg},
		{"/audio_eng/init.mp4", "audio/mp4", seg},
		{"/audio_eng/media.mp4", "audio/mp4", seg},
		{"/audio_eng/seg_00001.m4s", "video/iso.segment", seg},
		{"/text_fr/seg_00001.vtt", "text/vtt; charset=utf-8", seg},
		{"/text_fr_wvtt/init.mp4", "application/mp4", seg},
		{"/text_fr_wvtt/seg_00001.m4s", "video/iso.segment", seg},
		{"/video_720p/alias.m4s", "video/iso.segment", seg}, // symlink inside the root
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			r := fx.do(t, http.MethodGet, c.path, nil)
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200 (body %q)", r.status, r.body)
			}
			if got := r.header.Get("Content-Type"); got != c.ctype {
				t.Errorf("Content-Type %q, want %q", got, c.ctype)
			}
			if got := r.header.Get("Cache-Control"); got != c.cc {
				t.Errorf("Cache-Control %q, want %q", got, c.cc)
			}
			want := fx.files[strings.TrimPrefix(c.path, "/")]
			if c.path == "/video_720p/alias.m4s" {
				want = fx.files["video_720p/seg_00001.m4s"]
			}
			if !bytes.Equal(r.body, want) {
				t.Errorf("body differs from the file (%d vs %d bytes)", len(r.body), len(want))
			}
		})
	}
}

func TestOriginManifestMaxAgeOption(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{ManifestMaxAge: 10 * time.Second})
	for _, p := range []string{"/master.m3u8", "/manifest.mpd"} {
		if got := fx.do(t, http.MethodGet, p, nil).header.Get("Cache-Control"); got != "public, max-age=10" {
			t.Errorf("%s Cache-Control %q, want public, max-age=10", p, got)
		}
	}
	// The option must not leak into segment policy.
	if got := fx.do(t, http.MethodGet, "/video_720p/seg_00001.m4s", nil).header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
		t.Errorf("segment Cache-Control %q", got)
	}
}

// TestOriginErrors checks that every error is uncacheable (RFC 9111 §5.2.2.5 no-store) and
// carries a short text reason, including errors http.ServeContent writes itself.
func TestOriginErrors(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
	}{
		{"missing file", "GET", "/video_720p/seg_99999.m4s", nil, 404},
		{"unknown extension", "GET", "/notes.txt", nil, 404},
		{"upper-case extension", "GET", "/video_720p/seg_00009.M4S", nil, 404},
		{"root directory", "GET", "/", nil, 404},
		{"directory with slash", "GET", "/video_720p/", nil, 404},
		{"directory without slash", "GET", "/video_720p", nil, 404},
		{"directory with media extension", "GET", "/video_720p/dir.m4s", nil, 404},
		{"file used as folder", "GET", "/master.m3u8/x.m4s", nil, 404},
		// RFC 9110 §15.5.6: 405 must carry Allow (checked below).
		{"POST", "POST", "/master.m3u8", nil, 405},
		{"PUT", "PUT", "/video_720p/seg_00001.m4s", nil, 405},
		{"DELETE", "DELETE", "/master.m3u8", nil, 405},
		// RFC 9110 §15.5.17.
		{"unsatisfiable range", "GET", "/video_720p/seg_00001.m4s", map[string]string{"Range": "bytes=1000-"}, 416},
		// RFC 9110 §13.1.1: If-Match that does not match fails the precondition.
		{"If-Match mismatch", "GET", "/video_720p/seg_00001.m4s", map[string]string{"If-Match": `"nope"`}, 412},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fx.do(t, c.method, c.path, c.hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d", r.status, c.status)
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if got := r.header.Get("ETag"); got != "" {
				t.Errorf("error carries ETag %q; a cache could revalidate the error as the file", got)
			}
			if c.status == 412 {
				return // ServeContent sends 412 without a body
			}
			if len(r.body) == 0 || len(r.body) > 200 {
				t.Errorf("body %q, want a short reason", r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			if c.status == 405 {
				if got := r.header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
					t.Errorf("Allow %q, want GET, HEAD, OPTIONS", got)
				}
			}
			if c.status == 416 {
				// RFC 9110 §14.4: a 416 to a byte range sends the current length.
				if got := r.header.Get("Content-Range"); got != "bytes */1000" {
					t.Errorf("Content-Range %q, want bytes */1000", got)
				}
			}
		})
	}
}

// TestOriginValidators checks ETag (RFC 9110 §8.8.3) and Last-Modified (§8.8.2) and the
// conditional requests built on them (§13.1.2, §13.1.3, §13.2.2, §15.4.5).
func TestOriginValidators(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	const p = "/video_720p/seg_00001.m4s"
	first := fx.do(t, http.MethodGet, p, nil)
	etag := first.header.Get("ETag")
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' || strings.Contains(etag[1:len(etag)-1], `"`) {
		t.Fatalf("ETag %q is not a strong quoted entity-tag", etag)
	}
	lm := first.header.Get("Last-Modified")
	if lmt, err := http.ParseTime(lm); err != nil || !lmt.Equal(fixedMtime) {
		t.Fatalf("Last-Modified %q (%v), want %v", lm, err, fixedMtime)
	}
	if other := fx.do(t, http.MethodGet, "/audio_eng/seg_00001.m4s", nil).header.Get("ETag"); other == etag {
		t.Fatalf("two different files share ETag %s", etag)
	}
	if again := fx.do(t, http.MethodGet, p, nil).header.Get("ETag"); again != etag {
		t.Fatalf("ETag not stable: %s then %s", etag, again)
	}

	hourBefore := fixedMtime.Add(-time.Hour).Format(http.TimeFormat)
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"§13.1.2 If-None-Match current", map[string]string{"If-None-Match": etag}, 304},
		{"§13.1.2 If-None-Match in a list", map[string]string{"If-None-Match": `"other", ` + etag}, 304},
		{"§13.1.2 If-None-Match uses weak comparison", map[string]string{"If-None-Match": "W/" + etag}, 304},
		{"§13.1.2 If-None-Match *", map[string]string{"If-None-Match": "*"}, 304},
		{"§13.1.2 If-None-Match other", map[string]string{"If-None-Match": `"other"`}, 200},
		{"§13.1.3 If-Modified-Since equal", map[string]string{"If-Modified-Since": lm}, 304},
		{"§13.1.3 If-Modified-Since earlier", map[string]string{"If-Modified-Since": hourBefore}, 200},
		{"§13.2.2 If-None-Match wins over If-Modified-Since", map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": lm}, 200},
		{"§13.1.1 If-Match current", map[string]string{"If-Match": etag}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fx.do(t, http.MethodGet, p, c.hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d", r.status, c.status)
			}
			switch c.status {
			case 304:
				if len(r.body) != 0 {
					t.Errorf("304 with %d body bytes", len(r.body))
				}
				// §15.4.5: a 304 repeats ETag and Cache-Control so caches can refresh.
				if got := r.header.Get("ETag"); got != etag {
					t.Errorf("304 ETag %q, want %q", got, etag)
				}
				if got := r.header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
					t.Errorf("304 Cache-Control %q", got)
				}
			case 200:
				if !bytes.Equal(r.body, fx.files["video_720p/seg_00001.m4s"]) {
					t.Errorf("200 body is not the full file (%d bytes)", len(r.body))
				}
			}
		})
	}
}

// TestOriginRanges checks byte ranges (RFC 9110 §14.1.2, §14.2, §14.4, §15.3.7) and If-Range
// (§13.1.5), on a 1000-byte segment.
func TestOriginRanges(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	const p = "/video_720p/seg_00001.m4s"
	full := fx.files["video_720p/seg_00001.m4s"]
	etag := fx.do(t, http.MethodGet, p, nil).header.Get("ETag")
	lm := fixedMtime.Format(http.TimeFormat)

	cases := []struct {
		name       string
		hdr        map[string]string
		status     int
		start, end int // inclusive byte positions of a single-part 206
	}{
		{"first ten bytes", map[string]string{"Range": "bytes=0-9"}, 206, 0, 9},
		{"suffix range", map[string]string{"Range": "bytes=-5"}, 206, 995, 999},
		{"open-ended range", map[string]string{"Range": "bytes=990-"}, 206, 990, 999},
		{"last-pos past the end is clamped", map[string]string{"Range": "bytes=995-5000"}, 206, 995, 999},
		{"§14.1 range unit is case-insensitive", map[string]string{"Range": "Bytes=0-9"}, 206, 0, 9},
		{"§14.2 unknown unit is ignored", map[string]string{"Range": "items=0-9"}, 200, 0, 999},
		{"§13.1.5 If-Range current ETag", map[string]string{"Range": "bytes=0-9", "If-Range": etag}, 206, 0, 9},
		{"§13.1.5 If-Range stale ETag", map[string]string{"Range": "bytes=0-9", "If-Range": `"stale"`}, 200, 0, 999},
		{"§13.1.5 If-Range weak ETag never matches", map[string]string{"Range": "bytes=0-9", "If-Range": "W/" + etag}, 200, 0, 999},
		{"§13.1.5 If-Range Last-Modified date", map[string]string{"Range": "bytes=0-9", "If-Range": lm}, 206, 0, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fx.do(t, http.MethodGet, p, c.hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d (Content-Range %q)", r.status, c.status, r.header.Get("Content-Range"))
			}
			if !bytes.Equal(r.body, full[c.start:c.end+1]) {
				t.Errorf("body is %d bytes, want bytes %d-%d", len(r.body), c.start, c.end)
			}
			wantCR := ""
			if c.status == 206 {
				wantCR = fmt.Sprintf("bytes %d-%d/%d", c.start, c.end, len(full))
			}
			if got := r.header.Get("Content-Range"); got != wantCR {
				t.Errorf("Content-Range %q, want %q", got, wantCR)
			}
			if got := r.header.Get("Content-Length"); got != strconv.Itoa(c.end-c.start+1) {
				t.Errorf("Content-Length %q, want %d", got, c.end-c.start+1)
			}
			// A 206 of an immutable segment is as cacheable as the 200 (RFC 9111 §3.3).
			if got := r.header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("Cache-Control %q", got)
			}
			if got := r.header.Get("Accept-Ranges"); got != "bytes" {
				t.Errorf("Accept-Ranges %q, want bytes (§14.3)", got)
			}
		})
	}

	t.Run("§14.6 multiple ranges", func(t *testing.T) {
		r := fx.do(t, http.MethodGet, p, map[string]string{"Range": "bytes=0-1,10-11"})
		if r.status != 206 {
			t.Fatalf("status %d, want 206", r.status)
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/byteranges; boundary=") {
			t.Errorf("Content-Type %q, want multipart/byteranges", ct)
		}
		if !bytes.Contains(r.body, []byte("Content-Range: bytes 10-11/1000")) {
			t.Errorf("second part missing from %q", r.body)
		}
	})
}

// TestOriginRangeCap: a Range the edge would ignore — more ranges than
// rangecache.DefaultMaxRanges, or overlapping ones asking for more than twice the file — gets
// the whole file, not a multipart many times its size (RFC 9110 §14.2).
func TestOriginRangeCap(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	const p = "/video_720p/seg_00001.m4s"
	full := fx.files["video_720p/seg_00001.m4s"]
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("%d-%d", i%990, i%990)
	}
	capped := make([]string, rangecache.DefaultMaxRanges)
	for i := range capped {
		capped[i] = fmt.Sprintf("%d-%d", i*20, i*20+1)
	}
	cases := []struct {
		name, rng string
		status    int
	}{
		{"1000 ranges", "bytes=" + strings.Join(many, ","), 200},
		{"one past the cap", "bytes=" + strings.Join(append(capped, "990-991"), ","), 200},
		{"overlapping, 3× the file", "bytes=0-,0-,0-", 200},
		{"at the cap", "bytes=" + strings.Join(capped, ","), 206},
	}
	for _, c := range cases {
		r := fx.do(t, http.MethodGet, p, map[string]string{"Range": c.rng})
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d (%d bytes)", c.name, r.status, c.status, len(r.body))
			continue
		}
		if c.status == 200 && !bytes.Equal(r.body, full) {
			t.Errorf("%s: %d bytes, want the %d-byte file", c.name, len(r.body), len(full))
		}
		if c.status == 206 && len(r.body) > 4*len(full) {
			t.Errorf("%s: a %d-byte multipart for a %d-byte file", c.name, len(r.body), len(full))
		}
	}
}

// TestOriginHead checks that HEAD sends GET's header fields without content (RFC 9110
// §9.3.2). The raw connection shows that no body bytes reach the wire at all.
func TestOriginHead(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	for _, p := range []string{"/video_720p/seg_00001.m4s", "/master.m3u8"} {
		t.Run(p, func(t *testing.T) {
			r, after := fx.raw(t, http.MethodHead, p)
			if r.status != 200 {
				t.Fatalf("status %d, want 200", r.status)
			}
			if len(after) != 0 {
				t.Errorf("HEAD sent %d body bytes", len(after))
			}
			want := strconv.Itoa(len(fx.files[strings.TrimPrefix(p, "/")]))
			if got := r.header.Get("Content-Length"); got != want {
				t.Errorf("Content-Length %q, want %s", got, want)
			}
			if r.header.Get("ETag") == "" || r.header.Get("Content-Type") == "" {
				t.Errorf("HEAD lacks ETag or Content-Type: %v", r.header)
			}
		})
	}
	// Control: the same request as GET does put the body on the wire, so the check above
	// is not satisfied by the helper itself.
	if _, after := fx.raw(t, http.MethodGet, "/master.m3u8"); !bytes.Equal(after, fx.files["master.m3u8"]) {
		t.Errorf("GET body on the wire %q", after)
	}
}

// TestOriginTraversal sends hostile targets byte for byte. os.Root stops escapes through
// symlinks; the path check stops dot segments, empty segments, backslashes and NULs before
// they reach the file system.
func TestOriginTraversal(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	absSecret := filepath.ToSlash(filepath.Join(fx.outside, "secret.m4s"))
	cases := []struct {
		target string
		status int
	}{
		{"/../outside/secret.m4s", 400},
		{"/video_720p/../../outside/secret.m4s", 400},
		{"/%2e%2e/outside/secret.m4s", 400},
		{"/%2E%2E%2Foutside%2Fsecret.m4s", 400},
		{"/video_720p/%2e%2e/%2e%2e/outside/secret.m3u8", 400},
		{"/./master.m3u8", 400},
		{"/video_720p//seg_00001.m4s", 400},
		{"http://origin.test/../outside/secret.m4s", 400}, // absolute-form target
		{"/" + absSecret, 400},                            // "//tmp/...": an absolute path
		{"/..\\outside\\secret.m4s", 400},
		{"/%5c..%5coutside%5csecret.m4s", 400},
		{"/video_720p/seg_00001.m4s%00.m3u8", 400},
		{"/video_720p/escape_abs.m4s", 404}, // symlink to an absolute path outside
		{"/video_720p/escape_rel.m4s", 404}, // symlink climbing out with ..
		{"/outlink/secret.m4s", 404},        // symlinked folder outside
		{"/.tmp/video_720p/seg_00002.m4s", 404},
		{"/video_720p/.seg_00003.m4s", 404},
		{"/.hidden.m3u8", 404},
		{"/.tmp/../master.m3u8", 400},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			r, _ := fx.raw(t, http.MethodGet, c.target)
			if r.status != c.status {
				t.Errorf("status %d, want %d (body %q)", r.status, c.status, r.body)
			}
			for _, leak := range []string{secretMarker, "HIDDEN-"} {
				if bytes.Contains(r.body, []byte(leak)) {
					t.Fatalf("response leaks %q: %q", leak, r.body)
				}
			}
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
	// Control: the outside file is really there and readable, so the 404s above come from
	// containment, not from a broken fixture.
	if b, err := os.ReadFile(filepath.Join(fx.outside, "secret.m4s")); err != nil || string(b) != secretMarker {
		t.Fatalf("fixture: outside file unreadable: %v", err)
	}
}

// TestOriginFIFO checks that a named pipe with a media name is refused at once rather than
// blocking the request until something writes to it.
func TestOriginFIFO(t *testing.T) {
	mkfifo, err := exec.LookPath("mkfifo")
	if err != nil {
		t.Skip("mkfifo not available")
	}
	fx := newOriginFixture(t, OriginOptions{})
	fifo := filepath.Join(fx.root, "video_720p", "pipe.m4s")
	if out, err := exec.Command(mkfifo, fifo).CombinedOutput(); err != nil {
		t.Skipf("mkfifo: %v %s", err, out)
	}
	// If the handler did block in open, a writer releases it so that the server's Close in
	// the fixture cleanup (which runs after this one) returns and the test fails instead of
	// hanging. With no reader waiting, this open fails harmlessly.
	t.Cleanup(func() {
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fx.srv.URL+"/video_720p/pipe.m4s", nil)
	resp, err := fx.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("request to a FIFO did not complete: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

// TestOriginCORS checks the Fetch standard's CORS fields: every response may be read from any
// origin, and a preflight (an OPTIONS request, RFC 9110 §9.3.7) is answered 204.
func TestOriginCORS(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	etag := fx.do(t, http.MethodGet, "/master.m3u8", nil).header.Get("ETag")
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
	}{
		{"200", "GET", "/master.m3u8", nil, 200},
		{"206", "GET", "/video_720p/seg_00001.m4s", map[string]string{"Range": "bytes=0-1"}, 206},
		{"304", "GET", "/master.m3u8", map[string]string{"If-None-Match": etag}, 304},
		{"404", "GET", "/nope.m4s", nil, 404},
		{"405", "POST", "/master.m3u8", nil, 405},
		{"HEAD", "HEAD", "/master.m3u8", nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{"Origin": "https://player.example"}
			for k, v := range c.hdr {
				hdr[k] = v
			}
			r := fx.do(t, c.method, c.path, hdr)
			if r.status != c.status {
				t.Fatalf("status %d, want %d", r.status, c.status)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q, want *", got)
			}
			exposed := r.header.Get("Access-Control-Expose-Headers")
			for _, h := range []string{"Content-Length", "Content-Range", "ETag", "Age"} {
				if !headerListHas(exposed, h) {
					t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
				}
			}
		})
	}

	for _, target := range []string{"/video_720p/seg_00001.m4s", "/does/not/exist.m4s"} {
		t.Run("preflight "+target, func(t *testing.T) {
			r := fx.do(t, http.MethodOptions, target, map[string]string{
				"Origin":                         "https://player.example",
				"Access-Control-Request-Method":  "GET",
				"Access-Control-Request-Headers": "range,if-none-match",
			})
			if r.status != http.StatusNoContent {
				t.Fatalf("status %d, want 204", r.status)
			}
			if len(r.body) != 0 {
				t.Errorf("204 with body %q", r.body)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q", got)
			}
			methods := r.header.Get("Access-Control-Allow-Methods")
			for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
				if !headerListHas(methods, m) {
					t.Errorf("Access-Control-Allow-Methods %q lacks %s", methods, m)
				}
			}
			if headerListHas(methods, "POST") {
				t.Errorf("Access-Control-Allow-Methods %q allows POST", methods)
			}
			allowed := r.header.Get("Access-Control-Allow-Headers")
			for _, h := range []string{"Range", "If-None-Match", "If-Modified-Since", "If-Range"} {
				if !headerListHas(allowed, h) {
					t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, h)
				}
			}
			if r.header.Get("Access-Control-Max-Age") == "" {
				t.Error("no Access-Control-Max-Age: browsers would preflight every segment")
			}
			if got := r.header.Get("Allow"); got != "GET, HEAD, OPTIONS" {
				t.Errorf("Allow %q", got)
			}
		})
	}

}

func headerListHas(list, name string) bool {
	for _, v := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(v), name) {
			return true
		}
	}
	return false
}

func TestNewOriginErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		dir  string
		opt  OriginOptions
	}{
		{"missing", filepath.Join(dir, "missing"), OriginOptions{}},
		{"not a directory", file, OriginOptions{}},
		{"negative max-age", dir, OriginOptions{ManifestMaxAge: -time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := NewOrigin(c.dir, c.opt)
			if err == nil {
				o.Close()
				t.Fatal("NewOrigin succeeded")
			}
		})
	}
}

func TestOriginClose(t *testing.T) {
	fx := newOriginFixture(t, OriginOptions{})
	if r := fx.do(t, http.MethodGet, "/master.m3u8", nil); r.status != 200 {
		t.Fatalf("before Close: status %d", r.status)
	}
	if err := fx.origin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fx.origin.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	r := fx.do(t, http.MethodGet, "/master.m3u8", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", r.status)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("after Close: Cache-Control %q", got)
	}
}

// TestOriginLogging checks one Debug record per request and silence at Info for ordinary
// client errors, so a scanner hammering the origin cannot flood the logs.
func TestOriginLogging(t *testing.T) {
	var debugBuf, infoBuf bytes.Buffer
	debugLog := slog.New(slog.NewTextHandler(&debugBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	infoLog := slog.New(slog.NewTextHandler(&infoBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))

	fx := newOriginFixture(t, OriginOptions{Logger: debugLog})
	fx.do(t, http.MethodGet, "/video_720p/seg_00001.m4s", map[string]string{"Range": "bytes=0-9"})
	line := debugBuf.String()
	for _, want := range []string{"origin request", "status=206", "bytes=10", "path=/video_720p/seg_00001.m4s"} {
		if !strings.Contains(line, want) {
			t.Errorf("debug log %q lacks %q", line, want)
		}
	}
	if n := strings.Count(line, "\n"); n != 1 {
		t.Errorf("%d log records for one request, want 1", n)
	}

	fx2 := newOriginFixture(t, OriginOptions{Logger: infoLog})
	fx2.do(t, http.MethodGet, "/nope.m4s", nil)
	fx2.raw(t, http.MethodGet, "/../outside/secret.m4s")
	fx2.do(t, http.MethodGet, "/master.m3u8", nil)
	if infoBuf.Len() != 0 {
		t.Errorf("Info-level log not quiet: %q", infoBuf.String())
	}
}

// BenchmarkOriginSegment serves a 1 MB segment. "handler" measures the handler alone with a
// discarding writer (httptest.ResponseRecorder would mostly measure its own buffer growth);
// "loopback" goes through a real server and client, where the server can use sendfile.
func BenchmarkOriginSegment(b *testing.B) {
	dir := b.TempDir()
	const size = 1 << 20
	writeFixtureFile(b, filepath.Join(dir, "video_720p", "seg_00001.m4s"), segBytes(size))
	o, err := NewOrigin(dir, OriginOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()

	b.Run("handler", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "/video_720p/seg_00001.m4s", nil)
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			w := &discardWriter{h: make(http.Header, 8)}
			o.ServeHTTP(w, req)
			if w.status != 200 || w.n != size {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
		}
	})

	b.Run("loopback", func(b *testing.B) {
		srv := httptest.NewServer(o)
		defer srv.Close()
		client := srv.Client()
		url := srv.URL + "/video_720p/seg_00001.m4s"
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size || resp.StatusCode != 200 {
				b.Fatalf("status %d, %d bytes, %v", resp.StatusCode, n, err)
			}
		}
	})
}

type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = 200
	}
	w.n += int64(len(p))
	return len(p), nil
}
