package packager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/reelvideo/reel/internal/testkit"
)

// The S3 tests run against a real S3-compatible server (SeaweedFS, testkit.StartS3) through
// the standard AWS environment, as `reel package` and `reel origin` find it: t.Setenv, so
// not in parallel.

func startS3Bucket(t *testing.T, bucket string) *testkit.S3Server {
	t.Helper()
	s := testkit.StartS3(t)
	s.SetEnv(t)
	s.CreateBucket(t, bucket)
	return s
}

// listObjects returns every object under prefix with its bytes.
func listObjects(t *testing.T, bucket, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	client, err := newS3Client(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for pages := 0; p.HasMorePages(); pages++ {
		if pages > 100 {
			t.Fatal("more than 100 pages of objects")
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list s3://%s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			get, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: o.Key})
			if err != nil {
				t.Fatalf("get %s: %v", *o.Key, err)
			}
			b, err := io.ReadAll(get.Body)
			get.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[*o.Key] = b
		}
	}
	return out
}

func startOrigin(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	o, err := NewOrigin(dir, OriginOptions{})
	if err != nil {
		t.Fatalf("NewOrigin(%s): %v", dir, err)
	}
	srv := httptest.NewServer(o)
	t.Cleanup(func() { srv.Close(); o.Close() })
	return srv
}

type fetched struct {
	status int
	header http.Header
	body   []byte
}

func fetch(t *testing.T, method, url string, hdr map[string]string) fetched {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return fetched{resp.StatusCode, resp.Header, b}
}

var hlsURIAttr = regexp.MustCompile(`URI="([^"]*)"`)

// hlsRefs lists the relative URIs a playlist names (URI lines and URI attributes), resolved
// against the playlist's own path.
func hlsRefs(playlistPath string, body []byte) []string {
	var refs []string
	dir := path.Dir(playlistPath)
	for _, l := range strings.Split(string(body), "\n") {
		l = strings.TrimSpace(l)
		var uris []string
		if strings.HasPrefix(l, "#") {
			for _, m := range hlsURIAttr.FindAllStringSubmatch(l, -1) {
				uris = append(uris, m[1])
			}
		} else if l != "" {
			uris = append(uris, l)
		}
		for _, u := range uris {
			if isRelativeURI(u) {
				refs = append(refs, path.Join(dir, u))
			}
		}
	}
	return refs
}

// playHLS fetches the master playlist at base+"/"+master, every playlist it names and every
// segment and init section those name, and returns them by path; any status but 200 fails.
func playHLS(t *testing.T, base, master string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	queue := []string{master}
	for len(queue) > 0 {
		if len(got) > 10000 {
			t.Fatal("more than 10,000 files")
		}
		p := queue[0]
		queue = queue[1:]
		if _, seen := got[p]; seen {
			continue
		}
		r := fetch(t, http.MethodGet, base+"/"+p, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, r.status, r.body)
		}
		got[p] = r.body
		if strings.HasSuffix(p, ".m3u8") {
			queue = append(queue, hlsRefs(p, r.body)...)
		}
	}
	return got
}

// TestS3OriginMatchesDisk uploads a packaged folder and serves it from the bucket and from
// disk: every file answers with the same status, headers (ETag and Last-Modified included:
// the content ETag and the file's time travel as object metadata) and bytes, whole, by range,
// by HEAD and conditionally. The entry manifests at the prefix point into the version folder
// and play.
func TestS3OriginMatchesDisk(t *testing.T) {
	s := startS3Bucket(t, "media")
	_ = s
	dir, _ := packageTo(t, Options{Inputs: ladder[1:], Subtitles: []Subtitle{{File: samplePath("subs/ladder.fr.vtt")}}})
	ctx := context.Background()
	loc := S3Location{Bucket: "media", Prefix: "vod/title"}
	version, err := S3Upload(ctx, dir, loc, 0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(version, versionPrefix) {
		t.Fatalf("version %q", version)
	}
	disk := startOrigin(t, dir)
	bucket := startOrigin(t, "s3://media/vod/title/"+version)

	files, err := stageList(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d files packaged", len(files))
	}
	compared := 0
	for _, f := range files {
		etag := ""
		for _, c := range []struct {
			method string
			hdr    map[string]string
		}{
			{http.MethodGet, nil},
			{http.MethodHead, nil},
			{http.MethodGet, map[string]string{"Range": "bytes=10-109"}},
			{http.MethodGet, map[string]string{"Range": "bytes=-7"}},
			{http.MethodGet, map[string]string{"Range": "bytes=0-0,20-29"}},
			{http.MethodGet, map[string]string{"Range": fmt.Sprintf("bytes=%d-", f.size)}},
			{http.MethodGet, map[string]string{"If-None-Match": "ETAG"}},
			{http.MethodGet, map[string]string{"If-Range": "ETAG", "Range": "bytes=5-9"}},
			{http.MethodGet, map[string]string{"If-Range": `"other"`, "Range": "bytes=5-9"}},
		} {
			hdr := map[string]string{}
			for k, v := range c.hdr {
				hdr[k] = strings.ReplaceAll(v, "ETAG", etag)
			}
			d := fetch(t, c.method, disk.URL+"/"+f.name, hdr)
			b := fetch(t, c.method, bucket.URL+"/"+f.name, hdr)
			what := fmt.Sprintf("%s %s %v", c.method, f.name, hdr)
			if d.status != b.status {
				t.Errorf("%s: disk %d, bucket %d", what, d.status, b.status)
			}
			if ct := d.header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
				// Multipart boundaries are random.
				bct := b.header.Get("Content-Type")
				d.body, b.body = stripBoundary(d.body, ct), stripBoundary(b.body, bct)
				d.header.Set("Content-Type", strings.Split(ct, ";")[0])
				b.header.Set("Content-Type", strings.Split(bct, ";")[0])
			}
			for _, h := range []string{"Content-Type", "Cache-Control", "ETag", "Last-Modified", "Content-Length", "Content-Range", "Accept-Ranges", "Access-Control-Allow-Origin"} {
				if d.header.Get(h) != b.header.Get(h) {
					t.Errorf("%s: %s: disk %q, bucket %q", what, h, d.header.Get(h), b.header.Get(h))
				}
			}
			if !bytes.Equal(d.body, b.body) {
				t.Errorf("%s: bodies differ (disk %d bytes, bucket %d)", what, len(d.body), len(b.body))
			}
			if c.method == http.MethodGet && c.hdr == nil {
				etag = d.header.Get("ETag")
				if d.status != http.StatusOK || etag == "" || d.header.Get("Last-Modified") == "" {
					t.Fatalf("%s: %d, ETag %q, Last-Modified %q", what, d.status, etag, d.header.Get("Last-Modified"))
				}
			}
			compared++
		}
	}
	t.Logf("%d files, %d requests compared", len(files), compared)

	for _, p := range []string{"nope.m4s", "video_360p/seg_99999.m4s", "video_360p", "x.txt"} {
		d := fetch(t, http.MethodGet, disk.URL+"/"+p, nil)
		b := fetch(t, http.MethodGet, bucket.URL+"/"+p, nil)
		if d.status != http.StatusNotFound || b.status != http.StatusNotFound {
			t.Errorf("GET %s: disk %d, bucket %d, want 404", p, d.status, b.status)
		}
	}

	// The prefix's entry manifests: the same presentation, one folder down.
	entry := startOrigin(t, "s3://media/vod/title")
	got := playHLS(t, entry.URL, "master.m3u8")
	for p, body := range got {
		if p == "master.m3u8" {
			continue
		}
		rel, ok := strings.CutPrefix(p, version+"/")
		if !ok {
			t.Errorf("the entry master names %s, outside %s/", p, version)
			continue
		}
		want, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || !bytes.Equal(body, want) {
			t.Errorf("%s differs from the packaged %s (%v)", p, rel, err)
		}
	}
	if len(got) < len(files)/2 {
		t.Errorf("the entry master led to %d files of %d", len(got), len(files))
	}
	mpd := fetch(t, http.MethodGet, entry.URL+"/manifest.mpd", nil)
	if mpd.status != http.StatusOK || !strings.Contains(string(mpd.body), "<BaseURL>"+version+"/</BaseURL>") {
		t.Errorf("entry MPD: %d, no BaseURL %s/:\n%.600s", mpd.status, version, mpd.body)
	}
	if mpd.header.Get("Cache-Control") != "public, max-age=60" || mpd.header.Get("Content-Type") != "application/dash+xml" {
		t.Errorf("entry MPD headers: %v", mpd.header)
	}
}

// stripBoundary removes a multipart body's boundary strings.
func stripBoundary(body []byte, ctype string) []byte {
	_, b, ok := strings.Cut(ctype, "boundary=")
	if !ok {
		return body
	}
	return bytes.ReplaceAll(body, []byte(b), nil)
}

// TestS3FailedUploadKeepsPrevious packages version 1 to the bucket, then version 2 (other
// segment durations: other bytes under the same file names) with one object of its upload
// failing part way, at each stage. Version 1's manifests are still the prefix's, and every
// object they lead to is still there with version 1's bytes; then a whole upload of version 2
// replaces it.
func TestS3FailedUploadKeepsPrevious(t *testing.T) {
	startS3Bucket(t, "media")
	ctx := context.Background()
	out := "s3://media/title"
	if _, err := Package(ctx, Options{Inputs: ladder[1:], Output: out, SegmentDuration: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	v1 := listObjects(t, "media", "title/")
	origin := startOrigin(t, out)
	play1 := playHLS(t, origin.URL, "master.m3u8")
	if len(play1) < 10 {
		t.Fatalf("version 1 plays %d files", len(play1))
	}

	for _, c := range []struct {
		stage string
		fail  func(key string, n int64) bool
	}{
		// Segments from the (s3Concurrency+2)th PUT on: more than s3Concurrency PUTs
		// started, so some had finished. (It named one segment file before, which the
		// uploads, in whatever order their workers took them, sometimes passed before that
		// count: then nothing failed.)
		{"segments", func(key string, n int64) bool {
			return strings.HasSuffix(key, ".m4s") && n >= s3Concurrency+2
		}},
		{"version manifests", func(key string, n int64) bool { return strings.HasSuffix(key, "/index.m3u8") }},
		{"entry master", func(key string, n int64) bool { return key == "title/master.m3u8" }},
	} {
		var puts atomic.Int64
		injected := errors.New("injected failure")
		s3PutHook = func(key string) error {
			if c.fail(key, puts.Add(1)) {
				return injected
			}
			return nil
		}
		_, err := Package(ctx, Options{Inputs: ladder[1:], Output: out, SegmentDuration: 4 * time.Second})
		s3PutHook = nil
		var oe *OutputError
		if !errors.As(err, &oe) || !errors.Is(err, injected) || !strings.HasPrefix(oe.Dir, "s3://media/title/") {
			t.Fatalf("%s: Package: %v, want an OutputError naming the object and the injected failure", c.stage, err)
		}
		t.Logf("%s: %v (after %d PUTs)", c.stage, err, puts.Load())

		now := listObjects(t, "media", "title/")
		for k, b := range v1 {
			if !bytes.Equal(now[k], b) {
				t.Errorf("%s: %s changed", c.stage, k)
			}
		}
		if len(now) <= len(v1) {
			t.Errorf("%s: no object of version 2 was uploaded (%d objects): the failure was not part way", c.stage, len(now))
		}
		play := playHLS(t, origin.URL, "master.m3u8")
		if len(play) != len(play1) {
			t.Errorf("%s: version 1 plays %d files, was %d", c.stage, len(play), len(play1))
		}
		for p, b := range play1 {
			if !bytes.Equal(play[p], b) {
				t.Errorf("%s: %s differs from version 1's", c.stage, p)
			}
		}
	}

	if _, err := Package(ctx, Options{Inputs: ladder[1:], Output: out, SegmentDuration: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	play2 := playHLS(t, origin.URL, "master.m3u8")
	if bytes.Equal(play2["master.m3u8"], play1["master.m3u8"]) {
		t.Error("version 2's upload left version 1's master in place")
	}
	dirs := map[string]bool{}
	for p := range play2 {
		if d, _, ok := strings.Cut(p, "/"); ok {
			dirs[d] = true
		}
	}
	if len(dirs) != 1 {
		t.Errorf("version 2's master leads into %d version folders: %v", len(dirs), slices.Collect(mapsKeys(dirs)))
	}
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestS3Errors: a missing bucket, a missing object and a stopped server, as Package and the
// origin report them.
func TestS3Errors(t *testing.T) {
	s := startS3Bucket(t, "media")
	ctx := context.Background()
	_, err := Package(ctx, Options{Inputs: ladder[2:], Output: "s3://nobucket/x"})
	if err == nil || err.Error() != "s3://nobucket: no such bucket" {
		t.Errorf("Package to a missing bucket: %v", err)
	}
	if _, err := NewOrigin("s3://nobucket/x", OriginOptions{}); err == nil || !strings.Contains(err.Error(), "s3://nobucket: no such bucket") {
		t.Errorf("NewOrigin on a missing bucket: %v", err)
	}
	for _, bad := range []string{"s3://", "s3:///x", "s3://b/../x", "s3://b/.hidden/x"} {
		if _, err := Package(ctx, Options{Inputs: ladder[2:], Output: bad}); err == nil {
			t.Errorf("Package to %s: no error", bad)
		}
	}
	if _, err := Package(ctx, Options{Inputs: ladder[2:], Output: "s3://media/t"}); err != nil {
		t.Fatal(err)
	}
	o, err := NewOrigin("s3://media/t", OriginOptions{S3: &S3Options{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o)
	defer srv.Close()
	if r := fetch(t, http.MethodGet, srv.URL+"/master.m3u8", nil); r.status != http.StatusOK {
		t.Fatalf("master: %d", r.status)
	}
	s.Stop()
	r := fetch(t, http.MethodGet, srv.URL+"/master.m3u8", nil)
	if r.status != http.StatusBadGateway || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("with the server stopped: %d %q, want 502 no-store", r.status, r.header.Get("Cache-Control"))
	}
	o.Close()
	if r := fetch(t, http.MethodGet, srv.URL+"/master.m3u8", nil); r.status != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d, want 503", r.status)
	}
}
