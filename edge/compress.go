package edge

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"

	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/rangecache/fill"
)

// Compression at the edge (README "Compression"). A stored response the rules let compress —
// a 200 of a configured text type (playlists, MPDs, JSON, JS, CSS, HTML, WebVTT, TTML, SVG…),
// not coded by the origin, not marked no-transform, between compression.min_size and the
// memory tier's object limit — is served in the coding the request prefers (brotli, else
// gzip, else identity: policy.NormalizeAcceptEncoding), with Vary: Accept-Encoding on every
// coding, identity included. Each coding is a copy made once from the stored response, kept
// beside it in the memory tier (store.Memory.PutCoded), shared by every client, and gone with
// it (replaced, evicted, purged): a live playlist is compressed once per version, after
// edge/live capped it. A copy's strong ETag is the stored one with "-br" or "-gzip" inside
// the quotes (RFC 9110 §8.8.3: validators differ per coding), so If-None-Match answers 304
// per coding. Range requests get ranges of the identity copy. Responses the origin coded are
// passed through as they are; so is what is never stored (private, no-store, passes).
// The stored object itself stays the origin's, so one origin fetch serves every coding, and
// the disk tier holds identity only: a copy is made again after a restart.

// Content codings of the copies.
const (
	codingBrotli   = "br"
	codingGzip     = "gzip"
	codingIdentity = "identity"
)

// compressor makes the coded copies, one at a time per stored object and coding.
type compressor struct {
	cfg Compression // with its defaults

	mu      sync.Mutex
	running map[codingCall]*codingRun

	// Writers by coding and level, reused.
	writers map[codingLevel]*sync.Pool
}

type codingLevel struct {
	name  string
	level int
}

// shortLived: a response fresh for less than this (a live playlist: edge/live caps it to a
// fraction of its target duration) is coded at the live levels, as each new version is.
const shortLived = time.Minute

type codingCall struct {
	base *store.Object
	name string
}

type codingRun struct {
	done chan struct{}
	obj  *store.Object
}

func newCompressor(cfg Compression) *compressor {
	c := &compressor{cfg: cfg.withDefaults(), running: map[codingCall]*codingRun{}, writers: map[codingLevel]*sync.Pool{}}
	for _, l := range []int{c.cfg.GzipLevel, c.cfg.LiveGzipLevel} {
		c.writers[codingLevel{codingGzip, l}] = &sync.Pool{New: func() any {
			w, _ := gzip.NewWriterLevel(io.Discard, l) // levels checked by Validate
			return w
		}}
	}
	for _, l := range []int{c.cfg.BrotliLevel, c.cfg.LiveBrotliLevel} {
		c.writers[codingLevel{codingBrotli, l}] = &sync.Pool{New: func() any { return brotli.NewWriterLevel(io.Discard, l) }}
	}
	return c
}

// level is the level of coding name for base: the live one for a short-lived response.
func (c *compressor) level(name string, base *store.Object) int {
	// Its freshness lifetime; a zero FreshUntil (revalidated every time) counts as short.
	short := base.FreshUntil.IsZero() || base.FreshUntil.Sub(base.ResponseTime)+base.InitialAge < shortLived
	switch {
	case name == codingBrotli && short:
		return c.cfg.LiveBrotliLevel
	case name == codingBrotli:
		return c.cfg.BrotliLevel
	case short:
		return c.cfg.LiveGzipLevel
	}
	return c.cfg.GzipLevel
}

// setCompress lets the heads written to w be compressed (the request's ruling says so); a
// request carrying a query token into manifests is served as it is stored (the rewrite reads
// the body: tokenrespond.go).
func (e *Edge) setCompress(w http.ResponseWriter, rl *ruling) {
	if _, carrying := w.(*manifestWriter); carrying {
		return
	}
	if rw := measuring(w); rw != nil {
		rw.compress = rl.compress > 0 || (rl.compress == 0 && !e.cfg.Compression.Off)
	}
}

func compressing(w http.ResponseWriter) bool {
	rw := measuring(w)
	return rw != nil && rw.compress
}

// codableHead reports whether a response of status, header and size (-1: unknown) is one the
// edge compresses.
func (c *compressor) codableHead(status int, h http.Header, size int64, fits func(int64) bool) bool {
	if status != http.StatusOK || size < int64(c.cfg.MinSize) || !fits(size) || len(h["Content-Range"]) > 0 {
		return false
	}
	for _, v := range h["Content-Encoding"] {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, codingIdentity) {
			return false // the origin's coding, passed through as it is
		}
	}
	if noTransform(h) {
		return false // RFC 9111 §5.2.2.6
	}
	return compressType(c.cfg.Types, field(h, "Content-Type"))
}

// codable is codableHead for a stored object, worked out once per object.
func (e *Edge) codable(obj *cached) bool {
	switch obj.codable.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	ok := e.comp.codableHead(obj.Status, obj.Header, obj.Size, e.tiers.mem.Fits)
	obj.codable.Store(2 - b2u(ok))
	return ok
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// coded is the stored object obj (the variant vk of key) as r gets it: its copy in the coding
// r prefers — identity, with Vary, for a Range request — when obj is compressible and the
// heads written to w may be compressed; else obj itself.
func (e *Edge) coded(w http.ResponseWriter, r *http.Request, key, vk string, obj *cached) *cached {
	if obj == nil || !compressing(w) || !e.codable(obj) {
		return obj
	}
	base := obj.src
	if base == nil {
		// From the disk tier: lookup promoted it into memory (it fits, codable says).
		base = e.memVariant(key, vk)
		if base == nil || !base.ResponseTime.Equal(obj.ResponseTime) || int64(len(base.Body)) != obj.Size {
			return obj
		}
	}
	name := codingIdentity
	if field(r.Header, "Range") == "" {
		name = policy.NormalizeAcceptEncoding(r.Header["Accept-Encoding"])
	}
	if c := e.tiers.mem.CodedOf(key, vk, name, base); c != nil {
		return fromMemory(c)
	}
	c := e.comp.copyOf(base, name)
	e.tiers.mem.PutCoded(key, vk, name, c)
	return fromMemory(c)
}

// memVariant is the memory tier's variant vk of key, or nil.
func (e *Edge) memVariant(key, vk string) *store.Object {
	if entry, ok := e.tiers.mem.Lookup(key); ok {
		return entry.Variants[vk]
	}
	return nil
}

// copyOf makes base's copy in coding name, or waits for the one being made.
func (c *compressor) copyOf(base *store.Object, name string) *store.Object {
	call := codingCall{base, name}
	c.mu.Lock()
	if run := c.running[call]; run != nil {
		c.mu.Unlock()
		<-run.done
		return run.obj
	}
	run := &codingRun{done: make(chan struct{})}
	c.running[call] = run
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.running, call)
		c.mu.Unlock()
		close(run.done)
	}()
	run.obj = c.makeCopy(base, name)
	return run.obj
}

// makeCopy builds base's copy in coding name: the body coded (base's own when the coding
// saves nothing), Vary: Accept-Encoding added, the validators of the coding, the freshness
// and hit header prepared as withFreshness would.
func (c *compressor) makeCopy(base *store.Object, name string) *store.Object {
	h := base.Header.Clone()
	addVary(h, "Accept-Encoding")
	body := base.Body
	if name != codingIdentity {
		if coded := c.encode(name, c.level(name, base), base.Body); len(coded) < len(base.Body) {
			body = coded
			h["Content-Encoding"] = []string{name}
			if et := h["Etag"]; len(et) > 0 {
				h["Etag"] = []string{codedETag(et[0], name)}
			}
			h["Content-Length"] = []string{strconv.Itoa(len(body))}
			// Digests of the identity bytes would not match these.
			for _, k := range []string{"Content-Md5", "Digest", "Content-Digest", "Repr-Digest"} {
				delete(h, k)
			}
		}
	}
	o := &store.Object{Status: base.Status, Header: h, RequestTime: base.RequestTime, ResponseTime: base.ResponseTime,
		Body: body, Invalidated: base.Invalidated, FreshUntil: base.FreshUntil, InitialAge: base.InitialAge, Of: base}
	o.Prepared = memoryView(o, prepareHit(o))
	return o
}

// encode codes body in coding name ("br" or "gzip") at level, one of the configured ones.
func (c *compressor) encode(name string, level int, body []byte) []byte {
	pool := c.writers[codingLevel{name, level}]
	if pool == nil {
		return body
	}
	var out bytes.Buffer
	out.Grow(len(body)/4 + 64)
	switch w := pool.Get().(type) {
	case *brotli.Writer:
		w.Reset(&out)
		w.Write(body)
		w.Close()
		w.Reset(io.Discard) // let go of out
		pool.Put(w)
	case *gzip.Writer:
		w.Reset(&out)
		w.Write(body)
		w.Close()
		w.Reset(io.Discard)
		pool.Put(w)
	}
	return out.Bytes()
}

// codedETag is the entity tag of a coding's copy: the stored one with "-" and the coding
// added inside its quotes (weak stays weak).
func codedETag(etag, name string) string {
	if len(etag) < 2 || etag[len(etag)-1] != '"' {
		return etag // malformed: left alone, as it never matches a well-formed one anyway
	}
	return etag[:len(etag)-1] + "-" + name + `"`
}

// addVary adds name to h's Vary unless it is listed (or Vary is *).
func addVary(h http.Header, name string) {
	for _, line := range h["Vary"] {
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, name) {
				return
			}
		}
	}
	h["Vary"] = append(h["Vary"][:len(h["Vary"]):len(h["Vary"])], name)
}

// serveCodedFill serves a fill of a compressible response in the coding r prefers: once the
// body is complete and stored, from its coded copy; false when it can't (the body broke off,
// or it is not in memory), and the caller serves the fill as it is.
func (e *Edge) serveCodedFill(w http.ResponseWriter, r *http.Request, res lookupResult, head fill.Head, body *fill.Body, cs cachestatus.Status) bool {
	if err := body.Wait(r.Context()); err != nil {
		return false
	}
	base := e.memVariant(res.key, head.VaryKey)
	if base == nil || base.Status != head.Status {
		return false
	}
	obj := e.coded(w, r, res.key, head.VaryKey, fromMemory(base))
	e.serveObject(w, r, e.now(), obj, res.pol, cs)
	return true
}

// codingFill reports whether the fill's response goes out coded for r, and its head with
// Vary: Accept-Encoding when it is compressible at all.
func (e *Edge) codingFill(w http.ResponseWriter, r *http.Request, head fill.Head) (fill.Head, bool) {
	if !compressing(w) || !head.Stored {
		return head, false
	}
	size, err := strconv.ParseInt(field(head.Header, "Content-Length"), 10, 64)
	if err != nil || !e.comp.codableHead(head.Status, head.Header, size, e.tiers.mem.Fits) {
		return head, false
	}
	h := head.Header.Clone()
	addVary(h, "Accept-Encoding")
	head.Header = h
	coded := field(r.Header, "Range") == "" && policy.NormalizeAcceptEncoding(r.Header["Accept-Encoding"]) != codingIdentity
	return head, coded
}

// noTransform reports whether h's Cache-Control holds no-transform.
func noTransform(h http.Header) bool {
	for _, line := range h["Cache-Control"] {
		for _, d := range strings.Split(line, ",") {
			name, _, _ := strings.Cut(d, "=")
			if strings.EqualFold(strings.TrimSpace(name), "no-transform") {
				return true
			}
		}
	}
	return false
}
