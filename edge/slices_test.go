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
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

const testSlice = 64 << 10

// TestSlicesProperty: random single ranges against a random object, cold and warm, compared
// byte for byte with the original; the origin never sends more than the requested bytes
// rounded out to slice boundaries (the ranges of one response are fetched slice by slice).
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
		for s := lo / testSlice; s <= hi/testSlice; s++ {
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
	e.disk.SetMinFree(0)
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
		ro.set(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=1")
			inner(noCacheControl{w}, r)
		})
		_, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
		get(t, srv.URL+"/s", "Range", "bytes=0-10")
		time.Sleep(1100 * time.Millisecond)
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

// TestLargeGETCoalesced: concurrent cold GETs of an object too large for any tier whole: the
// first streams it from the origin (storing slices), the others read coalesced slices — the
// origin sends far less than one copy per client.
func TestLargeGETCoalesced(t *testing.T) {
	const size = 24 * testSlice
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
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice; c.Memory = 1 << 20 })
	data := ro.data.Load().([]byte)
	var wg sync.WaitGroup
	var good atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := get(t, srv.URL+"/big"); bytes.Equal([]byte(r.body), data) {
				good.Add(1)
			}
		}()
	}
	waitCollapsed(e, 7)
	close(gate)
	wg.Wait()
	settle(e)
	if good.Load() != 8 {
		t.Fatalf("%d of 8 clients got the whole object", good.Load())
	}
	if sent := ro.sent.Load(); sent > 3*size {
		t.Fatalf("origin sent %d bytes (%.1f copies) for 8 clients", sent, float64(sent)/size)
	}
}
