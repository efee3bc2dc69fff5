package edge

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// headerOrigin is a real loopback origin for the header rules' tests: every response is
// cacheable text (2 KiB, so that it is compressed for clients that accept it) with fields a
// rule may act on, and every request's header is kept in order.
type headerOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Header
}

func newHeaderOrigin(t *testing.T) *headerOrigin {
	o := &headerOrigin{}
	body := strings.Repeat("header rules text body. ", 90)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.seen = append(o.seen, r.Header.Clone())
		o.mu.Unlock()
		h := w.Header()
		h.Set("Cache-Control", "max-age=600")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("ETag", `"v1"`)
		h.Set("X-Powered-By", "php")
		h.Set("X-Origin-Name", "origin")
		h.Add("Link", "<a>")
		h.Set("Vary", "Accept-Language")
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
	}))
	t.Cleanup(o.Close)
	return o
}

// requests is how many requests the origin has seen.
func (o *headerOrigin) requests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seen)
}

func (o *headerOrigin) last() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[len(o.seen)-1]
}

// headerEdge is an edge configured by a YAML file's rules, served by the Frontend `reel edge`
// runs (edge/h1 for HTTP/1.1, hits on its pre-serialised path; HTTP/2 over h2c), on 127.0.0.1.
type headerEdge struct {
	addr string
	e    *Edge
}

func newHeaderEdge(t *testing.T, origin, rulesYAML string) *headerEdge {
	t.Helper()
	return newHeaderEdgeWith(t, fmt.Sprintf("origins:\n  - {host: \"*\", url: %q}\n  - {name: down, url: \"http://127.0.0.1:1\"}\n", origin), rulesYAML)
}

// newHeaderEdgeWith is newHeaderEdge with the file's origins (and more) given as YAML.
func newHeaderEdgeWith(t *testing.T, originsYAML, rulesYAML string) *headerEdge {
	t.Helper()
	file := filepath.Join(t.TempDir(), "edge.yaml")
	conf := "memory: 64MiB\nadmin: \"\"\nhttp2: {h2c: true}\n" + originsYAML + "rules:\n" + rulesYAML
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	f, err := NewFrontend(e, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := f.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.Serve(ln)
	t.Cleanup(func() { f.Close() })
	return &headerEdge{addr: ln.Addr().String(), e: e}
}

// hdrStep is one request of a row, and what the origin and the client must have seen.
type hdrStep struct {
	path   string
	proto  string   // "h1" (default) or "h2" (h2c)
	from   string   // the client's local address (default 127.0.0.1)
	host   string   // the Host sent (default the edge's address)
	method string   // default GET
	send   []string // request fields, name value pairs
	status int      // default 200
	// origin: the fields the origin saw, each exactly (nil: absent); nil map: the origin must
	// not have been asked (a hit).
	origin map[string][]string
	// got: the fields the client got, each exactly (nil: absent).
	got map[string][]string
}

func (he *headerEdge) do(t *testing.T, st hdrStep) *http.Response {
	t.Helper()
	from := cmp.Or(st.from, "127.0.0.1")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	var rt http.RoundTripper
	switch st.proto {
	case "", "h1":
		tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true, DisableCompression: true}
		defer tr.CloseIdleConnections()
		rt = tr
	case "h2":
		tr := &http2.Transport{AllowHTTP: true, DisableCompression: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}
		defer tr.CloseIdleConnections()
		rt = tr
	default:
		t.Fatalf("proto %q", st.proto)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, cmp.Or(st.method, http.MethodGet), "http://"+he.addr+st.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.host != "" {
		req.Host = st.host
	}
	for i := 0; i+1 < len(st.send); i += 2 {
		req.Header.Add(st.send[i], st.send[i+1])
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// checkFields reports the first field of want that h doesn't hold exactly.
func checkFields(h http.Header, want map[string][]string) string {
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if got := h.Values(k); !slices.Equal(got, want[k]) {
			return fmt.Sprintf("%s: %q, want %q", k, got, want[k])
		}
	}
	return ""
}

// TestHeaderRules: each row an edge whose rules set, add and remove fields to the origin and to
// clients, and requests through the Frontend with what the origin saw and the client got.
func TestHeaderRules(t *testing.T) {
	t.Parallel()
	none := []string(nil)
	type row struct {
		name  string
		rules string
		steps []hdrStep
	}
	rows := []row{{
		name: "to the origin: set, add two values, remove; on the fill and on a revalidation",
		rules: `
  - path_prefix: /
    client_cache_control: honor   # a client's no-cache revalidates (below)
    request_headers:
      set: {X-Origin-Auth: secret, X-Forwarded-For: edge}
      add: {X-Tag: [a, b]}
      remove: [Cookie]
`,
		steps: []hdrStep{
			{path: "/a", send: []string{"Cookie", "session=1", "X-Tag", "client", "X-Origin-Auth", "forged"},
				origin: map[string][]string{"X-Origin-Auth": {"secret"}, "X-Tag": {"client", "a", "b"}, "Cookie": none, "X-Forwarded-For": {"edge"}},
				got:    map[string][]string{"X-Origin-Auth": none}},
			{path: "/a", got: map[string][]string{"X-Origin-Auth": none}},
			// A client's no-cache (honoured) makes the edge revalidate: the origin gets the
			// fields again.
			{path: "/a", send: []string{"Cache-Control", "no-cache"},
				origin: map[string][]string{"X-Origin-Auth": {"secret"}, "X-Tag": {"a", "b"}, "If-None-Match": {`"v1"`}}},
		},
	}, {
		name: "to clients: set, add, remove on the miss, the h1 hit, the h2 hit, HEAD, 304, 206 and a compressed copy",
		rules: `
  - path_prefix: /
    response_headers:
      set: {Strict-Transport-Security: max-age=63072000, X-Frame-Options: DENY, X-Origin-Name: edge}
      add: {Link: ["<b>", "<c>"], Vary: Origin}
      remove: [X-Powered-By]
`,
		steps: func() []hdrStep {
			want := map[string][]string{"Strict-Transport-Security": {"max-age=63072000"}, "X-Frame-Options": {"DENY"},
				"X-Origin-Name": {"edge"}, "Link": {"<a>", "<b>", "<c>"}, "X-Powered-By": none, "Etag": {`"v1"`}}
			with := func(extra map[string][]string) map[string][]string {
				m := map[string][]string{}
				for k, v := range want {
					m[k] = v
				}
				for k, v := range extra {
					m[k] = v
				}
				return m
			}
			vary := []string{"Accept-Language", "Accept-Encoding", "Origin"}
			return []hdrStep{
				{path: "/b", origin: map[string][]string{}, got: with(map[string][]string{"Vary": vary})},
				{path: "/b", got: with(map[string][]string{"Vary": vary})},
				{path: "/b", proto: "h2", got: with(map[string][]string{"Vary": vary})},
				{path: "/b", method: http.MethodHead, got: with(nil)},
				{path: "/b", send: []string{"If-None-Match", `"v1"`}, status: http.StatusNotModified, got: with(nil)},
				{path: "/b", send: []string{"Range", "bytes=0-9"}, status: http.StatusPartialContent,
					got: with(map[string][]string{"Content-Range": {"bytes 0-9/2160"}})},
				{path: "/b", send: []string{"Accept-Encoding", "gzip"},
					got: with(map[string][]string{"Content-Encoding": {"gzip"}, "Etag": {`"v1-gzip"`}})},
				{path: "/b", proto: "h2", send: []string{"Accept-Encoding", "gzip"},
					got: with(map[string][]string{"Content-Encoding": {"gzip"}, "Etag": {`"v1-gzip"`}})},
			}
		}(),
	}, {
		name: "variables: cache status miss then hit, the TCP peer, the host, a literal brace",
		rules: `
  - path_prefix: /
    client_cache_control: honor   # a client's no-cache revalidates (below)
    response_headers:
      set:
        X-Cache: "{cache_status}"
        X-Client: "ip={client_ip}"
        X-Host: "{host}"
        X-Literal: "{{not a variable} }"
      add: {X-Served: ["{cache_status} by edge", "constant"]}
`,
		steps: []hdrStep{
			{path: "/v", from: "127.0.0.2", host: "Example.COM.:80", origin: map[string][]string{},
				got: map[string][]string{"X-Cache": {"uri-miss"}, "X-Client": {"ip=127.0.0.2"}, "X-Host": {"example.com"},
					"X-Literal": {"{not a variable} }"}, "X-Served": {"uri-miss by edge", "constant"}}},
			{path: "/v", from: "127.0.0.3", host: "example.com",
				got: map[string][]string{"X-Cache": {"hit"}, "X-Client": {"ip=127.0.0.3"}, "X-Host": {"example.com"}, "X-Served": {"hit by edge", "constant"}}},
			{path: "/v", proto: "h2", from: "127.0.0.4", host: "example.com:8080",
				origin: map[string][]string{},
				got:    map[string][]string{"X-Cache": {"uri-miss"}, "X-Client": {"ip=127.0.0.4"}, "X-Host": {"example.com:8080"}}},
			{path: "/v", proto: "h2", from: "127.0.0.4", host: "example.com:8080",
				got: map[string][]string{"X-Cache": {"hit"}, "X-Client": {"ip=127.0.0.4"}}},
			// A client's no-cache, honoured: Cache-Status says fwd=request.
			{path: "/v", host: "example.com", send: []string{"Cache-Control", "no-cache"}, origin: map[string][]string{},
				got: map[string][]string{"X-Cache": {"request"}}},
		},
	}, {
		name: "the client's address to the origin on bypassed requests only",
		rules: `
  - path_prefix: /
    bypass: true
    request_headers:
      set: {X-Client-IP: "{client_ip}", X-Host: "{host}"}
  - path_prefix: /cached/
    bypass: false
`,
		steps: []hdrStep{
			{path: "/api", from: "127.0.0.2", host: "media.example", origin: map[string][]string{"X-Client-Ip": {"127.0.0.2"}, "X-Host": {"media.example"}}},
			{path: "/api", from: "127.0.0.3", origin: map[string][]string{"X-Client-Ip": {"127.0.0.3"}}},
			// A more specific rule caches /cached/: the client's address is not sent there (the
			// host is: the cache key holds it).
			{path: "/cached/x", from: "127.0.0.2", host: "media.example", origin: map[string][]string{"X-Client-Ip": none, "X-Host": {"media.example"}}},
			{path: "/cached/x", from: "127.0.0.3", host: "media.example"},
		},
	}, {
		name: "a rule with request conditions sends a field on the requests it bypasses",
		rules: `
  - match: {path_prefix: /, headers: {X-Debug: "1"}}
    bypass: true
    request_headers:
      set: {X-Debug-Origin: "on"}
`,
		steps: []hdrStep{
			{path: "/d", send: []string{"X-Debug", "1"}, origin: map[string][]string{"X-Debug-Origin": {"on"}}},
			{path: "/d", origin: map[string][]string{"X-Debug-Origin": none}},
			{path: "/d"},
		},
	}, {
		name: "inheritance field by field across rules",
		rules: `
  - path_prefix: /
    request_headers:
      set: {X-Route: root, X-Root: "yes"}
    response_headers:
      set: {X-A: root, X-B: root}
  - path_prefix: /api/
    request_headers:
      set: {X-Route: api}
    response_headers:
      set: {X-B: api, X-C: api}
  - path_prefix: /api/v2/
    response_headers:
      remove: [X-A]
      add: {X-C: v2}
`,
		steps: []hdrStep{
			{path: "/other", origin: map[string][]string{"X-Route": {"root"}, "X-Root": {"yes"}},
				got: map[string][]string{"X-A": {"root"}, "X-B": {"root"}, "X-C": none}},
			{path: "/other", got: map[string][]string{"X-A": {"root"}, "X-B": {"root"}, "X-C": none}},
			{path: "/api/x", origin: map[string][]string{"X-Route": {"api"}, "X-Root": {"yes"}},
				got: map[string][]string{"X-A": {"root"}, "X-B": {"api"}, "X-C": {"api"}}},
			{path: "/api/x", got: map[string][]string{"X-A": {"root"}, "X-B": {"api"}, "X-C": {"api"}}},
			{path: "/api/v2/x", origin: map[string][]string{"X-Route": {"api"}},
				got: map[string][]string{"X-A": none, "X-B": {"api"}, "X-C": {"v2"}}},
			{path: "/api/v2/x", proto: "h2", got: map[string][]string{"X-A": none, "X-B": {"api"}, "X-C": {"v2"}}},
		},
	}, {
		name: "the edge's own responses to routed requests: 403 of an access rule, 502 of a down origin",
		rules: `
  - path_prefix: /
    deny_ips: [127.0.0.5]
    response_headers:
      set: {Access-Control-Allow-Origin: "*", X-Cache: "{cache_status}"}
  - path_prefix: /down/
    origin: down
`,
		steps: []hdrStep{
			{path: "/x", from: "127.0.0.5", status: http.StatusForbidden,
				got: map[string][]string{"Access-Control-Allow-Origin": {"*"}, "X-Cache": {"none"}, "Cache-Control": {"no-store"}}},
			{path: "/down/x", status: http.StatusBadGateway,
				got: map[string][]string{"Access-Control-Allow-Origin": {"*"}, "X-Cache": {"none"}}},
			// An error before routing (an unsupported method) has no ruling.
			{path: "/x", method: "TRACE", status: http.StatusNotImplemented,
				got: map[string][]string{"Access-Control-Allow-Origin": none}},
		},
	}}
	for _, rw := range rows {
		t.Run(rw.name, func(t *testing.T) {
			t.Parallel()
			o := newHeaderOrigin(t)
			he := newHeaderEdge(t, o.URL, rw.rules)
			for i, st := range rw.steps {
				before := o.requests()
				resp := he.do(t, st)
				if want := cmp.Or(st.status, http.StatusOK); resp.StatusCode != want {
					t.Fatalf("step %d (%s %s): status %d, want %d", i, st.proto, st.path, resp.StatusCode, want)
				}
				asked := o.requests() - before
				switch {
				case st.origin == nil && asked != 0:
					t.Fatalf("step %d (%s %s): the origin was asked %d times, want a hit", i, st.proto, st.path, asked)
				case st.origin != nil && asked != 1:
					t.Fatalf("step %d (%s %s): the origin was asked %d times, want once", i, st.proto, st.path, asked)
				case st.origin != nil:
					if bad := checkFields(o.last(), st.origin); bad != "" {
						t.Errorf("step %d (%s %s): the origin saw %s", i, st.proto, st.path, bad)
					}
				}
				if bad := checkFields(resp.Header, st.got); bad != "" {
					t.Errorf("step %d (%s %s): the client got %s (Cache-Status %q)", i, st.proto, st.path, bad, resp.Header.Get("Cache-Status"))
				}
			}
		})
	}
}

// TestHeaderRulesUpstreams: the rules' request_headers reach every upstream the edge asks: a
// pool member a failed attempt is retried on, and a parent cache.
func TestHeaderRulesUpstreams(t *testing.T) {
	t.Parallel()
	rules := `
  - path_prefix: /
    request_headers:
      set: {X-Origin-Auth: secret}
      remove: [Cookie]
`
	t.Run("pool retry", func(t *testing.T) {
		t.Parallel()
		good := newHeaderOrigin(t)
		var mu sync.Mutex
		var failed []http.Header
		bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			failed = append(failed, r.Header.Clone())
			mu.Unlock()
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		t.Cleanup(bad.Close)
		he := newHeaderEdgeWith(t, fmt.Sprintf("origins:\n  - host: \"*\"\n    max_fails: 100\n    urls: [{url: %q, weight: 100}, {url: %q, weight: 1}]\n", bad.URL, good.URL), rules)
		// The first attempt goes to the failing member 100 times in 101: a few paths are
		// enough for one to be retried on the good one.
		retried := false
		for i := 0; i < 20 && !retried; i++ {
			mu.Lock()
			nBad := len(failed)
			mu.Unlock()
			nGood := good.requests()
			resp := he.do(t, hdrStep{path: fmt.Sprintf("/p%d", i), send: []string{"Cookie", "a=1"}})
			if resp.StatusCode != http.StatusOK || good.requests() != nGood+1 {
				t.Fatalf("/p%d: status %d, good member asked %d times", i, resp.StatusCode, good.requests()-nGood)
			}
			if bad := checkFields(good.last(), map[string][]string{"X-Origin-Auth": {"secret"}, "Cookie": nil}); bad != "" {
				t.Fatalf("/p%d: the good member saw %s", i, bad)
			}
			mu.Lock()
			if len(failed) > nBad {
				retried = true
				if bad := checkFields(failed[len(failed)-1], map[string][]string{"X-Origin-Auth": {"secret"}, "Cookie": nil}); bad != "" {
					t.Fatalf("/p%d: the failing member saw %s", i, bad)
				}
			}
			mu.Unlock()
		}
		if !retried {
			t.Fatal("no request was retried on another member in 20")
		}
	})
	t.Run("parent", func(t *testing.T) {
		t.Parallel()
		o := newHeaderOrigin(t)      // the origin, never asked here
		parent := newHeaderOrigin(t) // any HTTP cache: it answers its health check and the fill
		he := newHeaderEdgeWith(t, fmt.Sprintf("origins:\n  - {host: \"*\", url: %q}\nparents: {urls: [%q]}\n", o.URL, parent.URL), rules)
		resp := he.do(t, hdrStep{path: "/x", send: []string{"Cookie", "a=1"}})
		if resp.StatusCode != http.StatusOK || o.requests() != 0 {
			t.Fatalf("status %d, origin asked %d times", resp.StatusCode, o.requests())
		}
		var seen http.Header
		parent.mu.Lock()
		for _, h := range parent.seen {
			if h.Get("Via") != "" { // not the health checks
				seen = h
			}
		}
		parent.mu.Unlock()
		if seen == nil {
			t.Fatal("the parent was not asked")
		}
		if bad := checkFields(seen, map[string][]string{"X-Origin-Auth": {"secret"}, "Cookie": nil}); bad != "" {
			t.Fatalf("the parent saw %s", bad)
		}
	})
}

// TestHeaderRulesConfig: each refused rule is one line naming the file, the rule and the key.
func TestHeaderRulesConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ rule, want string }{
		// What the origin is sent shapes what is stored for every client of the key.
		{`{path_prefix: /, request_headers: {set: {X-Client-IP: "{client_ip}"}}}`,
			`rules[1]: request_headers.set.X-Client-IP: {client_ip} differs per client, which the cache key doesn't hold: only a rule with bypass: true may send it to the origin (one client's address would be in the response every client gets)`},
		{`{path_prefix: /, bypass: false, request_headers: {add: {X-Via: "from {client_ip}"}}}`,
			`rules[1]: request_headers.add.X-Via: {client_ip} differs per client, which the cache key doesn't hold: only a rule with bypass: true may send it to the origin (one client's address would be in the response every client gets)`},
		{`{match: {headers: {X-Debug: "1"}}, request_headers: {set: {X-Debug: "1"}}}`,
			`rules[1]: request_headers can't depend on methods, headers or cookies, which the cache key doesn't hold: one client's request would shape what every client gets (such a rule may set bypass, token, the access settings, response_headers, and origin and request_headers with bypass)`},
		{`{match: {cookies: {beta: "1"}}, request_headers: {remove: [Cookie]}}`,
			`rules[1]: request_headers can't depend on methods, headers or cookies, which the cache key doesn't hold: one client's request would shape what every client gets (such a rule may set bypass, token, the access settings, response_headers, and origin and request_headers with bypass)`},
		// Framing and hop-by-hop fields, on either side.
		{`{path_prefix: /, request_headers: {set: {Transfer-Encoding: chunked}}}`,
			`rules[1]: request_headers.set.Transfer-Encoding: Transfer-Encoding is not for rules (framing): the edge writes it from what it sends`},
		{`{path_prefix: /, request_headers: {set: {host: other.example}}}`,
			`rules[1]: request_headers.set.host: host is not for rules (the origin's host_header says what the origin sees as Host): the edge writes it from what it sends`},
		{`{path_prefix: /, request_headers: {remove: [Connection]}}`,
			`rules[1]: request_headers.remove: Connection: Connection is not for rules (hop-by-hop): the edge writes it from what it sends`},
		{`{path_prefix: /, response_headers: {remove: [content-length]}}`,
			`rules[1]: response_headers.remove: content-length: content-length is not for rules (framing): the edge writes it from what it sends`},
		{`{path_prefix: /, response_headers: {set: {Content-Encoding: gzip}}}`,
			`rules[1]: response_headers.set.Content-Encoding: Content-Encoding is not for rules (framing): the edge writes it from what it sends`},
		{`{path_prefix: /, response_headers: {add: {TE: trailers}}}`,
			`rules[1]: response_headers.add.TE: TE is not for rules (hop-by-hop): the edge writes it from what it sends`},
		// The edge's own request fields.
		{`{path_prefix: /, request_headers: {set: {Range: bytes=0-}}}`,
			`rules[1]: request_headers.set.Range: Range is the edge's own on upstream requests (slices and revalidation)`},
		{`{path_prefix: /, request_headers: {remove: [CDN-Loop]}}`,
			`rules[1]: request_headers.remove: CDN-Loop: CDN-Loop is the edge's own on upstream requests (loop detection)`},
		// Caching semantics on the way out.
		{`{path_prefix: /, response_headers: {set: {Vary: Origin}}}`,
			`rules[1]: response_headers.set.Vary: Vary may only be added to (adding to Vary only narrows what caches downstream reuse; setting or removing it could drop Accept-Encoding and serve one coding for another)`},
		{`{path_prefix: /, response_headers: {remove: [Vary]}}`,
			`rules[1]: response_headers.remove: Vary: Vary may only be added to (adding to Vary only narrows what caches downstream reuse; setting or removing it could drop Accept-Encoding and serve one coding for another)`},
		{`{path_prefix: /, response_headers: {set: {ETag: '"x"'}}}`,
			`rules[1]: response_headers.set.ETag: ETag can't be set or removed by a rule (a validator the edge answers conditionals with)`},
		{`{path_prefix: /, response_headers: {remove: [Age]}}`,
			`rules[1]: response_headers.remove: Age: Age can't be set or removed by a rule (each cache's own account (RFC 9111 §5.1))`},
		{`{path_prefix: /, response_headers: {add: {Cache-Status: "x; hit"}}}`,
			`rules[1]: response_headers.add.Cache-Status: Cache-Status can't be set or removed by a rule (each cache's own account (RFC 9211))`},
		{`{path_prefix: /, response_headers: {remove: [Via]}}`,
			`rules[1]: response_headers.remove: Via: Via can't be set or removed by a rule (each cache's own account, and loop detection)`},
		{`{path_prefix: /, response_headers: {set: {Cache-Control: no-store}}}`,
			`rules[1]: response_headers.set.Cache-Control: Cache-Control can't be set or removed by a rule (what clients are told of freshness is browser_ttl's)`},
		// Names, values, variables.
		{`{path_prefix: /, response_headers: {set: {"X Bad": "1"}}}`,
			`rules[1]: response_headers.set.X Bad: "X Bad" is not a header field name`},
		{`{path_prefix: /, response_headers: {set: {X-Bad: "a\r\nSet-Cookie: x=1"}}}`,
			`rules[1]: response_headers.set.X-Bad: "a\r\nSet-Cookie: x=1" is not a valid field value (no CR, LF or other control bytes)`},
		{`{path_prefix: /, response_headers: {set: {X-Bad: "a\u0000b"}}}`,
			`rules[1]: response_headers.set.X-Bad: "a\x00b" is not a valid field value (no CR, LF or other control bytes)`},
		{`{path_prefix: /, response_headers: {set: {X-Who: "{user}"}}}`,
			`rules[1]: response_headers.set.X-Who: "{user}": unknown variable {user} (known: {client_ip}, {host}, {cache_status}; a literal '{' is written '{{')`},
		{`{path_prefix: /, response_headers: {set: {X-Who: "{host"}}}`,
			`rules[1]: response_headers.set.X-Who: "{host": a '{' opens a variable that is never closed (write a literal '{' as '{{')`},
		{`{path_prefix: /, request_headers: {set: {X-Cache: "{cache_status}"}}}`,
			`rules[1]: request_headers.set.X-Cache: "{cache_status}": {cache_status} is known only on the way out: use it in response_headers`},
		{`{path_prefix: /, response_headers: {set: {X-A: "1"}, remove: [x-a]}}`,
			`rules[1]: response_headers.remove: x-a: X-A is named twice (in set and remove): give it once`},
		{`{path_prefix: /, response_headers: {set: {X-A: []}}}`,
			`rules[1]: response_headers.set.X-A: give a value`},
	} {
		file := filepath.Join(t.TempDir(), "edge.yaml")
		conf := "origins: [{url: \"http://127.0.0.1:1\"}]\nrules:\n  - {path_prefix: /ok/, response_headers: {set: {X-Fine: \"yes\"}}}\n  - " + c.rule + "\n"
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(file)
		if err == nil || err.Error() != file+": "+c.want {
			t.Errorf("%s:\n got %v\nwant %s: %s", c.rule, err, file, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error of more than one line: %q", c.rule, err)
		}
	}
	// Unquoted braces are a YAML mapping: the error says to quote the value.
	file := filepath.Join(t.TempDir(), "edge.yaml")
	os.WriteFile(file, []byte("origins: [{url: \"http://127.0.0.1:1\"}]\nrules:\n  - path_prefix: /\n    response_headers:\n      set:\n        X-Cache: {cache_status}\n"), 0o644)
	if _, err := LoadConfig(file); err == nil || !strings.Contains(err.Error(), `line 6: want a string or a list of strings; a value holding braces must be quoted: "{cache_status}"`) {
		t.Errorf("unquoted braces: %v", err)
	}
}

// TestSampleHeaderConfig: the commented header rules of samples/edge.yaml, uncommented, load
// and say what the sample says.
func TestSampleHeaderConfig(t *testing.T) {
	b, err := os.ReadFile("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "  # - path_prefix: /site/"):
			in = true
			rules = append(rules, strings.Replace(line, "  # ", "  ", 1))
		case in && strings.HasPrefix(line, "  #   "):
			rules = append(rules, strings.Replace(line, "  # ", "  ", 1))
		case in:
			in = false
		}
	}
	f := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(f, []byte("origins: [{url: 'http://127.0.0.1:1'}]\nrules:\n"+strings.Join(rules, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(f)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil || len(cfg.Rules) != 2 {
		t.Fatalf("sample header rules: %v (%d rules)\n%s", err, len(cfg.Rules), strings.Join(rules, "\n"))
	}
	site, api := cfg.Rules[0].RuleHeaders, cfg.Rules[1].RuleHeaders
	switch {
	case site.RequestHeaders == nil || !slices.Equal(site.RequestHeaders.Add["X-Edge-Tag"], HeaderValues{"a", "b"}) ||
		!slices.Equal(site.RequestHeaders.Remove, HeaderValues{"Cookie"}) || site.RequestHeaders.Set["X-Origin-Auth"][0] != "s3cr3t":
		t.Errorf("sample /site/ request_headers: %+v", site.RequestHeaders)
	case site.ResponseHeaders == nil || len(site.ResponseHeaders.Set) != 3 || site.ResponseHeaders.Set["X-Cache"][0] != "{cache_status}" ||
		!slices.Equal(site.ResponseHeaders.Add["Vary"], HeaderValues{"Origin"}) || !slices.Equal(site.ResponseHeaders.Remove, HeaderValues{"X-Powered-By"}):
		t.Errorf("sample /site/ response_headers: %+v", site.ResponseHeaders)
	case api.RequestHeaders == nil || api.RequestHeaders.Set["X-Client-IP"][0] != "{client_ip}" || api.ResponseHeaders == nil:
		t.Errorf("sample /site/api/ header rules: %+v", api)
	}
}

// TestHeaderVariablesNoControlBytes: whatever a variable's value holds, the field gets no
// control byte (the servers refuse such a Host already; this is the last guard).
func TestHeaderVariablesNoControlBytes(t *testing.T) {
	tpl, err := parseTemplate("h={host} s={cache_status}", responseSide)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = "a\r\nSet-Cookie: x=1\x00\x7f\tb.example"
	got := string(tpl.appendValue(nil, &headerVars{r: r, cs: "hit\r\nX: 1"}))
	if want := "h=aset-cookie: x=1b.example s=hitX: 1"; got != want {
		t.Fatalf("expanded %q, want %q", got, want)
	}
}

// TestHeaderRulesReload: a reload's new header rules apply to the next hit, on HTTP/1.1's
// pre-serialised head too (the constant fields are the ruling's, the stored ones filtered per hit).
func TestHeaderRulesReload(t *testing.T) {
	t.Parallel()
	o := newHeaderOrigin(t)
	he := newHeaderEdge(t, o.URL, "  - {path_prefix: /, response_headers: {set: {X-Version: one}}}\n")
	for i, want := range []string{"one", "one"} {
		if got := he.do(t, hdrStep{path: "/r"}).Header.Values("X-Version"); !slices.Equal(got, []string{want}) {
			t.Fatalf("request %d: X-Version %q, want %q", i, got, want)
		}
	}
	file := filepath.Join(t.TempDir(), "edge.yaml")
	conf := fmt.Sprintf("memory: 64MiB\nadmin: \"\"\nhttp2: {h2c: true}\norigins: [{host: \"*\", url: %q}]\nrules:\n  - {path_prefix: /, response_headers: {set: {X-Version: two}, remove: [X-Powered-By]}}\n", o.URL)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := he.e.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"h1", "h2"} {
		resp := he.do(t, hdrStep{path: "/r", proto: proto})
		if bad := checkFields(resp.Header, map[string][]string{"X-Version": {"two"}, "X-Powered-By": nil}); bad != "" {
			t.Errorf("%s after the reload: %s", proto, bad)
		}
	}
	if o.requests() != 1 {
		t.Errorf("the origin was asked %d times, want once (the reload keeps the cache)", o.requests())
	}
}
