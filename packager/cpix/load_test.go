package cpix

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadURL: a real key server on loopback gets the bearer token, and only with it answers
// the document; a 401 is reported with its status, a body over MaxSize is refused, and plain
// http to a host other than loopback is refused before any request.
func TestLoadURL(t *testing.T) {
	doc := sample(t)
	const token = "s3cret-token"
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/big":
			w.Write(bytes.Repeat([]byte(" "), MaxSize+1))
		case "/bigdeclared":
			w.Header().Set("Content-Length", "999999999")
			w.WriteHeader(http.StatusOK)
		default:
			w.Write(doc)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	d, err := Load(ctx, srv.URL+"/keys", token, nil)
	if err != nil || len(d.Keys) != 2 {
		t.Fatalf("Load with token: %v", err)
	}
	if _, err := Load(ctx, srv.URL+"/keys", "wrong", nil); err == nil || err.Error() != "key server answered 401 Unauthorized" {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := Load(ctx, srv.URL+"/big", token, nil); err == nil || !strings.Contains(err.Error(), "more than the 4 MiB") {
		t.Errorf("big body: %v", err)
	}
	if _, err := Load(ctx, srv.URL+"/bigdeclared", token, nil); err == nil || !strings.Contains(err.Error(), "999999999 bytes") {
		t.Errorf("big declared body: %v", err)
	}
	if len(seen) != 4 {
		t.Errorf("server saw %v", seen)
	}
	if _, err := Load(ctx, "http://keys.example/k", token, nil); err == nil || !strings.Contains(err.Error(), "plain http only to a loopback host") {
		t.Errorf("plain http: %v", err)
	}
	if len(seen) != 4 {
		t.Errorf("a request went out for plain http elsewhere: %v", seen)
	}
	// A key server that never answers is cut off by the context.
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Load(ctx, srv.URL+"/keys", token, nil); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled: %v", err)
	}
}

// TestLoadFile: a file is read and parsed; a missing one names its path.
func TestLoadFile(t *testing.T) {
	if d, err := Load(context.Background(), "testdata/ladder.cpix.xml", "", nil); err != nil || len(d.Systems) != 10 {
		t.Fatalf("Load file: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none.xml")
	if _, err := Load(context.Background(), missing, "", nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}
