package main

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestBrowserS3Origin: `reel edge --config` fronts a private bucket of a real S3 server
// (SeaweedFS) holding a presentation `reel package` made, signing its requests with the
// credentials of the standard AWS environment: the bucket refuses unsigned requests, every
// file the manifests reference comes through the edge byte for byte, and hls.js and dash.js
// play it in Chromium.
func TestBrowserS3Origin(t *testing.T) {
	t.Parallel()
	p := requirePlayers(t)
	bin := buildReel(t)
	s3 := testkit.StartS3(t)
	s3.CreateBucket(t, "media")

	dir := filepath.Join(t.TempDir(), "pres")
	if out, err := exec.Command(bin, "package", "--quiet", sample("ladder_360p.mp4"), "-o", dir).CombinedOutput(); err != nil {
		t.Fatalf("reel package: %v\n%s", err, out)
	}
	types := map[string]string{".m3u8": "application/vnd.apple.mpegurl", ".mpd": "application/dash+xml",
		".m4s": "video/iso.segment", ".mp4": "video/mp4", ".vtt": "text/vtt"}
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		ct := types[filepath.Ext(p)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		s3.Put(t, "/media/vod/pres/"+filepath.ToSlash(rel), b, "Content-Type", ct)
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	cfg := "origins:\n  - url: " + s3.Endpoint + "/media/vod/pres\n    s3:\n      region: " + s3.Region + "\n"
	cfgFile := writeConfig(t, "edge.yaml", cfg)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "edge", "--listen", addr, "--admin", freeAddr(t), "--config", cfgFile)
	cmd.Env = append(append(os.Environ(), s3.Env()...), "REEL_ADMIN_TOKEN=test")
	runUntilServing(t, "edge", cmd)
	base := "http://" + addr

	if s := pathsStatus(t, s3.Endpoint+"/media/vod/pres/master.m3u8"); s != http.StatusForbidden {
		t.Fatalf("unsigned GET of the bucket's master.m3u8: %d, want 403 (a private bucket)", s)
	}

	// Every file the HLS manifests reference, through the edge, is the packaged file.
	uriAttr := regexp.MustCompile(`URI="([^"]+)"`)
	seen := map[string]bool{}
	queue := []string{"master.m3u8", "manifest.mpd"}
	for len(queue) > 0 && len(seen) < 2000 {
		rel := queue[0]
		queue = queue[1:]
		if seen[rel] {
			continue
		}
		seen[rel] = true
		want, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatalf("%s is referenced but was not packaged: %v", rel, err)
		}
		got := s3EdgeBody(t, base+"/"+rel)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s through the edge: %d bytes, not the %d packaged", rel, len(got), len(want))
		}
		if !strings.HasSuffix(rel, ".m3u8") {
			continue
		}
		for _, l := range strings.Split(string(got), "\n") {
			l = strings.TrimSpace(l)
			refs := []string{}
			if l != "" && !strings.HasPrefix(l, "#") {
				refs = append(refs, l)
			}
			for _, m := range uriAttr.FindAllStringSubmatch(l, -1) {
				refs = append(refs, m[1])
			}
			for _, ref := range refs {
				u, err := url.Parse(rel)
				if err != nil {
					t.Fatal(err)
				}
				queue = append(queue, strings.TrimPrefix(u.ResolveReference(&url.URL{Path: ref}).Path, "/"))
			}
		}
	}
	if len(seen) < 5 {
		t.Fatalf("only %d files referenced: %v", len(seen), seen)
	}
	t.Logf("%d files uploaded, %d referenced by the manifests fetched through the edge and compared", files, len(seen))

	run := []pathsCase{{"hls.js S3", "/master.m3u8", "hls.js", 3, 40}, {"dash.js S3", "/manifest.mpd", "dash.js", 3, 40}}
	res := runPlay(t, p.node, map[string]any{"chromium": p.chromium, "base": base, "cases": run, "libs": p.libs()})
	if len(res.Cases) != len(run) {
		t.Fatalf("%d cases reported, want %d", len(res.Cases), len(run))
	}
	for i, got := range res.Cases {
		c, p := run[i], got.Player
		if p == nil {
			t.Errorf("%s: no player state", c.Name)
			continue
		}
		t.Logf("%-10s %s: played to %.1f s in %.1f s, %d frames, %d warnings", c.Name, p.Library, p.Played, got.Seconds, p.Frames, len(p.Warnings))
		if len(p.Errors) > 0 {
			t.Errorf("%s: player errors %q", c.Name, p.Errors)
		}
		if p.Played < c.Play || p.Frames < 30 {
			t.Errorf("%s: played to %.1f s, %d frames; want past %.1f s", c.Name, p.Played, p.Frames, c.Play)
		}
	}
}

// s3EdgeBody is the body of a GET of u, which must answer 200.
func s3EdgeBody(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v %.200s", u, resp.StatusCode, err, b)
	}
	return b
}
