package edge

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rangedOrigin serves one random object with ranges (http.ServeContent: RFC 9110 §14) and
// counts the body bytes it sends.
type rangedOrigin struct {
	*testOrigin
	data atomic.Value // []byte
	etag atomic.Value // string
	sent atomic.Int64
}

func newRangedOrigin(t *testing.T, size int) *rangedOrigin {
	ro := &rangedOrigin{}
	ro.setData(randomData(size), `"v1"`)
	ro.testOrigin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", ro.etag.Load().(string))
		w.Header().Set("Content-Type", "video/mp4")
		cw := &countingWriter{ResponseWriter: w, n: &ro.sent}
		http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(ro.data.Load().([]byte)))
	})
	return ro
}

func (ro *rangedOrigin) setData(b []byte, etag string) {
	ro.data.Store(b)
	ro.etag.Store(etag)
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	// Counted before the write returns: the edge may have the bytes, and its client the whole
	// response, before Write returns here (TestSliceThreshold read the count 32 KiB short).
	c.n.Add(int64(len(p)))
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n - len(p)))
	return n, err
}

const testSlice = 64 << 10

// TestSlicesProperty: random single ranges against a random object, cold and warm, compared
// byte for byte with the original; the origin never sends more than the requested bytes
// rounded out to slice boundaries, plus the one slice a range longer than a slice reads ahead
// (the ranges of one response are fetched slice by slice).
func TestSlicesProperty(t *testing.T) {
	const size = 10*testSlice + 12345
	ro := newRangedOrigin(t, size)
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	data := ro.data.Load().([]byte)
	rng := mrand.New(mrand.NewPCG(1, 2))
	fetched := map[int64]bool{}
	var allowed int64
	for i := 0; i < 60; i++ {
		a := rng.Int64N(size)
		b := a + rng.Int64N(min(size-a, 3*testSlice))
		spec, lo, hi := fmt.Sprintf("bytes=%d-%d", a, b), a, b
		switch i % 5 {
		case 3: // open-ended
			spec, hi = fmt.Sprintf("bytes=%d-", a), size-1
		case 4: // suffix
			n := rng.Int64N(2*testSlice) + 1
			spec, lo, hi = fmt.Sprintf("bytes=-%d", n), max(0, size-n), size-1
		}
		r := get(t, srv.URL+"/obj", "Range", spec)
		if r.status != http.StatusPartialContent || !bytes.Equal([]byte(r.body), data[lo:hi+1]) {
			t.Fatalf("%s: status %d, %d bytes, want %d identical bytes (%q)", spec, r.status, len(r.body), hi-lo+1, r.cacheStatus())
		}
		if want := fmt.Sprintf("bytes %d-%d/%d", lo, hi, size); r.header.Get("Content-Range") != want {
			t.Fatalf("%s: Content-Range %q, want %q", spec, r.header.Get("Content-Range"), want)
		}
		// Origin bytes, cumulatively: at most the slices covered so far, each once. (A
		// slice's fill may finish after the response that needed only part of it, so the
		// count is checked once in-flight fills have settled.)
		last := hi / testSlice
		if last > lo/testSlice && (last+1)*testSlice < size {
			last++ // read ahead
		}
		for s := lo / testSlice; s <= last; s++ {
			if !fetched[s] {
				allowed += min(testSlice, size-s*testSlice)
				fetched[s] = true
			}
		}
		settle(e)
		if got := ro.sent.Load(); got > allowed {
			t.Fatalf("%s: origin has sent %d bytes, at most %d allowed", spec, got, allowed)
		}
	}
	// Several ranges: multipart/byteranges, each part byte for byte (RFC 9110 §14.6).
	for i := 0; i < 10; i++ {
		a, b := rng.Int64N(size/2), size/2+rng.Int64N(size/2-10)
		resp, err := http.DefaultClient.Do(mustReq(t, srv.URL+"/obj", "Range", fmt.Sprintf("bytes=%d-%d,%d-%d", a, a+9, b, b+9)))
		if err != nil {
			t.Fatal(err)
		}
		_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		mr := multipart.NewReader(resp.Body, params["boundary"])
		for _, lo := range []int64{a, b} {
			part, err := mr.NextPart()
			if err != nil {
				t.Fatalf("multi-range %d,%d: %v", a, b, err)
			}
			got, _ := io.ReadAll(part)
			if !bytes.Equal(got, data[lo:lo+10]) {
				t.Fatalf("multi-range part at %d differs", lo)
			}
		}
		resp.Body.Close()
	}
	// Every slice is cached now: a full GET streams them all without the origin.
	before := ro.hits.Load()
	if r := get(t, srv.URL+"/obj"); r.status != 200 || !bytes.Equal([]byte(r.body), data) || ro.hits.Load() != before {
		t.Fatalf("full GET of a sliced object: %d, %d bytes, origin +%d", r.status, len(r.body), ro.hits.Load()-before)
	}
}

// TestSliceColdSmallRange: bytes=0-99 of an uncached object fetches one slice, not the object.
func TestSliceColdSmallRange(t *testing.T) {
	ro := newRangedOrigin(t, 40*testSlice)
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	r := get(t, srv.URL+"/big", "Range", "bytes=0-99")
	if r.status != 206 || r.body != string(ro.data.Load().([]byte)[:100]) {
		t.Fatalf("%d %d bytes", r.status, len(r.body))
	}
	settle(e) // the client has its 100 bytes; the slice's fill may still be receiving the rest
	if ro.sent.Load() != testSlice || ro.hits.Load() != 1 {
		t.Fatalf("origin sent %d bytes in %d requests, want one %d-byte slice", ro.sent.Load(), ro.hits.Load(), testSlice)
	}
}

// TestSliceObjectChanges: the origin's object changes between slices of one response → the
// client gets a consistent body or a clean error, never bytes of two versions; the next
// request gets the new version whole.
func TestSliceObjectChanges(t *testing.T) {
	ro := newRangedOrigin(t, 4*testSlice)
	_, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	v1 := ro.data.Load().([]byte)
	get(t, srv.URL+"/o", "Range", "bytes=0-10") // slice 0 of v1 cached
	v2 := randomData(4 * testSlice)
	ro.setData(v2, `"v2"`)
	resp, err := http.DefaultClient.Do(mustReq(t, srv.URL+"/o", "Range", fmt.Sprintf("bytes=0-%d", 2*testSlice-1)))
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		mixed := rerr == nil && resp.StatusCode == 206 && !bytes.Equal(body, v1[:2*testSlice]) && !bytes.Equal(body, v2[:2*testSlice])
		if mixed {
			t.Fatal("a response mixed bytes of two versions")
		}
		if rerr == nil && resp.StatusCode == 206 && bytes.Equal(body, v1[:2*testSlice]) {
			t.Fatal("served v1's second slice, which the origin no longer has")
		}
	}
	r := get(t, srv.URL+"/o", "Range", fmt.Sprintf("bytes=0-%d", 2*testSlice-1))
	if r.status != 206 || !bytes.Equal([]byte(r.body), v2[:2*testSlice]) {
		t.Fatalf("after the change: %d, v2=%v", r.status, bytes.Equal([]byte(r.body), v2[:2*testSlice]))
	}
}

func mustReq(t *testing.T, url string, hdr ...string) *http.Request {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// TestSlicedMultipart: several ranges of an uncached object are answered as
// multipart/byteranges from the slices they cover (RFC 9110 §14.6), without the whole object.
func TestSlicedMultipart(t *testing.T) {
	const size = 20 * testSlice
	ro := newRangedOrigin(t, size)
	_, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	data := ro.data.Load().([]byte)
	resp, err := http.DefaultClient.Do(mustReq(t, srv.URL+"/m", "Range", fmt.Sprintf("bytes=10-19,%d-%d", 5*testSlice, 5*testSlice+9)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 206 || err != nil {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	want := [][]byte{data[10:20], data[5*testSlice : 5*testSlice+10]}
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			if i != 2 {
				t.Fatalf("%d parts, want 2", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(part)
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("part %d differs", i)
		}
	}
	if ro.sent.Load() > 2*testSlice {
		t.Fatalf("origin sent %d bytes for two small ranges (at most two slices)", ro.sent.Load())
	}
}

// TestSlicesOnDisk: slices and the object's meta are written through to the disk tier and
// serve ranges after a restart without asking the origin again.
func TestSlicesOnDisk(t *testing.T) {
	ro := newRangedOrigin(t, 8*testSlice)
	data := ro.data.Load().([]byte)
	dir := t.TempDir()
	withDisk := func(c *Config) { c.SliceSize, c.CacheDir, c.Disk = testSlice, dir, 64<<20 }
	e, srv := newEdge(t, ro.URL, withDisk)
	e.tiers.disk.SetMinFree(0)
	spec := fmt.Sprintf("bytes=%d-%d", testSlice+5, 3*testSlice+5)
	if r := get(t, srv.URL+"/d", "Range", spec, "Host", "cdn.test"); r.status != 206 {
		t.Fatalf("cold: %d", r.status)
	}
	srv.Close()
	e.Close()
	hits := ro.hits.Load()

	e2, srv2 := newEdge(t, ro.URL, withDisk)
	defer e2.Close()
	r := get(t, srv2.URL+"/d", "Range", spec, "Host", "cdn.test")
	if r.status != 206 || !bytes.Equal([]byte(r.body), data[testSlice+5:3*testSlice+6]) {
		t.Fatalf("after restart: %d, %d bytes", r.status, len(r.body))
	}
	if ro.hits.Load() != hits {
		t.Fatalf("origin asked %d more times after restart, want 0", ro.hits.Load()-hits)
	}
}

// TestLargeGETStoredAsSlices: a full GET of an object too large for any tier whole streams to
// the client and is stored as slices on the way; later ranges and GETs need no origin.
func TestLargeGETStoredAsSlices(t *testing.T) {
	ro := newRangedOrigin(t, 12*testSlice+7)
	data := ro.data.Load().([]byte)
	_, srv := newEdge(t, ro.URL, func(c *Config) {
		c.SliceSize = testSlice
		c.Memory = 1 << 20 // whole objects above 128 KiB don't fit
	})
	if r := get(t, srv.URL+"/huge"); !bytes.Equal([]byte(r.body), data) {
		t.Fatalf("first GET: %d bytes", len(r.body))
	}
	hits := ro.hits.Load()
	r := get(t, srv.URL+"/huge", "Range", fmt.Sprintf("bytes=%d-%d", 3*testSlice-10, 5*testSlice))
	if r.status != 206 || !bytes.Equal([]byte(r.body), data[3*testSlice-10:5*testSlice+1]) {
		t.Fatalf("range after the GET: %d", r.status)
	}
	if ro.hits.Load() != hits {
		t.Fatalf("the range went to the origin (%d requests): the GET's slices were not stored", ro.hits.Load()-hits)
	}
}

// TestSliceCoalescing: 100 clients asking for the same uncached slice make one origin request.
func TestSliceCoalescing(t *testing.T) {
	ro := newRangedOrigin(t, 16*testSlice)
	gate := make(chan struct{})
	inner := ro.handler.Load().(http.HandlerFunc)
	ro.set(func(w http.ResponseWriter, r *http.Request) { <-gate; inner(w, r) })
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	data := ro.data.Load().([]byte)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo := int64(2*testSlice + i*100)
			r := get(t, srv.URL+"/co", "Range", fmt.Sprintf("bytes=%d-%d", lo, lo+99))
			if r.status == 206 && bytes.Equal([]byte(r.body), data[lo:lo+100]) {
				ok.Add(1)
			}
		}()
	}
	waitCollapsed(e, 99)
	close(gate)
	wg.Wait()
	if ok.Load() != 100 || ro.hits.Load() != 1 {
		t.Fatalf("%d clients right from %d origin requests, want 100 from 1", ok.Load(), ro.hits.Load())
	}
}

// TestSliceAbuse: pathological ranges on a range-capable origin stay bounded: the origin sends
// at most the slices the (accepted) ranges cover, and the status is right.
func TestSliceAbuse(t *testing.T) {
	const size = 64 * testSlice // 4 MiB
	ro := newRangedOrigin(t, size)
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	zeros := strings.TrimSuffix(strings.Repeat("0-0,", 1000), ",")
	tests := []struct {
		name, rng string
		status    int
		maxOrigin int64 // origin bytes this request may cause
	}{
		{"past the end", fmt.Sprintf("bytes=%d-", size+100), 416, 0},
		{"0-0 x1000", "bytes=" + zeros, 200, size}, // ignored (§14.2): the whole object, once
		{"overlapping", "bytes=0-99,50-150,100-200", 206, 0},
		{"If-Range mismatch", "bytes=0-9", 200, 0},
	}
	for _, tc := range tests {
		settle(e)
		before := ro.sent.Load()
		hdr := []string{"Range", tc.rng}
		if tc.name == "If-Range mismatch" {
			hdr = append(hdr, "If-Range", `"other"`) // §13.1.5: the Range is ignored
		}
		r := get(t, srv.URL+"/ab", hdr...)
		settle(e)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, r.status, tc.status)
		}
		if got := ro.sent.Load() - before; got > tc.maxOrigin+testSlice {
			t.Errorf("%s: origin sent %d bytes, at most %d", tc.name, got, tc.maxOrigin+testSlice)
		}
	}
}

// settle waits until no fill is running: a slice's fill may go on receiving after the
// response that needed part of it, and origin byte counts must include it.
func settle(e *Edge) {
	for i := 0; i < 1000 && e.fills.Len() > 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSliceReviewCases covers what review found: a stale meta refreshes once instead of on
// every request; a 206 that can't be a slice (Vary) is forwarded, not failed; a cold suffix
// range costs slices, not the object; a later slice answered with an error ends the
// response abruptly without crashing the edge.
func TestSliceReviewCases(t *testing.T) {
	t.Run("stale meta", func(t *testing.T) {
		ro := newRangedOrigin(t, 4*testSlice)
		inner := ro.handler.Load().(http.HandlerFunc)
		var first atomic.Bool
		first.Store(true)
		ro.set(func(w http.ResponseWriter, r *http.Request) {
			// The first answers arrive 5 s old (Age, RFC 9111 §4.2.3), stale at once; the
			// refreshed meta stays fresh through the 5 requests below.
			if first.Load() {
				w.Header().Set("Age", "5")
				w.Header().Set("Cache-Control", "max-age=2")
			} else {
				w.Header().Set("Cache-Control", "max-age=600")
			}
			inner(noCacheControl{w}, r)
		})
		e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
		get(t, srv.URL+"/s", "Range", "bytes=0-10")
		settle(e)
		first.Store(false)
		before := ro.hits.Load()
		for range 5 {
			if r := get(t, srv.URL+"/s", "Range", "bytes=0-10"); r.status != 206 {
				t.Fatalf("status %d", r.status)
			}
		}
		if n := ro.hits.Load() - before; n != 1 {
			t.Fatalf("%d origin requests for 5 requests after the meta went stale, want 1", n)
		}
	})
	t.Run("vary", func(t *testing.T) {
		ro := newRangedOrigin(t, 4*testSlice)
		inner := ro.handler.Load().(http.HandlerFunc)
		ro.set(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Vary", "Accept-Encoding"); inner(w, r) })
		_, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
		r := get(t, srv.URL+"/v", "Range", "bytes=0-99")
		if r.status != 206 || r.body != string(ro.data.Load().([]byte)[:100]) {
			t.Fatalf("a Vary'd object's range: %d", r.status)
		}
	})
	t.Run("cold suffix", func(t *testing.T) {
		ro := newRangedOrigin(t, 40*testSlice)
		e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
		r := get(t, srv.URL+"/x", "Range", "bytes=-100")
		data := ro.data.Load().([]byte)
		if r.status != 206 || r.body != string(data[len(data)-100:]) {
			t.Fatalf("suffix: %d", r.status)
		}
		settle(e)
		if ro.sent.Load() > 2*testSlice {
			t.Fatalf("a cold suffix range cost %d origin bytes (the object is %d)", ro.sent.Load(), len(data))
		}
	})
	t.Run("later slice fails", func(t *testing.T) {
		ro := newRangedOrigin(t, 4*testSlice)
		inner := ro.handler.Load().(http.HandlerFunc)
		ro.set(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			inner(w, r)
		})
		_, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
		resp, err := http.DefaultClient.Do(mustReq(t, srv.URL+"/f", "Range", fmt.Sprintf("bytes=0-%d", 3*testSlice)))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("a response missing a slice ended cleanly")
		}
		if r := get(t, srv.URL+"/f", "Range", "bytes=0-10"); r.status != 206 {
			t.Fatalf("the edge is unwell afterwards: %d", r.status)
		}
	})
}

// noCacheControl drops the inner handler's Cache-Control so the caller's stays.
type noCacheControl struct{ http.ResponseWriter }

func (n noCacheControl) Header() http.Header {
	h := n.ResponseWriter.Header()
	if cc := h.Get("Cache-Control"); cc != "" && cc != "max-age=1" {
		h.Set("Cache-Control", "max-age=1")
	}
	return h
}

// TestLargeGETCoalesced: concurrent cold GETs of an object too large for any tier whole: its
// fill streams it from the origin, storing slices, and every client reads those slices — the
// origin sends the object once. With a memory tier smaller than the object itself, slices a
// slower client has not read yet may be evicted (and fetched again, by range): the origin
// traffic stays bounded.
func TestLargeGETCoalesced(t *testing.T) {
	const size = 24 * testSlice
	for _, tc := range []struct {
		name      string
		memory    Size
		maxCopies float64
	}{
		{"slices fit in memory", 4 << 20, 1}, // objects above 512 KiB aren't kept whole
		{"memory smaller than the object", 1 << 20, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := newRangedOrigin(t, size)
			gate := make(chan struct{})
			inner := ro.handler.Load().(http.HandlerFunc)
			var first atomic.Bool
			ro.set(func(w http.ResponseWriter, r *http.Request) {
				if first.CompareAndSwap(false, true) {
					<-gate // hold the first (whole-object) answer until the followers have joined
				}
				inner(w, r)
			})
			e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice; c.Memory = tc.memory })
			data := ro.data.Load().([]byte)
			var wg sync.WaitGroup
			var good atomic.Int64
			for range 8 {
				wg.Go(func() {
					if r := get(t, srv.URL+"/big"); bytes.Equal([]byte(r.body), data) {
						good.Add(1)
					}
				})
			}
			waitCollapsed(e, 7)
			close(gate)
			wg.Wait()
			settle(e)
			if good.Load() != 8 {
				t.Fatalf("%d of 8 clients got the whole object", good.Load())
			}
			if sent := ro.sent.Load(); float64(sent) > tc.maxCopies*size {
				t.Fatalf("origin sent %d bytes (%.2f copies) in %d requests for 8 clients, at most %.0f copies", sent, float64(sent)/size, ro.hits.Load(), tc.maxCopies)
			}
		})
	}
}

// rangeLog records, per Range an origin was asked for, how often and when its answer
// started and ended (so tests can see what the edge fetched, and in what order).
type rangeLog struct {
	active atomic.Int64 // answers being sent
	mu     sync.Mutex
	count  map[string]int
	start  map[string]time.Time
	end    map[string]time.Time
}

// logRanges wraps ro's handler; delay, when positive, makes the origin send each 16 KiB of
// a body that long after the last.
func logRanges(ro *rangedOrigin, delay time.Duration) *rangeLog {
	l := &rangeLog{count: map[string]int{}, start: map[string]time.Time{}, end: map[string]time.Time{}}
	inner := ro.handler.Load().(http.HandlerFunc)
	ro.set(func(w http.ResponseWriter, r *http.Request) {
		l.active.Add(1)
		defer l.active.Add(-1)
		rng := r.Header.Get("Range")
		l.mu.Lock()
		l.count[rng]++
		l.start[rng] = time.Now()
		l.mu.Unlock()
		if delay > 0 {
			w = &slowWriter{ResponseWriter: w, delay: delay}
		}
		inner(w, r)
		l.mu.Lock()
		l.end[rng] = time.Now()
		l.mu.Unlock()
	})
	return l
}

// settle waits for the edge's fills and then for the origin's handlers: the edge may have
// every byte before the origin's byte count includes the last write.
func (l *rangeLog) settle(e *Edge) {
	settle(e)
	for i := 0; i < 1000 && l.active.Load() > 0; i++ {
		time.Sleep(time.Millisecond)
	}
}

func (l *rangeLog) times(rng string) (start, end time.Time, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start[rng], l.end[rng], l.count[rng]
}

func (l *rangeLog) duplicates() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for rng, n := range l.count {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", rng, n))
		}
	}
	return out
}

// slowWriter sends a body in 16 KiB pieces, each after a delay, flushing each.
type slowWriter struct {
	http.ResponseWriter
	delay time.Duration
}

func (s *slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 16<<10)
		time.Sleep(s.delay)
		m, err := s.ResponseWriter.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		s.ResponseWriter.(http.Flusher).Flush()
		p = p[k:]
	}
	return n, nil
}

func sliceRange(i int64) string {
	return fmt.Sprintf("bytes=%d-%d", i*testSlice, i*testSlice+testSlice-1)
}

// prefetchMetric reads reel_edge_slice_prefetch_total{result=…} from /metrics.
func prefetchMetric(t *testing.T, e *Edge, result string) int {
	t.Helper()
	admin := httptest.NewServer(e.AdminHandler("tok"))
	defer admin.Close()
	_, body := adminCall(t, "GET", admin.URL+"/metrics", "tok")
	prefix := `reel_edge_slice_prefetch_total{result="` + result + `"} `
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("no %s… in /metrics", prefix)
	return 0
}

// TestSlicePrefetchOriginBytes: reads of sliced objects fetch each slice once, and never
// more than the requested bytes rounded out to slices plus one prefetched slice (the rule of
// issue 4); a long range reads one slice ahead, which the next sequential range then uses.
func TestSlicePrefetchOriginBytes(t *testing.T) {
	const size = 16*testSlice + 999
	tests := []struct {
		name    string
		prime   string   // a range requested first (records the meta), "" for none
		ranges  []string // then requested in order ("" = the whole object)
		clients int      // concurrent clients for each request
		// origin bytes allowed for the ranges (after the prime), and read-aheads expected
		maxBytes         int64
		started, used    int
		wantAllSlicesOne bool
	}{
		// A full GET of a known sliced object streams the slices in order, prefetching
		// the next one: the origin sends the object once, each slice once.
		{name: "full GET", prime: "bytes=0-0", ranges: []string{""}, clients: 1, maxBytes: size - testSlice, wantAllSlicesOne: true},
		{name: "full GET ×4 concurrent", prime: "bytes=0-0", ranges: []string{""}, clients: 4, maxBytes: size - testSlice, wantAllSlicesOne: true},
		// bytes=0-99 is one slice (the example): no read-ahead for short reads.
		{name: "short range", ranges: []string{"bytes=0-99"}, clients: 1, maxBytes: testSlice},
		// Slices 1–3 rounded out, plus slice 4 read ahead; the next sequential range (slice
		// 4–5) then costs only slice 5 and reads slice 6 ahead.
		{name: "long ranges in sequence", ranges: []string{
			fmt.Sprintf("bytes=%d-%d", testSlice+5, 3*testSlice+5),
			fmt.Sprintf("bytes=%d-%d", 3*testSlice+6, 5*testSlice+100),
		}, clients: 1, maxBytes: 6 * testSlice, started: 2, used: 1},
		// Read-ahead never goes past the object's end.
		{name: "long range to the end", ranges: []string{fmt.Sprintf("bytes=%d-", 14*testSlice)}, clients: 1, maxBytes: size - 14*testSlice},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ro := newRangedOrigin(t, size)
			data := ro.data.Load().([]byte)
			log := logRanges(ro, 0)
			e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
			if tc.prime != "" {
				get(t, srv.URL+"/p", "Range", tc.prime)
				log.settle(e)
			}
			before := ro.sent.Load()
			for _, rng := range tc.ranges {
				var wg sync.WaitGroup
				for range tc.clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var r result
						lo, hi := int64(0), int64(size-1)
						if rng == "" {
							r = get(t, srv.URL+"/p")
						} else {
							r = get(t, srv.URL+"/p", "Range", rng)
							fmt.Sscanf(r.header.Get("Content-Range"), "bytes %d-%d/", &lo, &hi)
						}
						if r.status/100 != 2 || !bytes.Equal([]byte(r.body), data[lo:hi+1]) {
							t.Errorf("%q: %d, %d bytes, not bytes %d-%d", rng, r.status, len(r.body), lo, hi)
						}
					}()
				}
				wg.Wait()
				log.settle(e)
			}
			if got := ro.sent.Load() - before; got > tc.maxBytes {
				t.Errorf("origin sent %d bytes, at most %d allowed", got, tc.maxBytes)
			}
			if tc.wantAllSlicesOne {
				if got := ro.sent.Load(); got != size {
					t.Errorf("origin sent %d bytes in all for a %d-byte object", got, size)
				}
				if d := log.duplicates(); len(d) > 0 {
					t.Errorf("slices fetched more than once: %v", d)
				}
			}
			if s, u := prefetchMetric(t, e, "started"), prefetchMetric(t, e, "used"); s != tc.started || u != tc.used {
				t.Errorf("read-ahead started %d, used %d; want %d, %d", s, u, tc.started, tc.used)
			}
		})
	}
}

// TestSlicePrefetchOverlaps: with an origin that sends slowly, a full GET of a sliced object
// asks for slice i+1 while slice i is still on its way — before its last byte reached the
// client — rather than one slice after the other.
func TestSlicePrefetchOverlaps(t *testing.T) {
	const n = 6
	ro := newRangedOrigin(t, n*testSlice)
	data := ro.data.Load().([]byte)
	log := logRanges(ro, 40*time.Millisecond) // ≥ 160ms a slice
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	get(t, srv.URL+"/slow", "Range", "bytes=0-0") // the meta (and slice 0)
	settle(e)

	resp, err := http.Get(srv.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// When the client had each slice's last byte.
	var got []byte
	received := make([]time.Time, n)
	buf := make([]byte, 8<<10)
	for {
		k, err := resp.Body.Read(buf)
		for b := len(got); b < len(got)+k; b++ {
			if (b+1)%testSlice == 0 {
				received[b/testSlice] = time.Now()
			}
		}
		got = append(got, buf[:k]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%d bytes, not the object", len(got))
	}
	for i := int64(2); i < n; i++ {
		start, _, count := log.times(sliceRange(i))
		_, prevEnd, _ := log.times(sliceRange(i - 1))
		if count != 1 {
			t.Fatalf("slice %d asked %d times", i, count)
		}
		if !start.Before(prevEnd) || !start.Before(received[i-1]) {
			t.Errorf("slice %d asked %v after slice %d's origin answer ended, %v after the client had it: not prefetched",
				i, start.Sub(prevEnd), i-1, start.Sub(received[i-1]))
		}
	}
}

// TestSlicePurgeSurvivesRestart: a purge of a sliced object holds across a restart of an
// edge with a disk tier. The origin here changes the object's bytes but not its ETag (the
// case a purge is for), so slices from before the purge would pass the identity check: they
// must be unreachable, not merely unknown to one run's memory.
func TestSlicePurgeSurvivesRestart(t *testing.T) {
	const size = 8 * testSlice
	spec := fmt.Sprintf("bytes=%d-%d", testSlice+5, 3*testSlice+5) // slices 1–3 (and 4 read ahead)
	type run struct {
		e     *Edge
		url   string
		purge func()
		close func() // the servers first, so that no fill starts while the edge closes
	}
	setup := func(t *testing.T) (*rangedOrigin, func() run) {
		ro := newRangedOrigin(t, size)
		dir := t.TempDir()
		return ro, func() run {
			e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize, c.CacheDir, c.Disk = testSlice, dir, 64<<20 })
			e.tiers.disk.SetMinFree(0)
			admin := httptest.NewServer(e.AdminHandler("t"))
			var once sync.Once
			r := run{e: e, url: srv.URL}
			r.close = func() { once.Do(func() { admin.Close(); srv.Close(); e.Close() }) }
			t.Cleanup(r.close)
			r.purge = func() {
				code, body := adminCall(t, "POST", admin.URL+"/purge?url="+url.QueryEscape("http://cdn.test/d"), "t")
				if code != 200 || strings.Contains(body, `"purged":0`) {
					t.Fatalf("purge: %d %s", code, body)
				}
			}
			return r
		}
	}
	read := func(t *testing.T, r run, want []byte) {
		t.Helper()
		got := get(t, r.url+"/d", "Range", spec, "Host", "cdn.test")
		if got.status != 206 || !bytes.Equal([]byte(got.body), want[testSlice+5:3*testSlice+6]) {
			t.Fatalf("%s: %d, %d bytes, not the current object's", spec, got.status, len(got.body))
		}
		settle(r.e)
	}

	t.Run("purged, then restarted", func(t *testing.T) {
		ro, open := setup(t)
		r := open()
		read(t, r, ro.data.Load().([]byte))
		r.purge()
		v2 := randomData(size)
		ro.setData(v2, `"v1"`)
		r.close()

		r = open()
		hits := ro.hits.Load()
		read(t, r, v2)
		if n := ro.hits.Load() - hits; n < 3 {
			t.Fatalf("after the purge and a restart, the origin was asked %d times for three slices", n)
		}
	})
	t.Run("sliced again after a purge, then restarted", func(t *testing.T) {
		ro, open := setup(t)
		r := open()
		read(t, r, ro.data.Load().([]byte))
		r.purge()
		v2 := randomData(size)
		ro.setData(v2, `"v1"`)
		read(t, r, v2)
		r.close()

		// The slices stored since the purge are the object now: found again, not refetched.
		r = open()
		hits := ro.hits.Load()
		read(t, r, v2)
		if n := ro.hits.Load() - hits; n != 0 {
			t.Fatalf("after a restart, the origin was asked %d times for slices stored before it", n)
		}
	})
}

// TestSliceSoftPurge: a soft purge of a sliced object makes its next read confirm the
// object's identity with the origin — its first slice is asked again, as a stale meta's would
// be — and, the identity unchanged, its other slices are still used.
func TestSliceSoftPurge(t *testing.T) {
	ro := newRangedOrigin(t, 8*testSlice)
	data := ro.data.Load().([]byte)
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	admin := httptest.NewServer(e.AdminHandler("t"))
	defer admin.Close()
	spec := fmt.Sprintf("bytes=%d-%d", testSlice, 4*testSlice-1)
	want := data[testSlice : 4*testSlice]
	if r := get(t, srv.URL+"/s", "Range", spec); r.status != 206 || r.body != string(want) {
		t.Fatalf("cold: %d", r.status)
	}
	settle(e)
	u := "http://" + strings.TrimPrefix(srv.URL, "http://") + "/s"
	if code, _ := adminCall(t, "POST", admin.URL+"/purge?mode=soft&url="+url.QueryEscape(u), "t"); code != 200 {
		t.Fatalf("soft purge: %d", code)
	}
	hits := ro.hits.Load()
	if r := get(t, srv.URL+"/s", "Range", spec); r.status != 206 || r.body != string(want) {
		t.Fatalf("after a soft purge: %d", r.status)
	}
	settle(e)
	if n := ro.hits.Load() - hits; n != 1 {
		t.Fatalf("after a soft purge, %d origin requests for three slices; want 1 (the identity checked once)", n)
	}
	hits = ro.hits.Load()
	get(t, srv.URL+"/s", "Range", spec)
	if n := ro.hits.Load() - hits; n != 0 {
		t.Fatalf("once revalidated, %d origin requests", n)
	}
}

// TestSliceThreshold: with slice_threshold set, a full GET of an object above it is stored as
// slices although the memory tier could keep it whole (one origin request, later ranges and
// GETs from the slices); objects at or below it, and every object without the setting, are
// stored whole as before.
func TestSliceThreshold(t *testing.T) {
	tests := []struct {
		name       string
		threshold  Size
		size       int
		wantSliced bool
	}{
		{"above the threshold", 4 * testSlice, 12*testSlice + 3, true},
		{"at the threshold", 4 * testSlice, 4 * testSlice, false},
		{"no threshold (default)", 0, 12*testSlice + 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ro := newRangedOrigin(t, tc.size)
			data := ro.data.Load().([]byte)
			e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize, c.SliceThreshold = testSlice, tc.threshold })
			if r := get(t, srv.URL+"/t"); r.status != 200 || !bytes.Equal([]byte(r.body), data) {
				t.Fatalf("cold GET: %d, %d bytes", r.status, len(r.body))
			}
			settle(e)
			key := e.keyOf(httptest.NewRequest("GET", srv.URL+"/t", nil))
			whole := false
			if entry, ok := e.tiers.mem.Lookup(key); ok {
				whole = entry.Variants[""] != nil
			}
			if sliced := e.isSliced(key); sliced != tc.wantSliced || whole == tc.wantSliced {
				t.Fatalf("stored as slices: %v, whole: %v; want sliced %v", sliced, whole, tc.wantSliced)
			}
			hits := ro.hits.Load()
			lo, hi := int64(tc.size/3), int64(tc.size/3+2*testSlice)
			if r := get(t, srv.URL+"/t", "Range", fmt.Sprintf("bytes=%d-%d", lo, hi)); r.status != 206 || !bytes.Equal([]byte(r.body), data[lo:hi+1]) {
				t.Fatalf("range: %d", r.status)
			}
			if r := get(t, srv.URL+"/t"); r.status != 200 || !bytes.Equal([]byte(r.body), data) {
				t.Fatalf("warm GET: %d", r.status)
			}
			if hits != 1 || ro.hits.Load() != hits || ro.sent.Load() != int64(tc.size) {
				t.Fatalf("origin: %d requests, %d bytes; want one request for the %d-byte object", ro.hits.Load(), ro.sent.Load(), tc.size)
			}
		})
	}
}

// TestLargeGETColdFanIn: 20 concurrent cold full GETs of a 16 MiB object stored as slices
// (too large for the memory tier whole) from a slow origin, and 4 more arriving while it
// streams: the origin sends the object once — not a byte more — every client gets it byte for
// byte, and each has its first byte before the origin finished sending.
func TestLargeGETColdFanIn(t *testing.T) {
	size, clients, late := 16<<20, 20, 4
	if raceEnabled { // the full figure runs without -race in make test
		size, clients, late = 4<<20, 10, 2
	}
	ro := newRangedOrigin(t, size)
	data := ro.data.Load().([]byte)
	inner := ro.handler.Load().(http.HandlerFunc)
	gate := make(chan struct{})
	var first atomic.Bool
	var mu sync.Mutex
	var originDone time.Time // when the origin last finished sending a body
	ro.set(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			<-gate // the first answer waits until every cold client has joined
		}
		inner(&slowWriter{ResponseWriter: w, delay: time.Millisecond}, r) // 16 KiB a millisecond
		mu.Lock()
		originDone = time.Now()
		mu.Unlock()
	})
	// 1 MiB slices; the memory tier keeps objects up to size/4 whole.
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.Memory = Size(2 * size) })
	firstByte := make([]time.Time, clients+late)
	errs := make([]error, clients+late)
	var wg sync.WaitGroup
	var started sync.WaitGroup
	started.Add(1)
	client := func(i int) {
		defer wg.Done()
		resp, err := http.Get(srv.URL + "/fan")
		if err != nil {
			errs[i] = err
			return
		}
		defer resp.Body.Close()
		var one [1]byte
		if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
			errs[i] = err
			return
		}
		firstByte[i] = time.Now()
		if i == 0 {
			started.Done()
		}
		rest, err := io.ReadAll(resp.Body)
		if err == nil && (resp.StatusCode != 200 || one[0] != data[0] || !bytes.Equal(rest, data[1:])) {
			err = fmt.Errorf("status %d, %d bytes, not the object", resp.StatusCode, len(rest)+1)
		}
		errs[i] = err
	}
	wg.Add(1)
	go client(0) // the leader: its origin request waits at the gate
	waitUntil(t, func() bool { return ro.hits.Load() == 1 })
	for i := 1; i < clients; i++ {
		wg.Add(1)
		go client(i)
	}
	waitCollapsed(e, int64(clients-1))
	close(gate)
	started.Wait()
	for i := clients; i < clients+late; i++ {
		wg.Add(1)
		go client(i) // mid-stream: the object is being stored as slices
	}
	wg.Wait()
	settle(e)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	mu.Lock()
	done := originDone
	mu.Unlock()
	for i, fb := range firstByte {
		if !fb.Before(done) {
			t.Errorf("client %d had its first byte %v after the origin finished", i, fb.Sub(done))
		}
	}
	sent := ro.sent.Load()
	t.Logf("origin: %d bytes (%.2f copies) in %d requests for %d clients", sent, float64(sent)/float64(size), ro.hits.Load(), clients+late)
	if sent != int64(size) {
		t.Fatalf("origin sent %d bytes (%.2f copies) for %d clients, want exactly one copy (%d)", sent, float64(sent)/float64(size), clients+late, size)
	}
}
