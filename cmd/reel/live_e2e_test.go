package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/reelvideo/reel/internal/testkit"
)

// startLive runs `reel live` with args (and stdin, when not nil) and returns its base URL
// once it serves.
func startLive(t *testing.T, bin string, stdin io.Reader, args ...string) string {
	t.Helper()
	_, base := startLiveCmd(t, bin, stdin, args...)
	return base
}

// startLiveCmd is startLive that also returns the process (stopped with SIGINT at the end of
// the test, if still running).
func startLiveCmd(t *testing.T, bin string, stdin io.Reader, args ...string) (*exec.Cmd, string) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"live", "--listen", addr, "--dir", t.TempDir(), "--log-level", "warn", "--admin", ""}, args...)...)
	cmd.Stdin = stdin
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "serving") {
		t.Fatalf("reel live did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return cmd, "http://" + addr
}

var (
	mediaSeqRe = regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)
	entryRe    = regexp.MustCompile(`(?m)^#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(?:#EXT-X-PART:.*\n)*#EXTINF:([0-9.]+),\nseg_(\d+)\.m4s$`)
)

// follower checks what a player following a live stream relies on, over everything it saw.
type follower struct {
	t        *testing.T
	client   *http.Client
	mu       sync.Mutex
	fetched  map[uint64]bool
	pdt      map[uint64]time.Time
	dur      map[uint64]float64
	lastSeq  uint64
	firstSeq uint64
	polls    int
}

func newFollower(t *testing.T) *follower {
	return &follower{t: t, client: &http.Client{Timeout: 10 * time.Second}, fetched: map[uint64]bool{},
		pdt: map[uint64]time.Time{}, dur: map[uint64]float64{}, firstSeq: ^uint64(0)}
}

func (f *follower) get(url string) (int, []byte, error) {
	resp, err := f.client.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// followHLS polls a media playlist like a player until ctx ends, fetching every new segment.
func (f *follower) followHLS(ctx context.Context, playlist string) {
	dir := playlist[:strings.LastIndex(playlist, "/")+1]
	started := false
	for ctx.Err() == nil {
		code, body, err := f.get(playlist)
		if code == http.StatusNotFound && !started {
			time.Sleep(200 * time.Millisecond) // the channel's tracks are not known yet
			continue
		}
		started = true
		if err != nil || code != 200 {
			f.t.Errorf("playlist: %d %v", code, err)
			return
		}
		pl := string(body)
		if strings.Contains(pl, "#EXT-X-DISCONTINUITY\n") {
			f.t.Errorf("unexpected discontinuity:\n%s", pl)
		}
		m := mediaSeqRe.FindStringSubmatch(pl)
		if m == nil {
			f.t.Errorf("no media sequence:\n%s", pl)
			return
		}
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		f.mu.Lock()
		if seq < f.lastSeq {
			f.t.Errorf("media sequence went back: %d after %d", seq, f.lastSeq)
		}
		f.lastSeq, f.firstSeq = seq, min(f.firstSeq, seq)
		f.polls++
		f.mu.Unlock()
		for i, e := range entryRe.FindAllStringSubmatch(pl, -1) {
			n, _ := strconv.ParseUint(e[3], 10, 64)
			if n != seq+uint64(i) {
				f.t.Errorf("segment %d listed at position %d after media sequence %d", n, i, seq)
			}
			p, err := time.Parse(time.RFC3339Nano, e[1])
			d, _ := strconv.ParseFloat(e[2], 64)
			if err != nil {
				f.t.Errorf("PDT %q: %v", e[1], err)
			}
			f.mu.Lock()
			seen := f.fetched[n]
			f.pdt[n], f.dur[n] = p, d
			f.mu.Unlock()
			if seen {
				continue
			}
			code, seg, err := f.get(dir + "seg_" + e[3] + ".m4s")
			if err != nil || code != 200 || len(seg) == 0 {
				f.t.Errorf("segment %d: %d, %d bytes, %v", n, code, len(seg), err)
			}
			f.mu.Lock()
			f.fetched[n] = true
			f.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(700 * time.Millisecond):
		}
	}
}

// check verifies what was seen: no gap, PDT continuous, the window slid.
func (f *follower) check(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lo, hi uint64 = ^uint64(0), 0
	for n := range f.fetched {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(f.fetched) < 10 {
		f.t.Fatalf("%s: only %d segments seen in %d polls", what, len(f.fetched), f.polls)
	}
	for n := lo; n <= hi; n++ {
		if !f.fetched[n] {
			f.t.Errorf("%s: segment %d never listed (gap)", what, n)
		}
		if n > lo {
			want := f.pdt[n-1].Add(time.Duration(f.dur[n-1] * float64(time.Second)))
			if d := f.pdt[n].Sub(want); d > 5*time.Millisecond || d < -5*time.Millisecond {
				f.t.Errorf("%s: segment %d PDT %v, previous (%d, %.5fs at %v) ended at %v", what, n, f.pdt[n], n-1, f.dur[n-1], f.pdt[n-1], want)
			}
		}
	}
	if f.lastSeq <= f.firstSeq {
		f.t.Errorf("%s: media sequence did not advance (%d → %d)", what, f.firstSeq, f.lastSeq)
	}
}

// fetchedCount is how many segments the follower has fetched so far.
func (f *follower) fetchedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fetched)
}

// followDASH polls the MPD like a player and fetches each new segment of every
// representation, counting them in segments as it goes.
func followDASH(ctx context.Context, t *testing.T, base, channel string, segments *atomic.Int64) {
	client := &http.Client{Timeout: 10 * time.Second}
	seen := map[string]uint64{} // representation → next expected number
	started := false
	for ctx.Err() == nil {
		resp, err := client.Get(base + "/live/" + channel + "/manifest.mpd")
		if err != nil {
			t.Errorf("MPD: %v", err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound && !started {
			time.Sleep(200 * time.Millisecond) // no complete segment yet: the channel just started
			continue
		}
		if resp.StatusCode != 200 {
			t.Errorf("MPD: %d", resp.StatusCode)
			return
		}
		started = true
		m, err := mpd.ReadFromString(string(body))
		if err != nil || m.Type == nil || *m.Type != "dynamic" {
			t.Errorf("MPD: %v\n%s", err, body)
			return
		}
		for _, as := range m.Periods[0].AdaptationSets {
			for _, rep := range as.Representations {
				st := rep.SegmentTemplate
				if st == nil || st.SegmentTimeline == nil {
					t.Errorf("representation %s without SegmentTemplate/SegmentTimeline", rep.Id)
					return
				}
				num := uint64(0)
				if st.StartNumber != nil {
					num = uint64(*st.StartNumber)
				}
				var tm uint64
				for _, s := range st.SegmentTimeline.S {
					if s.T != nil {
						tm = *s.T
					}
					for range s.R + 1 {
						next, ok := seen[rep.Id]
						if ok && num > next {
							t.Errorf("%s: segment %d listed but %d never was (gap)", rep.Id, num, next)
						}
						if !ok || num >= next {
							url := base + "/live/" + channel + "/" + strings.ReplaceAll(strings.ReplaceAll(st.Media, "$RepresentationID$", rep.Id), "$Number$", fmt.Sprint(num))
							r, err := client.Get(url)
							if err != nil || r.StatusCode != 200 {
								t.Errorf("%s: %v %v", url, err, r)
							} else {
								io.Copy(io.Discard, r.Body)
								r.Body.Close()
								segments.Add(1)
							}
							seen[rep.Id] = num + 1
						}
						num++
						tm += s.D
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// TestLiveThroughEdge: three channels of one `reel live` — the pure-Go looped source, ffmpeg
// encoding a test pattern in real time into --stdin, and ffmpeg pushing CMAF with HTTP PUT to
// --ingest — through `reel edge`, each followed by
// clients that read the HLS playlists and the MPD like players until each has seen a dozen
// segments or so (60 s at most): media sequence
// increasing, no gaps, every listed segment 200, PDT continuous, no discontinuity.
func TestLiveThroughEdge(t *testing.T) {
	// Sequential: its followers must poll within the 8 s window (see parallel_test.go).
	bin := buildReel(t)
	ffmpeg := testkit.RequireTool(t, "ffmpeg")
	enc := exec.Command(ffmpeg, "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "45", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000", "pipe:1")
	encOut, err := enc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	enc.Stderr = os.Stderr
	if err := enc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Process.Kill(); enc.Wait() })
	ingest := freeAddr(t)
	origin := startLive(t, bin, encOut, "--loop", "demo="+sample("ladder_480p.mp4")+","+sample("ladder_360p.mp4"), "--stdin", "cam",
		"--ingest", "push", "--ingest-listen", ingest, "--window", "8s")
	_, edge := startEdge(t, bin, "--origin", origin)
	// The third channel is pushed: ffmpeg's dash muxer PUTting CMAF in real time.
	push := exec.Command(ffmpeg, "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "45", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k",
		"-f", "dash", "-method", "PUT", "-seg_duration", "2", "-frag_duration", "0.5", "-frag_type", "duration",
		"-streaming", "1", "-use_template", "1", "-use_timeline", "0",
		"-init_seg_name", "init-stream$RepresentationID$.m4s", "-media_seg_name", "chunk-stream$RepresentationID$-$Number%05d$.m4s",
		"http://"+ingest+"/ingest/push/manifest.mpd")
	push.Stderr = os.Stderr
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { push.Process.Kill(); push.Wait() })

	// The followers run until each has seen enough (below), or 60 s: on a loaded machine a
	// channel fed by an encoder may start seconds late (once, beside the race suite, the cam
	// channel's HLS follower saw 9 segments in a fixed 30 s).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	followers := map[string]*follower{}
	var wg sync.WaitGroup
	for _, pl := range []string{"demo/video_360p", "demo/audio", "cam/video_180p", "cam/audio", "push/video_180p", "push/audio"} {
		f := newFollower(t)
		followers[pl] = f
		wg.Add(1)
		go func() { defer wg.Done(); f.followHLS(ctx, edge+"/live/"+pl+"/index.m3u8") }()
	}
	dash := map[string]*atomic.Int64{"demo": new(atomic.Int64), "cam": new(atomic.Int64), "push": new(atomic.Int64)}
	for name, n := range dash {
		wg.Add(1)
		go func() { defer wg.Done(); followDASH(ctx, t, edge, name, n) }()
	}
	// Enough: 12 segments per HLS follower (check wants 10), and 10 per DASH representation
	// (demo has 3, cam and push 2).
	dashEnough := func() bool {
		return dash["demo"].Load() >= 30 && dash["cam"].Load() >= 20 && dash["push"].Load() >= 20
	}
	enough := func() bool {
		for _, f := range followers {
			if f.fetchedCount() < 12 {
				return false
			}
		}
		return dashEnough()
	}
	for ctx.Err() == nil && !enough() {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond): // the poll interval of a bounded wait
		}
	}
	cancel()
	wg.Wait()
	for pl, f := range followers {
		f.check(pl)
	}
	if !dashEnough() {
		t.Errorf("DASH followers fetched %d (demo, 3 representations), %d (cam, 2) and %d (push, 2) segments in 60 s; want 30, 20, 20",
			dash["demo"].Load(), dash["cam"].Load(), dash["push"].Load())
	}
}
