package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestS3PackageAndOrigin runs the binary against a real S3 server (a private bucket): `reel
// package -o s3://…` uploads a presentation, `reel origin --dir s3://…` serves it (the bucket
// itself refuses unsigned requests), and the CLI errors are one line naming the bucket.
func TestS3PackageAndOrigin(t *testing.T) {
	t.Parallel()
	s := testkit.StartS3(t)
	s.CreateBucket(t, "media")
	bin := buildReel(t)
	env := append(os.Environ(), s.Env()...)
	reel := func(extraEnv []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}

	code, stdout, stderr := reel(nil, "package", sample("ladder_360p.mp4"), "-o", "s3://media/vod/title", "--manifest-max-age", "30s")
	if code != 0 || !strings.Contains(stdout, "→ s3://media/vod/title") {
		t.Fatalf("package: exit %d\n%s%s", code, stdout, stderr)
	}

	for _, c := range []struct {
		name string
		env  []string
		out  string
		want string
	}{
		{"missing bucket", nil, "s3://nobucket/x", "reel package: s3://nobucket: no such bucket\n"},
		{"wrong secret", []string{"AWS_SECRET_ACCESS_KEY=wrong"}, "s3://media/x", "reel package: s3://media: access denied"},
		{"no bucket name", nil, "s3:///x", "reel package: s3:///x: no bucket name\n"},
	} {
		code, _, stderr := reel(c.env, "package", "--quiet", sample("ladder_360p.mp4"), "-o", c.out)
		if code != exitFailure || !strings.HasPrefix(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q, want %d and %q", c.name, code, stderr, exitFailure, c.want)
		}
		assertOneLine(t, c.name, stderr)
	}

	// The bucket is private: only signed requests get the objects.
	anon, err := http.Get(s.Endpoint + "/media/vod/title/master.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	anon.Body.Close()
	if anon.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned GET from the bucket: %d, want 403", anon.StatusCode)
	}
	// The objects carry the headers reel origin would send, for an edge fronting the bucket.
	for key, want := range map[string][2]string{
		"vod/title/master.m3u8":  {"application/vnd.apple.mpegurl", "public, max-age=30"},
		"vod/title/manifest.mpd": {"application/dash+xml", "public, max-age=30"},
	} {
		r, err := s.Do(http.MethodHead, "/media/"+key, nil)
		if err != nil || r.StatusCode != http.StatusOK || r.Header.Get("Content-Type") != want[0] || r.Header.Get("Cache-Control") != want[1] {
			t.Errorf("signed HEAD %s: %v %v, want %v", key, err, r.Header, want)
		}
	}

	addr := freeAddr(t)
	cmd := exec.Command(bin, "origin", "--dir", "s3://media/vod/title", "--listen", addr, "--manifest-max-age", "30s")
	cmd.Env = env
	runUntilServing(t, "origin", cmd)
	base := "http://" + addr
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(p string) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Get(base + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, master := get("master.m3u8")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=30" ||
		resp.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" || resp.Header.Get("ETag") == "" {
		t.Fatalf("master.m3u8: %d %v", resp.StatusCode, resp.Header)
	}
	// Every playlist the master names, and every segment those name, is served.
	uri := regexp.MustCompile(`URI="([^"]+)"`)
	fetched := 0
	for _, l := range strings.Split(string(master), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		dir := l[:strings.LastIndex(l, "/")+1]
		resp, pl := get(l)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", l, resp.StatusCode)
		}
		var refs []string
		for _, pl := range strings.Split(string(pl), "\n") {
			if m := uri.FindStringSubmatch(pl); m != nil {
				refs = append(refs, m[1])
			} else if pl != "" && !strings.HasPrefix(pl, "#") {
				refs = append(refs, pl)
			}
		}
		for _, r := range refs {
			resp, body := get(dir + r)
			if resp.StatusCode != http.StatusOK || len(body) == 0 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
				t.Fatalf("%s: %d, %d bytes, %v", dir+r, resp.StatusCode, len(body), resp.Header)
			}
			fetched++
		}
	}
	if fetched < 7 {
		t.Errorf("the presentation led to %d segments", fetched)
	}

	code, _, stderr = reel(nil, "origin", "--dir", "s3://nobucket", "--listen", freeAddr(t))
	if code != exitFailure || stderr != "reel origin: origin: s3://nobucket: no such bucket\n" {
		t.Errorf("origin on a missing bucket: exit %d, %q", code, stderr)
	}
}
