package edge

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkUpstreamCold measures what the upstream protocol costs on cold fetches of many
// small objects: each iteration sends 1000 requests for distinct 10 KB objects from 64
// concurrent clients, each a miss fetched from a loopback origin, either through a fresh edge
// (cold-pool: no connection to the origin yet) or through one edge whose connections are
// open (warm-pool). Reported per iteration: the wall time (ns/op), the connections the origin
// accepted (origin-conns/op) and the time per object.
//
//	go test -run '^$' -bench BenchmarkUpstreamCold -benchtime 20x ./edge/
//
// Over TLS, HTTP/1.1 opens a connection — a handshake — per concurrent fetch, HTTP/2 one
// connection for them all (RFC 9113 §5: streams multiplexed on one connection).
func BenchmarkUpstreamCold(b *testing.B) {
	const (
		objects = 1000
		clients = 64
		size    = 10 << 10
	)
	body := make([]byte, size)
	pki := newTestPKI(b)
	cert := pki.issue(b, []string{"127.0.0.1"}, false, time.Now().Add(24*time.Hour))
	tlsOrigin := newTLSOrigin(b, &tls.Config{Certificates: []tls.Certificate{cert}}, true, body)

	var clearConns atomic.Int64
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	clear := &http.Server{
		Protocols: &p,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "public, max-age=600")
			w.Write(body)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				clearConns.Add(1)
			}
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go clear.Serve(ln)
	b.Cleanup(func() { clear.Close() })

	// The clients reach the edge over keep-alive HTTP/1.1, the same in every variant.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	b.Cleanup(client.CloseIdleConnections)

	for _, v := range []struct {
		name  string
		url   string
		conns *atomic.Int64
		o     Origin
	}{
		{"tls-http1", tlsOrigin.URL, &tlsOrigin.conns, Origin{Connection: Connection{Protocol: ProtocolHTTP1, CAFile: pki.caFile}}},
		{"tls-http2", tlsOrigin.URL, &tlsOrigin.conns, Origin{Connection: Connection{Protocol: ProtocolHTTP2, CAFile: pki.caFile}}},
		{"clear-http1", "http://" + ln.Addr().String(), &clearConns, Origin{Connection: Connection{Protocol: ProtocolHTTP1}}},
		{"h2c", "http://" + ln.Addr().String(), &clearConns, Origin{Connection: Connection{Protocol: ProtocolHTTP2}}},
	} {
		for _, warm := range []bool{false, true} {
			mode := "cold-pool"
			if warm {
				mode = "warm-pool"
			}
			b.Run(v.name+"/"+mode, func(b *testing.B) {
				newEdgeFor := func() (*Edge, *edgeServer) {
					cfg := DefaultConfig()
					cfg.Memory = 256 << 20
					o := v.o
					o.Host, o.URL = "*", v.url
					cfg.Origins = []Origin{o}
					e, err := New(cfg, nil)
					if err != nil {
						b.Fatal(err)
					}
					return e, serveEdge(b, e, cfg)
				}
				closeEdge := func(e *Edge, srv *edgeServer) {
					srv.Close()
					e.origins["*"].client.CloseIdleConnections()
					e.origins["*"].blocking.CloseIdleConnections()
					e.Close()
				}
				var e *Edge
				var srv *edgeServer
				iter := 0
				run := func() {
					iter++
					var next, failed atomic.Int64
					var wg sync.WaitGroup
					for range clients {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for i := next.Add(1); i <= objects; i = next.Add(1) {
								resp, err := client.Get(fmt.Sprintf("%s/%d/%d", srv.URL, iter, i))
								if err != nil {
									failed.Add(1)
									continue
								}
								if n, _ := io.Copy(io.Discard, resp.Body); resp.StatusCode != 200 || n != size {
									failed.Add(1)
								}
								resp.Body.Close()
							}
						}()
					}
					wg.Wait()
					if n := failed.Load(); n > 0 {
						b.Fatalf("%d of %d requests failed", n, objects)
					}
				}
				if warm {
					// One edge for every iteration, its connections opened by an untimed run.
					e, srv = newEdgeFor()
					run()
					defer closeEdge(e, srv)
				}
				var conns int64
				runs := 0
				for b.Loop() {
					if !warm {
						b.StopTimer()
						e, srv = newEdgeFor()
						b.StartTimer()
					}
					before := v.conns.Load()
					run()
					conns += v.conns.Load() - before
					runs++
					if !warm {
						b.StopTimer()
						closeEdge(e, srv)
						b.StartTimer()
					}
				}
				b.ReportMetric(float64(conns)/float64(runs), "origin-conns/op")
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(runs*objects), "µs/object")
			})
		}
	}
}
