package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLiveOneWriterPerChannel: a second `reel live` on a channel folder another one is
// producing exits 1 at once, with one line naming the folder and the holder's pid.
func TestLiveOneWriterPerChannel(t *testing.T) {
	bin := buildReel(t)
	dir := t.TempDir()
	first, _ := startLiveCmd(t, bin, nil, "--loop", "demo="+sample("ladder_360p.mp4"), "--dir", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "live", "--loop", "demo="+sample("ladder_360p.mp4"), "--dir", dir,
		"--listen", freeAddr(t), "--admin", "")
	var stderr bytes.Buffer
	second.Stderr = &stderr
	err := second.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || ctx.Err() != nil {
		t.Fatalf("second reel live on %s: %v (still running after 30 s: %v), want exit 1", dir, err, ctx.Err() != nil)
	}
	msg := stderr.String()
	assertOneLine(t, "the refusal", msg)
	if !strings.Contains(msg, filepath.Join(dir, "demo")) || !strings.Contains(msg, "pid "+strconv.Itoa(first.Process.Pid)+" ") {
		t.Errorf("the refusal does not name the folder and the holder (pid %d): %q", first.Process.Pid, msg)
	}
}

// TestLiveRestartAfterWipe: `reel live` restarted on a wiped folder (with other settings, so
// its bytes differ) never answers a URL the first run published with other bytes: segments and
// parts alike get a new name.
func TestLiveRestartAfterWipe(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	bin := buildReel(t)
	dir := t.TempDir()
	playlist := "/live/demo/video_360p/index.m3u8"
	args := func(part string) []string {
		return []string{"--loop", "demo=" + sample("ladder_360p.mp4"), "--dir", dir, "--segment", "1s", "--part", part}
	}
	first, base := startLiveCmd(t, bin, nil, args("250ms")...)
	published := map[string][]byte{}
	for _, uri := range waitForSegments(t, base+playlist, 3) {
		_, body, _ := fetch(t, base+"/live/demo/video_360p/"+uri)
		published[uri] = []byte(body)
	}
	first.Process.Signal(os.Interrupt)
	first.Wait()
	if err := os.RemoveAll(filepath.Join(dir, "demo")); err != nil {
		t.Fatal(err)
	}

	_, base = startLiveCmd(t, bin, nil, args("500ms")...)
	waitForSegments(t, base+playlist, 3)
	for uri, want := range published {
		code, got, _ := fetch(t, base+"/live/demo/video_360p/"+uri)
		if code == http.StatusOK && !bytes.Equal([]byte(got), want) {
			t.Errorf("%s: the first run published %d bytes, the second answers %d other bytes", uri, len(want), len(got))
		}
	}
}

var (
	segURIRe  = regexp.MustCompile(`(?m)^(seg_\d+\.m4s)$`)
	partURIRe = regexp.MustCompile(`#EXT-X-PART:[^\n]*URI="(seg_\d+\.\d+\.m4s)"`)
)

// waitForSegments polls a media playlist until it lists n complete segments and returns the
// segments and parts it lists then.
func waitForSegments(t *testing.T, url string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body, _ := fetch(t, url)
		segs := segURIRe.FindAllStringSubmatch(body, -1)
		if len(segs) >= n {
			var uris []string
			for _, m := range append(segs, partURIRe.FindAllStringSubmatch(body, -1)...) {
				uris = append(uris, m[1])
			}
			return uris
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s lists %d segments after 30 s, want %d:\n%s", url, len(segs), n, body)
		}
		// A blocking reload for the next segment: answered when it exists.
		if m := mediaSeqRe.FindStringSubmatch(body); m != nil {
			seq, _ := strconv.Atoi(m[1])
			fetch(t, url+"?_HLS_msn="+strconv.Itoa(seq+len(segs)))
		} else {
			time.Sleep(100 * time.Millisecond) // no playlist yet: nothing to block on
		}
	}
}

// TestLiveRefusesUnalignedLadder: `reel live --loop` refuses a ladder whose GOPs don't align,
// before serving anything, with the line `reel package` refuses it with.
func TestLiveRefusesUnalignedLadder(t *testing.T) {
	files := []string{sample("ladder_720p.mp4"), sample("bad/unaligned_gop.mp4")}
	code, _, pkgErr := runReel(t, append([]string{"package", "-o", filepath.Join(t.TempDir(), "out")}, files...)...)
	if code != exitFailure {
		t.Fatalf("reel package: exit %d, want %d", code, exitFailure)
	}
	problem := strings.TrimPrefix(pkgErr, "reel package: ")
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	dir, addr := t.TempDir(), freeAddr(t)
	go func() {
		var r result
		r.code, r.stdout, r.stderr = runReel(t, "live", "--loop", "u="+strings.Join(files, ","), "--dir", dir, "--listen", addr, "--admin", "")
		done <- r
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("reel live still running after 30 s: the ladder was accepted")
	}
	code, stdout, liveErr := r.code, r.stdout, r.stderr
	if code != exitFailure || stdout != "" {
		t.Fatalf("reel live: exit %d, printed %q; want exit %d before serving", code, stdout, exitFailure)
	}
	assertOneLine(t, "reel live's refusal", liveErr)
	if !strings.HasSuffix(liveErr, problem) || !strings.Contains(problem, "unaligned_gop.mp4") {
		t.Errorf("reel live says %q, reel package %q", liveErr, pkgErr)
	}
}
