package edge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkCompressedHitCPU is BenchmarkHitPathCPU for a 32 KB playlist asked for with a
// browser's Accept-Encoding: the stored brotli copy, through the pre-serialised hit head.
func BenchmarkCompressedHitCPU(b *testing.B) {
	benchTextHit(b, "Accept-Encoding: gzip, deflate, br, zstd\r\n")
}

// BenchmarkCompressibleIdentityHitCPU: the same playlist without Accept-Encoding (the
// identity copy, which adds Vary: Accept-Encoding).
func BenchmarkCompressibleIdentityHitCPU(b *testing.B) { benchTextHit(b, "") }

func benchTextHit(b *testing.B, extra string) {
	body := textBody(32 << 10)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("ETag", `"p1"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer origin.Close()
	cfg := DefaultConfig()
	cfg.Origins = []Origin{{Host: "*", URL: origin.URL}}
	e, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	req := "GET /p.m3u8 HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n" + extra + "\r\n"
	// Warm: the fill, then the coded copy.
	warm := &replayConn{req: []byte(req), left: 3, done: make(chan struct{})}
	srv := NewServer(e, cfg, nil)
	go srv.Serve(&oneConnListener{conn: warm})
	<-warm.done
	srv.Close()
	perResponse := warm.written / 3

	conn := &replayConn{req: []byte(req), left: b.N, done: make(chan struct{})}
	srv = NewServer(e, cfg, nil)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	go srv.Serve(&oneConnListener{conn: conn})
	<-conn.done
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(perResponse), "bytes/response")
	srv.Close()
	if extra != "" && perResponse > int64(len(body))/3 {
		b.Fatalf("%d bytes per response for a %d-byte playlist: not compressed", perResponse, len(body))
	}
}

// BenchmarkCompressPlaylist is what making one coded copy costs, per playlist size, coding
// and default level (the live ones for live playlists): once per stored version, so once per
// refresh of a live playlist, whatever the number of clients.
func BenchmarkCompressPlaylist(b *testing.B) {
	cfg := Compression{}.withDefaults()
	c := newCompressor(cfg)
	for _, size := range []int{4 << 10, 64 << 10, 512 << 10, 2 << 20} {
		body := textBody(size)
		for _, cl := range []struct {
			kind, name string
			level      int
		}{
			{"vod", codingBrotli, cfg.BrotliLevel}, {"vod", codingGzip, cfg.GzipLevel},
			{"live", codingBrotli, cfg.LiveBrotliLevel}, {"live", codingGzip, cfg.LiveGzipLevel},
		} {
			b.Run(fmt.Sprintf("%s/%s-%d/%dKB", cl.kind, cl.name, cl.level, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				var n int
				for b.Loop() {
					n = len(c.encode(cl.name, cl.level, body))
				}
				b.ReportMetric(float64(n)/float64(len(body)), "ratio")
			})
		}
	}
}
