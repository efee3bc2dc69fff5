package testkit

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// Put stores body at path ("/bucket/key") with the given header fields (Content-Type,
// Cache-Control: S3 keeps them and answers with them), signed with the server's credentials.
func (s *S3Server) Put(t testing.TB, path string, body []byte, header ...string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	SignV4(req, body, s.AccessKey, s.SecretKey, s.Region, "s3", time.Now())
	resp, err := doRead(req)
	if err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("put %s: %s %s", path, resp.Status, resp.Body)
	}
}
