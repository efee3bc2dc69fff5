package edge

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pausedOrigin serves data whole (Content-Length, strong ETag, ranges), sending the first
// head bytes of a whole GET, then waiting (at most 10s) until cond holds before the rest.
func pausedOrigin(t *testing.T, data []byte, head int, cond func() bool) *rangedOrigin {
	ro := newRangedOrigin(t, 0)
	ro.setData(data, `"v1"`)
	ro.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Accept-Ranges", "bytes")
		cw := &countingWriter{ResponseWriter: w, n: &ro.sent}
		if r.Header.Get("Range") != "" {
			http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(data))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		cw.Write(data[:head])
		w.(http.Flusher).Flush()
		for i := 0; i < 1000 && !cond(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		cw.Write(data[head:])
	})
	return ro
}

// readSome sends a GET on its own connection, reads n body bytes and hangs up.
func readSome(t *testing.T, url string, n int) {
	t.Helper()
	u := strings.TrimPrefix(url, "http://")
	host, path, _ := strings.Cut(u, "/")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: cdn.test\r\n\r\n", path)
	if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}

// TestAbandonedFill: five cache-busting GETs of a large object, each dropped after 1 KB, cost
// the origin at most Limits.AbandonedFillBytes more each (not the object five times); the
// whole slices that arrived are kept. A client that stays gets the whole object even when
// another one of its fill hung up.
func TestAbandonedFill(t *testing.T) {
	const size, limit = 8 << 20, 1 << 20 // whole in memory (newEdge: 64 MiB, objects up to 8 MiB)
	data := randomData(size)
	var e *Edge
	noReader := func() bool { _, readers := e.fills.InFlight(); return readers == 0 }
	ro := pausedOrigin(t, data, 256<<10, noReader)
	e, srv := newEdge(t, ro.URL, func(c *Config) {
		c.SliceSize = testSlice
		c.Limits.AbandonedFillBytes = limit
	})
	for i := range 5 {
		readSome(t, fmt.Sprintf("%s/big?v=%d", srv.URL, i), 1<<10)
	}
	settle(e)
	got := counterValue(e.m.originBytes)
	if max := float64(5 * (256<<10 + limit + 64<<10)); got > max {
		t.Errorf("five abandoned fills read %.0f bytes from the origin, at most %.0f", got, max)
	}
	// What arrived was kept: the first slice of each is a hit.
	hits := ro.hits.Load()
	if r := get(t, srv.URL+"/big?v=0", "Range", "bytes=0-99", "Host", "cdn.test"); r.status != 206 || r.body != string(data[:100]) || ro.hits.Load() != hits {
		t.Errorf("abandoned fill's first slice: %d %q, origin +%d", r.status, r.cacheStatus(), ro.hits.Load()-hits)
	}

	t.Run("one client stays", func(t *testing.T) {
		var left atomic.Bool // the origin goes on once the second client has left
		oneLeft := func() bool {
			_, readers := e.fills.InFlight()
			return left.Load() && readers == 1
		}
		ro2 := pausedOrigin(t, data, 256<<10, oneLeft)
		e, srv = newEdge(t, ro2.URL, func(c *Config) { c.SliceSize = testSlice; c.Limits.AbandonedFillBytes = limit })
		stay := make(chan result, 1)
		go func() {
			stay <- get(t, srv.URL+"/shared", "Host", "cdn.test")
		}()
		waitUntil(t, func() bool { return ro2.hits.Load() == 1 })
		readSome(t, srv.URL+"/shared", 1<<10)
		left.Store(true)
		r := <-stay
		if r.status != 200 || !bytes.Equal([]byte(r.body), data) {
			t.Fatalf("the client that stayed got %d, %d bytes", r.status, len(r.body))
		}
	})
}
