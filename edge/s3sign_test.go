package edge

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/reelvideo/reel/internal/testkit"
)

// The edge in front of a private bucket of a real S3 server (SeaweedFS, testkit.StartS3).

// s3Edge starts an edge whose only origin is the bucket path base of s, signing with the
// credentials the environment holds now (set by the caller), and logging into a buffer.
func s3Edge(t *testing.T, urls []string, region string) (*edgeServer, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := DefaultConfig()
	cfg.Memory = 64 << 20
	o := Origin{Host: "*", S3: &S3Origin{Region: region}}
	if len(urls) == 1 {
		o.URL = urls[0]
	} else {
		for _, u := range urls {
			o.URLs = append(o.URLs, PoolMember{URL: u})
		}
	}
	cfg.Origins = []Origin{o}
	e, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := serveEdge(t, e, cfg)
	t.Cleanup(srv.Close)
	return srv, logs
}

// sdkPut uploads with the AWS SDK's own S3 client: keys whose characters S3 escapes in its own
// way (the test's signer escapes paths as other services do).
func sdkPut(t *testing.T, s *testkit.S3Server, bucket, key string, body []byte, contentType string) {
	t.Helper()
	c := s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), ContentType: aws.String(contentType),
	})
	if err != nil {
		t.Fatalf("SDK put %s: %v", key, err)
	}
}

// TestS3Origin: a private bucket (unsigned requests refused) served through the edge: bodies,
// fields, ranges and revalidation as from any origin; missing keys 404; the client's own
// credentials, X-Amz-* fields and S3 query parameters never reach the bucket; nothing but
// GET and HEAD is sent.
func TestS3Origin(t *testing.T) {
	s := testkit.StartS3(t)
	s.SetEnv(t)
	s.CreateBucket(t, "media")
	seg := bytes.Repeat([]byte("segment-bytes-"), 30000) // 420 kB
	s.Put(t, "/media/vod/a.m4s", seg, "Content-Type", "video/iso.segment", "Cache-Control", "max-age=3600")
	s.Put(t, "/media/vod/big.m4s", seg, "Content-Type", "video/iso.segment", "Cache-Control", "max-age=3600")
	s.Put(t, "/media/vod/rev.m3u8", []byte("#EXTM3U\n"), "Content-Type", "application/vnd.apple.mpegurl", "Cache-Control", "max-age=0")
	for _, k := range []string{"auth.m4s", "query.m4s", "head.m4s"} {
		s.Put(t, "/media/vod/"+k, seg, "Content-Type", "video/iso.segment")
	}
	sdkPut(t, s, "media", "vod/with space+plus é.m4s", []byte("odd key"), "video/iso.segment")

	direct, err := http.Get(s.Endpoint + "/media/vod/a.m4s")
	if err != nil {
		t.Fatal(err)
	}
	direct.Body.Close()
	if direct.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned GET straight to the bucket: %s, want 403 (a private bucket)", direct.Status)
	}
	signed, err := s.Do(http.MethodGet, "/media/vod/a.m4s", nil)
	if err != nil || signed.StatusCode != http.StatusOK {
		t.Fatalf("signed GET straight to the bucket: %v %v", err, signed)
	}

	srv, logs := s3Edge(t, []string{s.Endpoint + "/media/vod"}, s.Region)

	t.Run("get", func(t *testing.T) {
		for i, want := range []string{"fwd=uri-miss", "hit"} {
			r := get(t, srv.URL+"/a.m4s")
			if r.status != http.StatusOK || r.body != string(seg) {
				t.Fatalf("GET %d: %d, %d bytes, want 200 and %d", i, r.status, len(r.body), len(seg))
			}
			if ct := r.header.Get("Content-Type"); ct != "video/iso.segment" {
				t.Errorf("Content-Type %q", ct)
			}
			if et := r.header.Get("ETag"); et == "" || et != signed.Header.Get("ETag") {
				t.Errorf("ETag %q, the bucket's is %q", et, signed.Header.Get("ETag"))
			}
			if !strings.Contains(r.cacheStatus(), want) {
				t.Errorf("GET %d: Cache-Status %q, want %s", i, r.cacheStatus(), want)
			}
			for k := range r.header {
				if strings.HasPrefix(k, "X-Amz-") {
					t.Errorf("the bucket's %s reached the client", k)
				}
			}
		}
	})

	t.Run("head", func(t *testing.T) {
		r := do(t, http.MethodHead, srv.URL+"/head.m4s")
		if r.status != http.StatusOK || r.header.Get("Content-Length") != "420000" || r.body != "" {
			t.Fatalf("HEAD: %d, Content-Length %q, body %d bytes", r.status, r.header.Get("Content-Length"), len(r.body))
		}
	})

	t.Run("range", func(t *testing.T) {
		for _, rg := range []struct {
			spec       string
			start, end int
		}{{"bytes=1000-1999", 1000, 1999}, {"bytes=400000-", 400000, len(seg) - 1}, {"bytes=0-0", 0, 0}} {
			r := get(t, srv.URL+"/big.m4s", "Range", rg.spec)
			if r.status != http.StatusPartialContent || r.body != string(seg[rg.start:rg.end+1]) {
				t.Fatalf("%s: %d, %d bytes, want 206 and bytes %d-%d", rg.spec, r.status, len(r.body), rg.start, rg.end)
			}
		}
		if r := get(t, srv.URL+"/big.m4s", "Range", "bytes=500000-"); r.status != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("a range past the end: %d, want 416", r.status)
		}
	})

	t.Run("revalidation", func(t *testing.T) {
		first := get(t, srv.URL+"/rev.m3u8")
		second := get(t, srv.URL+"/rev.m3u8")
		if first.status != 200 || second.status != 200 || second.body != "#EXTM3U\n" {
			t.Fatalf("GETs: %d %d %q", first.status, second.status, second.body)
		}
		// A 304 comes back only for a request whose If-None-Match the bucket accepted as signed.
		if cs := second.cacheStatus(); !strings.Contains(cs, "fwd=stale") || !strings.Contains(cs, "fwd-status=304") {
			t.Fatalf("revalidation: Cache-Status %q, want fwd=stale and fwd-status=304", cs)
		}
	})

	t.Run("missing", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			r := do(t, m, srv.URL+"/no/such/key.m4s")
			if r.status != http.StatusNotFound || strings.Contains(r.body, "<") {
				t.Fatalf("%s of a missing key: %d %q, want 404 without the bucket's XML", m, r.status, r.body)
			}
		}
	})

	t.Run("escaped key", func(t *testing.T) {
		r := get(t, srv.URL+"/with%20space+plus%20%C3%A9.m4s")
		if r.status != http.StatusOK || r.body != "odd key" {
			t.Fatalf("key with a space, '+' and é: %d %q", r.status, r.body)
		}
	})

	t.Run("client credentials not forwarded", func(t *testing.T) {
		// Forwarded, any of these would make the bucket refuse the request (or judge it
		// by the client's identity).
		r := get(t, srv.URL+"/auth.m4s",
			"Authorization", "AWS4-HMAC-SHA256 Credential=AKIAEVIL/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
			"X-Amz-Date", "19990101T000000Z",
			"X-Amz-Security-Token", "stolen",
			"X-Amz-Content-Sha256", "not-a-hash")
		if r.status != http.StatusOK || r.body != string(seg) {
			t.Fatalf("GET with the client's own Authorization and X-Amz-*: %d %.200q", r.status, r.body)
		}
	})

	t.Run("query not forwarded", func(t *testing.T) {
		r := get(t, srv.URL+"/query.m4s?versionId=bogus&response-content-type=text/html&X-Amz-Signature=00&X-Amz-Credential=x")
		if r.status != http.StatusOK || r.body != string(seg) {
			t.Fatalf("GET with S3 query parameters: %d %.200q", r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "video/iso.segment" {
			t.Fatalf("response-content-type reached the bucket: Content-Type %q", ct)
		}
	})

	t.Run("read only", func(t *testing.T) {
		for _, m := range []string{http.MethodPut, http.MethodPost, http.MethodDelete} {
			req, _ := http.NewRequest(m, srv.URL+"/a.m4s", strings.NewReader("overwritten"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s: %s, Allow %q, want 405 and GET, HEAD", m, resp.Status, resp.Header.Get("Allow"))
			}
		}
		after, err := s.Do(http.MethodGet, "/media/vod/a.m4s", nil)
		if err != nil || after.StatusCode != http.StatusOK || !bytes.Equal(after.Body, seg) {
			t.Fatalf("the object after PUT, POST and DELETE through the edge: %v %v", err, after)
		}
	})

	t.Run("pool", func(t *testing.T) {
		dead := deadURL(t)
		pool, _ := s3Edge(t, []string{dead + "/media/vod", s.Endpoint + "/media/vod"}, s.Region)
		for i := range 8 {
			r := get(t, pool.URL+"/auth.m4s?n="+string(rune('a'+i)))
			if r.status != http.StatusOK || r.body != string(seg) {
				t.Fatalf("request %d through a pool with a dead member: %d %.100q", i, r.status, r.body)
			}
			if !strings.Contains(r.cacheStatus(), "fwd=uri-miss") {
				t.Fatalf("request %d: Cache-Status %q, want a miss (a request to a member)", i, r.cacheStatus())
			}
		}
	})

	if l := logs.String(); strings.Contains(l, "level=ERROR") {
		t.Errorf("errors logged:\n%s", l)
	}
}

// deadURL is an http URL on a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestS3OriginWrongCredentials: a bucket refusing the edge's credentials is the edge's
// trouble: 502 with the reason, logged, never the bucket's XML.
func TestS3OriginWrongCredentials(t *testing.T) {
	s := testkit.StartS3(t)
	s.SetEnv(t)
	s.CreateBucket(t, "media")
	s.Put(t, "/media/a.m4s", []byte("segment"), "Content-Type", "video/iso.segment")
	for _, c := range []struct{ name, key, secret string }{
		{"wrong secret", s.AccessKey, "not-the-secret-0123456789"},
		{"unknown key", "AKIANOTKNOWNHERE", s.SecretKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", c.key)
			t.Setenv("AWS_SECRET_ACCESS_KEY", c.secret)
			srv, logs := s3Edge(t, []string{s.Endpoint + "/media"}, s.Region)
			for range 2 {
				r := get(t, srv.URL+"/a.m4s")
				if r.status != http.StatusBadGateway || !strings.Contains(r.body, "S3 origin") || strings.Contains(r.body, "<") {
					t.Fatalf("GET with %s: %d %q, want 502 with the reason", c.name, r.status, r.body)
				}
			}
			l := logs.String()
			if !strings.Contains(l, "S3 origin refused the edge's request") || strings.Count(l, "refused the edge's request") != 1 {
				t.Fatalf("want one log line naming the refusal, got:\n%s", l)
			}
			t.Logf("%s: %s", c.name, strings.TrimSpace(l))
		})
	}
}

// TestS3OriginConfig: settings an S3 origin can't honour are refused at start, naming them.
func TestS3OriginConfig(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Origin)
		want   string
	}{
		{"host header", func(o *Origin) { o.HostHeader = "cdn.example.com" }, "host_header"},
		{"health check", func(o *Origin) {
			o.URL, o.URLs = "", []PoolMember{{URL: "http://127.0.0.1:1/b"}, {URL: "http://127.0.0.2:1/b"}}
			o.HealthCheck = &HealthCheck{Path: "/health"}
		}, "health_check"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			o := Origin{Host: "*", URL: "http://127.0.0.1:1/bucket", S3: &S3Origin{Region: "eu-west-1"}}
			c.change(&o)
			cfg.Origins = []Origin{o}
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate: %v, want an error naming %s", err, c.want)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		for _, kv := range []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
			"AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="} {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		cfg := DefaultConfig()
		cfg.Origins = []Origin{{Host: "*", URL: "http://127.0.0.1:1/bucket", S3: &S3Origin{Region: "eu-west-1"}}}
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), "credentials") {
			t.Fatalf("New without credentials: %v, want an error about credentials", err)
		}
	})
}

// TestS3Verdict: what the edge answers for each S3 error (the codes the real server in the
// tests can't be made to send, AWS's answers for a missing key without s3:ListBucket or a
// wrong region among them).
func TestS3Verdict(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   int
	}{
		{404, "<Error><Code>NoSuchKey</Code><Key>a</Key></Error>", 404},
		{403, "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>", 404},
		{403, "<Error><Code>SignatureDoesNotMatch</Code></Error>", 502},
		{400, "<Error><Code>AuthorizationHeaderMalformed</Code></Error>", 502},
		{400, "<Error><Code>ExpiredToken</Code></Error>", 502},
		{301, "<Error><Code>PermanentRedirect</Code></Error>", 502},
		{404, "<Error><Code>NoSuchBucket</Code></Error>", 502},
		{503, "<Error><Code>SlowDown</Code></Error>", 503},
		{500, "", 500},
		{412, "<Error><Code>PreconditionFailed</Code></Error>", 412},
		{416, "<Error><Code>InvalidRange</Code></Error>", 416},
		{403, "not xml", 502},
	} {
		if got, _ := s3Verdict(c.status, s3ErrorCode([]byte(c.body))); got != c.want {
			t.Errorf("S3 %d %q: edge answers %d, want %d", c.status, c.body, got, c.want)
		}
	}
}

// TestS3Path: paths are escaped once, as S3's canonical URI: everything but unreserved
// characters and '/'.
func TestS3Path(t *testing.T) {
	for in, want := range map[string]string{
		"/b/vod/a.m4s":         "/b/vod/a.m4s",
		"/b/with space+plus é": "/b/with%20space%2Bplus%20%C3%A9",
		"/b/a=1&b;c:d@e,f$g~h": "/b/a%3D1%26b%3Bc%3Ad%40e%2Cf%24g~h",
	} {
		if got := s3Path(in); got != want {
			t.Errorf("s3Path(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestS3Request: what of a client's request the signed one carries (the real server in the
// tests ignores most fields a client could add, so their absence is checked here): the
// allowed fields, the edge's identity, no query, the URL's host.
func TestS3Request(t *testing.T) {
	s := &s3Signer{region: "eu-west-1", creds: credentials.NewStaticCredentialsProvider("AKIAEDGE", "secret", ""),
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })}
	r, _ := http.NewRequest(http.MethodGet, "http://bucket.s3.example:9000/vod/a%20b.m4s?versionId=1&X-Amz-Signature=00", nil)
	r.Host = "viewer.example"
	for k, v := range map[string]string{
		"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAEVIL/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
		"X-Amz-Date":    "19990101T000000Z", "X-Amz-Security-Token": "stolen", "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256", "X-Amz-Expected-Bucket-Owner": "1",
		"Cookie": "session=1", "X-Forwarded-For": "192.0.2.1", "Via": "1.1 reel", "Accept-Encoding": "gzip",
		"Range": "bytes=0-99", "If-None-Match": `"e1"`, "If-Modified-Since": "Mon, 07 Dec 2026 10:00:00 GMT",
	} {
		r.Header.Set(k, v)
	}
	out, err := s.request(r)
	if err != nil {
		t.Fatal(err)
	}
	if out.Host != "bucket.s3.example:9000" || out.URL.RawQuery != "" || out.URL.EscapedPath() != "/vod/a%20b.m4s" {
		t.Errorf("sent to host %q, query %q, path %q", out.Host, out.URL.RawQuery, out.URL.EscapedPath())
	}
	want := map[string]bool{"Range": true, "If-None-Match": true, "If-Modified-Since": true, "User-Agent": true,
		"Authorization": true, "X-Amz-Date": true, "X-Amz-Content-Sha256": true}
	for k := range out.Header {
		if !want[k] {
			t.Errorf("%s sent to the bucket", k)
		}
	}
	if a := out.Header.Get("Authorization"); !strings.Contains(a, "Credential=AKIAEDGE/") ||
		!strings.Contains(a, "/eu-west-1/s3/aws4_request") || !strings.Contains(a, "if-none-match") || !strings.Contains(a, "range") {
		t.Errorf("Authorization %q: want the edge's key, its region, and Range and If-None-Match signed", a)
	}
	r.Header.Set("If-Range", `"e0"`)
	withIfRange, err := s.request(r)
	if err != nil {
		t.Fatal(err)
	}
	if rg, ir := withIfRange.Header.Get("Range"), withIfRange.Header.Get("If-Range"); rg != "" || ir != "" {
		t.Errorf("Range %q and If-Range %q sent: S3 has no If-Range, the whole object must be asked for", rg, ir)
	}
	if d := out.Header.Get("X-Amz-Date"); d == "19990101T000000Z" || out.Header.Get("X-Amz-Content-Sha256") != s3EmptyHash {
		t.Errorf("X-Amz-Date %q, X-Amz-Content-Sha256 %q: the client's", d, out.Header.Get("X-Amz-Content-Sha256"))
	}
}

// TestS3SampleConfig: the S3 origin in samples/edge.yaml (commented out: it needs
// credentials) reads as it says once uncommented, and a misspelt key under s3 is refused.
func TestS3SampleConfig(t *testing.T) {
	b, err := os.ReadFile("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "  # - name: media"):
			block = append(block, "origins:")
		case len(block) == 0:
			continue
		case !strings.HasPrefix(l, "  #   "):
			goto done
		}
		block = append(block, "  "+strings.TrimPrefix(l, "  # "))
	}
done:
	if len(block) < 4 {
		t.Fatalf("no S3 origin example (\"  # - name: media\") in samples/edge.yaml")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	os.WriteFile(file, []byte(strings.Join(block, "\n")+"\n"), 0o600)
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(block, "\n"))
	}
	o := cfg.Origins[0]
	if o.S3 == nil || o.S3.Region != "eu-west-1" || o.S3.Profile != "media-reader" || !strings.Contains(o.URL, "/my-bucket/vod") {
		t.Fatalf("sample S3 origin read as %+v (s3 %+v)", o, o.S3)
	}
	// The README's example file.
	if cfg, err := LoadConfig("../samples/edge-s3.yaml"); err != nil || cfg.Origins[0].S3 == nil || cfg.Origins[0].S3.Region != "eu-west-1" {
		t.Fatalf("samples/edge-s3.yaml: %v %+v", err, cfg.Origins)
	}
	os.WriteFile(file, []byte("origins:\n  - url: http://127.0.0.1:9000/b\n    s3: {regoin: eu-west-1}\n"), 0o600)
	if _, err := LoadConfig(file); err == nil || !strings.Contains(err.Error(), "regoin") {
		t.Fatalf("a misspelt s3 key: %v, want it named", err)
	}
}

// TestS3CredentialsRefreshed: temporary credentials are asked for again once they expire
// (each request retrieves them from the chain's cache), and the session token signed along.
func TestS3CredentialsRefreshed(t *testing.T) {
	n := 0
	provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		n++
		// Already expired: the cache must come back for new ones at the next request.
		return aws.Credentials{AccessKeyID: "ASIATEMP" + strconv.Itoa(n), SecretAccessKey: "s", SessionToken: "token" + strconv.Itoa(n),
			CanExpire: true, Expires: time.Now().Add(-time.Second)}, nil
	})
	s := &s3Signer{region: "eu-west-1", creds: aws.NewCredentialsCache(provider),
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })}
	for i := 1; i <= 3; i++ {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/b/a.m4s", nil)
		out, err := s.request(r)
		if err != nil {
			t.Fatal(err)
		}
		if a, tok := out.Header.Get("Authorization"), out.Header.Get("X-Amz-Security-Token"); !strings.Contains(a, "Credential=ASIATEMP"+strconv.Itoa(i)+"/") || tok != "token"+strconv.Itoa(i) {
			t.Fatalf("request %d signed with %q, token %q: want the credentials of retrieval %d", i, a, tok, i)
		}
	}
}
