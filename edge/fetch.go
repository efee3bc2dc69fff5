package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/reelvideo/reel/edge/cachekey"
	"github.com/reelvideo/reel/edge/cachestatus"
	"github.com/reelvideo/reel/edge/policy"
	"github.com/reelvideo/reel/edge/store"
	"github.com/reelvideo/reel/rangecache"
	"github.com/reelvideo/reel/rangecache/fill"
)

// unkeyedOverrides are request fields some origins and frameworks honour to rewrite the host,
// path or method. They are not part of the cache key, so forwarding them on cacheable requests
// would let one client poison the entry every other client gets (web cache poisoning).
var unkeyedOverrides = []string{
	"X-Forwarded-Host", "X-Forwarded-Server", "X-Host", "X-Original-Url", "X-Rewrite-Url",
	"X-Original-Host", "X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Forwarded-Scheme", "X-Forwarded-Port", "X-Forwarded-Prefix", "Forwarded",
}

// originRequest builds the request to send upstream: same method and path, the query the key
// holds (forward.go), hop-by-hop and underscored fields removed (RFC 9110
// §7.6.1), Via and X-Forwarded-For added, Host kept or rewritten per config.
func (e *Edge) originRequest(ctx context.Context, up *upstream, r *http.Request, cacheable bool) (*http.Request, error) {
	// The path goes upstream as the key saw it, dot segments removed (RFC 3986 §5.2.4), so
	// that "/a/../b" cannot fetch one resource and store it under another's key.
	target := up.url.Scheme + "://" + up.url.Host + strings.TrimSuffix(up.url.EscapedPath(), "/") +
		cachekey.NormalizePath(r.URL.EscapedPath())
	if q := e.upstreamQuery(r, cacheable); q != "" {
		target += "?" + q
	}
	var body io.Reader
	if r.Body != nil && r.Body != http.NoBody && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body = r.Body
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		return nil, badRequestError{err}
	}
	out.ContentLength = r.ContentLength
	if body == nil {
		out.ContentLength = 0
	}
	out.Header = r.Header.Clone()
	policy.RemoveHopByHop(out.Header)
	e.dropUnderscored(out.Header)
	if cacheable {
		for _, h := range unkeyedOverrides {
			out.Header.Del(h)
		}
		// Variants are keyed by the normalised Accept-Encoding, so that is what the origin
		// must see (policy.VaryKey).
		if ae := out.Header.Values("Accept-Encoding"); len(ae) > 0 {
			out.Header.Set("Accept-Encoding", policy.NormalizeAcceptEncoding(ae))
		}
	}
	out.Header.Add("Via", e.via)
	out.Header.Add("CDN-Loop", cdnID+"; node="+e.loopID)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := out.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	out.Header.Set("X-Forwarded-Proto", proto)
	switch {
	case up.parent || up.hostHeader == "":
		// The host as the key saw it (case, trailing dot and default port normalised), so
		// that "EXAMPLE.com.:80" can't fill example.com's entry with what it made the origin
		// say. A parent always gets it: it routes by it to its own origins, and rewrites it
		// for them as its own configuration says.
		out.Host = canonicalHost(r.Host, r.TLS != nil)
	case up.hostHeader == "origin":
		out.Host = up.url.Host
	default:
		out.Host = up.hostHeader
	}
	return out, nil
}

// badRequestError is a client request that can't be turned into an upstream one.
type badRequestError struct{ err error }

func (b badRequestError) Error() string { return b.err.Error() }
func (b badRequestError) Unwrap() error { return b.err }

// canonicalHost lower-cases host, drops a trailing dot and the scheme's default port.
func canonicalHost(host string, tls bool) string {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = host, ""
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if port == "" || (port == "80" && !tls) || (port == "443" && tls) {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return net.JoinHostPort(h, port)
}

// idleBody aborts an origin body that sends nothing for too long: a stalled origin must not
// hold a fill — and every request that joined it — forever.
type idleBody struct {
	io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelFunc
}

func newIdleBody(body io.ReadCloser, idle time.Duration, cancel context.CancelFunc) *idleBody {
	return &idleBody{ReadCloser: body, timer: time.AfterFunc(idle, cancel), idle: idle, cancel: cancel}
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.timer.Reset(b.idle)
	return n, err
}

// pausable is an origin body whose idle clock can be stopped (idleBody, or one that wraps it).
type pausable interface {
	pause()
	resume()
}

// pause stops the idle clock while the reader waits on its own account (a fill paced by its
// clients), not on the origin's; resume restarts it.
func (b *idleBody) pause()  { b.timer.Stop() }
func (b *idleBody) resume() { b.timer.Reset(b.idle) }

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// doOrigin sends out and returns the response with its body guarded by the read timeout;
// closing the body releases the request's context.
func (e *Edge) doOrigin(ctx context.Context, up *upstream, out *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	out = out.WithContext(traceInterim(ctx)) // 1xx relayed to the client (interim.go)
	start := time.Now()
	client := up.client
	if up.blocking != nil && blockingReload(out.URL.RawQuery) {
		client = up.blocking
	}
	resp, err := client.Do(out)
	e.m.observeOrigin(start)
	e.stats.OriginRequests.Add(1)
	if err != nil {
		cancel()
		return nil, err
	}
	// An upstream's Alt-Svc names where *it* can be reached (RFC 7838 §3: for the origin the
	// client talked to, which here is this edge): passed on, it would send clients to the
	// origin's or a shield's ports under this edge's name. Clients get this edge's own.
	delete(resp.Header, "Alt-Svc")
	resp.Body = newIdleBody(resp.Body, e.cfg.Limits.OriginReadTimeout, cancel)
	return resp, nil
}

// runFill fetches one response for a coalesced group and publishes it: shareable responses
// are copied into a Body every waiter reads and stored when complete; others are handed to
// the leader alone. cond is the stored object being revalidated, if any.
func (e *Edge) runFill(ctx context.Context, f *fill.Fill, up *upstream, r *http.Request, res lookupResult, cond *cached) {
	if e.publishIfStored(f, r, res) {
		return
	}
	var extra http.Header
	if cond != nil {
		extra = policy.ConditionalRequestHeaders(cond.Header)
	}
	gen := e.gen(res.key).Load()
	resp, reqTime, respTime, ok := e.fetchForFill(ctx, f, up, r, extra)
	if !ok {
		return
	}

	if cond != nil {
		switch {
		case resp.StatusCode == http.StatusNotModified:
			resp.Body.Close()
			if merged, ok := policy.MergeNotModified(cond.Header, resp.Header); ok {
				e.recapRevalidated(r, res, cond, merged, respTime)
				e.revalidated(f, res, cond, merged, reqTime, respTime)
				return
			}
			// The 304 is about another representation: fetch it whole.
			e.runFill(ctx, f, up, r, res, nil)
			return
		}
	}
	e.publish(f, r, up, res, cond, resp, gen, reqTime, respTime)
}

// publishIfStored serves a fill from the cache when the object was stored between the
// request's lookup and its fill starting (the previous fill for the key finished in that
// window), instead of fetching it again.
func (e *Edge) publishIfStored(f *fill.Fill, r *http.Request, res lookupResult) bool {
	l := e.lookup(r, res.pol)
	if l.obj == nil || l.obj.mem == nil {
		return false
	}
	if _, _, fresh := l.obj.quickFresh(r, e.now()); !fresh {
		return false
	}
	body := fill.NewMemoryBodySize(l.obj.Size)
	body.Write(l.obj.mem)
	body.Finish(nil)
	f.SetHead(fill.Head{Status: l.obj.Status, Header: l.obj.Header, Shareable: true, Stored: true, Vary: l.vary, VaryKey: l.vk}, body)
	return true
}

// fetchForFill sends a fill's request (plus extra header fields) to the origin and returns
// the response with a Date and the exchange's times (RFC 9111 §4.2.3); on failure it fails
// the fill and reports false.
func (e *Edge) fetchForFill(ctx context.Context, f *fill.Fill, up *upstream, r *http.Request, extra http.Header) (*http.Response, time.Time, time.Time, bool) {
	reqTime := e.now()
	resp, err := e.send(ctx, up, r, true, extra)
	if err != nil {
		f.Fail(err)
		return nil, time.Time{}, time.Time{}, false
	}
	respTime := e.now()
	policy.EnsureDate(resp.Header, respTime)
	return resp, reqTime, respTime, true
}

// publish hands a fetched response to the fill: stored and shared when storable, relayed
// when short, streamed to the leader alone otherwise. gen is the key's invalidation count
// when the fetch began.
func (e *Edge) publish(f *fill.Fill, r *http.Request, up *upstream, res lookupResult, cond *cached, resp *http.Response, gen uint64, reqTime, respTime time.Time) {
	// A live manifest's freshness is capped in its header before anything below reads it,
	// and what it lists is prefetched (live.go).
	e.liveManifest(r, res, resp, respTime)
	storable, reason := policy.Storable(r, resp.StatusCode, resp.Header, res.pol)
	vary := resp.Header.Values("Vary")
	vk, varyOK := policy.VaryKey(vary, r.Header)
	size := resp.ContentLength
	storable = storable && varyOK
	if storable && len(vary) == 0 && e.cfg.SliceSize > 0 && rangecache.StreamableUnknownLength(resp) &&
		e.streamSlices(f, r, up, res, resp, gen, reqTime, respTime) {
		// Unknown length (chunked) at an origin that serves ranges: stored as slices while
		// it streams to every request of the fill, its meta recorded once it ended complete
		// (rangecache/stream.go) — whatever its length turns out to be, and without a tier's limit.
		return
	}
	sliceable := size > 0 && e.cfg.SliceSize > 0 && len(vary) == 0 && resp.StatusCode == http.StatusOK && rangecache.Identity(resp.Header, size) != ""
	whole := storable && !(sliceable && e.cfg.SliceThreshold > 0 && size > int64(e.cfg.SliceThreshold))
	inMemory := whole && size >= 0 && e.mem.Fits(size) && e.reserveFillMem(size)
	if inMemory {
		defer e.fillMem.Add(-size)
	}
	var room *store.Room // made on disk before the body is written, so the tier never overfills
	if whole && !inMemory && e.disk != nil && size <= int64(e.cfg.MaxObjectSize) {
		room = e.disk.Reserve(max(size, 0))
	}
	defer room.Release()
	onDisk := room != nil
	if storable && !inMemory && !onDisk {
		reason = "size"
		if sliceable && e.streamSlices(f, r, up, res, resp, gen, reqTime, respTime) {
			// Too large for any tier whole, or above slice_threshold: stored as slices while
			// it streams, the leader, the requests that joined it and those arriving
			// meanwhile all reading the slices of this one origin response (rangecache/stream.go).
			// (Not when the URL was invalidated meanwhile, or the object is not the version
			// recorded: then the leader alone gets it, below.)
			return
		}
		if size < 0 {
			// Unknown length (chunked), no disk tier, and nothing to slice it by (no strong
			// ETag or no Accept-Ranges, see above): the leader streams it directly, and a
			// copy is kept and stored if the body ends complete within the memory tier's
			// object limit. (Waiters meanwhile fetch on their own.)
			reason = "unknown-length"
			direct := &teeStore{ReadCloser: resp.Body, limit: e.mem.MaxObject()}
			direct.complete = func(data []byte) {
				if e.gen(res.key).Load() != gen {
					return
				}
				header := policy.HeaderToStore(resp.Header, res.pol)
				e.mem.Put(res.key, vary, vk, withFreshness(&store.Object{Status: resp.StatusCode, Header: header, RequestTime: reqTime, ResponseTime: respTime, Body: data}, res.pol))
				e.tags.add(res.key, header)
				e.stats.Stored.Add(1)
			}
			f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: direct, Reason: reason}, nil)
			return
		}
	}
	if !inMemory && !onDisk {
		// A short error with no per-user state is relayed to every collapsed request —
		// including ones that may answer with a stale copy instead (RFC 5861 §4) — rather
		// than sending each of them to a failing origin (errshare.go).
		if shareableError(r, resp) && e.relayError(f, r, resp) {
			return
		}
		f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: resp.Body, Reason: reason}, nil)
		return
	}
	header := policy.HeaderToStore(resp.Header, res.pol)
	var body *fill.Body
	var tmp *os.File
	var err error
	if inMemory {
		body = fill.NewMemoryBodySize(size)
	} else {
		if tmp, err = e.disk.TempFile(); err != nil {
			f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: resp.Body, Reason: "disk"}, nil)
			return
		}
		body = fill.NewFileBody(tmp)
	}
	f.SetHead(fill.Head{Status: resp.StatusCode, Header: header, Shareable: true, Stored: true, Vary: vary, VaryKey: vk}, body)
	limit := int64(e.cfg.MaxObjectSize)
	src := &abandonGuard{Reader: resp.Body, f: f, limit: int64(e.cfg.Limits.AbandonedFillBytes)}
	n, err := io.Copy(holdLast{body}, io.LimitReader(src, limit+1))
	resp.Body.Close()
	e.m.originBytes.Add(float64(n))
	switch {
	case err != nil:
	case size >= 0 && n != size:
		err = fmt.Errorf("origin sent %d of %d bytes", n, size)
	case n > limit:
		err = fmt.Errorf("body exceeds the %d-byte object limit", limit)
	}
	if err != nil {
		if errors.Is(err, errAbandoned) && sliceable && e.gen(res.key).Load() == gen {
			var arrived io.ReaderAt = tmp
			if tmp == nil {
				arrived = bytes.NewReader(body.Written())
			}
			e.keepSlices(res, gen, header, size, arrived, n, reqTime, respTime)
		}
		body.Finish(err) // an interrupted fill is never stored nor passed off as complete
		if tmp != nil {
			os.Remove(tmp.Name())
		}
		e.log.Warn("origin body interrupted", "key", res.key, "err", err)
		return
	}
	obj := &store.DiskObject{Primary: res.key, Vary: vary, VaryKey: vk, Status: resp.StatusCode, Header: header,
		RequestTime: reqTime, ResponseTime: respTime, Size: n}
	if e.gen(res.key).Load() != gen {
		// Purged or invalidated while we fetched: serve what we have, store nothing.
		body.Finish(nil)
		if tmp != nil {
			os.Remove(tmp.Name())
		}
		return
	}
	if inMemory {
		// Store, then Finish: once a client has the complete body, it is stored — so a purge
		// it sends next can't be undone by a store that lands later.
		data := body.Written()
		e.mem.Put(res.key, vary, vk, withFreshness(&store.Object{Status: resp.StatusCode, Header: header, RequestTime: reqTime, ResponseTime: respTime, Body: data}, res.pol))
		e.persist(obj, data)
		body.Finish(nil)
	} else {
		// Commit before Finish: by the time anyone sees the body complete, it is stored.
		if err := room.Commit(tmp.Name(), obj); err != nil {
			e.log.Warn("disk tier: storing a body", "key", res.key, "err", err)
		}
		body.Finish(nil)
	}
	e.tags.add(res.key, header)
	e.stats.Stored.Add(1)
}

// teeStore passes a body through while keeping a copy of up to limit bytes; complete is
// called with the copy if the body reached a clean end within the limit.
type teeStore struct {
	io.ReadCloser
	limit    int64
	buf      []byte
	over     bool
	complete func([]byte)
}

func (t *teeStore) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if !t.over {
		if int64(len(t.buf)+n) > t.limit {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	if err == io.EOF && !t.over && t.complete != nil {
		t.complete(t.buf)
		t.complete = nil
	}
	return n, err
}

// holdLast writes a fill's body keeping the latest chunk held back (fill.Body.Hold): when the
// origin's body ends, its last bytes stay invisible until the object is stored and the body
// finished, so no client can have the whole object before it is in the cache.
type holdLast struct{ b *fill.Body }

func (h holdLast) Write(p []byte) (int, error) {
	h.b.Reveal()
	if err := h.b.Hold(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// persist writes a memory-tier object through to the disk tier, so that it survives a restart.
func (e *Edge) persist(obj *store.DiskObject, data []byte) {
	if e.disk == nil {
		return
	}
	room := e.disk.Reserve(int64(len(data)))
	if room == nil {
		return
	}
	defer room.Release()
	f, err := e.disk.TempFile()
	if err != nil {
		return
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return
	}
	if err := room.Commit(f.Name(), obj); err != nil {
		e.log.Warn("disk tier: storing a body", "key", obj.Primary, "err", err)
	}
}

// revalidated publishes a stored object refreshed by a 304 (RFC 9111 §4.3.4): new headers
// and exchange times in both tiers, the same body.
func (e *Edge) revalidated(f *fill.Fill, res lookupResult, cond *cached, merged http.Header, reqTime, respTime time.Time) {
	if cond.mem != nil {
		e.mem.Put(res.key, res.vary, res.vk, withFreshness(&store.Object{Status: cond.Status, Header: merged, RequestTime: reqTime, ResponseTime: respTime, Body: cond.mem}, res.pol))
	}
	if e.disk != nil {
		// The object revalidated (cond.disk, or the one the memory copy came from) — Update
		// leaves a newer object of the same key alone.
		target := cond.disk
		if target == nil {
			if _, variant, ok := e.disk.Lookup(res.key); ok {
				target = variant(res.vk)
			}
		}
		if target != nil {
			e.disk.Update(target, merged, reqTime, respTime)
		}
	}
	e.stats.Stored.Add(1)
	var body *fill.Body
	if cond.mem != nil {
		body = fill.NewMemoryBodySize(cond.Size)
		body.Write(cond.mem)
		body.Finish(nil)
	} else {
		file, err := os.Open(cond.disk.Path())
		if err != nil {
			f.Fail(err)
			return
		}
		body = fill.NewCompleteFileBody(file, cond.Size)
	}
	f.SetHead(fill.Head{Status: cond.Status, Header: merged, Shareable: true, Stored: true, Vary: res.vary, VaryKey: res.vk, Reason: reasonRevalidated}, body)
}

// reasonRevalidated marks a fill head rebuilt from a 304.
const reasonRevalidated = "revalidated"

// refreshInBackground revalidates a stale-while-revalidate entry once per key (RFC 5861 §3):
// concurrent requests for it join the same refresh.
func (e *Edge) refreshInBackground(r *http.Request, up *upstream, res lookupResult) {
	req := fillRequest(r.WithContext(context.WithoutCancel(r.Context())))
	obj := res.obj
	e.inflight.Add(1)
	f, leader := e.fills.Join(req.Context(), e.fillKey(res, obj), func(ctx context.Context, f *fill.Fill) {
		defer e.inflight.Done()
		e.runFill(ctx, f, up, req, res, obj)
	})
	if !leader {
		e.inflight.Done()
		f.Done()
		return
	}
	go func() {
		defer f.Done()
		// Drain a response that was not shareable; nobody is waiting for it. A shared one
		// is followed to its end: the refresh reads it (a fill nobody reads stops, abandon.go).
		h, body, err := f.Head(context.Background(), true, 0)
		switch {
		case err == nil && h.Direct != nil:
			io.Copy(io.Discard, h.Direct)
			h.Direct.Close()
		case err == nil && body != nil:
			body.Wait(context.Background())
		}
	}()
}

// forward sends a request to the origin on the client's behalf without caching and relays
// the answer (bypass rules, uncollapsed waiters, ranges on uncached objects).
func (e *Edge) forward(w http.ResponseWriter, r *http.Request, up *upstream, cs cachestatus.Status) {
	r = withInterim(r, w)
	resp, err := e.send(r.Context(), up, r, r.Method == http.MethodGet || r.Method == http.MethodHead, nil)
	if err != nil {
		if errors.Is(r.Context().Err(), context.Canceled) {
			return
		}
		var bad badRequestError
		if errors.As(err, &bad) {
			httpError(w, http.StatusBadRequest, "cannot forward this request")
			return
		}
		originError(w, err)
		return
	}
	defer resp.Body.Close()
	cs.FwdStatus = resp.StatusCode
	e.writeHead(w, r, resp.StatusCode, clientHeader(resp.Header), 0, cs)
	if r.Method != http.MethodHead {
		relay(w, resp.Body)
	}
}

// forwardUnsafe forwards POST, PUT, DELETE, PATCH… and, when the origin accepted it,
// invalidates what the request changed (RFC 9111 §4.4).
func (e *Edge) forwardUnsafe(w http.ResponseWriter, r *http.Request, up *upstream) {
	iw := &statusRecorder{ResponseWriter: w}
	e.forward(iw, r, up, cachestatus.Status{Fwd: cachestatus.FwdMethod})
	if !isSafe(r.Method) && iw.status != 0 {
		for _, u := range policy.Invalidations(r, iw.status, iw.Header()) {
			e.invalidate(e.keyer.KeyURL(u, r.Header))
		}
	}
}

// reserveFillMem accounts size bytes of a memory-backed fill, refusing when fills in flight
// would exceed their share of --memory (fillMemory: many concurrent large misses must not
// exhaust RAM; such fills go to disk or are passed through).
func (e *Edge) reserveFillMem(size int64) bool {
	if e.fillMem.Add(size) > fillMemory(e.cfg) {
		e.fillMem.Add(-size)
		return false
	}
	return true
}

// invalidate forgets every variant of primary in both tiers.
func (e *Edge) invalidate(primary string) bool {
	e.gen(primary).Add(1)
	found := e.mem.Invalidate(primary)
	if e.disk != nil && e.disk.Invalidate(primary) {
		found = true
	}
	return found
}

func isSafe(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
