package main

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEdgeWarm: `reel package` makes a ladder (segment files, and single-file), `reel origin`
// serves it and `reel edge` warms it from one manifest URL given to its admin API — the HLS
// master, or the MPD, each on a fresh edge. Then every file that format references (the
// package's folder is the list: for HLS every file but the MPD, for DASH the MPD and every
// file but the playlists) is a hit through the edge, with the origin's bytes, and the origin
// sees no request from that client pass; the warm-up itself fetched each file once.
func TestEdgeWarm(t *testing.T) {
	t.Parallel()
	bin := buildReel(t)
	for _, single := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "vod")
		args := []string{"package", "--quiet", sample("ladder_480p.mp4"), sample("ladder_360p.mp4"), "-o", dir}
		if single {
			args = append(args, "--single-file")
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("reel package: %v\n%s", err, out)
		}
		origin := startOrigin(t, bin, dir)
		var files []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				files = append(files, "/"+filepath.ToSlash(rel))
			}
			return err
		})
		for _, entry := range []string{"/master.m3u8", "/manifest.mpd"} {
			var want []string
			for _, f := range files {
				switch {
				case entry == "/master.m3u8" && f != "/manifest.mpd",
					entry == "/manifest.mpd" && !strings.HasSuffix(f, ".m3u8"):
					want = append(want, f)
				}
			}
			name := fmt.Sprintf("%s single-file=%v", strings.TrimPrefix(entry, "/"), single)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				warmThroughEdge(t, bin, origin, dir, entry, want, single)
			})
		}
	}
}

// warmThroughEdge runs a fresh edge in front of origin (through a proxy counting the requests
// by path), warms it from entry, and checks that every file of want is then a hit.
func warmThroughEdge(t *testing.T, bin, origin, dir, entry string, want []string, single bool) {
	target, _ := url.Parse(origin)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	seen := map[string]int{}
	total := 0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		total++
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	counts := func() (map[string]int, int) {
		mu.Lock()
		defer mu.Unlock()
		c := map[string]int{}
		for k, v := range seen {
			c[k] = v
		}
		return c, total
	}

	edgeAddr, adminAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "edge", "--listen", edgeAddr, "--admin", adminAddr, "--origin", front.URL, "--cache-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "REEL_ADMIN_TOKEN=test")
	runUntilServing(t, "edge", cmd)
	base, admin := "http://"+edgeAddr, "http://"+adminAddr

	call := func(method, u, token, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	job := `{"manifest": "` + base + entry + `"}`
	if code, _, _ := call("POST", admin+"/warm", "", job); code != http.StatusUnauthorized {
		t.Fatalf("POST /warm without the token: %d", code)
	}
	code, h, body := call("POST", admin+"/warm", "test", job)
	if code != http.StatusAccepted || !strings.HasPrefix(h.Get("Location"), "/warm/") {
		t.Fatalf("POST /warm: %d %s", code, body)
	}
	type report struct {
		State                   string
		URLs, Done, Filled, Hit int
		Failed                  int
		NotStored               int `json:"not_stored"`
		Bytes                   int64
		Errors                  []struct{ URL, Error string }
	}
	var r report
	started := time.Now()
	for {
		code, _, body = call("GET", admin+h.Get("Location"), "test", "")
		if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
			t.Fatalf("GET %s: %d %v %s", h.Get("Location"), code, err, body)
		}
		if r.State != "running" {
			break
		}
		if time.Since(started) > 2*time.Minute {
			t.Fatalf("warm-up still running after 2 minutes: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var size int64
	for _, f := range want {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	t.Logf("%s: %d URLs warmed in %v, %d bytes", entry, r.URLs, time.Since(started).Round(time.Millisecond), r.Bytes)
	if r.State != "done" || r.URLs != len(want) || r.Filled != len(want) || r.Failed != 0 || r.Bytes != size {
		t.Fatalf("warm-up of %s: %s\nwant %d URLs, %d bytes: %q", entry, body, len(want), size, want)
	}
	warmed, originBefore := counts()
	for _, f := range want {
		if warmed[f] != 1 {
			t.Errorf("%s reached the origin %d times during the warm-up", f, warmed[f])
		}
	}

	// The client pass: every file a hit, with the origin's bytes; ranges too in single-file.
	for _, f := range want {
		onDisk, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		resp, err := http.Get(base + f)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if cs := resp.Header.Get("Cache-Status"); resp.StatusCode != 200 || !strings.Contains(cs, "; hit") || string(got) != string(onDisk) {
			t.Errorf("GET %s after the warm-up: %d %q, %d bytes of %d", f, resp.StatusCode, cs, len(got), len(onDisk))
		}
		if single && strings.HasSuffix(f, ".mp4") {
			req, _ := http.NewRequest("GET", base+f, nil)
			req.Header.Set("Range", "bytes=100-199")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if cs := resp.Header.Get("Cache-Status"); resp.StatusCode != 206 || !strings.Contains(cs, "; hit") || string(got) != string(onDisk[100:200]) {
				t.Errorf("range of %s after the warm-up: %d %q", f, resp.StatusCode, cs)
			}
		}
	}
	if _, after := counts(); after != originBefore {
		t.Errorf("the client pass made %d origin requests", after-originBefore)
	}

	// /stats lists the job, done.
	code, _, body = call("GET", admin+"/stats", "test", "")
	if code != 200 || !strings.Contains(body, `"warm":{"jobs":[{"id":"`+strings.TrimPrefix(h.Get("Location"), "/warm/")+`","state":"done"`) {
		t.Errorf("/stats: %d %s", code, body)
	}
}
