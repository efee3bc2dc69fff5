package testkit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The S3-compatible server of the tests is SeaweedFS, built from the Go module proxy at the
// version pinned by internal/testkit/s3server/go.mod (a module of its own, so none of its
// dependencies enter reel's). The binary is built once per pinned version into the user's
// cache (os.UserCacheDir()/reel-test/weed-<hash of go.mod and go.sum>/weed) under a file lock,
// so parallel test packages, and .ci/run's build in the background, build it once.

// S3 credentials and region of every server StartS3 starts. Requests signed with anything else,
// and unsigned ones, are refused (403).
const (
	S3AccessKey = "reeltestaccesskey"
	S3SecretKey = "reeltestsecretkey0123456789abcdefghijkl"
	S3Region    = "us-east-1"
)

// s3BuildTimeout bounds the build of weed (about 4 minutes cold on two cores, seconds warm).
const s3BuildTimeout = 20 * time.Minute

// s3ReadyTimeout bounds how long a started server may take to answer S3.
const s3ReadyTimeout = 90 * time.Second

// S3Server is a SeaweedFS server (master, volume, filer and S3 gateway in one process) on
// 127.0.0.1, started by StartS3 and stopped when the test ends.
type S3Server struct {
	// Endpoint is the S3 API's base URL, http://127.0.0.1:PORT (path-style addressing).
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  *bytes.Buffer
	mu   *sync.Mutex // guards log
}

// Env is the standard AWS environment that points an SDK (or `reel`) at this server, for a
// child process's cmd.Env (append it to os.Environ()) or t.Setenv. Shared config and
// credentials files are turned off so that a developer's ~/.aws cannot interfere.
func (s *S3Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.Region,
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env in this test's environment (t.Setenv: not with t.Parallel).
func (s *S3Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// CreateBucket creates a bucket (names: 3-63 characters of a-z, 0-9, '-').
func (s *S3Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	resp, err := s.Do(http.MethodPut, "/"+name, nil)
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket %s: %s", name, resp.Status)
	}
}

// PutObject stores body at bucket/key with the given header fields (Content-Type,
// Cache-Control, x-amz-meta-…; nil for none).
func (s *S3Server) PutObject(t testing.TB, bucket, key string, body []byte, header http.Header) {
	t.Helper()
	resp, err := s.DoHeader(http.MethodPut, "/"+bucket+"/"+key, body, header)
	if err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("put %s/%s: %s %s", bucket, key, resp.Status, resp.Body)
	}
}

// Do sends one request signed with the server's credentials (SigV4) to path ("/bucket/key",
// query allowed) and returns the response with its body read. For test setup and checks; the
// code under test uses its own client.
func (s *S3Server) Do(method, path string, body []byte) (*Response, error) {
	return s.DoHeader(method, path, body, nil)
}

// DoHeader is Do with header fields added to the request (before signing).
func (s *S3Server) DoHeader(method, path string, body []byte, header http.Header) (*Response, error) {
	req, err := http.NewRequest(method, s.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	SignV4(req, body, s.AccessKey, s.SecretKey, s.Region, "s3", time.Now())
	return doRead(req)
}

// Response is an HTTP response whose body was read whole.
type Response struct {
	*http.Response
	Body []byte
}

func doRead(req *http.Request) (*Response, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	return &Response{Response: resp, Body: b.Bytes()}, nil
}

// Stop kills the server now (a test of what happens when storage goes away); the cleanup
// does nothing more afterwards.
func (s *S3Server) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

// Log is what the server printed so far (for a failing test's message).
func (s *S3Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// StartS3 builds weed if needed (skipped on a developer machine when it can't be built, a
// failure under CI=true), starts it on free loopback ports with a temporary data folder, waits
// until it answers S3, and checks that an unsigned request is refused. The server is stopped
// when the test ends.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := WeedBinary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("S3 test server: %v", err)
		}
		t.Skipf("S3 test server unavailable: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port may be taken between probe and bind
		s, err := startWeed(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("S3 test server: %v", lastErr)
	return nil
}

func startWeed(t testing.TB, bin string) (*S3Server, error) {
	dir := t.TempDir()
	ports, err := freePorts(8)
	if err != nil {
		return nil, err
	}
	s := &S3Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		Region:    S3Region,
		AccessKey: S3AccessKey,
		SecretKey: S3SecretKey,
		done:      make(chan struct{}),
		log:       &bytes.Buffer{},
		mu:        &sync.Mutex{},
	}
	conf := fmt.Sprintf(`{"identities":[{"name":"reel-test","credentials":[{"accessKey":%q,"secretKey":%q}],`+
		`"actions":["Admin","Read","List","Tagging","Write"]}]}`, s.AccessKey, s.SecretKey)
	confPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return nil, err
	}
	p := func(i int) string { return strconv.Itoa(ports[i]) }
	s.cmd = exec.Command(bin, "server",
		"-dir="+data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port="+p(1), "-master.port.grpc="+p(2),
		"-volume.port="+p(3), "-volume.port.grpc="+p(4),
		"-filer", "-filer.port="+p(5), "-filer.port.grpc="+p(6),
		"-s3", "-s3.port="+p(0), "-s3.port.grpc="+p(7), "-s3.config="+confPath,
		"-filer.localSocket="+filepath.Join(dir, "filer.sock"), "-s3.localSocket="+filepath.Join(dir, "s3.sock"),
		// Off: the listeners on fixed default ports and the statistics sent to the internet.
		"-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
		// Small volumes: a few test files must not reserve gigabytes.
		"-master.volumeSizeLimitMB=64", "-volume.max=0")
	s.cmd.Dir = dir
	w := &lockedWriter{buf: s.log, mu: s.mu}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
			return
		default:
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	start := time.Now()
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(s.Log(), 3000))
	}
	t.Logf("S3 server (SeaweedFS) at %s ready in %v", s.Endpoint, time.Since(start).Round(time.Millisecond))
	return s, nil
}

// waitReady polls until a signed ListBuckets succeeds, then checks that an unsigned one is
// refused.
func (s *S3Server) waitReady() error {
	deadline := time.Now().Add(s3ReadyTimeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("weed exited before answering S3")
		default:
		}
		resp, err := s.Do(http.MethodGet, "/", nil)
		if err == nil && resp.StatusCode == http.StatusOK {
			req, _ := http.NewRequest(http.MethodGet, s.Endpoint+"/", nil)
			anon, err := doRead(req)
			if err != nil {
				return fmt.Errorf("unsigned request: %w", err)
			}
			if anon.StatusCode != http.StatusForbidden {
				return fmt.Errorf("an unsigned ListBuckets got %s, want 403 Forbidden", anon.Status)
			}
			// SeaweedFS answers reads at once but holds the first write until its filer has
			// joined the cluster's lock ring (several seconds): wait for one write here.
			return s.probeWrite(deadline)
		}
		if err != nil {
			last = err.Error()
		} else {
			last = resp.Status
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("S3 at %s not ready after %v (last: %s)", s.Endpoint, s3ReadyTimeout, last)
}

// probeWrite writes and removes an object in a bucket of its own, until it succeeds or the
// deadline passes.
func (s *S3Server) probeWrite(deadline time.Time) error {
	const bucket = "reel-testkit-ready"
	if r, err := s.Do(http.MethodPut, "/"+bucket, nil); err != nil || r.StatusCode != http.StatusOK {
		return fmt.Errorf("create bucket %s: %v %v", bucket, err, r)
	}
	var last string
	for time.Now().Before(deadline) {
		r, err := s.Do(http.MethodPut, "/"+bucket+"/probe", []byte("ready"))
		if err == nil && r.StatusCode == http.StatusOK {
			s.Do(http.MethodDelete, "/"+bucket+"/probe", nil)
			s.Do(http.MethodDelete, "/"+bucket, nil)
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = r.Status
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("S3 at %s accepts no write after %v (last: %s)", s.Endpoint, s3ReadyTimeout, last)
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 1<<20 { // keep the log bounded: the start and the latest lines matter
		w.buf.Truncate(64 << 10)
	}
	return w.buf.Write(p)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// freePorts returns n distinct free loopback ports (held open together so none repeats).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var weedOnce struct {
	sync.Once
	path string
	err  error
}

// WeedBinary returns the path of the pinned SeaweedFS binary, building it first if the cache
// has none (once per process; across processes under a file lock).
func WeedBinary() (string, error) {
	weedOnce.Do(func() { weedOnce.path, weedOnce.err = buildWeed() })
	return weedOnce.path, weedOnce.err
}

func buildWeed() (string, error) {
	return buildPinnedTool("s3server", "github.com/seaweedfs/seaweedfs/weed", "weed", "the S3 test server (SeaweedFS)", s3BuildTimeout)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// SignV4 signs req (whose body is body) with AWS Signature Version 4 for service in region at
// time now: the headers an S3 server (or an edge signing origin requests) checks.
func SignV4(req *http.Request, body []byte, accessKey, secretKey, region, service string, now time.Time) {
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", payload)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(req.Context(), creds, req, payload, service, region, now); err != nil {
		panic(err) // only for a malformed request, a bug in the test
	}
}
