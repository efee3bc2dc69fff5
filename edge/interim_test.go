package edge

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEarlyHintsRelayed (RFC 9110 §15.2, RFC 8297): an origin's 103 Early Hints reaches the
// client ahead of the final response, on a miss through a fill and on a forwarded request;
// it is never stored (the hit that follows is the final 200 alone, without the hint's
// fields), and the final response is cached as usual.
func TestEarlyHintsRelayed(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.Header().Set("X-Hint-Only", "1")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("X-Hint-Only")
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "page")
	})
	_, srv := newEdge(t, o.URL, func(c *Config) { c.Rules = []Rule{{PathPrefix: "/bypass/", Bypass: ptr(true)}} })
	addr := strings.TrimPrefix(srv.URL, "http://")

	for _, path := range []string{"/page", "/bypass/page"} {
		resps := rawExchange(t, addr, path)
		if len(resps) != 2 || resps[0].StatusCode != http.StatusEarlyHints || resps[1].StatusCode != http.StatusOK {
			t.Fatalf("%s: got %s, want 103 then 200", path, statuses(resps))
		}
		if l := resps[0].Header.Get("Link"); !strings.Contains(l, "rel=preload") || resps[0].Header.Get("X-Hint-Only") != "1" {
			t.Fatalf("%s: 103 fields %v", path, resps[0].Header)
		}
		if resps[1].Header.Get("X-Hint-Only") != "" {
			t.Fatalf("%s: the 103's own field leaked into the final response", path)
		}
	}
	// The miss stored the final response; the hit has no interim response.
	hits := o.hits.Load()
	resps := rawExchange(t, addr, "/page")
	if len(resps) != 1 || resps[0].StatusCode != http.StatusOK || !strings.Contains(resps[0].Header.Get("Cache-Status"), "hit") {
		t.Fatalf("second /page: %s %q", statuses(resps), resps[0].Header.Get("Cache-Status"))
	}
	if o.hits.Load() != hits {
		t.Fatal("the hit went to the origin")
	}
}

// rawExchange sends one GET over a fresh connection and reads every response to it, interim
// ones included, up to the final one (whose body it reads).
func rawExchange(t *testing.T, addr, path string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	var out []*http.Response
	for len(out) < 5 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: after %s: %v", path, statuses(out), err)
		}
		out = append(out, resp)
		if resp.StatusCode >= 200 {
			io.ReadAll(resp.Body)
			break
		}
	}
	return out
}

func statuses(rs []*http.Response) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Status)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// TestEarlyHintsCoalesced: clients collapsed onto one fill whose origin sends 103 all get the
// final response from one origin request; the hint goes to the leader's client only.
func TestEarlyHintsCoalesced(t *testing.T) {
	const n = 8
	release := make(chan struct{})
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.js>; rel=preload; as=script")
		w.WriteHeader(http.StatusEarlyHints)
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "page")
	})
	e, srv := newEdge(t, o.URL, nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	type got struct {
		hints int
		final *http.Response
		err   string
	}
	results := make(chan got, n)
	for i := 0; i < n; i++ {
		go func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				results <- got{err: err.Error()}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			io.WriteString(c, "GET /c HTTP/1.1\r\nHost: example.com\r\n\r\n")
			br := bufio.NewReader(c)
			var g got
			for i := 0; i < 5; i++ {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					g.err = err.Error()
					break
				}
				if resp.StatusCode < 200 {
					g.hints++
					continue
				}
				io.ReadAll(resp.Body)
				g.final = resp
				break
			}
			results <- g
		}()
	}
	waitCollapsed(e, n-1)
	close(release)
	hints := 0
	for i := 0; i < n; i++ {
		g := <-results
		if g.err != "" || g.final == nil || g.final.StatusCode != http.StatusOK {
			t.Fatalf("client: %+v", g)
		}
		hints += g.hints
	}
	if hints != 1 || o.hits.Load() != 1 {
		t.Fatalf("%d hints relayed, %d origin requests; want 1 and 1", hints, o.hits.Load())
	}
}
