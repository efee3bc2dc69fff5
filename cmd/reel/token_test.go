package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestTokenCommand: the real binary's `reel token` mints URLs and tokens that the real `reel
// edge`, configured with the same key, serves — the path form's master and the segment a
// player resolves from it, the query form — and refuses for another path; its usage errors
// are one line with exit 2, a bad key one line with exit 1 that doesn't quote it.
func TestTokenCommand(t *testing.T) {
	bin := buildReel(t)
	var leaked atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "token") || strings.Contains(r.URL.Path, "/tok/") {
			leaked.Add(1)
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "object "+r.URL.Path)
	}))
	defer origin.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "k1.hex")
	key := hex.EncodeToString([]byte("a key of 32 bytes for reel token"))
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeConfig(t, "edge.yaml", "tokens:\n  keys:\n    k1: {key_file: "+keyFile+"}\n  require: true\n")
	_, base := startEdge(t, bin, "--origin", origin.URL, "--config", cfgFile)

	token := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"token"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	fetch := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	out, errOut, code := token("--key-id", "k1", "--key-file", keyFile, "--url", base+"/vod/master.m3u8")
	if code != 0 {
		t.Fatalf("reel token --url: exit %d: %s", code, errOut)
	}
	assertOneLine(t, "reel token --url's output", out)
	master := strings.TrimSpace(out)
	if !strings.HasPrefix(master, base+"/tok/") || !strings.HasSuffix(master, "/vod/master.m3u8") {
		t.Fatalf("reel token --url printed %q, want %s/tok/<token>/vod/master.m3u8", master, base)
	}
	if status, body := fetch(master); status != 200 || body != "object /vod/master.m3u8" {
		t.Errorf("the tokened master: %d %q", status, body)
	}
	seg := strings.TrimSuffix(master, "master.m3u8") + "v0/seg_1.m4s" // as a player resolves a relative URI
	if status, body := fetch(seg); status != 200 || body != "object /vod/v0/seg_1.m4s" {
		t.Errorf("a segment under the tokened master: %d %q", status, body)
	}

	out, errOut, code = token("--key-id", "k1", "--key", key, "--url", base+"/live/a.m3u8", "--form", "query", "--ttl", "5m")
	if code != 0 {
		t.Fatalf("reel token --form query: exit %d: %s", code, errOut)
	}
	if status, body := fetch(strings.TrimSpace(out)); status != 200 || body != "object /live/a.m3u8" {
		t.Errorf("the query form: %d %q", status, body)
	}

	out, _, code = token("--key-id", "k1", "--key-file", keyFile, "--acl", "/vod/*")
	if code != 0 || !strings.Contains(out, "acl=/vod/*~id=k1~hmac=") {
		t.Fatalf("reel token --acl: exit %d, %q", code, out)
	}
	if status, body := fetch(base + "/live/a.m3u8?token=" + strings.TrimSpace(out)); status != 403 || body != "token not valid for this path\n" {
		t.Errorf("a /vod/ token for /live/: %d %q", status, body)
	}
	if status, body := fetch(base + "/vod/x.m4s"); status != 403 || body != "token missing\n" {
		t.Errorf("no token: %d %q", status, body)
	}
	if leaked.Load() != 0 {
		t.Errorf("the origin saw a token %d times", leaked.Load())
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--acl", "/vod/*"}, exitUsage, "give the key as --key-file FILE or --key HEX"},
		{[]string{"--key-file", keyFile}, exitUsage, "give the paths as --acl PATTERN"},
		{[]string{"--key-file", keyFile, "--acl", "/a/*/b"}, exitUsage, "'*' only at its end"},
		{[]string{"--key-file", keyFile, "--acl", "/a/*", "--start", "tomorrow"}, exitUsage, "--start \"tomorrow\""},
		{[]string{"--key-file", keyFile, "--acl", "/a/*", "--ip", "nowhere"}, exitUsage, "--ip \"nowhere\""},
		{[]string{"--key-file", keyFile, "--url", base + "/a", "--form", "cookie"}, exitUsage, "--form \"cookie\""},
		{[]string{"--key-file", keyFile, "--acl", "/a/*", "--ttl", "0s"}, exitUsage, "--ttl must be positive"},
		{[]string{"--key", "zz" + key, "--acl", "/a/*"}, exitFailure, "--key: the key is not hex"},
		{[]string{"--key", "abcd", "--acl", "/a/*"}, exitFailure, "the key must be at least 16 bytes"},
		{[]string{"--key-file", filepath.Join(dir, "none.hex"), "--acl", "/a/*"}, exitFailure, "none.hex"},
	} {
		out, errOut, code := token(tc.args...)
		if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, key) {
			t.Errorf("reel token %q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
		assertOneLine(t, "reel token's error", errOut)
	}
	if out, _, code := token("-h"); code != 0 || !strings.Contains(out, "Examples:") {
		t.Errorf("reel token -h: exit %d, %q", code, out)
	}
}
