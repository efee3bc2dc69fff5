package testkit

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestStartS3 checks the S3 server the tests use: it stores and returns an object for signed
// requests and refuses unsigned ones and a wrong secret, like a private bucket.
func TestStartS3(t *testing.T) {
	s := StartS3(t)
	s.CreateBucket(t, "media")
	body := bytes.Repeat([]byte("reel"), 10000)
	put, err := s.Do(http.MethodPut, "/media/a/b.m4s", body)
	if err != nil || put.StatusCode != http.StatusOK {
		t.Fatalf("signed PUT: %v %v %s", err, put, put.Body)
	}
	get, err := s.Do(http.MethodGet, "/media/a/b.m4s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if get.StatusCode != http.StatusOK || !bytes.Equal(get.Body, body) {
		t.Fatalf("signed GET: %s, %d bytes, want 200 and the %d bytes put", get.Status, len(get.Body), len(body))
	}

	s.PutObject(t, "media", "c.m3u8", []byte("#EXTM3U\n"), http.Header{"Content-Type": {"application/vnd.apple.mpegurl"}, "Cache-Control": {"max-age=5"}})
	head, err := s.Do(http.MethodHead, "/media/c.m3u8", nil)
	if err != nil || head.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" || head.Header.Get("Cache-Control") != "max-age=5" {
		t.Errorf("HEAD of an object put with Content-Type and Cache-Control: %v %v", err, head.Header)
	}

	req, _ := http.NewRequest(http.MethodGet, s.Endpoint+"/media/a/b.m4s", nil)
	anon, err := doRead(req)
	if err != nil {
		t.Fatal(err)
	}
	if anon.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET: %s, want 403", anon.Status)
	}
	req, _ = http.NewRequest(http.MethodGet, s.Endpoint+"/media/a/b.m4s", nil)
	SignV4(req, nil, s.AccessKey, "not-the-secret", s.Region, "s3", time.Now())
	bad, err := doRead(req)
	if err != nil {
		t.Fatal(err)
	}
	if bad.StatusCode != http.StatusForbidden {
		t.Errorf("GET signed with a wrong secret: %s, want 403", bad.Status)
	}

	s.Stop()
	if _, err := s.Do(http.MethodGet, "/media/a/b.m4s", nil); err == nil {
		t.Error("the server still answers after Stop")
	}
}

// TestWeedBinary builds (or finds) the S3 server's binary and runs it: what .ci/run starts in
// the background so that the build overlaps the other tests.
func TestWeedBinary(t *testing.T) {
	bin, err := WeedBinary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "version") {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
}
