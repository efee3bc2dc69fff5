package packager

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/reelvideo/reel/rangecache"
)

// DefaultManifestMaxAge is the Cache-Control max-age for playlists and MPDs when
// OriginOptions.ManifestMaxAge is zero. VOD manifests do not change once published, but a
// re-package may replace them; a minute keeps CDN load negligible while bounding how long a
// replaced manifest is served stale.
const DefaultManifestMaxAge = 60 * time.Second

// Segments and init sections are never rewritten under the same name, so caches may keep them
// for a year without revalidating (RFC 9111 §5.2.2.1, RFC 8246).
const immutableCacheControl = "public, max-age=31536000, immutable"

const (
	allowedMethods = "GET, HEAD, OPTIONS"
	// Content-Length is safelisted already but older browsers want it listed. Age matters once
	// a CDN sits in front, and players read Content-Range to learn a file's total size.
	exposeHeaders       = "Content-Length, Content-Range, ETag, Age, Accept-Ranges"
	allowRequestHeaders = "Range, If-None-Match, If-Modified-Since, If-Range, If-Match, If-Unmodified-Since"
	// O_NONBLOCK makes opening a FIFO planted under the folder return at once instead of
	// parking the request goroutine until a writer appears; regular-file reads ignore it.
	openFlags = os.O_RDONLY | syscall.O_NONBLOCK
)

// OriginOptions tunes an Origin. The zero value is ready to use.
type OriginOptions struct {
	// ManifestMaxAge is the Cache-Control max-age for .m3u8 and .mpd files, rounded down to
	// whole seconds. Zero means DefaultManifestMaxAge; negative is an error.
	ManifestMaxAge time.Duration
	// Logger receives one Debug record per request and Error records for server faults.
	// Nil means slog.Default().
	Logger *slog.Logger
	// S3 configures the client when the folder is s3://bucket/prefix (nil: the standard AWS
	// environment and config files alone).
	S3 *S3Options
}

// Origin is an http.Handler that serves a packaged VOD output folder (HLS playlists, DASH MPDs,
// init sections, CMAF segments and single-file tracks) for a CDN to front.
//
// Only files with a known media or manifest extension are served. Directories, hidden names
// (any path element starting with ".", which is where the packager stages temp output) and
// anything that resolves outside the folder answer 404 or 400. Every response carries
// permissive CORS headers so browser players on any origin can fetch and inspect it.
type Origin struct {
	store      store // the folder or the bucket (storage.go)
	manifestCC string
	log        *slog.Logger
	closeOnce  sync.Once
	closeErr   error
}

// NewOrigin opens dir for serving. The folder is held open (as an os.Root) until Close, so
// renaming or replacing dir itself afterwards does not change what is served.
func NewOrigin(dir string, opt OriginOptions) (*Origin, error) {
	if opt.ManifestMaxAge < 0 {
		return nil, fmt.Errorf("origin: ManifestMaxAge %v is negative", opt.ManifestMaxAge)
	}
	maxAge := opt.ManifestMaxAge
	if maxAge == 0 {
		maxAge = DefaultManifestMaxAge
	}
	var st store
	if loc, ok, err := ParseS3URL(dir); err != nil {
		return nil, fmt.Errorf("origin: %s: %w", dir, err)
	} else if ok {
		if st, err = newS3Store(loc, opt.S3); err != nil {
			return nil, fmt.Errorf("origin: %w", err)
		}
	} else if st, err = newDirStore(dir); err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Origin{
		store:      st,
		manifestCC: manifestCacheControl(maxAge),
		log:        logger,
	}, nil
}

func manifestCacheControl(maxAge time.Duration) string {
	return "public, max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
}

// Close releases the folder (or the bucket's connections). Requests arriving afterwards get
// 503; Close is idempotent.
func (o *Origin) Close() error {
	o.closeOnce.Do(func() { o.closeErr = o.store.close() })
	return o.closeErr
}

// ServeHTTP answers GET and HEAD with the file (ranges and conditionals per RFC 9110 §13 and
// §14, via http.ServeContent), OPTIONS with a CORS preflight answer, and anything else 405.
func (o *Origin) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &originWriter{ResponseWriter: rw}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", exposeHeaders)
	h.Set("X-Content-Type-Options", "nosniff")

	o.serve(w, r)

	if o.log.Enabled(r.Context(), slog.LevelDebug) {
		o.log.LogAttrs(r.Context(), slog.LevelDebug, "origin request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", w.statusOrOK()),
			slog.Int64("bytes", w.bytes),
			slog.Duration("took", time.Since(start)))
	}
}

func (o *Origin) serve(w *originWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		// A CORS preflight asks about the method and fields, not the target, so it is
		// answered before any path handling and even for names that do not exist.
		h := w.Header()
		h.Set("Allow", allowedMethods)
		h.Set("Access-Control-Allow-Methods", allowedMethods)
		h.Set("Access-Control-Allow-Headers", allowRequestHeaders)
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", allowedMethods)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}

	name, status, reason := checkPath(r.URL.Path)
	if status != 0 {
		httpError(w, status, reason)
		return
	}
	ctype, cacheControl := classify(name, o.manifestCC)
	if ctype == "" {
		// Refusing unknown types keeps stray files (logs, sources, keys) in the output
		// folder from leaking through the CDN.
		httpError(w, http.StatusNotFound, "not found")
		return
	}

	obj, err := o.store.open(r.Context(), name, wantsWhole(r))
	if err != nil {
		o.fsError(w, r, err)
		return
	}
	defer obj.close()

	etag, err := obj.etag(r.Context())
	if err != nil {
		if r.Context().Err() == nil {
			o.log.LogAttrs(r.Context(), slog.LevelError, "origin file error",
				slog.String("path", r.URL.Path), slog.Any("err", err))
			httpError(w, http.StatusInternalServerError, "internal error")
		}
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", cacheControl)
	// ServeContent evaluates If-None-Match and If-Range against this header, so it must be
	// set before the call.
	h.Set("ETag", etag)
	r = normalizeRange(r, obj.size())
	if wo, ok := obj.(windowed); ok {
		// A remote object asks its store for only the bytes the answer needs.
		if res, err := rangecache.Parse(r.Header.Get("Range"), obj.size(), rangecache.Options{}); err == nil && res.Kind == rangecache.Satisfiable {
			last := res.Ranges[len(res.Ranges)-1]
			wo.window(res.Ranges[0].Start, last.Start+last.Length)
		}
	}
	http.ServeContent(w, r, name, obj.modTime(), obj.content())
}

// wantsWhole reports a request whose answer is the whole body whatever the file: a GET with
// no Range and no precondition (an edge's cold fill).
func wantsWhole(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	for _, h := range []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	return true
}

// normalizeRange adapts the Range field to what http.ServeContent understands. ServeContent
// answers 416 to any unit but a lower-case "bytes", while RFC 9110 §14.1 makes units
// case-insensitive and §14.2 requires ignoring a unit the server does not know. And it answers
// any number of ranges, overlapping or not, with a multipart as large as they make it: a Range
// the edge would ignore (more than rangecache.DefaultMaxRanges ranges, or asking for more than
// twice the file) is ignored here too, as §14.2 allows — the whole file is the answer.
func normalizeRange(r *http.Request, size int64) *http.Request {
	rg := r.Header.Get("Range")
	if rg == "" {
		return r
	}
	if _, err := rangecache.Parse(rg, size, rangecache.Options{}); errors.Is(err, rangecache.ErrTooManyRanges) || errors.Is(err, rangecache.ErrExcessive) {
		r = r.Clone(r.Context())
		r.Header.Del("Range")
		return r
	}
	if strings.HasPrefix(rg, "bytes=") {
		return r
	}
	// Handlers must not modify the request they are given, hence the copy on this rare path.
	r = r.Clone(r.Context())
	if unit, set, ok := strings.Cut(rg, "="); ok && strings.EqualFold(unit, "bytes") {
		r.Header.Set("Range", "bytes="+set)
	} else {
		r.Header.Del("Range")
	}
	return r
}

// checkPath turns a decoded URL path into a name relative to the root. Anything that is not
// a plain, canonical relative path is refused here, before it reaches the file system: os.Root
// already stops escapes, but rejecting early keeps "/a/../b" and "/a//b" from becoming
// aliases that a CDN would cache under separate keys.
func checkPath(p string) (name string, status int, reason string) {
	if !strings.HasPrefix(p, "/") {
		return "", http.StatusBadRequest, "bad path"
	}
	rel := p[1:]
	if rel == "" || strings.HasSuffix(rel, "/") {
		return "", http.StatusNotFound, "not found" // directories are never listed
	}
	if !utf8.ValidString(rel) {
		return "", http.StatusBadRequest, "bad path"
	}
	for i := 0; i < len(rel); i++ {
		// Backslashes are separators on Windows and in some CDN normalisers, so a name
		// holding one could mean different files to different hops.
		if c := rel[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", http.StatusBadRequest, "bad path"
		}
	}
	hidden := false
	for _, elem := range strings.Split(rel, "/") {
		switch {
		case elem == "", elem == ".", elem == "..":
			return "", http.StatusBadRequest, "bad path"
		case elem[0] == '.':
			// Not returned at once: a later ".." must still answer 400, not 404.
			hidden = true
		}
	}
	if hidden {
		return "", http.StatusNotFound, "not found"
	}
	return rel, 0, ""
}

// classify returns the Content-Type and Cache-Control for name, or "" if it is not served;
// manifestCC is the manifests' Cache-Control. Extensions are matched case-sensitively because
// the packager only writes lower case; an upper-case variant is not one of its files. The
// upload to S3 (s3publish.go) gives each object the same two fields.
func classify(name, manifestCC string) (ctype, cacheControl string) {
	// The track folder is the one holding the file: "audio_eng/init.mp4", or one level down
	// in a bucket's version folder ("v-…/audio_eng/init.mp4", s3publish.go).
	track := path.Base(path.Dir(name))
	switch path.Ext(name) {
	case ".m3u8":
		return "application/vnd.apple.mpegurl", manifestCC
	case ".mpd":
		return "application/dash+xml", manifestCC
	case ".m4s":
		return "video/iso.segment", immutableCacheControl
	case ".vtt":
		// A text track's HLS segments ("text_fr/seg_00001.vtt").
		return "text/vtt; charset=utf-8", immutableCacheControl
	case ".mp4":
		// Track folders are named after the track ID ("audio_eng", "video_720p",
		// "text_fr_wvtt"); an audio-only init section or single file is audio/mp4 (RFC 4337),
		// a wvtt track's application/mp4 (RFC 4337: neither audio nor video).
		if strings.HasPrefix(track, "audio") {
			return "audio/mp4", immutableCacheControl
		}
		if strings.HasPrefix(track, "text") {
			return "application/mp4", immutableCacheControl
		}
		return "video/mp4", immutableCacheControl
	}
	return "", ""
}

// fsError maps a failure to open or stat a file. Whatever the client can cause by naming a
// path (missing, escaping the root, through a symlink loop or a file used as a folder) is a
// 404 that says nothing about why; only faults of the server itself are 5xx.
func (o *Origin) fsError(w *originWriter, r *http.Request, err error) {
	var se *storageError
	switch {
	case errors.Is(err, os.ErrClosed):
		httpError(w, http.StatusServiceUnavailable, "origin closed")
	case errors.As(err, &se):
		// The bucket failed or refused us (network, credentials, throttling): the client
		// did nothing wrong, and the answer must not be cached as a 404.
		o.log.LogAttrs(r.Context(), slog.LevelError, "origin storage error",
			slog.String("path", r.URL.Path), slog.Any("err", err))
		httpError(w, http.StatusBadGateway, "storage error")
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EIO):
		o.log.LogAttrs(r.Context(), slog.LevelError, "origin file error",
			slog.String("path", r.URL.Path), slog.Any("err", err))
		httpError(w, http.StatusInternalServerError, "internal error")
	default:
		if !errors.Is(err, fs.ErrNotExist) && o.log.Enabled(r.Context(), slog.LevelDebug) {
			o.log.LogAttrs(r.Context(), slog.LevelDebug, "origin refused path",
				slog.String("path", r.URL.Path), slog.Any("err", err))
		}
		httpError(w, http.StatusNotFound, "not found")
	}
}

// httpError writes a short text reason. The no-store comes from originWriter.WriteHeader.
func httpError(w http.ResponseWriter, code int, reason string) {
	http.Error(w, reason, code)
}

// inode reads the Ino field of the platform stat structure by reflection, so this file builds
// unchanged on systems whose Sys() has no such field (there it is 0). It is part of a file's
// identity for the digest cache: the packager publishes by rename, so a new version of a file
// always has a new inode even if it kept the old size and mtime.
func inode(fi fs.FileInfo) uint64 {
	v := reflect.ValueOf(fi.Sys())
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0
	}
	v = v.Elem()
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("Ino")
	if !f.IsValid() || !f.CanUint() {
		return 0
	}
	return f.Uint()
}

// originWriter makes every error response uncacheable, including those http.ServeContent
// writes itself (416, 412), and counts status and bytes for the request log.
type originWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *originWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
		if code >= 400 {
			h := w.Header()
			// A cached 404 would outlive the file's publication, and a cached 416 would
			// pin a client to a stale idea of the size.
			h.Set("Cache-Control", "no-store")
			h.Del("ETag")
			h.Del("Last-Modified")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *originWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the server's sendfile path: ServeContent copies with io.CopyN, which would
// otherwise fall back to a user-space buffer because of the wrapper.
func (w *originWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer (deadlines, flushing).
func (w *originWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *originWriter) statusOrOK() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// writerOnly hides a ReaderFrom so io.Copy cannot recurse into it.
type writerOnly struct{ io.Writer }
