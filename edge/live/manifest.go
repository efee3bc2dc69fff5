package live

import (
	"bytes"
	"compress/gzip"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/reelvideo/reel/manifest"
)

// manifestTypes are the media types of HLS playlists (RFC 8216 §4, plus the legacy ones
// players still send) and DASH MPDs (ISO/IEC 23009-1 Annex C).
var manifestTypes = map[string]bool{
	"application/vnd.apple.mpegurl": true, "application/x-mpegurl": true, "audio/mpegurl": true,
	"audio/x-mpegurl": true, "application/dash+xml": true,
}

// isManifest: a response that may be a manifest, by its Content-Type or its path's extension.
func isManifest(urlPath string, h http.Header) bool {
	if ct := field(h, "Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && manifestTypes[mt] {
			return true
		}
	}
	return isManifestPath(urlPath)
}

func isManifestPath(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".m3u8", ".m3u", ".mpd":
		return true
	}
	return false
}

// BlockingReload tells an LL-HLS blocking playlist request (rfc8216bis §6.2.5.2) by its
// query: the origin may hold it for up to three target durations.
func BlockingReload(rawQuery string) bool { return strings.Contains(rawQuery, "_HLS_msn=") }

// field is h.Get(name) for a name already in canonical form.
func field(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// manifestURL is the URL a client used for r: what a manifest's relative URIs resolve against.
func manifestURL(r *http.Request) *url.URL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
}

// errReader replays a read error after the bytes read before it.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// readManifest reads a manifest response's body whole (so that it can be classified before
// it is stored) and puts it back on resp as a reader of those bytes — followed by the
// origin's error, if reading stopped on one, so that the edge sees the truncation as it would
// have. It returns the bytes, or nil when the body is not read whole (too large).
func (l *Manifests) readManifest(resp *http.Response) []byte {
	limit := l.cfg.MaxManifestSize
	if resp.ContentLength > limit {
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	rest := io.Reader(resp.Body)
	switch {
	case err != nil:
		rest = errReader{err}
	case int64(len(buf)) <= limit:
		rest = bytes.NewReader(nil)
	}
	resp.Body = &readBackBody{Reader: io.MultiReader(bytes.NewReader(buf), rest), orig: resp.Body}
	if err != nil || int64(len(buf)) > limit || (resp.ContentLength >= 0 && int64(len(buf)) != resp.ContentLength) {
		return nil
	}
	if resp.ContentLength < 0 {
		// Chunked: now of known length, so it is stored like any small response.
		resp.ContentLength = int64(len(buf))
		resp.Header.Set("Content-Length", strconv.Itoa(len(buf)))
	}
	return buf
}

// readBackBody is an origin body partly read ahead: the bytes read, then the rest. Closing it
// and pausing its idle clock (the edge's origin bodies have one a slice stream stops while it
// waits on its readers) act on the origin's body.
type readBackBody struct {
	io.Reader
	orig io.ReadCloser
}

// pausable is an origin body with an idle clock (rangecache.Pausable).
type pausable interface {
	Pause()
	Resume()
}

func (b *readBackBody) Close() error { return b.orig.Close() }

func (b *readBackBody) Pause() {
	if p, ok := b.orig.(pausable); ok {
		p.Pause()
	}
}

func (b *readBackBody) Resume() {
	if p, ok := b.orig.(pausable); ok {
		p.Resume()
	}
}

// decoded returns a manifest body as text: gzip is undone (bounded); other content codings
// are not read (nil).
func (l *Manifests) decoded(h http.Header, body []byte) []byte {
	switch ce := strings.ToLower(strings.TrimSpace(field(h, "Content-Encoding"))); ce {
	case "", "identity":
		return body
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil
		}
		out, err := io.ReadAll(io.LimitReader(zr, l.cfg.MaxManifestSize+1))
		if err != nil || int64(len(out)) > l.cfg.MaxManifestSize {
			return nil
		}
		return out
	}
	return nil
}

// classify classifies a 200 manifest body (nil info when it is not one), counting it by kind.
func (l *Manifests) classify(r *http.Request, h http.Header, body []byte) (manifest.Info, bool) {
	text := l.decoded(h, body)
	if text == nil {
		l.m.Manifests.WithLabelValues("unparsed").Inc()
		return manifest.Info{}, false
	}
	info, err := manifest.Classify(text, manifestURL(r))
	if err != nil {
		l.m.Manifests.WithLabelValues("unparsed").Inc()
		return manifest.Info{}, false
	}
	kind := info.Format.String()
	if info.Live {
		kind += "-live"
	}
	l.m.Manifests.WithLabelValues(kind).Inc()
	return info, true
}
