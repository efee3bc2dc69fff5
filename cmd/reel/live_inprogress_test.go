package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestLiveSegmentInProgressCoalesced: low-latency DASH players ask for the segment being made
// and read it chunk by chunk as the origin produces it. Through the edge, every viewer asking
// for it while it grows shares one origin request — the origin gives the growing segment the
// strong ETag it will have complete, so the edge stores it while it passes — and each still
// gets its first bytes long before the segment is complete (low latency kept), with the same
// bytes the complete segment has.
func TestLiveSegmentInProgressCoalesced(t *testing.T) {
	srv := loopChannel(t, "ll", 500*time.Millisecond, sample("ladder_360p.mp4"))
	var mu sync.Mutex
	requests := map[string]int{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.URL.Path]++
		mu.Unlock()
		srv.ServeHTTP(w, r)
	}))
	defer origin.Close()
	_, edgeURL := edgeInFront(t, origin.URL, nil)
	c := &http.Client{Timeout: 20 * time.Second}

	// Wait for a segment to begin: the playlist's preload hint names part 0 of segment n.
	var n int
	for i := 0; i < 200 && n == 0; i++ {
		if code, body, err := httpGet(c, origin.URL+"/live/ll/video_360p/index.m3u8"); err == nil && code == 200 {
			if m := hintRe.FindStringSubmatch(body); m != nil && m[2] == "0" {
				n, _ = strconv.Atoi(m[1])
			}
		}
		if n == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if n == 0 {
		t.Fatal("no segment began within 10 s")
	}
	path := fmt.Sprintf("/live/ll/video_360p/seg_%d.m4s", n)

	const viewers = 20
	type got struct {
		body        []byte
		first, last time.Duration
		err         error
	}
	results := make([]got, viewers)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Viewers arrive over the first part of the segment, as players do.
			time.Sleep(time.Duration(i) * 10 * time.Millisecond)
			resp, err := c.Get(edgeURL + path)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			chunk := make([]byte, 32<<10)
			for {
				k, err := resp.Body.Read(chunk)
				if k > 0 && buf.Len() == 0 {
					results[i].first = time.Since(t0)
				}
				buf.Write(chunk[:k])
				if err == io.EOF {
					break
				}
				if err != nil {
					results[i].err = err
					return
				}
			}
			results[i].last = time.Since(t0)
			if resp.StatusCode != 200 {
				results[i].err = fmt.Errorf("status %d", resp.StatusCode)
			}
			results[i].body = buf.Bytes()
		}()
	}
	wg.Wait()
	// The complete segment, straight from the origin.
	resp, err := c.Get(origin.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	complete, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("ETag") == "" {
		t.Error("a complete segment without an ETag")
	}
	mu.Lock()
	originRequests := requests[path] - 1 // less the one just made
	mu.Unlock()
	if originRequests != 1 {
		t.Errorf("%d viewers of the segment in progress → %d origin requests, want 1", viewers, originRequests)
	}
	early := 0
	for i, g := range results {
		if g.err != nil {
			t.Errorf("viewer %d: %v", i, g.err)
			continue
		}
		if !bytes.Equal(g.body, complete) {
			t.Errorf("viewer %d got %d bytes, not the complete segment's %d", i, len(g.body), len(complete))
		}
		// The segment takes ~2 s to make: a viewer reading it as it grows has its first
		// bytes well before its last.
		if g.last-g.first > 500*time.Millisecond {
			early++
		}
	}
	t.Logf("%d viewers of seg_%d in progress: %d origin request(s); %d got their first bytes ≥ 0.5 s before the last (the segment streamed, not stored and forwarded)", viewers, n, originRequests, early)
	if early < viewers/2 {
		t.Errorf("only %d of %d viewers read the segment as it grew", early, viewers)
	}
}
