package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"

	"github.com/reelvideo/reel/edge"
	"github.com/reelvideo/reel/packager"
)

// ffprobeFrames decodes every stream of url with ffprobe and returns the frames per stream.
func ffprobeFrames(t *testing.T, url string) []int {
	t.Helper()
	bin := testkit.RequireTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-count_frames", "-of", "json",
		"-show_entries", "stream=nb_read_frames", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var v struct {
		Streams []struct {
			Frames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	var n []int
	for _, s := range v.Streams {
		var f int
		json.Unmarshal([]byte(s.Frames), &f)
		n = append(n, f)
	}
	return n
}

// TestPackageOriginEdgeChain runs the whole product on loopback: package the sample ladder
// (segmented and single-file), serve it with the origin, put the edge in front, and decode
// every rendition with ffprobe through the edge. The second viewer is served entirely from the
// edge's cache — single-file byte ranges included — without a single origin request.
func TestPackageOriginEdgeChain(t *testing.T) {
	t.Parallel() // runs beside the other slow tests: see parallel_test.go
	dir := t.TempDir()
	ladder := []string{"../../samples/ladder_720p.mp4", "../../samples/ladder_360p.mp4"}
	for name, single := range map[string]bool{"vod": false, "single": true} {
		if _, err := packager.Package(context.Background(), packager.Options{Inputs: ladder, Output: filepath.Join(dir, name), SingleFile: single}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := packager.NewOrigin(dir, packager.OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var originHits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		o.ServeHTTP(w, r)
	}))
	defer origin.Close()
	cfg := edge.DefaultConfig()
	cfg.Origins = []edge.Origin{{Host: "*", URL: origin.URL}}
	e, err := edge.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	front := httptest.NewServer(e)
	defer front.Close()

	for _, m := range []string{"vod/master.m3u8", "vod/manifest.mpd", "single/master.m3u8", "single/manifest.mpd"} {
		t.Run(m, func(t *testing.T) {
			first := ffprobeFrames(t, front.URL+"/"+m)
			if len(first) < 3 {
				t.Fatalf("decoded %d streams through the edge, want 2 video + 1 audio", len(first))
			}
			for i, f := range first {
				if f < 300 {
					t.Errorf("stream %d: %d frames decoded through the edge", i, f)
				}
			}
			before := originHits.Load()
			second := ffprobeFrames(t, front.URL+"/"+m)
			if n := originHits.Load() - before; n != 0 {
				t.Errorf("second viewer caused %d origin requests, want 0 (all from cache)", n)
			}
			if len(second) != len(first) {
				t.Errorf("second viewer decoded %d streams, first %d", len(second), len(first))
			}
		})
	}
}
