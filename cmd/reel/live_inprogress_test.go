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
// gets its first bytes before the origin has finished the segment (low latency kept), with
// the same bytes the complete segment has.
//
// Every wait is on an event, not a time margin, so that a loaded machine slows the test down
// without failing it: the segment is caught as it begins with blocking playlist reloads, late
// viewers join once the first one has bytes, and "read as it grew" means a viewer's first
// bytes came before the origin's response for the segment ended.
func TestLiveSegmentInProgressCoalesced(t *testing.T) {
	srv := loopChannel(t, "ll", 500*time.Millisecond, sample("ladder_360p.mp4"))
	origin := newRecordingOrigin(srv)
	defer origin.Close()
	_, edgeURL := edgeInFront(t, origin.URL, nil)
	c := &http.Client{Timeout: 20 * time.Second}

	n := awaitSegmentStart(t, c, origin.URL+"/live/ll/video_360p/index.m3u8")
	path := fmt.Sprintf("/live/ll/video_360p/seg_%d.m4s", n)

	// Half the viewers ask before the origin has sent anything; the other half join once the
	// first viewer has its first bytes, reading a fill in progress, as players arriving over
	// the segment's life do.
	const viewers = 20
	results := make([]viewerResult, viewers)
	firstBytes := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(firstBytes) }) }
	var wg sync.WaitGroup
	for i := range viewers {
		wg.Go(func() {
			if i < viewers/2 {
				defer release() // also when no early viewer got bytes: the late ones must not hang
			} else {
				<-firstBytes
			}
			results[i] = readAsItGrows(c, edgeURL+path, release)
		})
	}
	wg.Wait()

	// The complete segment, straight from the origin.
	code, complete, err := httpGet(c, origin.URL+path)
	if err != nil || code != 200 {
		t.Fatalf("the complete segment from the origin: %d %v", code, err)
	}
	requests, finished := origin.served(path)
	requests-- // less the one just made
	if requests != 1 {
		t.Errorf("%d viewers of the segment in progress → %d origin requests, want 1", viewers, requests)
	}
	early := 0
	for i, g := range results {
		switch {
		case g.err != nil:
			t.Errorf("viewer %d: %v", i, g.err)
		case g.body != complete:
			t.Errorf("viewer %d got %d bytes, not the complete segment's %d", i, len(g.body), len(complete))
		case g.first.Before(finished):
			early++
		default:
			t.Errorf("viewer %d got its first bytes %v after the origin finished the segment: stored and forwarded, not streamed",
				i, g.first.Sub(finished).Round(time.Millisecond))
		}
	}
	t.Logf("%d viewers of seg_%d in progress: %d origin request(s); %d got their first bytes before the origin finished the segment",
		viewers, n, requests, early)
}

// recordingOrigin is an origin that counts requests by path and notes when the first response
// for each path ended.
type recordingOrigin struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]int
	finished map[string]time.Time
}

func newRecordingOrigin(h http.Handler) *recordingOrigin {
	o := &recordingOrigin{requests: map[string]int{}, finished: map[string]time.Time{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests[r.URL.Path]++
		o.mu.Unlock()
		h.ServeHTTP(w, r)
		o.mu.Lock()
		if _, ok := o.finished[r.URL.Path]; !ok {
			o.finished[r.URL.Path] = time.Now()
		}
		o.mu.Unlock()
	}))
	return o
}

// served reports how many requests path had and when the first one's response ended.
func (o *recordingOrigin) served(path string) (int, time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[path], o.finished[path]
}

// awaitSegmentStart returns the number of a segment that has just begun: it follows the media
// playlist's preload hint with blocking reloads (each returns when the hinted part exists)
// until the hint names part 0 of a segment, one that has no bytes yet.
func awaitSegmentStart(t *testing.T, c *http.Client, playlist string) int {
	t.Helper()
	// The channel's first segment takes a moment: poll until the playlist has a hint (bounded).
	var hint []string
	for i := 0; i < 100 && hint == nil; i++ {
		if code, body, err := httpGet(c, playlist); err == nil && code == 200 {
			hint = hintRe.FindStringSubmatch(body)
		}
		if hint == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A segment has at most a handful of parts: a few blocking reloads reach the next one.
	for range 20 {
		if hint == nil {
			t.Fatal("no preload hint in the playlist")
		}
		if hint[2] == "0" {
			n, _ := strconv.Atoi(hint[1])
			return n
		}
		code, body, err := httpGet(c, playlist+"?_HLS_msn="+hint[1]+"&_HLS_part="+hint[2])
		if err != nil || code != 200 {
			t.Fatalf("blocking reload for part %s.%s: %d %v", hint[1], hint[2], code, err)
		}
		hint = hintRe.FindStringSubmatch(body)
	}
	t.Fatal("no segment began within 20 parts")
	return 0
}

// viewerResult is what one viewer of a growing segment got.
type viewerResult struct {
	body  string
	first time.Time // when its first bytes arrived
	err   error
}

// readAsItGrows reads url chunk by chunk, noting when the first bytes arrived (and calling
// onFirst then).
func readAsItGrows(c *http.Client, url string, onFirst func()) viewerResult {
	var res viewerResult
	resp, err := c.Get(url)
	if err != nil {
		res.err = err
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		res.err = fmt.Errorf("status %d", resp.StatusCode)
		return res
	}
	var buf bytes.Buffer
	chunk := make([]byte, 32<<10)
	for {
		k, err := resp.Body.Read(chunk)
		if k > 0 && buf.Len() == 0 {
			res.first = time.Now()
			onFirst()
		}
		buf.Write(chunk[:k])
		if err == io.EOF {
			break
		}
		if err != nil {
			res.err = err
			return res
		}
	}
	res.body = buf.String()
	return res
}
