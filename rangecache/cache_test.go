package rangecache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelvideo/reel/rangecache/fill"
)

// randomRangeSet is a Range header of one to four specs: first-last, open-ended "a-" and
// suffix "-n", some of them past the object's end.
func randomRangeSet(rnd *rand.Rand, size int64) string {
	n := 1
	if rnd.IntN(2) == 0 {
		n += rnd.IntN(4)
	}
	specs := make([]string, n)
	for i := range specs {
		switch rnd.IntN(4) {
		case 0, 1:
			a := rnd.Int64N(size + 2)
			specs[i] = fmt.Sprintf("%d-%d", a, a+rnd.Int64N(size+2))
		case 2:
			specs[i] = fmt.Sprintf("%d-", rnd.Int64N(size+2))
		default:
			specs[i] = fmt.Sprintf("-%d", 1+rnd.Int64N(size+2))
		}
	}
	return "bytes=" + strings.Join(specs, ",")
}

// evaluated is what RFC 9110 asks of rng on an object of size bytes (Parse is tested against
// a reference of its own in range_test.go).
func evaluated(rng string, size int64) (Kind, []Range) {
	if rng == "" {
		return Ignore, nil
	}
	res, _ := Parse(rng, size, Options{})
	return res.Kind, res.Ranges
}

// checkServed checks an answer assembled from slices against the object's bytes.
func checkServed(t *testing.T, label string, a answer, rng string, data []byte) {
	t.Helper()
	size := int64(len(data))
	if a.err != nil || a.direct || a.bodyErr != nil {
		t.Fatalf("%s: %v", label, a)
	}
	kind, rs := evaluated(rng, size)
	cl := a.header.Get("Content-Length")
	switch {
	case kind == Unsatisfiable:
		if a.status != http.StatusRequestedRangeNotSatisfiable || a.header.Get("Content-Range") != UnsatisfiedContentRange(size) {
			t.Fatalf("%s: %d, Content-Range %q; want 416, %q", label, a.status, a.header.Get("Content-Range"), UnsatisfiedContentRange(size))
		}
	case kind == Ignore:
		if a.status != http.StatusOK || !bytes.Equal(a.body, data) || cl != strconv.FormatInt(size, 10) {
			t.Fatalf("%s: %d, %d bytes (Content-Length %s); want 200 and the %d-byte object", label, a.status, len(a.body), cl, size)
		}
	case len(rs) == 1:
		r := rs[0]
		if a.status != http.StatusPartialContent || a.header.Get("Content-Range") != r.ContentRange(size) ||
			cl != strconv.FormatInt(r.Length, 10) || !bytes.Equal(a.body, data[r.Start:r.Start+r.Length]) {
			t.Fatalf("%s: %d, Content-Range %q, Content-Length %s, %d bytes (equal %v); want 206, %q, %d bytes",
				label, a.status, a.header.Get("Content-Range"), cl, len(a.body), bytes.Equal(a.body, data[r.Start:r.Start+r.Length]), r.ContentRange(size), r.Length)
		}
	default:
		if a.status != http.StatusPartialContent || cl != strconv.Itoa(len(a.body)) {
			t.Fatalf("%s: %d, Content-Length %s for %d bytes; want a 206", label, a.status, cl, len(a.body))
		}
		readBack(t, a.body, a.header.Get("Content-Type"), "video/mp4", size, rs, func(r Range) []byte { return data[r.Start : r.Start+r.Length] })
	}
}

// checkDirect checks an origin answer passed on as is: the origin's bytes, whatever it sent.
func checkDirect(t *testing.T, label string, a answer, data []byte) {
	t.Helper()
	switch a.status {
	case http.StatusOK:
		if !bytes.Equal(a.body, data) {
			t.Fatalf("%s: 200 with %d bytes, not the %d-byte object", label, len(a.body), len(data))
		}
	case http.StatusPartialContent:
		lo, hi, total, ok := contentRange(a.header.Get("Content-Range"))
		if !ok || total != int64(len(data)) || !bytes.Equal(a.body, data[lo:hi+1]) {
			t.Fatalf("%s: 206 %q with %d bytes", label, a.header.Get("Content-Range"), len(a.body))
		}
	case http.StatusRequestedRangeNotSatisfiable:
	default:
		t.Fatalf("%s: %v", label, a)
	}
}

// TestRangesOverSlices: random objects (empty, one byte, exact multiples of the slice size
// and not), random slice sizes and random range sets — single, open-ended, suffix, several —
// are answered with exactly the object's bytes for the ranges: cold, as a whole GET, and warm
// from stored slices without the origin.
func TestRangesOverSlices(t *testing.T) {
	rnd := rand.New(rand.NewPCG(14, 2026))
	cases := 150
	if raceEnabled {
		cases = 50
	}
	origin := newTestOrigin(t)
	for i := range cases {
		S := []int64{1, 3, 16, 100, 1024}[rnd.IntN(5)]
		var size int64
		switch k := rnd.Int64N(12) + 1; rnd.IntN(6) {
		case 0:
			size = 0
		case 1:
			size = 1
		case 2:
			size = k * S // an exact multiple
		case 3:
			size = k*S - 1
		default:
			size = rnd.Int64N(24*S) + 1
		}
		rng := randomRangeSet(rnd, size)
		label := fmt.Sprintf("case %d: %d bytes in %d-byte slices, %s", i, size, S, rng)
		path := "/p" + strconv.Itoa(i)
		data := pattern(int(size), i)
		origin.set(path, &object{data: data, etag: etagOf(i)})
		f := newFixture(t, origin, S)

		cold := f.serve(f.request(http.MethodGet, path, rng))
		kind, rs := evaluated(rng, size)
		_, spec, _ := strings.Cut(rng, "=")
		switch {
		case size == 0:
			// Nothing to slice: the origin's answer to the first slice's range (a 416; Go's
			// ServeContent answers a suffix range with an empty 206) goes the whole-object way.
			if !cold.direct || len(cold.body) != 0 {
				t.Fatalf("%s: %v; want the origin's answer", label, cold)
			}
			f.settle()
			continue
		case cold.direct && (kind == Unsatisfiable || strings.HasPrefix(spec, "-") && !strings.Contains(spec, ",")):
			// A cold suffix range goes to the origin as asked; a first byte past the end
			// gets the origin's 416.
			checkDirect(t, label, cold, data)
		case errors.Is(cold.err, ErrNotSliceable) && kind == Satisfiable && len(rs) > 1:
			// Ranges scattered over slices not stored: forwarded uncached.
		default:
			checkServed(t, label+" (cold)", cold, rng, data)
		}
		checkServed(t, label+" (whole GET)", f.serve(f.request(http.MethodGet, path, "")), "", data)
		f.settle()

		before := origin.requests.Load()
		warm := f.serve(f.request(http.MethodGet, path, rng))
		checkServed(t, label+" (warm)", warm, rng, data)
		if !warm.cache.Hit {
			t.Fatalf("%s (warm): %+v; want a hit", label, warm.cache)
		}
		head := f.serve(f.request(http.MethodHead, path, rng))
		if head.err != nil || head.direct || head.status != warm.status || len(head.body) != 0 ||
			head.header.Get("Content-Length") != warm.header.Get("Content-Length") {
			t.Fatalf("%s (HEAD): %v; want the GET's head without a body", label, head)
		}
		f.settle()
		if n := origin.requests.Load() - before; n != 0 {
			t.Fatalf("%s: %d origin requests for stored slices", label, n)
		}
	}
}

// TestAmplificationBound: a cold range costs the origin at most the requested bytes rounded
// out to slices, plus one slice of read-ahead; a range within one slice costs that slice.
func TestAmplificationBound(t *testing.T) {
	rnd := rand.New(rand.NewPCG(14, 9))
	cases := 120
	if raceEnabled {
		cases = 40
	}
	origin := newTestOrigin(t)
	for i := range cases {
		S := []int64{7, 64, 1000}[rnd.IntN(3)]
		size := rnd.Int64N(30*S) + 1
		var rng string
		switch rnd.IntN(3) {
		case 0:
			a := rnd.Int64N(size)
			rng = fmt.Sprintf("bytes=%d-%d", a, a+rnd.Int64N(size))
		case 1:
			rng = fmt.Sprintf("bytes=%d-", rnd.Int64N(size))
		default:
			rng = fmt.Sprintf("bytes=-%d", 1+rnd.Int64N(size))
		}
		path := "/a" + strconv.Itoa(i)
		data := pattern(int(size), i)
		origin.set(path, &object{data: data, etag: etagOf(i)})
		f := newFixture(t, origin, S)
		before := origin.sent.Load()
		a := f.serve(f.request(http.MethodGet, path, rng))
		f.settle()
		label := fmt.Sprintf("case %d: %d bytes in %d-byte slices, %s", i, size, S, rng)
		if a.direct {
			checkDirect(t, label, a, data) // a cold suffix: the client's own range, uncached
		} else {
			checkServed(t, label, a, rng, data)
		}
		_, rs := evaluated(rng, size)
		lo, hi := rs[0].Start, rs[0].Start+rs[0].Length-1
		bound := (hi/S-lo/S+1)*S + S
		if hi/S == lo/S {
			bound = S
		}
		if sent := origin.sent.Load() - before; sent > bound {
			t.Fatalf("%s: the origin sent %d bytes for %d requested; bound %d", label, sent, hi-lo+1, bound)
		}
	}
}

// TestColdRangeCoalesced: N concurrent readers of the same cold range cost the origin one
// request per slice (and one for the slice read ahead), and all get the same bytes.
func TestColdRangeCoalesced(t *testing.T) {
	const S, readers = 1000, 8
	origin := newTestOrigin(t)
	data := pattern(10*S+17, 1)
	f := newFixture(t, origin, S)
	f.count.joinedAt, f.count.allJoined = readers-1, make(chan struct{})
	origin.set("/c", &object{data: data, etag: etagOf(1), gate: func(r *http.Request) {
		if r.Header.Get("Range") == "bytes=0-999" {
			// The first slice is answered once every reader has joined its fill: a reader
			// that came after it ended would rightly fetch it again (the object is not known
			// yet), which is not what this test is about.
			select {
			case <-f.count.allJoined:
			case <-time.After(10 * time.Second):
			}
		}
	}})
	rng := fmt.Sprintf("bytes=0-%d", 3*S-1)
	answers := make([]answer, readers)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = f.serve(f.request(http.MethodGet, "/c", rng))
		}()
	}
	wg.Wait()
	f.settle()
	for i, a := range answers {
		checkServed(t, fmt.Sprintf("reader %d", i), a, rng, data)
	}
	for idx := range int64(4) { // slices 0-2 and the one read ahead
		want := fmt.Sprintf("bytes=%d-%d", idx*S, idx*S+S-1)
		if n := origin.rangeCount("/c", want); n != 1 {
			t.Errorf("%s: %d origin requests; want 1", want, n)
		}
	}
	if n := origin.requests.Load(); n != 4 {
		t.Errorf("%d origin requests; want 4", n)
	}
	if f.count.collapsed.Load() < readers-1 {
		t.Errorf("%d collapsed; want at least %d", f.count.collapsed.Load(), readers-1)
	}
}

// TestChangedObjectNeverMixed: when the origin's object changes (a new ETag) between two
// slices of one response, the change is detected, the response ends before any byte of the
// new version, and the object is forgotten; the next request gets the new version whole.
func TestChangedObjectNeverMixed(t *testing.T) {
	const S = 100
	origin := newTestOrigin(t)
	v1, v2 := pattern(10*S, 1), pattern(10*S, 2)
	f := newFixture(t, origin, S)
	var mu sync.Mutex
	answered := 0
	origin.set("/x", &object{data: v1, etag: etagOf(1), gate: func(*http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if answered++; answered == 2 {
			origin.set("/x", &object{data: v2, etag: etagOf(2)}) // from the second slice on
		}
	}})

	// Mid-response: slice 0 of version 1 went out, slice 1 is of version 2.
	rng := fmt.Sprintf("bytes=0-%d", 3*S-1)
	a := f.serve(f.request(http.MethodGet, "/x", rng))
	if a.err != nil || a.status != http.StatusPartialContent || a.bodyErr == nil {
		t.Fatalf("changed mid-response: %v; want a 206 that breaks off", a)
	}
	if len(a.body) > S || !bytes.Equal(a.body, v1[:len(a.body)]) {
		t.Fatalf("changed mid-response: %d bytes, equal to version 1: %v; want at most slice 0 of version 1", len(a.body), bytes.Equal(a.body, v1[:len(a.body)]))
	}
	f.settle()
	if Known(f.store, "/x") {
		t.Fatalf("the changed object is still known")
	}
	checkServed(t, "after the change", f.serve(f.request(http.MethodGet, "/x", rng)), rng, v2)

	// Before the response: the meta says version 2, a slice not stored comes as version 3.
	f.settle()
	origin.set("/x", &object{data: pattern(10*S, 3), etag: etagOf(3)})
	late := fmt.Sprintf("bytes=%d-%d", 6*S, 6*S+10)
	if a := f.serve(f.request(http.MethodGet, "/x", late)); !errors.Is(a.err, ErrChanged) {
		t.Fatalf("slice of another version: %v; want ErrChanged", a)
	}
	f.settle()
	checkServed(t, "after the second change", f.serve(f.request(http.MethodGet, "/x", late)), late, pattern(10*S, 3))
}

// TestStreamUnknownLength: a whole response of unknown length cut into slices while it
// streams reads back whole, to the request that started it and to one that joined it
// meanwhile; once it ended, its meta is recorded and it is served from the stored slices.
func TestStreamUnknownLength(t *testing.T) {
	const S = 64
	for _, size := range []int{1, S - 1, 3 * S, 3*S + 5, 20 * S} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			origin := newTestOrigin(t)
			data := pattern(size, size)
			release := make(chan struct{})
			origin.set("/s", &object{data: data, etag: etagOf(size), chunked: true, midway: func() {
				select { // the rest is sent once the second request reads the stream
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}})
			f := newFixture(t, origin, S)
			leaderReq := f.request(http.MethodGet, "/s", "")
			fillReq := fill.Request(leaderReq.HTTP)
			gen := f.c.Gen("/s")
			ran := make(chan struct{})
			fl, leader := f.c.Fills.Join(fillReq.Context(), "/s whole", func(ctx context.Context, fl *fill.Fill) {
				defer close(ran)
				resp, reqTime, respTime, err := f.env.Fetch(ctx, fillReq)
				if err != nil {
					fl.Fail(err)
					return
				}
				if !StreamableUnknownLength(resp) {
					resp.Body.Close()
					fl.Fail(fmt.Errorf("not streamable: %d, Content-Length %d", resp.StatusCode, resp.ContentLength))
					return
				}
				q := *leaderReq
				q.HTTP = fillReq
				if !f.c.Stream(fl, &q, resp, gen, reqTime, respTime) {
					fl.Fail(errors.New("not streamed"))
				}
			})
			if !leader {
				t.Fatal("not the leader")
			}
			head, _, err := fl.Head(fillReq.Context(), true, 0)
			if err != nil || head.Reason != ReasonSliced || head.Direct == nil {
				t.Fatalf("head: %+v, %v", head, err)
			}
			// A second request joins while the stream runs: it reads the stream.
			var joined answer
			var wg sync.WaitGroup
			wg.Add(1)
			resp, err := f.c.Serve(f.request(http.MethodGet, "/s", ""))
			if err != nil || resp.Direct != nil || resp.Status != http.StatusOK || !resp.Cache.Collapsed {
				t.Fatalf("joining the stream: %v, %+v", err, resp)
			}
			go func() {
				defer wg.Done()
				defer resp.Close()
				rec := httptest.NewRecorder()
				joined.bodyErr = resp.WriteBody(rec)
				joined.body = rec.Body.Bytes()
			}()
			close(release)
			got, err := io.ReadAll(head.Direct)
			head.Direct.Close()
			fl.Done()
			wg.Wait()
			<-ran
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("the leader read %d bytes (%v); want the %d-byte object", len(got), err, size)
			}
			if joined.bodyErr != nil || !bytes.Equal(joined.body, data) {
				t.Fatalf("the joined request read %d bytes (%v); want the %d-byte object", len(joined.body), joined.bodyErr, size)
			}
			f.settle()
			if !Known(f.store, "/s") {
				t.Fatal("no meta once the stream ended complete")
			}
			before := origin.requests.Load()
			checkServed(t, "stored", f.serve(f.request(http.MethodGet, "/s", "")), "", data)
			rng := fmt.Sprintf("bytes=%d-", size/2)
			checkServed(t, "stored range", f.serve(f.request(http.MethodGet, "/s", rng)), rng, data)
			if n := origin.requests.Load(); n != before || n != 1 {
				t.Fatalf("%d origin requests; want the one stream", n)
			}
		})
	}
}

// BenchmarkWarmRange: a 1 MiB range over five stored 256 KiB slices, assembled from the
// store (the origin is not asked).
func BenchmarkWarmRange(b *testing.B) {
	const S = 256 << 10
	origin := newTestOrigin(b)
	data := pattern(8*S, 1)
	origin.set("/b", &object{data: data, etag: etagOf(1)})
	f := newFixture(b, origin, S)
	if a := f.serve(f.request(http.MethodGet, "/b", "")); a.err != nil || a.status != http.StatusOK {
		b.Fatalf("whole GET: %v", a)
	}
	f.settle()
	rng := fmt.Sprintf("bytes=%d-%d", S/2, S/2+4*S-1)
	before := origin.requests.Load()
	b.SetBytes(4 * S)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := f.c.Serve(f.request(http.MethodGet, "/b", rng))
		if err != nil || resp.Status != http.StatusPartialContent {
			b.Fatalf("%v, %+v", err, resp)
		}
		if err := resp.WriteBody(discardWriter{}); err != nil {
			b.Fatal(err)
		}
		resp.Close()
	}
	if origin.requests.Load() != before {
		b.Fatalf("%d origin requests for stored slices", origin.requests.Load()-before)
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}
