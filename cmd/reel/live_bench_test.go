package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/reelvideo/reel/edge"
	"github.com/reelvideo/reel/packager"
	"github.com/reelvideo/reel/packager/live"
)

// liveStack is a looped live channel served by an in-process origin, behind an in-process edge.
type liveStack struct {
	origin, edge string
}

func newLiveStack(t *testing.T, part time.Duration) *liveStack {
	t.Helper()
	o := httptest.NewServer(loopChannel(t, "bench", part, sample("ladder_360p.mp4")))
	t.Cleanup(o.Close)
	_, base := edgeInFront(t, o.URL, nil)
	return &liveStack{origin: o.URL, edge: base}
}

// loopChannel serves a live channel looping inputs in real time (2 s segments, a 20 s
// window, parts of part), until the test ends.
func loopChannel(t *testing.T, name string, part time.Duration, inputs ...string) *live.Server {
	t.Helper()
	ch, err := live.NewChannel(live.Config{Name: name, Dir: filepath.Join(t.TempDir(), name),
		SegmentDuration: 2 * time.Second, PartDuration: part, Window: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := live.NewServer(nil)
	srv.Add(ch)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := packager.Loop(ctx, ch, packager.LoopOptions{Inputs: inputs}); err != nil && ctx.Err() == nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// edgeInFront starts an in-process edge in front of origin on loopback, until the test ends.
func edgeInFront(t *testing.T, origin string, log *slog.Logger) (*edge.Edge, string) {
	t.Helper()
	return edgeInFrontWith(t, origin, log, nil)
}

// edgeInFrontWith is edgeInFront with the edge's configuration adjusted by tune (nil: defaults).
func edgeInFrontWith(t *testing.T, origin string, log *slog.Logger, tune func(*edge.Config)) (*edge.Edge, string) {
	t.Helper()
	cfg := edge.DefaultConfig()
	cfg.Origins = []edge.Origin{{Host: "*", URL: origin}}
	if tune != nil {
		tune(&cfg)
	}
	e, err := edge.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	es := edge.NewServer(e, cfg, nil)
	go es.Serve(ln)
	t.Cleanup(func() { es.Close(); e.Close() })
	return e, "http://" + ln.Addr().String()
}

var (
	pdtLineRe  = regexp.MustCompile(`(?m)^#EXT-X-PROGRAM-DATE-TIME:(\S+)$`)
	extinfRe   = regexp.MustCompile(`(?m)^#EXTINF:([0-9.]+),$`)
	partLineRe = regexp.MustCompile(`(?m)^#EXT-X-PART:DURATION=([0-9.]+),URI="([^"]+)"`)
	hintRe     = regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg_(\d+)\.(\d+)\.m4s"`)
)

func httpGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// lastMediaEnd returns the wall-clock end of the newest complete segment a playlist lists.
func lastMediaEnd(pl string) (time.Time, string, bool) {
	pdts := pdtLineRe.FindAllStringSubmatchIndex(pl, -1)
	infs := extinfRe.FindAllStringSubmatchIndex(pl, -1)
	if len(infs) == 0 || len(pdts) == 0 {
		return time.Time{}, "", false
	}
	inf := infs[len(infs)-1]
	// The PDT written before this EXTINF's segment.
	var pdt time.Time
	for _, p := range pdts {
		if p[0] < inf[0] {
			pdt, _ = time.Parse(time.RFC3339Nano, pl[p[2]:p[3]])
		}
	}
	d, _ := strconv.ParseFloat(pl[inf[2]:inf[3]], 64)
	rest := pl[inf[1]+1:]
	uri, _, _ := strings.Cut(rest, "\n")
	return pdt.Add(time.Duration(d * float64(time.Second))), uri, true
}

// measureHLS polls the playlist like a regular HLS player and records, for each new segment,
// how far behind the wall clock its last frame is once the segment is downloaded.
func measureHLS(ctx context.Context, c *http.Client, playlist string) []float64 {
	dir := playlist[:strings.LastIndex(playlist, "/")+1]
	var lat []float64
	last := ""
	for ctx.Err() == nil {
		if code, pl, err := httpGet(c, playlist); err == nil && code == 200 {
			if end, uri, ok := lastMediaEnd(pl); ok && uri != last {
				if code, _, err := httpGet(c, dir+uri); err == nil && code == 200 {
					lat = append(lat, time.Since(end).Seconds())
				}
				last = uri
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return lat
}

// measureLLHLS follows parts with blocking playlist reloads and preload hints, like an LL-HLS
// player at the live edge, recording how far behind the wall clock each part's end is once
// the part is downloaded.
func measureLLHLS(ctx context.Context, c *http.Client, playlist string) []float64 {
	dir := playlist[:strings.LastIndex(playlist, "/")+1]
	var lat []float64
	code, pl, err := httpGet(c, playlist)
	for i := 0; (err != nil || code != 200 || hintRe.FindStringSubmatch(pl) == nil) && i < 50 && ctx.Err() == nil; i++ {
		time.Sleep(200 * time.Millisecond)
		code, pl, err = httpGet(c, playlist)
	}
	for ctx.Err() == nil {
		h := hintRe.FindStringSubmatch(pl)
		if h == nil {
			return lat
		}
		// Fetch the hinted part (held by the origin until it exists), then reload the playlist
		// blocking for it, which tells its duration and PDT.
		if code, _, err := httpGet(c, dir+"seg_"+h[1]+"."+h[2]+".m4s"); err != nil || code != 200 {
			return lat
		}
		got := time.Now()
		code, pl, err = httpGet(c, playlist+"?_HLS_msn="+h[1]+"&_HLS_part="+h[2])
		if err != nil || code != 200 {
			return lat
		}
		if end, ok := partEnd(pl, "seg_"+h[1]+"."+h[2]+".m4s"); ok {
			lat = append(lat, got.Sub(end).Seconds())
		}
	}
	return lat
}

// partEnd finds a part's wall-clock end in a playlist: the PDT before its segment's first part
// plus the durations of the parts up to and including it.
func partEnd(pl, uri string) (time.Time, bool) {
	var pdt time.Time
	var offset float64
	for _, line := range strings.Split(pl, "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			pdt, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"))
			offset = 0
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			m := partLineRe.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			d, _ := strconv.ParseFloat(m[1], 64)
			offset += d
			if m[2] == uri {
				return pdt.Add(time.Duration(offset * float64(time.Second))), true
			}
		}
	}
	return time.Time{}, false
}

// measureDASH reads the MPD like a DASH player: when a new segment appears in the timeline it is
// downloaded, and its end (availabilityStartTime + its media end) is compared with the clock.
func measureDASH(ctx context.Context, c *http.Client, base string) []float64 {
	var lat []float64
	next := uint64(0)
	for ctx.Err() == nil {
		code, body, err := httpGet(c, base+"/live/bench/manifest.mpd")
		if err == nil && code == 200 {
			m, err := mpd.ReadFromString(body)
			ast, terr := time.Parse(time.RFC3339Nano, string(m.AvailabilityStartTime))
			if err == nil && terr == nil {
				for _, as := range m.Periods[0].AdaptationSets {
					if as.ContentType != "video" {
						continue
					}
					rep := as.Representations[0]
					st := rep.SegmentTemplate
					num := uint64(*st.StartNumber)
					var t uint64
					ts := float64(*st.Timescale)
					var lastNum, lastEnd uint64
					for _, s := range st.SegmentTimeline.S {
						if s.T != nil {
							t = *s.T
						}
						for range s.R + 1 {
							lastNum, lastEnd = num, t+s.D
							num++
							t += s.D
						}
					}
					if lastNum >= next {
						url := base + "/live/bench/" + strings.ReplaceAll(strings.ReplaceAll(st.Media, "$RepresentationID$", rep.Id), "$Number$", fmt.Sprint(lastNum))
						if code, _, err := httpGet(c, url); err == nil && code == 200 {
							end := ast.Add(time.Duration(float64(lastEnd) / ts * float64(time.Second)))
							lat = append(lat, time.Since(end).Seconds())
						}
						next = lastNum + 1
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return lat
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// TestLiveLatency measures end-to-end latency through the edge — the wall clock at the client
// when it holds a piece of media, minus the wall-clock time (PDT) of that media's end — for a
// regular HLS player, an LL-HLS player (0.5 s parts, blocking reload, preload hints) and a DASH
// player, each following the looped channel for REEL_LIVE_BENCH (default 30 s). A benchmark
// (make bench), not a CI test: it reports p50/p99 and asserts only that each player got media.
func TestLiveLatency(t *testing.T) {
	if os.Getenv("REEL_COMPARE") != "1" {
		t.Skip("latency benchmark: run with REEL_COMPARE=1 (make bench)")
	}
	dur := 30 * time.Second
	if v := os.Getenv("REEL_LIVE_BENCH"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		dur = d
	}
	plain := newLiveStack(t, 0)
	ll := newLiveStack(t, 500*time.Millisecond)
	time.Sleep(3 * time.Second) // the first segments
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	c := &http.Client{Timeout: 10 * time.Second}
	results := map[string][]float64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, run := range map[string]func() []float64{
		"HLS (2 s segments)":               func() []float64 { return measureHLS(ctx, c, plain.edge+"/live/bench/video_360p/index.m3u8") },
		"LL-HLS (0.5 s parts)":             func() []float64 { return measureLLHLS(ctx, c, ll.edge+"/live/bench/video_360p/index.m3u8") },
		"DASH (2 s segments, timeline)":    func() []float64 { return measureDASH(ctx, c, plain.edge) },
		"HLS direct from origin (ref.)":    func() []float64 { return measureHLS(ctx, c, plain.origin+"/live/bench/video_360p/index.m3u8") },
		"LL-HLS direct from origin (ref.)": func() []float64 { return measureLLHLS(ctx, c, ll.origin+"/live/bench/video_360p/index.m3u8") },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := run()
			mu.Lock()
			results[name] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	var md strings.Builder
	md.WriteString("| player | samples | p50 latency | p99 latency |\n|---|---:|---:|---:|\n")
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := results[n]
		if len(v) == 0 {
			t.Errorf("%s: no media received", n)
		}
		fmt.Fprintf(&md, "| %s | %d | %.2f s | %.2f s |\n", n, len(v), percentile(v, 0.5), percentile(v, 0.99))
	}
	fmt.Fprintf(&md, "\nLooped 360p channel, 2 s segments; the edge in front of `reel live` on loopback; %v per player; "+
		"latency = client clock when the media is downloaded − PDT of the media's end.\n", dur)
	t.Log("\n" + md.String())
}
