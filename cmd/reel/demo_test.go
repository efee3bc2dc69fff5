package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDemo: `reel demo` packages the samples, serves VOD and a live channel through the edge,
// and stops cleanly on Ctrl-C (SIGINT): exit 0, nothing left listening. What it prints at
// start answers at once — every address, and the admin token it generated, so /metrics can
// be scraped while it runs —, its edge answers the health check like any reel edge, and its
// page takes short presentation names.
func TestDemo(t *testing.T) {
	bin := buildReel(t)
	edgeAddr, originAddr, adminAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "demo", "--samples", sample(""), "--dir", t.TempDir(),
		"--listen", edgeAddr, "--origin-listen", originAddr, "--admin", adminAddr)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "REEL_ADMIN_TOKEN=") })
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

	// Every address printed is listening by the time it is printed: connect at once.
	for _, a := range []string{edgeAddr, originAddr, adminAddr} {
		if !strings.Contains(text, "http://"+a) {
			t.Errorf("%s not printed:\n%s", a, text)
		}
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Errorf("printed, yet not listening: %v", err)
			continue
		}
		c.Close()
	}
	m := regexp.MustCompile(`admin token[^:]*: (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Errorf("no admin token printed at start:\n%s", text)
	} else if code, _ := get(t, "http://"+adminAddr+"/metrics", "Bearer "+m[1]); code != 200 {
		t.Errorf("/metrics with the printed token: %d, want 200", code)
	}
	if code, body := get(t, "http://"+edgeAddr+"/_reel/health", ""); code != 200 {
		t.Errorf("the demo edge's /_reel/health: %d %q, want 200 as from reel edge", code, body)
	}
	checkPresentationQuery(t, "http://"+edgeAddr)

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
			code, _ = get(t, u, "")
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
	for _, a := range []string{edgeAddr, originAddr, adminAddr} {
		if resp, err := http.Get("http://" + a + "/"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after the demo stopped", a)
		}
	}
}

// checkPresentationQuery: the page's ?p= takes a presentation's short name, a prefix of one or
// its display name in any case, and sends the page on to the display name; a name matching
// none or several gets a 404 page listing them all, where the page used to play VOD silently.
func checkPresentationQuery(t *testing.T, base string) {
	t.Helper()
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	names := map[string]string{
		"live":                           "Live (LL-HLS, low-latency DASH)",
		"LIVE":                           "Live (LL-HLS, low-latency DASH)",
		"li":                             "Live (LL-HLS, low-latency DASH)",
		"vod":                            "VOD",
		"vod-s":                          "VOD, single file (byte ranges)",
		"vod, SINGLE FILE (byte ranges)": "VOD, single file (byte ranges)",
	}
	for q, want := range names {
		resp, err := noRedirect.Get(base + "/_reel/?" + url.Values{"p": {q}, "f": {"dash"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("p") != want || loc.Query().Get("f") != "dash" {
			t.Errorf("?p=%s: %d → %q, want 302 to p=%q (f kept)", q, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	for _, q := range []string{"nope", "v"} { // none; several (vod, vod-single)
		code, body := get(t, base+"/_reel/?p="+q, "")
		if code != http.StatusNotFound || !strings.Contains(body, `&#34;`+q+`&#34;`) {
			t.Errorf("?p=%s: %d, want 404 naming it:\n%s", q, code, body)
		}
		for _, name := range []string{"VOD", "VOD, single file (byte ranges)", "Live (LL-HLS, low-latency DASH)", "?p=live"} {
			if !strings.Contains(body, name) {
				t.Errorf("?p=%s: the page does not list %q:\n%s", q, name, body)
			}
		}
	}
	if code, _ := get(t, base+"/_reel/?p="+url.QueryEscape("VOD"), ""); code != 200 {
		t.Errorf("?p=VOD (the display name): %d, want the page", code)
	}
}

// get fetches u (with an Authorization header when auth is set) and returns the status and
// body; 0 when the request failed.
func get(t *testing.T, u, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
