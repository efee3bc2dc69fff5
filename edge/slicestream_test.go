package edge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// chunkedOrigin is a rangedOrigin whose full GETs carry no Content-Length (the body is sent
// chunked, as dynamic and packaging origins do) while ranges are still answered with 206s
// that give the complete length (RFC 9110 §14.4). etag and acceptRanges set what the full
// GET says: its validator and whether it has Accept-Ranges: bytes (§14.3).
func chunkedOrigin(t *testing.T, size int, etag string, acceptRanges bool) *rangedOrigin {
	ro := newRangedOrigin(t, size)
	ro.etag.Store(etag)
	inner := ro.handler.Load().(http.HandlerFunc)
	ro.set(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			inner(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "max-age=600")
		h.Set("ETag", ro.etag.Load().(string))
		h.Set("Content-Type", "video/mp4")
		if acceptRanges {
			h.Set("Accept-Ranges", "bytes")
		}
		sendChunked(w, &ro.sent, ro.data.Load().([]byte))
	})
	return ro
}

// sendChunked writes data in flushed 16 KiB pieces without a Content-Length: chunked.
func sendChunked(w http.ResponseWriter, sent *atomic.Int64, data []byte) {
	w.WriteHeader(http.StatusOK)
	for off := 0; off < len(data); off += 16 << 10 {
		n, err := w.Write(data[off:min(off+16<<10, len(data))])
		sent.Add(int64(n))
		if err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

func keyOf(e *Edge, url string) string {
	return e.keyOf(httptest.NewRequest("GET", url, nil))
}

// TestUnknownLengthSliced: a 200 without Content-Length (chunked) that has a strong ETag and
// Accept-Ranges: bytes is stored as slices while it streams, whatever its length turns out to
// be — within one slice, exactly some slices, slices and a part; above what the memory tier
// keeps whole; above max_object_size with a disk tier (which a whole-object fill could not
// store) — and its meta is recorded with the length once the body ended: ranges (RFC 9110
// §14.4: Content-Range with the complete length), full GETs and HEADs are then answered from
// the slices without the origin.
func TestUnknownLengthSliced(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		config func(t *testing.T, c *Config)
	}{
		{"within one slice", 1000, nil},
		{"exactly four slices", 4 * testSlice, nil},
		{"slices and a part", 5*testSlice + 123, nil},
		{"too large for memory whole", 12*testSlice + 7, func(t *testing.T, c *Config) { c.Memory = 1 << 20 }},
		{"disk tier, above max_object_size", 6*testSlice + 7, func(t *testing.T, c *Config) {
			c.CacheDir, c.Disk, c.MaxObjectSize = t.TempDir(), 64<<20, 2*testSlice
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ro := chunkedOrigin(t, tc.size, `"u1"`, true)
			data := ro.data.Load().([]byte)
			e, srv := newEdge(t, ro.URL, func(c *Config) {
				c.SliceSize = testSlice
				if tc.config != nil {
					tc.config(t, c)
				}
			})
			if e.tiers.disk != nil {
				e.tiers.disk.SetMinFree(0)
			}
			r := get(t, srv.URL+"/u")
			if r.status != 200 || !bytes.Equal([]byte(r.body), data) || r.header.Get("Content-Length") != "" {
				t.Fatalf("cold GET: %d, %d bytes, Content-Length %q; want the %d bytes chunked", r.status, len(r.body), r.header.Get("Content-Length"), tc.size)
			}
			settle(e)
			if !e.isSliced(keyOf(e, srv.URL+"/u")) {
				t.Fatal("no slice meta recorded after the body ended complete")
			}
			hits := ro.hits.Load()
			lo, hi := tc.size/3, min(tc.size/3+testSlice+10, tc.size-1)
			r = get(t, srv.URL+"/u", "Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
			if want := fmt.Sprintf("bytes %d-%d/%d", lo, hi, tc.size); r.status != 206 || r.body != string(data[lo:hi+1]) || r.header.Get("Content-Range") != want {
				t.Fatalf("range: %d %q, want 206 %q", r.status, r.header.Get("Content-Range"), want)
			}
			r = get(t, srv.URL+"/u")
			if r.status != 200 || r.body != string(data) || r.header.Get("Content-Length") != strconv.Itoa(tc.size) {
				t.Fatalf("warm GET: %d, %d bytes, Content-Length %q", r.status, len(r.body), r.header.Get("Content-Length"))
			}
			if r := do(t, "HEAD", srv.URL+"/u"); r.status != 200 || r.header.Get("Content-Length") != strconv.Itoa(tc.size) {
				t.Fatalf("HEAD: %d, Content-Length %q", r.status, r.header.Get("Content-Length"))
			}
			if ro.hits.Load() != hits || ro.sent.Load() != int64(tc.size) {
				t.Fatalf("origin: %d more requests, %d bytes in all; want none more, one copy", ro.hits.Load()-hits, ro.sent.Load())
			}
		})
	}
}

// TestUnknownLengthNotSliced: a chunked response is stored as slices only with everything
// slices need — a strong ETag (weak ones don't promise the same bytes, RFC 9110 §8.8.1) and
// Accept-Ranges: bytes (the origin serves the ranges that refetch a slice); without them it
// takes the whole-object path as before. A body that ends short leaves no meta: the client
// sees an error, and the next request goes to the origin.
func TestUnknownLengthNotSliced(t *testing.T) {
	for _, tc := range []struct {
		name         string
		etag         string
		acceptRanges bool
	}{
		{"no Accept-Ranges", `"u1"`, false},
		{"weak ETag", `W/"u1"`, true},
		{"no ETag", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := chunkedOrigin(t, 3*testSlice, tc.etag, tc.acceptRanges)
			e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
			if r := get(t, srv.URL+"/n"); r.status != 200 || r.body != string(ro.data.Load().([]byte)) {
				t.Fatalf("GET: %d", r.status)
			}
			settle(e)
			if e.isSliced(keyOf(e, srv.URL+"/n")) {
				t.Fatal("stored as slices")
			}
		})
	}
	t.Run("ends short", func(t *testing.T) {
		ro := chunkedOrigin(t, 5*testSlice+9, `"u1"`, true)
		data := ro.data.Load().([]byte)
		var broken atomic.Bool
		broken.Store(true)
		inner := ro.handler.Load().(http.HandlerFunc)
		ro.set(func(w http.ResponseWriter, r *http.Request) {
			if !broken.Load() {
				inner(w, r)
				return
			}
			w.Header().Set("Cache-Control", "max-age=600")
			w.Header().Set("ETag", `"u1"`)
			w.Header().Set("Accept-Ranges", "bytes")
			sendChunked(w, &ro.sent, data[:3*testSlice+5]) // three slices complete, then a reset
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		})
		e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
		resp, err := http.Get(srv.URL + "/short")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil {
			t.Fatal("a body that ended short reached the client as complete")
		}
		settle(e)
		if e.isSliced(keyOf(e, srv.URL+"/short")) {
			t.Fatal("a meta was recorded for a body that ended short")
		}
		broken.Store(false)
		hits := ro.hits.Load()
		if r := get(t, srv.URL+"/short"); r.status != 200 || r.body != string(data) {
			t.Fatalf("after the short body: %d, %d bytes", r.status, len(r.body))
		}
		if ro.hits.Load() == hits {
			t.Fatal("served without the origin after a body that ended short")
		}
	})
}

// TestUnknownLengthCoalesced: concurrent cold GETs of a chunked, range-capable object all
// read the one origin response as it is stored as slices: one origin request, one copy, the
// same bytes for every client.
func TestUnknownLengthCoalesced(t *testing.T) {
	const size, clients = 12*testSlice + 7, 8
	ro := chunkedOrigin(t, size, `"u1"`, true)
	data := ro.data.Load().([]byte)
	gate := make(chan struct{})
	inner := ro.handler.Load().(http.HandlerFunc)
	ro.set(func(w http.ResponseWriter, r *http.Request) { <-gate; inner(w, r) })
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	var wg sync.WaitGroup
	var good atomic.Int64
	for range clients {
		wg.Go(func() {
			if r := get(t, srv.URL+"/co"); r.status == 200 && r.body == string(data) {
				good.Add(1)
			}
		})
	}
	waitCollapsed(e, clients-1)
	close(gate)
	wg.Wait()
	settle(e)
	if good.Load() != clients || ro.hits.Load() != 1 || ro.sent.Load() != size {
		t.Fatalf("%d of %d clients got the object; origin: %d requests, %d bytes (want 1, %d)", good.Load(), clients, ro.hits.Load(), ro.sent.Load(), size)
	}
	if !e.isSliced(keyOf(e, srv.URL+"/co")) {
		t.Fatal("not stored as slices")
	}
}

// TestRangeUnknownCompleteLength: an origin answering a range of an uncached object with 206
// and "Content-Range: bytes a-b/*" (complete length unknown, RFC 9110 §14.4) can't give a
// slice the object's length: the client's range is passed through to it uncached, and the
// client gets the origin's 206 as sent.
func TestRangeUnknownCompleteLength(t *testing.T) {
	const size = 4 * testSlice
	ro := chunkedOrigin(t, size, `"u1"`, true)
	data := ro.data.Load().([]byte)
	full := ro.handler.Load().(http.HandlerFunc)
	ro.set(func(w http.ResponseWriter, r *http.Request) {
		var a, b int
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err != nil {
			full(w, r)
			return
		}
		b = min(b, size-1)
		w.Header().Set("ETag", `"u1"`)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", a, b))
		w.Header().Set("Content-Length", strconv.Itoa(b-a+1))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data[a : b+1])
	})
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	for i := range 2 {
		hits := ro.hits.Load()
		r := get(t, srv.URL+"/star", "Range", "bytes=100-199")
		if r.status != 206 || r.body != string(data[100:200]) || r.header.Get("Content-Range") != "bytes 100-199/*" {
			t.Fatalf("request %d: %d %q, %d bytes", i, r.status, r.header.Get("Content-Range"), len(r.body))
		}
		if !strings.Contains(r.cacheStatus(), "fwd=") || ro.hits.Load() == hits {
			t.Fatalf("request %d answered without the origin (%q): something was cached", i, r.cacheStatus())
		}
	}
	settle(e)
	if e.isSliced(keyOf(e, srv.URL+"/star")) {
		t.Fatal("a slice meta was recorded from a 206 without the complete length")
	}
}

// TestUnknownLengthAbandoned: when the only client leaves a chunked object's stream early,
// the fill stops reading the origin at the next slice boundary rather than fetching the rest
// for nobody, and records no meta for the incomplete object.
func TestUnknownLengthAbandoned(t *testing.T) {
	const size = 64 * testSlice // 4 MiB, sent at 16 KiB a millisecond: ≥ 256ms
	ro := chunkedOrigin(t, size, `"u1"`, true)
	data := ro.data.Load().([]byte)
	var originEnded sync.WaitGroup
	originEnded.Add(1)
	ro.set(func(w http.ResponseWriter, r *http.Request) {
		defer originEnded.Done()
		w.Header().Set("Accept-Ranges", "bytes")
		w.Header().Set("ETag", `"u1"`)
		w.Header().Set("Cache-Control", "max-age=600")
		w.WriteHeader(http.StatusOK)
		for off := 0; off < size; off += 16 << 10 {
			time.Sleep(time.Millisecond)
			n, err := w.Write(data[off : off+16<<10])
			ro.sent.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	e, srv := newEdge(t, ro.URL, func(c *Config) { c.SliceSize = testSlice })
	resp, err := http.Get(srv.URL + "/gone")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, testSlice+100)
	if _, err := io.ReadFull(resp.Body, got); err != nil || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("first bytes: %v", err)
	}
	resp.Body.Close()
	originEnded.Wait()
	settle(e)
	if sent := ro.sent.Load(); sent >= size/2 {
		t.Fatalf("the origin sent %d of %d bytes for a client that left after %d", sent, size, len(got))
	}
	if e.isSliced(keyOf(e, srv.URL+"/gone")) {
		t.Fatal("a meta was recorded for an object whose stream stopped")
	}
}

// smallSendBuffers keeps the edge's client connections from buffering much in the kernel: a
// client that stops reading stops the edge's writes within tens of KiB, whatever the machine's
// TCP autotuning would buffer otherwise (up to net.ipv4.tcp_wmem's maximum, 4 MiB here: a
// whole test object, which made a "slow" reader look fast to the edge).
func smallSendBuffers(ln net.Listener) net.Listener { return sendBufferListener{ln} }

type sendBufferListener struct{ net.Listener }

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

// slowGet reads url through a connection with a small receive buffer (so the edge can't push
// much ahead of the client), 16 KiB at a time, waiting every between reads and pause once
// after pauseAt bytes.
func slowGet(t *testing.T, url string, every time.Duration, pauseAt int, pause time.Duration) ([]byte, error) {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(32 << 10)
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var got []byte
	buf := make([]byte, 16<<10)
	for {
		n, err := resp.Body.Read(buf)
		before := len(got)
		got = append(got, buf[:n]...)
		if before < pauseAt && len(got) >= pauseAt {
			time.Sleep(pause)
		}
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		time.Sleep(every)
	}
}

// TestSliceStreamPaced: a stream runs at the pace of its readers, not the origin's: a GET of
// an object several times larger than the memory tier, read slowly by its only client, costs
// the origin one copy — slices are read as they are written, none has to be fetched again
// because the stream ran ahead and they were evicted before the client got to them.
func TestSliceStreamPaced(t *testing.T) {
	size := 256 * testSlice // 16 MiB: 16 times the memory tier
	if raceEnabled {
		size = 96 * testSlice
	}
	ro := newRangedOrigin(t, size)
	e, srv := newEdgeOn(t, ro.URL, func(c *Config) { c.SliceSize = testSlice; c.Memory = 1 << 20 }, smallSendBuffers)
	got, err := slowGet(t, srv.URL+"/paced", 200*time.Microsecond, 0, 0)
	if err != nil || !bytes.Equal(got, ro.data.Load().([]byte)) {
		t.Fatalf("%d bytes, %v; want the %d-byte object", len(got), err, size)
	}
	settle(e)
	if sent := ro.sent.Load(); sent != int64(size) {
		t.Fatalf("origin sent %d bytes (%.2f copies) in %d requests for one client", sent, float64(sent)/float64(size), ro.hits.Load())
	}
}

// TestSliceStreamSlowReader: a stream waits for readers slower than the origin, its idle
// clock stopped meanwhile, but no longer than the origin read timeout. Then one of known
// length lets go of the origin's response, and its reader goes on with slices fetched by
// range; one of unknown length (stored only by its stream, which alone learns its length)
// goes on without waiting, to its end. Either way the client gets the object whole, and the
// object is known sliced.
func TestSliceStreamSlowReader(t *testing.T) {
	size := 128 * testSlice // 8 MiB
	if raceEnabled {
		size = 64 * testSlice
	}
	for _, tc := range []struct {
		name     string
		chunked  bool
		wantHits func(int64) bool
	}{
		{"known length: continued by range", false, func(n int64) bool { return n > 1 }},
		{"unknown length: stream completed", true, func(n int64) bool { return n >= 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := newRangedOrigin(t, size)
			if tc.chunked {
				ro = chunkedOrigin(t, size, `"u1"`, true)
			}
			e, srv := newEdgeOn(t, ro.URL, func(c *Config) {
				c.SliceSize = testSlice
				c.Memory = 4 << 20
				c.Limits.OriginReadTimeout = 200 * time.Millisecond
			}, smallSendBuffers)
			got, err := slowGet(t, srv.URL+"/slow", 0, 2*testSlice, time.Second)
			if err != nil || !bytes.Equal(got, ro.data.Load().([]byte)) {
				t.Fatalf("%d bytes, %v; want the %d-byte object", len(got), err, size)
			}
			settle(e)
			if !tc.wantHits(ro.hits.Load()) || !e.isSliced(keyOf(e, srv.URL+"/slow")) {
				t.Fatalf("%d origin requests, sliced: %v", ro.hits.Load(), e.isSliced(keyOf(e, srv.URL+"/slow")))
			}
		})
	}
}

// TestUnknownLengthSlowFollower: two clients of one chunked object's stream, one fast and one
// that falls far behind, through a memory tier much smaller than the object: the slices the
// slow one needs are evicted before it gets to them, and are fetched again by range (the
// origin said Accept-Ranges: bytes, and the ETag vouches for the version) — both get the
// object whole.
func TestUnknownLengthSlowFollower(t *testing.T) {
	size := 128 * testSlice // 8 MiB, 8 times the memory tier
	if raceEnabled {
		size = 64 * testSlice
	}
	ro := chunkedOrigin(t, size, `"u1"`, true)
	data := ro.data.Load().([]byte)
	gate := make(chan struct{})
	inner := ro.handler.Load().(http.HandlerFunc)
	ro.set(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") == "" {
			<-gate
		}
		inner(w, r)
	})
	e, srv := newEdgeOn(t, ro.URL, func(c *Config) { c.SliceSize = testSlice; c.Memory = 1 << 20 }, smallSendBuffers)
	var wg sync.WaitGroup
	var fast, slow []byte
	var fastErr, slowErr error
	wg.Go(func() { fast, fastErr = slowGet(t, srv.URL+"/two", 0, 0, 0) })
	waitUntil(t, func() bool { return ro.hits.Load() == 1 })
	wg.Go(func() { slow, slowErr = slowGet(t, srv.URL+"/two", 0, testSlice, 1500*time.Millisecond) })
	waitCollapsed(e, 1)
	close(gate)
	wg.Wait()
	if fastErr != nil || slowErr != nil || !bytes.Equal(fast, data) || !bytes.Equal(slow, data) {
		t.Fatalf("fast: %d bytes, %v; slow: %d bytes, %v; want the %d-byte object", len(fast), fastErr, len(slow), slowErr, size)
	}
	settle(e)
	if ro.hits.Load() < 2 {
		t.Fatalf("%d origin requests: the slow client's slices were not fetched again", ro.hits.Load())
	}
}
