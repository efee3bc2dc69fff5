package edge

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/reelvideo/reel/manifest"
)

// maxTokenManifest bounds the manifests a query token is carried into: the rewrite holds the
// whole body. A larger one is answered 502 rather than passed on without the token — a player
// given it would fail later, segment by segment, with 403s that don't say why; the path form
// (/tok/<token>/…) needs no rewriting and serves manifests of any size.
const maxTokenManifest = 16 << 20

// serveCarryingToken is the respond phase for a request whose token came in its query (tok,
// verified): the request runs through phases 3–7 as any other, into a manifestWriter that
// passes everything through except a 200 manifest, which it holds, and sends with the token
// added to its URIs (addManifestToken). The stored object stays token-free and shared by all
// viewers; only this response differs. Requests without a query token never come here.
func (e *Edge) serveCarryingToken(w http.ResponseWriter, r *http.Request, up *upstream, rl *ruling, tok string) {
	mw := &manifestWriter{inner: w, r: r, param: e.tokens.param, tok: tok}
	if field(r.Header, "If-None-Match") != "" {
		mw.conditional = unsuffixETags(r.Header, mw.etagSuffix())
	}
	// A Range of a manifest is answered with the whole rewritten manifest (RFC 9110 §14.2 lets
	// a server ignore Range): the stored manifest's offsets don't hold in the rewritten one,
	// and players fetch manifests whole anyway. A 206 of a manifest is therefore dropped and
	// the request served again without its Range — once, as the loop bounds.
	for pass := 0; pass < 2; pass++ {
		e.serveRouted(mw, r, up, rl)
		if !mw.wantWhole || pass == 1 {
			break
		}
		r.Header.Del("Range")
		r.Header.Del("If-Range")
		mw.reset()
	}
	mw.finish()
}

// manifestWriter is the ResponseWriter of a request carrying a query token: see
// serveCarryingToken. It hides the wire-form writer of the hit path (asWireWriter stops at
// it), since a manifest's header and length change here.
type manifestWriter struct {
	inner       http.ResponseWriter
	r           *http.Request
	param, tok  string
	suffix      string // of the rewritten responses' ETags (etagSuffix)
	conditional bool   // If-None-Match carried our ETags: a 304 gets them back
	wired       bool   // a hit not of a manifest went out through the wire-form fields

	mode      manifestMode
	status    int
	buf       bytes.Buffer
	wantWhole bool // a 206 of a manifest: serve again without Range
}

type manifestMode int

const (
	modeUndecided manifestMode = iota
	modePass                   // not a 200 manifest: straight through
	modeHold                   // a 200 manifest: held for finish
	modeDrop                   // a 206 of a manifest: dropped, served again whole
	modeTooLarge               // a manifest over maxTokenManifest: 502
)

func (m *manifestWriter) Header() http.Header         { return m.inner.Header() }
func (m *manifestWriter) Unwrap() http.ResponseWriter { return m.inner }

func (m *manifestWriter) WriteHeader(code int) {
	if code < 200 {
		m.inner.WriteHeader(code)
		return
	}
	if m.mode != modeUndecided {
		return
	}
	if m.wired {
		m.mode = modePass
		m.inner.WriteHeader(code)
		return
	}
	h := m.inner.Header()
	isManifest := manifestType(field(h, "Content-Type"), m.r.URL.Path) && readableCoding(field(h, "Content-Encoding"))
	switch {
	case code == http.StatusNotModified && m.conditional:
		m.privatise(h) // the client's copy is the rewritten one: keep its validator
		fallthrough
	case !isManifest || (code != http.StatusOK && code != http.StatusPartialContent):
		m.mode = modePass
		m.inner.WriteHeader(code)
	case code == http.StatusPartialContent:
		m.mode, m.wantWhole = modeDrop, true
	case m.r.Method == http.MethodHead:
		m.privatise(h)
		h.Del("Content-Length") // the rewritten length isn't known without the body
		m.mode = modePass
		m.inner.WriteHeader(code)
	default:
		m.mode, m.status = modeHold, code
		if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n > maxTokenManifest {
			m.mode = modeTooLarge
		}
	}
}

func (m *manifestWriter) Write(p []byte) (int, error) {
	if m.mode == modeUndecided {
		m.WriteHeader(http.StatusOK)
	}
	switch m.mode {
	case modePass:
		return m.inner.Write(p)
	case modeHold:
		if m.buf.Len()+len(p) > maxTokenManifest {
			m.mode = modeTooLarge
			m.buf = bytes.Buffer{}
		} else {
			m.buf.Write(p)
		}
	}
	// Held or dropped bytes are taken as written: an error would make a fill abort the
	// response before finish could answer.
	return len(p), nil
}

// ReadFrom keeps the server's sendfile path for what passes through.
func (m *manifestWriter) ReadFrom(src io.Reader) (int64, error) {
	if m.mode == modeUndecided {
		m.WriteHeader(http.StatusOK)
	}
	if rf, ok := m.inner.(io.ReaderFrom); ok && m.mode == modePass {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{m}, src)
}

// FlushError flushes what passes through; held bytes wait for finish.
func (m *manifestWriter) FlushError() error {
	if m.mode != modePass {
		return nil
	}
	return http.NewResponseController(m.inner).Flush()
}

// reset forgets a dropped 206 before the request is served again.
func (m *manifestWriter) reset() {
	h := m.inner.Header()
	for k := range h {
		delete(h, k)
	}
	m.mode, m.wantWhole, m.wired, m.buf = modeUndecided, false, false, bytes.Buffer{}
}

// finish sends a held manifest, with the token added when it is one.
func (m *manifestWriter) finish() {
	switch m.mode {
	case modeTooLarge:
		httpError(m.inner, http.StatusBadGateway, "manifest larger than 16 MiB: too large to add the query token to its URIs; use the path form /tok/<token>/…")
		return
	case modeDrop: // a 206 again without Range: not expected of any store path
		httpError(m.inner, http.StatusBadGateway, "manifest answered only in part")
		return
	case modeHold:
	default:
		return
	}
	h := m.inner.Header()
	body := m.buf.Bytes()
	scheme := "http"
	if m.r.TLS != nil {
		scheme = "https"
	}
	self := &url.URL{Scheme: scheme, Host: m.r.Host, Path: m.r.URL.Path}
	// A gzipped manifest (live manifests often are) is sent rewritten and uncompressed: identity
	// is acceptable to every client, and it is small.
	text, gzipped := body, !identity(field(h, "Content-Encoding"))
	if gzipped {
		text = gunzipBounded(body, maxTokenManifest)
	}
	if info, err := manifest.Classify(text, self); err == nil && info.Format != manifest.FormatUnknown {
		if out, err := addManifestToken(text, info.Format, self, m.param, m.tok); err == nil {
			body = out
			h.Del("Content-Encoding")
			m.privatise(h)
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Content-Range")
	h.Set("Accept-Ranges", "none") // a Range would get the whole manifest: say so
	m.inner.WriteHeader(m.status)
	m.inner.Write(body)
}

// privatise marks a response whose body carries this viewer's token. Cache-Control: private
// keeps shared caches downstream from storing it — the token is in the URL, so a cache keying
// on the whole URL would keep bodies apart anyway, but many are set to ignore the query, and
// would hand one viewer's token to the next. The ETag becomes weak (a transformation, RFC 9110
// §8.8.1) and per token, so no client can match one token's body with another's.
func (m *manifestWriter) privatise(h http.Header) {
	if et := h.Get("ETag"); et != "" {
		h.Set("ETag", "W/"+strings.TrimSuffix(strings.TrimPrefix(et, "W/"), `"`)+m.etagSuffix()+`"`)
	}
	var keep []string
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(d)
		name, _, _ := strings.Cut(strings.ToLower(d), "=")
		if d != "" && name != "public" && name != "s-maxage" && name != "private" && name != "proxy-revalidate" {
			keep = append(keep, d)
		}
	}
	h.Set("Cache-Control", strings.Join(append([]string{"private"}, keep...), ", "))
}

func (m *manifestWriter) etagSuffix() string {
	if m.suffix == "" {
		m.suffix = tokenETagSuffix(m.tok)
	}
	return m.suffix
}

// tokenETagSuffix is what the ETags of a token's rewritten manifests end with: a short hash,
// not the token, which is in the URL already but needn't be in a header too.
func tokenETagSuffix(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "-t" + hex.EncodeToString(sum[:6])
}

// unsuffixETags turns the ETags of If-None-Match that end with suffix (this token's rewritten
// manifests) back into the stored ones, so that the stored object's validator matches them and
// a 304 can answer; it reports whether it did. Others are left: they won't match.
func unsuffixETags(h http.Header, suffix string) bool {
	v := h.Get("If-None-Match")
	if !strings.Contains(v, suffix+`"`) {
		return false
	}
	tags := strings.Split(v, ",")
	for i, t := range tags {
		t = strings.TrimSpace(t)
		if strings.HasSuffix(t, suffix+`"`) {
			tags[i] = strings.TrimSuffix(t, suffix+`"`) + `"`
		}
	}
	h.Set("If-None-Match", strings.Join(tags, ", "))
	return true
}

// manifestType reports whether a response of this Content-Type at path may be a manifest:
// the HLS and DASH types, or a generic type at a .m3u8 or .mpd path (manifest.Classify decides).
func manifestType(ct, path string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl", "application/dash+xml":
		return true
	case "", "application/octet-stream", "binary/octet-stream", "text/plain", "application/xml", "text/xml":
		p := strings.ToLower(path)
		return strings.HasSuffix(p, ".m3u8") || strings.HasSuffix(p, ".m3u") || strings.HasSuffix(p, ".mpd")
	}
	return false
}

func identity(ce string) bool { return ce == "" || strings.EqualFold(ce, "identity") }

// readableCoding: a body of this Content-Encoding can be rewritten (identity, or gzip undone).
func readableCoding(ce string) bool {
	return identity(ce) || strings.EqualFold(ce, "gzip") || strings.EqualFold(ce, "x-gzip")
}

// gunzipBounded is gz uncompressed, nil when it isn't gzip or holds more than limit bytes.
func gunzipBounded(gz []byte, limit int64) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil
	}
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil || int64(len(out)) > limit {
		return nil
	}
	return out
}
