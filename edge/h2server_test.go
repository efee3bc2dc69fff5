package edge

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestH2ServerSwitch: http2.server picks the HTTP/2 server — reel (edge/h2, the default) and x
// (x/net's) both serve misses and hits over HTTP/2 with TLS, with Alt-Svc and the same body,
// ranges through the map path included; an unknown name is a config error.
func TestH2ServerSwitch(t *testing.T) {
	o := newProtoOrigin(t)
	for _, server := range []string{"", H2ServerReel, H2ServerX} {
		t.Run("server="+server, func(t *testing.T) {
			fe := startFrontend(t, o.URL, func(cfg *Config) { cfg.HTTP2.Server = server }, nil)
			c := fe.client(t, "h2")
			path := "/switch-" + server + "/big"
			for i, want := range []string{"fwd=uri-miss", "; hit"} {
				resp, err := c.Get("https://" + fe.addr + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.ProtoMajor != 2 || !bytes.Equal(b, o.big) || resp.Header.Get("Alt-Svc") == "" ||
					!strings.Contains(resp.Header.Get("Cache-Status"), want) {
					t.Fatalf("request %d: %s, %d bytes, Alt-Svc %q, Cache-Status %q", i, resp.Proto, len(b), resp.Header.Get("Alt-Svc"), resp.Header.Get("Cache-Status"))
				}
			}
			req, _ := http.NewRequest("GET", "https://"+fe.addr+path, nil)
			req.Header.Set("Range", "bytes=10-19")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, o.big[10:20]) {
				t.Fatalf("range: %d, %q", resp.StatusCode, b)
			}
			if n := o.requests(path); n != 1 {
				t.Fatalf("origin asked %d times", n)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.HTTP2.Server = "nghttp2"
	if err := cfg.validateProtocols(); err == nil || !strings.Contains(err.Error(), "http2.server") {
		t.Fatalf("http2.server nghttp2: %v", err)
	}
}

// TestH2Curl: curl's HTTP/2 (libnghttp2) gets hits and misses through edge/h2 over TLS, whole.
func TestH2Curl(t *testing.T) {
	curl := testkit.RequireTool(t, "curl")
	o := newProtoOrigin(t)
	fe := startFrontend(t, o.URL, nil, nil)
	out := filepath.Join(t.TempDir(), "body")
	for range 2 {
		cmd := exec.Command(curl, "-sS", "--http2", "--cacert", fe.f.CAFile(), "-o", out, "-w", "%{http_version} %{http_code}",
			"https://localhost:"+fe.addr[strings.LastIndexByte(fe.addr, ':')+1:]+"/curl/big")
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, got)
		}
		b, _ := os.ReadFile(out)
		if string(got) != "2 200" || !bytes.Equal(b, o.big) {
			t.Fatalf("curl: %s, %d bytes", got, len(b))
		}
	}
	if n := o.requests("/curl/big"); n != 1 {
		t.Fatalf("origin asked %d times", n)
	}
}
