package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// warmOrigin is a loopback origin that counts requests by path and the most it had in flight.
type warmOrigin struct {
	*testOrigin
	mu       sync.Mutex
	byPath   map[string]int
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

func newWarmOrigin(t *testing.T, serve func(w http.ResponseWriter, r *http.Request, o *warmOrigin)) *warmOrigin {
	o := &warmOrigin{byPath: map[string]int{}}
	o.testOrigin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.byPath[r.URL.Path]++
		o.mu.Unlock()
		n := o.inFlight.Add(1)
		defer o.inFlight.Add(-1)
		for m := o.maxIn.Load(); n > m && !o.maxIn.CompareAndSwap(m, n); m = o.maxIn.Load() {
		}
		serve(w, r, o)
	})
	return o
}

func (o *warmOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byPath[path]
}

// warmAPI calls the admin API with the token (or another one) and a JSON body.
func warmAPI(t *testing.T, method, u, token, body string) (int, http.Header, string) {
	t.Helper()
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

// startWarm posts a job and returns its id.
func startWarm(t *testing.T, admin, body string) string {
	t.Helper()
	code, h, resp := warmAPI(t, "POST", admin+"/warm", "tok", body)
	var r WarmReport
	if err := json.Unmarshal([]byte(resp), &r); code != http.StatusAccepted || err != nil || r.ID == "" || h.Get("Location") != "/warm/"+r.ID {
		t.Fatalf("POST /warm %s: %d %v %s (Location %q)", body, code, err, resp, h.Get("Location"))
	}
	return r.ID
}

// warmReport reads a job's report.
func warmReport(t *testing.T, admin, id string) WarmReport {
	t.Helper()
	code, _, body := warmAPI(t, "GET", admin+"/warm/"+id, "tok", "")
	var r WarmReport
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
		t.Fatalf("GET /warm/%s: %d %v %s", id, code, err, body)
	}
	return r
}

// waitWarm polls the job until it is no longer running (at most a minute: the machine is shared).
func waitWarm(t *testing.T, admin, id string) WarmReport {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := warmReport(t, admin, id)
		if r.State != warmRunning {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still running after a minute: %+v", id, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// warmEdge is an edge serving cdn.test from origin, with its admin API (token "tok").
func warmEdge(t *testing.T, origin string) (*Edge, *edgeServer, string) {
	e, srv := newEdge(t, origin, func(c *Config) { c.Origins = []Origin{{Host: "cdn.test", URL: origin}} })
	admin := httptest.NewServer(e.AdminHandler("tok"))
	t.Cleanup(admin.Close)
	return e, srv, admin.URL
}

// TestWarmURLs: a list of URLs is warmed through the edge — each fetched from the origin once,
// at most `concurrency` at once — a failing URL is reported without stopping the job, an
// uncacheable one is counted as such; afterwards every client GET is a hit and the origin sees
// nothing more; warming again finds them all fresh.
func TestWarmURLs(t *testing.T) {
	const conc = 4
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, o *warmOrigin) {
		// Hold each request until more than conc are in flight (never, if the bound holds)
		// or a while has passed: a bound that let more through would show.
		for deadline := time.Now().Add(100 * time.Millisecond); o.inFlight.Load() <= conc && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		switch r.URL.Path {
		case "/bad":
			http.Error(w, "the origin broke", http.StatusInternalServerError)
			return
		case "/private":
			w.Header().Set("Cache-Control", "no-store")
		default:
			w.Header().Set("Cache-Control", "max-age=600")
		}
		fmt.Fprintf(w, "body of %s", r.URL.Path)
	})
	_, srv, admin := warmEdge(t, o.URL)

	var urls, paths []string
	for i := range 40 {
		paths = append(paths, fmt.Sprintf("/seg/%d.m4s", i))
	}
	for _, p := range append(paths, "/bad", "/private") {
		urls = append(urls, "http://cdn.test"+p)
	}
	body, _ := json.Marshal(map[string]any{"urls": urls, "concurrency": conc})
	r := waitWarm(t, admin, startWarm(t, admin, string(body)))

	if r.State != warmDone || r.URLs != 42 || r.Done != 42 || r.Filled != 40 || r.NotStored != 1 || r.Failed != 1 || r.Hit != 0 {
		t.Fatalf("report: %+v", r)
	}
	if len(r.Errors) != 1 || r.Errors[0].URL != "http://cdn.test/bad" || !strings.Contains(r.Errors[0].Error, "HTTP 500") {
		t.Errorf("errors: %+v", r.Errors)
	}
	if want := int64(len("body of /seg/0.m4s")*10 + len("body of /seg/10.m4s")*30 + len("body of /private") + len("the origin broke\n")); r.Bytes != want {
		t.Errorf("bytes %d, want %d", r.Bytes, want)
	}
	if m := o.maxIn.Load(); m > conc || m < 2 {
		t.Errorf("the origin had %d requests in flight at most; want 2 to %d", m, conc)
	}
	for _, p := range paths {
		if n := o.count(p); n != 1 {
			t.Errorf("%s fetched %d times by the warm-up", p, n)
		}
	}
	before := o.hits.Load()
	for _, p := range paths {
		res := get(t, srv.URL+p, "Host", "cdn.test")
		if !strings.Contains(res.cacheStatus(), "hit") || res.body != "body of "+p {
			t.Errorf("client GET %s after the warm-up: %s %q", p, res.cacheStatus(), res.body)
		}
	}
	if n := o.hits.Load() - before; n != 0 {
		t.Errorf("the client pass made %d origin requests", n)
	}

	// Again: every stored URL is found fresh, and not fetched.
	before = o.hits.Load()
	body, _ = json.Marshal(map[string]any{"urls": urls[:40]})
	r = waitWarm(t, admin, startWarm(t, admin, string(body)))
	if r.State != warmDone || r.Hit != 40 || r.Filled != 0 || r.Concurrency != warmConcurrency {
		t.Errorf("second warm-up: %+v", r)
	}
	if n := o.hits.Load() - before; n != 0 {
		t.Errorf("the second warm-up made %d origin requests", n)
	}
}

// TestWarmManifest: from one master playlist URL, every playlist, init segment and segment of
// the HLS presentation is warmed (byte-range segments once, keys not), and from one MPD every
// DASH segment; client GETs of each are then hits.
func TestWarmManifest(t *testing.T) {
	files := map[string]string{
		"/vod/master.m3u8": "#EXTM3U\n" +
			"#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"/keys/k1\"\n" +
			"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/index.m3u8\"\n" +
			"#EXT-X-STREAM-INF:BANDWIDTH=500000,AUDIO=\"a\"\nv1/index.m3u8\n" +
			"#EXT-X-STREAM-INF:BANDWIDTH=900000,AUDIO=\"a\"\nhttp://cdn.test/vod/v2/index.m3u8\n",
		"/vod/audio/index.m3u8": "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\n1.m4s\n#EXTINF:2,\n2.m4s\n#EXT-X-ENDLIST\n",
		"/vod/v1/index.m3u8":    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k1\"\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\n1.m4s\n#EXTINF:2,\n/vod/v1/2.m4s\n#EXT-X-ENDLIST\n",
		"/vod/v2/index.m3u8":    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"media.mp4\",BYTERANGE=\"100@0\"\n#EXTINF:2,\n#EXT-X-BYTERANGE:50@100\nmedia.mp4\n#EXTINF:2,\n#EXT-X-BYTERANGE:50\nmedia.mp4\n#EXT-X-ENDLIST\n",
		"/vod/audio/init.mp4":   "a-init", "/vod/audio/1.m4s": "a1", "/vod/audio/2.m4s": "a2",
		"/vod/v1/init.mp4": "v1-init", "/vod/v1/1.m4s": "v1-1", "/vod/v1/2.m4s": "v1-2",
		"/vod/v2/media.mp4": strings.Repeat("m", 200),
		"/dash/manifest.mpd": `<?xml version="1.0"?><MPD type="static" mediaPresentationDuration="PT6S"><Period>
<AdaptationSet><SegmentTemplate media="$RepresentationID$/$Number%03d$.m4s" initialization="$RepresentationID$/init.mp4" timescale="1000">
<SegmentTimeline><S t="0" d="2000" r="2"/></SegmentTimeline></SegmentTemplate>
<Representation id="hi"/><Representation id="lo"/></AdaptationSet></Period></MPD>`,
	}
	var dashFiles []string
	for _, rep := range []string{"hi", "lo"} {
		files["/dash/"+rep+"/init.mp4"] = rep + "-init"
		dashFiles = append(dashFiles, "/dash/"+rep+"/init.mp4")
		for i := 1; i <= 3; i++ {
			p := fmt.Sprintf("/dash/%s/%03d.m4s", rep, i)
			files[p] = p
			dashFiles = append(dashFiles, p)
		}
	}
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, _ *warmOrigin) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, body)
	})
	_, srv, admin := warmEdge(t, o.URL)

	r := waitWarm(t, admin, startWarm(t, admin, `{"manifest": "http://cdn.test/vod/master.m3u8"}`))
	hlsFiles := []string{"/vod/master.m3u8", "/vod/audio/index.m3u8", "/vod/v1/index.m3u8", "/vod/v2/index.m3u8",
		"/vod/audio/init.mp4", "/vod/audio/1.m4s", "/vod/audio/2.m4s", "/vod/v1/init.mp4", "/vod/v1/1.m4s", "/vod/v1/2.m4s", "/vod/v2/media.mp4"}
	if r.State != warmDone || r.URLs != len(hlsFiles) || r.Filled != len(hlsFiles) || r.Failed != 0 || r.Manifest != "http://cdn.test/vod/master.m3u8" {
		t.Fatalf("HLS warm-up: %+v", r)
	}
	if n := o.count("/keys/k1"); n != 0 {
		t.Errorf("the key was fetched %d times", n)
	}

	r = waitWarm(t, admin, startWarm(t, admin, `{"manifest": "http://cdn.test/dash/manifest.mpd", "concurrency": 2}`))
	if r.State != warmDone || r.URLs != 1+len(dashFiles) || r.Filled != 1+len(dashFiles) || r.Failed != 0 {
		t.Fatalf("DASH warm-up: %+v", r)
	}
	before := o.hits.Load()
	for _, p := range append(append(hlsFiles, "/dash/manifest.mpd"), dashFiles...) {
		if n := o.count(p); n != 1 {
			t.Errorf("%s fetched %d times", p, n)
		}
		res := get(t, srv.URL+p, "Host", "cdn.test")
		if !strings.Contains(res.cacheStatus(), "hit") || res.body != files[p] {
			t.Errorf("client GET %s: %s %q", p, res.cacheStatus(), res.body)
		}
	}
	if n := o.hits.Load() - before; n != 0 {
		t.Errorf("the client pass made %d origin requests", n)
	}

	// A manifest that isn't one fails the job, the reason naming it.
	r = waitWarm(t, admin, startWarm(t, admin, `{"manifest": "http://cdn.test/vod/v1/init.mp4"}`))
	if r.State != warmFailedJob || !strings.Contains(r.Reason, "http://cdn.test/vod/v1/init.mp4") || !strings.Contains(r.Reason, "not an HLS playlist") {
		t.Errorf("warming a manifest that is not one: %+v", r)
	}
	r = waitWarm(t, admin, startWarm(t, admin, `{"manifest": "http://cdn.test/vod/missing.m3u8"}`))
	if r.State != warmFailedJob || !strings.Contains(r.Reason, "HTTP 404") || r.Failed != 1 {
		t.Errorf("warming a missing manifest: %+v", r)
	}
}

// TestWarmRefusals: the admin token is required; hosts the edge doesn't serve, bad bodies and
// bounds are refused with the reason; jobs past the limit get 429.
func TestWarmRefusals(t *testing.T) {
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, _ *warmOrigin) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "x")
	})
	_, _, admin := warmEdge(t, o.URL)
	ok := `{"urls": ["http://cdn.test/a"]}`
	for _, token := range []string{"", "wrong"} {
		if code, h, _ := warmAPI(t, "POST", admin+"/warm", token, ok); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("POST /warm with token %q: %d", token, code)
		}
		if code, _, _ := warmAPI(t, "GET", admin+"/warm", token, ""); code != http.StatusUnauthorized {
			t.Errorf("GET /warm with token %q: %d", token, code)
		}
	}
	cases := []struct {
		body   string
		status int
		reason string
	}{
		{`{"urls": ["http://cdn.test/a", "http://evil.test/x"]}`, 400, `host "evil.test" is not served by this edge`},
		{`{"manifest": "http://169.254.169.254/latest/meta-data"}`, 400, `host "169.254.169.254" is not served`},
		{`{"urls": ["/relative"]}`, 400, "not an absolute http or https URL"},
		{`{"urls": ["ftp://cdn.test/a"]}`, 400, "not an absolute http or https URL"},
		{`{"urls": ["http://cdn.test/a"], "manifest": "http://cdn.test/m.m3u8"}`, 400, "not both"},
		{`{}`, 400, `give "urls"`},
		{`{"urls": ["http://cdn.test/a"], "concurrency": 65}`, 400, "concurrency must be 1 to 64"},
		{`{"url": "http://cdn.test/a"}`, 400, "unknown field"},
		{`not json`, 400, "body must be JSON"},
	}
	for _, c := range cases {
		code, _, body := warmAPI(t, "POST", admin+"/warm", "tok", c.body)
		if code != c.status || !strings.Contains(body, c.reason) {
			t.Errorf("POST /warm %s: %d %q, want %d %q", c.body, code, body, c.status, c.reason)
		}
	}
	if n := o.hits.Load(); n != 0 {
		t.Errorf("refused jobs made %d origin requests", n)
	}
	if code, _, _ := warmAPI(t, "GET", admin+"/warm/nope", "tok", ""); code != http.StatusNotFound {
		t.Errorf("GET of an unknown job: %d", code)
	}
	if code, _, _ := warmAPI(t, "DELETE", admin+"/warm/nope", "tok", ""); code != http.StatusNotFound {
		t.Errorf("DELETE of an unknown job: %d", code)
	}
}

// TestWarmCancelAndLimits: a job can be cancelled (its workers stop, the origin sees nothing
// more from it); no more than warmMaxRunning run at once; /stats shows the jobs; closing the
// edge stops the jobs running.
func TestWarmCancelAndLimits(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, _ *warmOrigin) {
		if strings.HasPrefix(r.URL.Path, "/held/") {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "x")
	})
	e, _, admin := warmEdge(t, o.URL)
	held := func(job, n int) string {
		var urls []string
		for i := range n {
			urls = append(urls, fmt.Sprintf("http://cdn.test/held/%d/%d", job, i))
		}
		b, _ := json.Marshal(map[string]any{"urls": urls, "concurrency": 2})
		return string(b)
	}
	var ids []string
	for i := range warmMaxRunning {
		ids = append(ids, startWarm(t, admin, held(i, 100)))
	}
	waitUntil(t, func() bool { return o.inFlight.Load() == 2*warmMaxRunning })
	code, h, body := warmAPI(t, "POST", admin+"/warm", "tok", held(99, 1))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "running already") {
		t.Errorf("a job past the limit: %d %q", code, body)
	}

	// /stats lists them, running.
	code, _, body = warmAPI(t, "GET", admin+"/stats", "tok", "")
	var stats struct {
		Warm struct {
			Running int          `json:"running"`
			Jobs    []WarmReport `json:"jobs"`
		} `json:"warm"`
		Misses int64 `json:"misses"`
	}
	if err := json.Unmarshal([]byte(body), &stats); code != 200 || err != nil || stats.Warm.Running != warmMaxRunning || len(stats.Warm.Jobs) != warmMaxRunning || stats.Misses == 0 {
		t.Errorf("/stats: %d %v %s", code, err, body)
	}

	// Cancel the first: it stops at once, with its URLs left undone.
	code, _, body = warmAPI(t, "DELETE", admin+"/warm/"+ids[0], "tok", "")
	var r WarmReport
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil || r.State != warmCancelled || r.Reason != errWarmDeleted.Error() || r.Done >= 100 || r.Finished == nil {
		t.Fatalf("DELETE: %d %v %s", code, err, body)
	}
	seenBefore := countPrefix(o, "/held/0/")
	if seenBefore > 2+2 { // its two workers' first URLs, and at most the two taken as they stopped
		t.Errorf("the cancelled job reached the origin with %d URLs", seenBefore)
	}
	// A fifth job may start now.
	ids = append(ids, startWarm(t, admin, held(4, 1)))

	// Closing the edge stops the others (and then waits for the fills they started, which
	// the origin holds until released).
	closed := make(chan error, 1)
	go func() { closed <- e.Close() }()
	for _, id := range ids[1:] {
		j := e.warm.job(id)
		select {
		case <-j.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("job %s still running 30 s after Close began", id)
		}
		if r := j.report(); r.State != warmCancelled || r.Reason != errWarmClosing.Error() {
			t.Errorf("job %s after Close: %+v", id, r)
		}
	}
	releaseOnce.Do(func() { close(release) })
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if n := countPrefix(o, "/held/0/"); n != seenBefore {
		t.Errorf("the cancelled job went on: %d URLs at the origin, %d when cancelled", n, seenBefore)
	}
	if _, err := e.warm.start(warmSpec{URLs: []string{"http://cdn.test/a"}, Concurrency: 1}); err != errWarmClosing {
		t.Errorf("a job after Close: %v", err)
	}
}

func countPrefix(o *warmOrigin, prefix string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for p, c := range o.byPath {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// TestWarmHTTPS: an https URL is warmed under the key TLS clients' requests have (the scheme
// is part of the key), so their GETs are hits.
func TestWarmHTTPS(t *testing.T) {
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, _ *warmOrigin) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "over TLS")
	})
	e, _, admin := warmEdge(t, o.URL)
	tlsFront := httptest.NewTLSServer(e)
	t.Cleanup(tlsFront.Close)
	r := waitWarm(t, admin, startWarm(t, admin, `{"urls": ["https://cdn.test/secure.m4s"]}`))
	if r.Filled != 1 {
		t.Fatalf("warm-up: %+v", r)
	}
	req, _ := http.NewRequest("GET", tlsFront.URL+"/secure.m4s", nil)
	req.Host = "cdn.test"
	resp, err := tlsFront.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cs := resp.Header.Get("Cache-Status"); !strings.Contains(cs, "; hit") || string(body) != "over TLS" || o.hits.Load() != 1 {
		t.Errorf("TLS client after an https warm-up: %q %q, %d origin requests", cs, body, o.hits.Load())
	}
}

// TestWarmBounds: a job takes at most its URL limit (and says it left some out); a list
// longer than it is refused; a manifest larger than its limit fails the job; a URL slower than
// the fetch timeout fails, the job going on.
func TestWarmBounds(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // before the edge's cleanup, which waits for the fills
	var playlist strings.Builder
	playlist.WriteString("#EXTM3U\n#EXT-X-TARGETDURATION:2\n")
	for i := range 10 {
		fmt.Fprintf(&playlist, "#EXTINF:2,\n%d.m4s\n", i)
	}
	playlist.WriteString("#EXT-X-ENDLIST\n") // (a live one would have the edge prefetch its segments)
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, _ *warmOrigin) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path == "/index.m3u8" {
			io.WriteString(w, playlist.String())
			return
		}
		io.WriteString(w, "x")
	})
	e, _, admin := warmEdge(t, o.URL)
	e.warm.maxURLs = 5
	r := waitWarm(t, admin, startWarm(t, admin, `{"manifest": "http://cdn.test/index.m3u8"}`))
	if r.State != warmDone || r.URLs != 5 || !r.Truncated || r.Filled != 5 || o.hits.Load() != 5 {
		t.Errorf("a 10-segment playlist under a limit of 5 URLs: %+v, %d origin requests", r, o.hits.Load())
	}
	code, _, body := warmAPI(t, "POST", admin+"/warm", "tok", `{"urls": ["http://cdn.test/1","http://cdn.test/2","http://cdn.test/3","http://cdn.test/4","http://cdn.test/5","http://cdn.test/6"]}`)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 5") {
		t.Errorf("6 URLs under a limit of 5: %d %q", code, body)
	}

	e.warm.maxURLs, e.warm.maxManifest = warmMaxURLs, 100
	r = waitWarm(t, admin, startWarm(t, admin, `{"manifest": "http://cdn.test/index.m3u8"}`))
	if r.State != warmFailedJob || !strings.Contains(r.Reason, "manifest larger than 100 bytes") {
		t.Errorf("a manifest over its limit: %+v", r)
	}

	e.warm.fetchTimeout = 300 * time.Millisecond
	r = waitWarm(t, admin, startWarm(t, admin, `{"urls": ["http://cdn.test/slow", "http://cdn.test/quick"], "concurrency": 1}`))
	if r.State != warmDone || r.Failed != 1 || r.Filled != 1 || len(r.Errors) != 1 || r.Errors[0].URL != "http://cdn.test/slow" || !strings.Contains(r.Errors[0].Error, "timed out after 300ms") {
		t.Errorf("a URL slower than the fetch timeout: %+v", r)
	}
}

// TestWarmJoinsClientFill: a warm request and a client's request for the same cold object
// share one origin fetch (the one fill of its key).
func TestWarmJoinsClientFill(t *testing.T) {
	release := make(chan struct{})
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, _ *warmOrigin) {
		<-release
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "shared")
	})
	e, srv, admin := warmEdge(t, o.URL)
	got := make(chan result, 1)
	go func() { got <- get(t, srv.URL+"/premiere.m4s", "Host", "cdn.test") }()
	waitUntil(t, func() bool { return o.inFlight.Load() == 1 })
	id := startWarm(t, admin, `{"urls": ["http://cdn.test/premiere.m4s"]}`)
	waitCollapsed(e, 1)
	close(release)
	r := waitWarm(t, admin, id)
	if c := <-got; c.body != "shared" || r.Filled != 1 || r.Bytes != int64(len("shared")) {
		t.Errorf("client %q, warm-up %+v", c.body, r)
	}
	if n := o.hits.Load(); n != 1 || e.stats.Collapsed.Load() != 1 {
		t.Errorf("%d origin requests, %d collapsed; want 1 and 1", n, e.stats.Collapsed.Load())
	}
}

// TestWarmCancelManifest: a manifest job cancelled while its manifest is being fetched ends
// cancelled (not failed), and nothing it would have found is fetched.
func TestWarmCancelManifest(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // before the edge's cleanup, which waits for the fills
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, _ *warmOrigin) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n1.m4s\n#EXT-X-ENDLIST\n")
	})
	_, _, admin := warmEdge(t, o.URL)
	id := startWarm(t, admin, `{"manifest": "http://cdn.test/held.m3u8"}`)
	waitUntil(t, func() bool { return o.inFlight.Load() == 1 })
	code, _, body := warmAPI(t, "DELETE", admin+"/warm/"+id, "tok", "")
	var r WarmReport
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil || r.State != warmCancelled || r.Reason != errWarmDeleted.Error() || r.Done != 0 {
		t.Errorf("DELETE during the manifest's fetch: %d %v %s", code, err, body)
	}
	if n := o.count("/1.m4s"); n != 0 {
		t.Errorf("a segment of the cancelled job was fetched %d times", n)
	}
}

// TestWarmKeyedView: under key_device_class, with an origin that answers Vary: User-Agent, a
// warmed URL is reported as filled (not "not stored"), and warming it again finds it fresh —
// the warm-up looks the request up as the flow does, with the User-Agent down to its class
// (keyview.go), not with its own User-Agent, which no stored variant matches.
func TestWarmKeyedView(t *testing.T) {
	o := newWarmOrigin(t, func(w http.ResponseWriter, r *http.Request, o *warmOrigin) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "User-Agent")
		fmt.Fprintf(w, "for %s", r.Header.Get(DeviceClassHeader))
	})
	on := true
	e, srv := newEdge(t, o.URL, func(c *Config) {
		c.Origins = []Origin{{Host: "cdn.test", URL: o.URL}}
		c.Rules = []Rule{{PathPrefix: "/", KeyDeviceClass: &on}}
	})
	admin := httptest.NewServer(e.AdminHandler("tok"))
	t.Cleanup(admin.Close)

	body := `{"urls": ["http://cdn.test/a.m4s"]}`
	if r := waitWarm(t, admin.URL, startWarm(t, admin.URL, body)); r.Filled != 1 || r.NotStored != 0 || r.Failed != 0 {
		t.Fatalf("first warm-up: %+v, want the URL filled", r)
	}
	if r := waitWarm(t, admin.URL, startWarm(t, admin.URL, body)); r.Hit != 1 || r.Filled != 0 {
		t.Fatalf("second warm-up: %+v, want a hit", r)
	}
	if n := o.count("/a.m4s"); n != 1 {
		t.Errorf("the origin was asked for /a.m4s %d times, want 1", n)
	}
	res := get(t, srv.URL+"/a.m4s", "Host", "cdn.test", "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
	if !strings.Contains(res.cacheStatus(), "hit") || res.body != "for desktop" {
		t.Errorf("a desktop client after the warm-up: %s %q", res.cacheStatus(), res.body)
	}
}
