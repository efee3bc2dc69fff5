package packager

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/internal/testkit"
)

// TestS3OriginFillFigures (make bench, REEL_S3BENCH=1): what an edge's cold fill costs from
// `reel origin --dir s3://…` against `--dir DIR`. Ten copies of the packaged three-rung sample
// ladder (each a title of its own) are fetched whole, every file once, through a fresh origin
// (no digest cached) from 1 and from 8 clients at once; MB/s of each, and the ratio. The disk's
// files are in the page cache and so are the S3 server's volumes: this measures the origin's
// path (a HEAD and a GET to the bucket per file, against open, stat and hash), not the disks.
func TestS3OriginFillFigures(t *testing.T) {
	if os.Getenv("REEL_S3BENCH") != "1" {
		t.Skip("benchmark: run with REEL_S3BENCH=1 (make bench)")
	}
	startS3Bucket(t, "bench")
	ctx := context.Background()
	src, _ := packageTo(t, Options{Inputs: ladder})
	files, err := stageList(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	const titles = 10
	root := t.TempDir()
	var diskPaths, s3Paths []string
	var total int64
	for i := range titles {
		title := fmt.Sprintf("t%02d", i)
		if err := os.CopyFS(filepath.Join(root, title), os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		version, err := S3Upload(ctx, src, S3Location{Bucket: "bench", Prefix: title}, 0, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			diskPaths = append(diskPaths, title+"/"+f.name)
			s3Paths = append(s3Paths, title+"/"+version+"/"+f.name)
			total += f.size
		}
	}
	t.Logf("%d titles, %d files, %.1f MB", titles, len(diskPaths), float64(total)/1e6)

	fill := func(dir string, paths []string, clients int) float64 {
		o, err := NewOrigin(dir, OriginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(o)
		defer func() { srv.Close(); o.Close() }()
		c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
		var next atomic.Int64
		var bytes atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < int64(len(paths)); i = next.Add(1) - 1 {
					resp, err := c.Get(srv.URL + "/" + paths[i])
					if err != nil {
						t.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Errorf("%s: %d", paths[i], resp.StatusCode)
					}
					bytes.Add(n)
				}
			}()
		}
		wg.Wait()
		if bytes.Load() != total {
			t.Fatalf("fetched %d bytes of %d", bytes.Load(), total)
		}
		return float64(total) / 1e6 / time.Since(start).Seconds()
	}
	for _, clients := range []int{1, 8} {
		var disk, bucket []float64
		for range 5 {
			disk = append(disk, fill(root, diskPaths, clients))
			bucket = append(bucket, fill("s3://bench", s3Paths, clients))
		}
		d, b := testkit.Median(disk), testkit.Median(bucket)
		t.Logf("cold fill, %d client(s): disk origin %.0f MB/s %s, S3 origin %.0f MB/s %s: S3/disk %.2f",
			clients, d, testkit.FmtAll(disk, 0), b, testkit.FmtAll(bucket, 0), b/d)
	}
}
