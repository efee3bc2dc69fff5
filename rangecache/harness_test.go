package rangecache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/rangecache/fill"
)

// The byte-range cache tested without an edge: a loopback origin that serves ranges
// (http.ServeContent), an in-memory Store, and an Origin that sends fills to it.

// object is what the test origin serves at a path.
type object struct {
	data    []byte
	etag    string
	chunked bool // a plain GET is answered without Content-Length (unknown length)
	// gate, when set, is called before the origin answers a request for the object.
	gate func(r *http.Request)
	// midway, when set, is called once a chunked answer's head and first bytes are sent.
	midway func()
}

// testOrigin serves objects by path and counts what it sends.
type testOrigin struct {
	srv      *httptest.Server
	mu       sync.Mutex
	objs     map[string]*object
	requests atomic.Int64
	sent     atomic.Int64 // body bytes
	byRange  sync.Map     // path + " " + Range → *atomic.Int64
}

func newTestOrigin(t testing.TB) *testOrigin {
	o := &testOrigin{objs: map[string]*object{}}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *testOrigin) set(path string, obj *object) {
	o.mu.Lock()
	o.objs[path] = obj
	o.mu.Unlock()
}

func (o *testOrigin) get(path string) *object {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.objs[path]
}

// rangeCount is how many requests for path carried Range rng ("" for none).
func (o *testOrigin) rangeCount(path, rng string) int64 {
	if v, ok := o.byRange.Load(path + " " + rng); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func (o *testOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	v, _ := o.byRange.LoadOrStore(r.URL.Path+" "+r.Header.Get("Range"), new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	obj := o.get(r.URL.Path)
	if obj == nil {
		http.NotFound(w, r)
		return
	}
	if obj.gate != nil {
		obj.gate(r)
		obj = o.get(r.URL.Path) // the gate may have changed it
	}
	cw := &countingWriter{ResponseWriter: w, n: &o.sent}
	h := w.Header()
	h.Set("ETag", obj.etag)
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", "max-age=3600")
	h.Set("Accept-Ranges", "bytes")
	if obj.chunked && r.Header.Get("Range") == "" {
		// Unknown length: written in pieces, flushed, so no Content-Length is declared.
		for off := 0; off < len(obj.data); off += 5 {
			cw.Write(obj.data[off:min(off+5, len(obj.data))])
			cw.Flush()
			if off == 0 && obj.midway != nil {
				obj.midway()
			}
		}
		return
	}
	http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(obj.data))
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

// Write counts p before it is sent: counted after, it could be counted once the client had
// it all and the test had gone on to its next case.
func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.ResponseWriter.Write(p)
}

func (c *countingWriter) Flush() { http.NewResponseController(c.ResponseWriter).Flush() }

// memStore is a Store in memory; Forget moves the URL's generation on, as the edge's
// invalidation does.
type memStore struct {
	mu     sync.Mutex
	metas  map[string]*Entry
	slices map[string]*Entry
	gens   map[string]uint64
}

func newMemStore() *memStore {
	return &memStore{metas: map[string]*Entry{}, slices: map[string]*Entry{}, gens: map[string]uint64{}}
}

func (s *memStore) Meta(key string) *Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metas[key]
}

func (s *memStore) PutMeta(key string, m *Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.metas[key] = m
}

func (s *memStore) Slice(key string) (http.Header, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.slices[key]; e != nil {
		return e.Header, e.Body
	}
	return nil, nil
}

func (s *memStore) SliceHeader(key string) http.Header {
	h, _ := s.Slice(key)
	return h
}

func (s *memStore) PutSlice(key string, e *Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slices[key] = e
}

func (s *memStore) Forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.metas, key)
	s.gens[key]++
}

func (s *memStore) gen(key string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gens[key]
}

// testEnv is the Origin, Policy and WholePath: fills go to the test origin; everything it
// sends may be stored.
type testEnv struct{ client *http.Client }

func (e testEnv) Fetch(ctx context.Context, out *http.Request) (*http.Response, time.Time, time.Time, error) {
	reqTime := time.Now()
	resp, err := e.client.Do(out.WithContext(ctx))
	if err != nil {
		return nil, time.Time{}, time.Time{}, fmt.Errorf("test origin: %w", err)
	}
	return resp, reqTime, time.Now(), nil
}

func (testEnv) Fresh(m *Entry) bool { return !m.Invalidated }

func (testEnv) Storable(_ *http.Request, h http.Header) (http.Header, bool) {
	stored := h.Clone()
	stored.Del("Connection")
	stored.Del("Transfer-Encoding")
	cc := h.Get("Cache-Control")
	return stored, !strings.Contains(cc, "private") && !strings.Contains(cc, "no-store")
}

func (testEnv) StoredWhole(*fill.Fill, *http.Request) bool { return false }

// Whole passes an answer that is not a slice to the request that started the fill alone.
func (testEnv) Publish(f *fill.Fill, _ *http.Request, resp *http.Response, _ uint64, _, _ time.Time) {
	f.SetHead(fill.Head{Status: resp.StatusCode, Header: resp.Header, Direct: resp.Body, Reason: "whole"}, nil)
}

// counters is the Observer; allJoined, when set, is closed once collapsed reaches joinedAt.
type counters struct {
	collapsed, stored, originBytes, aheadStarted, aheadUsed atomic.Int64
	joinedAt                                                int64
	allJoined                                               chan struct{}
	once                                                    sync.Once
}

func (c *counters) Collapsed() {
	if n := c.collapsed.Add(1); c.allJoined != nil && n >= c.joinedAt {
		c.once.Do(func() { close(c.allJoined) })
	}
}
func (c *counters) Stored()             { c.stored.Add(1) }
func (c *counters) OriginBytes(n int64) { c.originBytes.Add(n) }
func (c *counters) ReadAheadStarted()   { c.aheadStarted.Add(1) }
func (c *counters) ReadAheadUsed()      { c.aheadUsed.Add(1) }

// fixture is a Cache over a memStore, filled from a test origin.
type fixture struct {
	t      testing.TB
	c      *Cache
	store  *memStore
	origin *testOrigin
	env    testEnv
	count  *counters
}

func newFixture(t testing.TB, origin *testOrigin, sliceSize int64) *fixture {
	st := newMemStore()
	count := &counters{}
	c := &Cache{
		SliceSize:         sliceSize,
		CoalesceWait:      10 * time.Second,
		OriginReadTimeout: 10 * time.Second,
		Fills:             fill.NewTable(),
		Inflight:          new(sync.WaitGroup),
		Gen:               st.gen,
		Now:               time.Now,
		Log:               slog.New(slog.NewTextHandler(io.Discard, nil)),
		Counters:          count,
		ClientHeader:      func(h http.Header) http.Header { return h.Clone() },
		Age:               func(m *Entry, now time.Time) time.Duration { return now.Sub(m.ResponseTime) },
		NotModified: func(r *http.Request, m *Entry) bool {
			inm := r.Header.Get("If-None-Match")
			return inm != "" && inm == m.Header.Get("ETag")
		},
	}
	f := &fixture{t: t, c: c, store: st, origin: origin, env: testEnv{client: origin.srv.Client()}, count: count}
	t.Cleanup(f.settle)
	return f
}

// settle waits (boundedly) for the fills still running: read-ahead outlives the request.
func (f *fixture) settle() {
	done := make(chan struct{})
	go func() { f.c.Inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		f.t.Errorf("fills still running after 30s")
	}
}

// request is a client's GET (or HEAD) of path with Range rng ("" for none).
func (f *fixture) request(method, path, rng string) *Request {
	r, err := http.NewRequest(method, f.origin.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if rng != "" {
		r.Header.Set("Range", rng)
	}
	return &Request{HTTP: r, Key: path, Fwd: "uri-miss", Store: f.store, Origin: f.env, Policy: f.env, Whole: f.env}
}

// answer is what a client got.
type answer struct {
	err     error // from Serve: no response
	direct  bool  // the origin's own answer, passed on
	status  int
	header  http.Header
	body    []byte
	bodyErr error // the body broke off
	cache   Status
}

func (a answer) String() string {
	return fmt.Sprintf("err %v, direct %v, status %d, %d bytes (body err %v), %+v", a.err, a.direct, a.status, len(a.body), a.bodyErr, a.cache)
}

// serve asks the cache, and writes its answer as the edge would.
func (f *fixture) serve(q *Request) answer {
	resp, err := f.c.Serve(q)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Close()
	if d := resp.Direct; d != nil {
		a := answer{direct: true, status: d.Head.Status, header: d.Head.Header, cache: resp.Cache}
		switch {
		case d.Head.Direct != nil:
			a.body, a.bodyErr = io.ReadAll(d.Head.Direct)
		case d.Body != nil:
			a.body, a.bodyErr = io.ReadAll(d.Body.NewReader(q.HTTP.Context(), 0))
		}
		return a
	}
	rec := httptest.NewRecorder()
	a := answer{status: resp.Status, header: resp.Header, cache: resp.Cache}
	if q.HTTP.Method != http.MethodHead {
		a.bodyErr = resp.WriteBody(rec)
	}
	a.body = rec.Body.Bytes()
	return a
}

// pattern is an object's bytes: version v of size bytes.
func pattern(size int, v int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte((i*7 + v*13 + i/251) % 251)
	}
	return b
}

func etagOf(v int) string { return `"v` + strconv.Itoa(v) + `"` }
