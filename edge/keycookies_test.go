package edge

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reelvideo/reel/edge/cachekey"
)

// Real-world User-Agents for the device-class rows.
const (
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
	uaPixel   = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36"
	uaIPad    = "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
	uaTabletA = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Safari/537.36"
	uaWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaGbot    = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)

// keyStep is one request of a keyStepsTest row and what must follow from it.
type keyStep struct {
	path string
	hdr  []string // name, value pairs; a name may repeat (several field lines)
	// hits is the number of origin requests the row has made once this one is answered.
	hits int64
	// served is the origin request whose answer this client gets (its "n="), 0: hits.
	served int64
	// saw, when not "", is what the origin must have seen for the answer served: its echo
	// of Cookie, User-Agent and Reel-Device-Class.
	saw string
	// status is a substring the Cache-Status must hold ("" : not checked).
	status string
}

// keyOrigin is a real loopback origin that counts requests and echoes, in the body, the
// request number and the Cookie, User-Agent and Reel-Device-Class it saw. By path prefix:
// /c/ max-age=60; /h/ only Last-Modified (heuristic freshness); /v/ max-age=60 with
// Vary: User-Agent; /vc/ max-age=60 with Vary: Cookie.
func keyOrigin(t *testing.T) (*testOrigin, *atomic.Int64) {
	var n atomic.Int64
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		switch {
		case strings.HasPrefix(r.URL.Path, "/c/"):
			h.Set("Cache-Control", "max-age=60")
		case strings.HasPrefix(r.URL.Path, "/h/"):
			h.Set("Last-Modified", time.Now().Add(-24*time.Hour).UTC().Format(http.TimeFormat))
		case strings.HasPrefix(r.URL.Path, "/v/"):
			h.Set("Cache-Control", "max-age=60")
			h.Set("Vary", "User-Agent")
		case strings.HasPrefix(r.URL.Path, "/vc/"):
			h.Set("Cache-Control", "max-age=60")
			h.Set("Vary", "Cookie")
		}
		fmt.Fprintf(w, "n=%d %s", i, sawOf(r.Header))
	})
	return o, &n
}

// sawOf is how keyOrigin echoes what it saw.
func sawOf(h http.Header) string {
	return fmt.Sprintf("cookie=%q ua=%q class=%q", strings.Join(h.Values("Cookie"), " | "),
		h.Get("User-Agent"), h.Get(DeviceClassHeader))
}

func saw(cookie, ua, class string) string {
	return sawOf(http.Header{"Cookie": nonEmpty(cookie), "User-Agent": nonEmpty(ua), DeviceClassHeader: nonEmpty(class)})
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// TestKeyCookiesAndDeviceClass: the cookie allow-list, bypass on cookie and the device class,
// end to end — a real loopback origin that counts what it is asked and echoes what it saw,
// and a real edge (its HTTP/1.1 server) between them. Each row is a fresh origin and edge.
func TestKeyCookiesAndDeviceClass(t *testing.T) {
	goUA := "Go-http-client/1.1"
	mobileUA, tabletUA, desktopUA := cachekey.Mobile.UserAgent(), cachekey.Tablet.UserAgent(), cachekey.Desktop.UserAgent()
	for _, tc := range []struct {
		name  string
		rules []Rule
		steps []keyStep
	}{
		{
			// Today's behaviour, kept: without key_cookies the Cookie field goes to the origin as
			// it is, and a response with explicit freshness is stored and shared whatever the
			// cookies (RFC 9111: the origin said so; Vary: Cookie or private is how it says
			// otherwise).
			name: "no key_cookies: Cookie forwarded as is, explicit freshness shared",
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "a=1; b=2"}, hits: 1, saw: saw("a=1; b=2", goUA, "")},
				{path: "/c/a", hdr: []string{"Cookie", "a=9"}, hits: 1, served: 1, saw: saw("a=1; b=2", goUA, ""), status: "hit"},
				{path: "/c/a", hits: 1, served: 1, status: "hit"},
			},
		},
		{
			// ... and a response to a request with Cookie needs explicit freshness to be
			// stored (policy.Storable, "credentials"); a cookie-less one may use a heuristic.
			name: "no key_cookies: heuristic freshness never stored for a request with Cookie",
			steps: []keyStep{
				{path: "/h/a", hdr: []string{"Cookie", "a=1"}, hits: 1},
				{path: "/h/a", hdr: []string{"Cookie", "a=1"}, hits: 2},
				{path: "/h/a", hits: 3},
				{path: "/h/a", hits: 3, served: 3, status: "hit"},
			},
		},
		{
			name:  "allow-list: the origin sees the allowed cookies alone, in name order",
			rules: []Rule{{PathPrefix: "/", KeyCookies: []string{"plan", "lang"}}},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "_ga=GA1.2.3; plan=pro; session=s3cr3t; lang=en"}, hits: 1, saw: saw("lang=en; plan=pro", goUA, "")},
			},
		},
		{
			name: "inherited by a more specific rule; [] and false undo a broader rule's",
			rules: []Rule{
				{PathPrefix: "/", KeyCookies: []string{"lang"}, KeyDeviceClass: ptr(true)},
				{PathPrefix: "/c/", TTL: time.Hour},
				{PathPrefix: "/c/raw/", KeyCookies: []string{}, KeyDeviceClass: ptr(false)},
			},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "lang=en; _ga=1", "User-Agent", uaIPhone}, hits: 1, saw: saw("lang=en", mobileUA, "mobile")},
				{path: "/c/raw/a", hdr: []string{"Cookie", "lang=en; _ga=1", "User-Agent", uaIPhone}, hits: 2, saw: saw("lang=en; _ga=1", uaIPhone, "")},
			},
		},
		{
			name:  "allow-list: clients differing only in un-keyed cookies share one response",
			rules: []Rule{{PathPrefix: "/", KeyCookies: []string{"lang"}}},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "lang=en; _ga=1"}, hits: 1, saw: saw("lang=en", goUA, "")},
				{path: "/c/a", hdr: []string{"Cookie", "_ga=2; lang=en; session=x"}, hits: 1, served: 1, status: "hit"},
				{path: "/c/a", hdr: []string{"Cookie", "lang=en"}, hits: 1, served: 1, status: "hit"},
			},
		},
		{
			name:  "allow-list: clients differing in a keyed cookie get one response each",
			rules: []Rule{{PathPrefix: "/", KeyCookies: []string{"lang"}}},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "lang=en"}, hits: 1, saw: saw("lang=en", goUA, "")},
				{path: "/c/a", hdr: []string{"Cookie", "lang=fr"}, hits: 2, saw: saw("lang=fr", goUA, "")},
				{path: "/c/a", hdr: []string{"Cookie", "x=1; lang=en"}, hits: 2, served: 1, saw: saw("lang=en", goUA, ""), status: "hit"},
				{path: "/c/a", hdr: []string{"Cookie", "lang=fr"}, hits: 2, served: 2, status: "hit"},
			},
		},
		{
			name:  "allow-list: absent, empty and no '=' are three keys",
			rules: []Rule{{PathPrefix: "/", KeyCookies: []string{"lang"}}},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "other=1"}, hits: 1, saw: saw("", goUA, "")},
				{path: "/c/a", hdr: []string{"Cookie", "lang="}, hits: 2, saw: saw("lang=", goUA, "")},
				{path: "/c/a", hdr: []string{"Cookie", "lang"}, hits: 3, saw: saw("lang", goUA, "")},
				{path: "/c/a", hits: 3, served: 1, status: "hit"},
			},
		},
		{
			name:  "allow-list: several Cookie fields (as HTTP/2 sends them) read as one",
			rules: []Rule{{PathPrefix: "/", KeyCookies: []string{"lang", "plan"}}},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "plan=pro", "Cookie", "x=1", "Cookie", "lang=en"}, hits: 1, saw: saw("lang=en; plan=pro", goUA, "")},
				{path: "/c/a", hdr: []string{"Cookie", "lang=en; plan=pro"}, hits: 1, served: 1, status: "hit"},
			},
		},
		{
			// The origin never saw the dropped cookies, so its answer is no one's in particular:
			// a heuristic lifetime is fine (it was not, above, without the allow-list).
			name:  "allow-list: a request left with no cookie may be stored on a heuristic",
			rules: []Rule{{PathPrefix: "/", KeyCookies: []string{"lang"}}},
			steps: []keyStep{
				{path: "/h/a", hdr: []string{"Cookie", "session=alice"}, hits: 1, saw: saw("", goUA, "")},
				{path: "/h/a", hdr: []string{"Cookie", "session=bob"}, hits: 1, served: 1, status: "hit"},
				// A kept cookie still counts as a credential: explicit freshness needed.
				{path: "/h/a", hdr: []string{"Cookie", "lang=en"}, hits: 2},
				{path: "/h/a", hdr: []string{"Cookie", "lang=en"}, hits: 3},
			},
		},
		{
			name:  "allow-list: an origin's Vary: Cookie is one variant per keyed cookie",
			rules: []Rule{{PathPrefix: "/", KeyCookies: []string{"lang"}}},
			steps: []keyStep{
				{path: "/vc/a", hdr: []string{"Cookie", "lang=en; _ga=1"}, hits: 1},
				{path: "/vc/a", hdr: []string{"Cookie", "_ga=2; lang=en"}, hits: 1, served: 1, status: "hit"},
			},
		},
		{
			// Bypass on cookie is a rule with a cookie condition and bypass: true: the name may
			// be a glob, "*" is presence whatever the value.
			name: "bypass on a cookie name glob: origin every time, nothing stored or shared",
			rules: []Rule{
				{PathPrefix: "/", KeyCookies: []string{"lang"}},
				{Match: RuleMatch{Cookies: map[string]string{"wordpress_logged_in_*": "*"}}, Bypass: ptr(true)},
			},
			steps: []keyStep{
				// The bypassed request goes as it is: every cookie.
				{path: "/c/a", hdr: []string{"Cookie", "wordpress_logged_in_5f4dcc3b=admin; lang=en"}, hits: 1, saw: saw("wordpress_logged_in_5f4dcc3b=admin; lang=en", goUA, ""), status: "fwd=bypass"},
				{path: "/c/a", hdr: []string{"Cookie", "lang=en; wordpress_logged_in_5f4dcc3b=admin"}, hits: 2, status: "fwd=bypass"},
				{path: "/c/a", hdr: []string{"Cookie", "wordpress_logged_in_x="}, hits: 3, status: "fwd=bypass"},
				// A later request without it is a miss, served fresh — not a bypassed answer.
				{path: "/c/a", hdr: []string{"Cookie", "lang=en"}, hits: 4, saw: saw("lang=en", goUA, ""), status: "fwd=uri-miss"},
				{path: "/c/a", hdr: []string{"Cookie", "lang=en"}, hits: 4, served: 4, status: "hit"},
				{path: "/c/a", hdr: []string{"Cookie", "wordpress_logged_in_5f4dcc3b=admin; lang=en"}, hits: 5, status: "fwd=bypass"},
			},
		},
		{
			name:  "bypass on a cookie's presence",
			rules: []Rule{{Match: RuleMatch{Cookies: map[string]string{"session": "*"}}, Bypass: ptr(true)}},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"Cookie", "session="}, hits: 1, status: "fwd=bypass"},
				{path: "/c/a", hdr: []string{"Cookie", "sessionx=1"}, hits: 2, status: "fwd=uri-miss"},
				{path: "/c/a", hdr: []string{"Cookie", "a=1", "Cookie", "session=abc"}, hits: 3, status: "fwd=bypass"},
				{path: "/c/a", hits: 3, served: 2, status: "hit"},
			},
		},
		{
			name:  "device class: phones share, a tablet differs, Vary: User-Agent one variant per class",
			rules: []Rule{{PathPrefix: "/", KeyDeviceClass: ptr(true)}},
			steps: []keyStep{
				{path: "/v/a", hdr: []string{"User-Agent", uaIPhone}, hits: 1, saw: saw("", mobileUA, "mobile")},
				{path: "/v/a", hdr: []string{"User-Agent", uaPixel}, hits: 1, served: 1, status: "hit"},
				{path: "/v/a", hdr: []string{"User-Agent", uaIPad}, hits: 2, saw: saw("", tabletUA, "tablet")},
				{path: "/v/a", hdr: []string{"User-Agent", uaTabletA}, hits: 2, served: 2, status: "hit"},
				{path: "/v/a", hdr: []string{"User-Agent", uaWindows}, hits: 3, saw: saw("", desktopUA, "desktop")},
				{path: "/v/a", hdr: []string{"User-Agent", uaGbot}, hits: 3, served: 3, status: "hit"},
				{path: "/v/a", hdr: []string{"User-Agent", "curl/8.5.0"}, hits: 3, served: 3, status: "hit"},
				{path: "/v/a", hdr: []string{"User-Agent", uaPixel}, hits: 3, served: 1, status: "hit"},
			},
		},
		{
			name: "no device class: Vary: User-Agent is one variant per User-Agent (today's behaviour)",
			steps: []keyStep{
				{path: "/v/a", hdr: []string{"User-Agent", uaIPhone}, hits: 1, saw: saw("", uaIPhone, "")},
				{path: "/v/a", hdr: []string{"User-Agent", uaPixel}, hits: 2, saw: saw("", uaPixel, "")},
				{path: "/v/a", hdr: []string{"User-Agent", uaIPhone}, hits: 2, served: 1, status: "hit"},
			},
		},
		{
			name: "a client's own Reel-Device-Class never reaches the origin of a cacheable request",
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"User-Agent", uaWindows, DeviceClassHeader, "mobile"}, hits: 1, saw: saw("", uaWindows, "")},
			},
		},
		{
			name:  "device class and cookies together",
			rules: []Rule{{PathPrefix: "/c/", KeyCookies: []string{"lang"}, KeyDeviceClass: ptr(true)}},
			steps: []keyStep{
				{path: "/c/a", hdr: []string{"User-Agent", uaIPhone, "Cookie", "lang=en; t=1"}, hits: 1, saw: saw("lang=en", mobileUA, "mobile")},
				{path: "/c/a", hdr: []string{"User-Agent", uaPixel, "Cookie", "t=2; lang=en"}, hits: 1, served: 1, status: "hit"},
				{path: "/c/a", hdr: []string{"User-Agent", uaPixel, "Cookie", "lang=de"}, hits: 2, saw: saw("lang=de", mobileUA, "mobile")},
				{path: "/c/a", hdr: []string{"User-Agent", uaIPad, "Cookie", "lang=en"}, hits: 3, saw: saw("lang=en", tabletUA, "tablet")},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _ := keyOrigin(t)
			e, srv := newEdge(t, o.URL, func(c *Config) { c.Rules = tc.rules })
			for i, st := range tc.steps {
				// The previous step's fill is over: a request arriving while an unshareable one
				// retires would go to the origin on its own and store nothing (fill.go).
				waitUntil(t, func() bool { return e.fills.Len() == 0 })
				r := get(t, srv.URL+st.path, st.hdr...)
				if r.status != http.StatusOK {
					t.Fatalf("step %d: status %d %q", i, r.status, r.body)
				}
				if got := o.hits.Load(); got != st.hits {
					t.Fatalf("step %d (%q): origin asked %d times, want %d (Cache-Status %q)", i, st.hdr, got, st.hits, r.cacheStatus())
				}
				served := st.served
				if served == 0 {
					served = st.hits
				}
				if want := fmt.Sprintf("n=%d ", served); !strings.HasPrefix(r.body, want) {
					t.Fatalf("step %d (%q): got %q, want the answer to origin request %d", i, st.hdr, r.body, served)
				}
				if st.saw != "" && !strings.HasSuffix(r.body, st.saw) {
					t.Fatalf("step %d (%q): origin saw %q, want %q", i, st.hdr, r.body, st.saw)
				}
				if st.status != "" && !strings.Contains(r.cacheStatus(), st.status) {
					t.Fatalf("step %d (%q): Cache-Status %q, want %q in it", i, st.hdr, r.cacheStatus(), st.status)
				}
			}
		})
	}
}

// TestKeyCookiesConfig: the new settings shape what is stored, so a rule with request
// conditions may not set them; a malformed glob is refused naming the rule.
func TestKeyCookiesConfig(t *testing.T) {
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Rule{Match: RuleMatch{Cookies: map[string]string{"a": "*"}}, KeyCookies: []string{"lang"}}, "key_cookies can't depend on"},
		{Rule{Match: RuleMatch{Headers: map[string]string{"X": "1"}}, KeyDeviceClass: ptr(true)}, "key_device_class can't depend on"},
		{Rule{PathPrefix: "/", KeyCookies: []string{`a\`}}, "key_cookies"},
	} {
		cfg := DefaultConfig()
		cfg.Origins = []Origin{{Host: "*", URL: "http://127.0.0.1:1"}}
		cfg.Rules = []Rule{tc.rule}
		_, err := New(cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rules[0]") {
			t.Errorf("%+v: error %v, want rules[0] … %s", tc.rule, err, tc.want)
		}
	}
}

// TestKeyCookiesPrefetch: a live segment prefetched on behalf of a playlist's request goes to
// the origin as its own rules' key leaves it — under a cookie allow-list, only the allowed
// cookies, though the playlist's rules forward them all — and is then a hit for every client
// with the same keyed cookies.
func TestKeyCookiesPrefetch(t *testing.T) {
	l := newFakeLive(2, "max-age=1", 1, 2, 3)
	var mu sync.Mutex
	cookies := map[string]string{}
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		cookies[r.URL.Path] = strings.Join(r.Header.Values("Cookie"), " | ")
		mu.Unlock()
		l.ServeHTTP(w, r)
	})
	e, srv := newEdge(t, o.URL, func(c *Config) {
		c.Rules = []Rule{{Match: RuleMatch{Extensions: []string{"m4s", "mp4"}}, KeyCookies: []string{"lang"}}}
	})
	t.Cleanup(func() { e.Close() })
	if r := get(t, srv.URL+"/live/v/index.m3u8", "Cookie", "_ga=1; lang=en"); r.status != 200 {
		t.Fatal(r.status)
	}
	var pl, seg string
	fetched := false
	waitUntil(t, func() bool { // the prefetch has been asked for and has ended
		mu.Lock()
		defer mu.Unlock()
		pl = cookies["/live/v/index.m3u8"]
		seg, fetched = cookies["/live/v/seg_3.m4s"]
		return fetched && e.manifests.InFlight() == 0
	})
	if pl != "_ga=1; lang=en" {
		t.Errorf("the playlist's origin request had Cookie %q, want it as sent", pl)
	}
	if seg != "lang=en" {
		t.Errorf("the prefetched segment's origin request had Cookie %q, want %q", seg, "lang=en")
	}
	if r := get(t, srv.URL+"/live/v/seg_3.m4s", "Cookie", "lang=en; _ga=2"); !strings.HasPrefix(r.cacheStatus(), "reel; hit") {
		t.Errorf("seg_3 with the same keyed cookie: %q, want a hit", r.cacheStatus())
	}
	if n := l.count("/live/v/seg_3.m4s"); n != 1 {
		t.Errorf("seg_3: %d origin requests, want 1", n)
	}
}

// TestKeyCookiesDocs: the README's example of these settings loads (every key known) into an
// edge that keys and forwards as the README says; samples/edge.yaml's commented lines for
// them, uncommented, are known keys too.
func TestKeyCookiesDocs(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "key_cookies: [lang, currency]")
	if !ok {
		t.Fatal("README: the key_cookies example is gone")
	}
	before := string(b)[:len(b)-len(after)]
	start := strings.LastIndex(before, "```yaml\n")
	end := strings.Index(after, "```")
	if start < 0 || end < 0 {
		t.Fatal("README: the key_cookies example is not in a yaml block")
	}
	block := before[start+len("```yaml\n"):] + after[:end]
	o, _ := keyOrigin(t)
	file := filepath.Join(t.TempDir(), "edge.yaml")
	conf := "origins:\n  - {host: \"*\", url: " + o.URL + "}\n" + dedent(block)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file)
	if err != nil {
		t.Fatalf("README example: %v\n%s", err, conf)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("README example: %v", err)
	}
	cfg.Memory = 64 << 20
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveEdge(t, e, cfg)
	t.Cleanup(srv.Close)
	if r := get(t, srv.URL+"/c/a", "Cookie", "_ga=1; currency=EUR; lang=fr"); !strings.HasSuffix(r.body, saw("currency=EUR; lang=fr", "Go-http-client/1.1", "")) {
		t.Errorf("README example, /c/a: origin saw %q", r.body)
	}
	if r := get(t, srv.URL+"/m/a", "User-Agent", uaPixel); !strings.Contains(r.body, `class="mobile"`) {
		t.Errorf("README example, /m/a: origin saw %q", r.body)
	}
	if r := get(t, srv.URL+"/c/a", "Cookie", "wordpress_logged_in_1=x; lang=fr; currency=EUR"); !strings.Contains(r.cacheStatus(), "fwd=bypass") {
		t.Errorf("README example, logged in: Cache-Status %q", r.cacheStatus())
	}

	// samples/edge.yaml: the commented key lines, uncommented into a rule, are known keys.
	s, err := os.ReadFile("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rule []string
	for _, line := range strings.Split(string(s), "\n") {
		for _, k := range []string{"key_cookies:", "key_device_class:"} {
			if strings.HasPrefix(line, "  # "+k) {
				v, _, _ := strings.Cut(strings.TrimPrefix(line, "  # "), "#")
				rule = append(rule, "    "+strings.TrimSpace(v))
			}
		}
	}
	if len(rule) != 2 {
		t.Fatalf("samples/edge.yaml documents %d of key_cookies, key_device_class", len(rule))
	}
	var c struct {
		Rules []Rule `yaml:"rules"`
	}
	dec := yaml.NewDecoder(strings.NewReader("rules:\n  - path_prefix: /\n" + strings.Join(rule, "\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil || len(c.Rules[0].KeyCookies) != 2 || c.Rules[0].KeyDeviceClass == nil {
		t.Fatalf("samples/edge.yaml key lines: %v %+v", err, c.Rules)
	}
}

// dedent removes the indentation of block's first line from every line.
func dedent(block string) string {
	lines := strings.Split(block, "\n")
	indent := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
	for i, l := range lines {
		if len(l) >= indent && strings.TrimSpace(l[:indent]) == "" {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}

// TestKeyCookiesPurge: a purge by URL removes every variant the key settings made of it (each
// keyed cookie value, each device class), and a purge by prefix every URL under it, variants
// included — not only the one a request without cookies, or a desktop, would get.
func TestKeyCookiesPurge(t *testing.T) {
	o, _ := keyOrigin(t)
	e, srv := newEdge(t, o.URL, func(c *Config) {
		c.Rules = []Rule{{PathPrefix: "/c/", KeyCookies: []string{"lang"}, KeyDeviceClass: ptr(true)}}
	})
	admin := httptest.NewServer(e.AdminHandler("t"))
	defer admin.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	variants := [][]string{
		{"Cookie", "lang=en", "User-Agent", uaIPhone},
		{"Cookie", "lang=fr", "User-Agent", uaIPhone},
		{"Cookie", "lang=en", "User-Agent", uaWindows},
		{"User-Agent", uaIPad},
	}
	stored := func(path string) (n int) {
		for _, v := range variants {
			waitUntil(t, func() bool { return e.fills.Len() == 0 })
			if strings.Contains(get(t, srv.URL+path, v...).cacheStatus(), "hit") {
				n++
			}
		}
		return n
	}
	for _, p := range []string{"/c/a", "/c/b", "/c/a?x=1"} {
		stored(p)
		if n := stored(p); n != len(variants) {
			t.Fatalf("%s: %d of %d variants stored", p, n, len(variants))
		}
	}
	code, body := adminCall(t, "POST", admin.URL+"/purge?url="+url.QueryEscape("http://"+host+"/c/a"), "t")
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`"purged":%d`, len(variants))) {
		t.Fatalf("purge url: %d %s", code, body)
	}
	if n := stored("/c/a"); n != 0 {
		t.Errorf("after a purge of /c/a, %d of its variants were still hits", n)
	}
	if n := stored("/c/b"); n != len(variants) {
		t.Errorf("a purge of /c/a took /c/b's variants: %d left", n)
	}
	code, body = adminCall(t, "POST", admin.URL+"/purge?prefix="+url.QueryEscape("http://"+host+"/c/"), "t")
	if code != 200 || !strings.Contains(body, fmt.Sprintf(`"purged":%d`, 3*len(variants))) {
		t.Fatalf("purge prefix: %d %s", code, body)
	}
	for _, p := range []string{"/c/a", "/c/b", "/c/a?x=1"} {
		if n := stored(p); n != 0 {
			t.Errorf("after a purge of the prefix /c/, %s had %d variants still hits", p, n)
		}
	}
}

// TestKeyCookiesProtocols: the allow-list keys and forwards the same over each protocol the
// edge speaks. (HTTP/2 and HTTP/3 clients may send the cookies as several fields, RFC 9113
// §8.2.3; the servers here hand the edge one field joined with "; " — several fields, as an
// HTTP/1.1 client may still send them, are a row of TestKeyCookiesAndDeviceClass.)
func TestKeyCookiesProtocols(t *testing.T) {
	o, _ := keyOrigin(t)
	fe := startFrontend(t, o.URL, func(c *Config) {
		c.Rules = []Rule{{PathPrefix: "/", KeyCookies: []string{"lang", "plan"}}}
	}, nil)
	for _, proto := range []string{"http/1.1", "h2", "h3"} {
		c := fe.client(t, proto)
		fetch := func(cookie string) (string, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", "https://"+fe.addr+"/c/"+proto, nil)
			req.Header.Set("Cookie", cookie)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", proto, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.Proto != map[string]string{"http/1.1": "HTTP/1.1", "h2": "HTTP/2.0", "h3": "HTTP/3.0"}[proto] {
				t.Fatalf("%s: answered over %s", proto, resp.Proto)
			}
			return string(b), resp.Header.Get("Cache-Status")
		}
		before := o.hits.Load()
		body, _ := fetch("plan=pro; _ga=GA1.1; lang=en")
		if want := `cookie="lang=en; plan=pro"`; !strings.Contains(body, want) {
			t.Errorf("%s: origin saw %q, want %s", proto, body, want)
		}
		waitUntil(t, func() bool { return fe.e.fills.Len() == 0 })
		if _, cs := fetch("x=1; lang=en; plan=pro"); !strings.Contains(cs, "hit") {
			t.Errorf("%s: same keyed cookies, Cache-Status %q, want a hit", proto, cs)
		}
		if n := o.hits.Load() - before; n != 1 {
			t.Errorf("%s: %d origin requests, want 1", proto, n)
		}
	}
}
