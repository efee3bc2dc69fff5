package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo: `reel demo` packages the samples, serves VOD and a live channel through the edge,
// and stops cleanly on Ctrl-C (SIGINT): exit 0, nothing left listening.
func TestDemo(t *testing.T) {
	bin := buildReel(t)
	edgeAddr, originAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "demo", "--samples", sample(""), "--dir", t.TempDir(),
		"--listen", edgeAddr, "--origin-listen", originAddr, "--admin", "")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := bufio.NewReader(stdout)
	var printed strings.Builder
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		line, err := out.ReadString('\n')
		printed.WriteString(line)
		if err != nil || strings.Contains(line, "Ctrl-C stops") {
			break
		}
	}
	go io.Copy(io.Discard, out)
	text := printed.String()
	urls := regexp.MustCompile(`http://\S+\.(m3u8|mpd)`).FindAllString(text, -1)
	if len(urls) != 6 {
		t.Fatalf("want 6 manifest URLs printed, got %d:\n%s", len(urls), text)
	}
	for _, u := range urls {
		if !strings.Contains(u, edgeAddr) {
			t.Errorf("%s is not on the edge", u)
		}
		var code int
		for i := 0; i < 50; i++ { // the live channel's first segment takes a couple of seconds
			resp, err := http.Get(u)
			if err == nil {
				code = resp.StatusCode
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if code == 200 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if code != 200 {
			t.Errorf("%s: %d", u, code)
		}
	}
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("reel demo after Ctrl-C: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("reel demo did not stop within 15s of Ctrl-C")
	}
	for _, a := range []string{edgeAddr, originAddr} {
		if resp, err := http.Get("http://" + a + "/"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after the demo stopped", a)
		}
	}
}
