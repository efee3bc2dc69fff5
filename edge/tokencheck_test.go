package edge

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelvideo/reel/edge/token"
)

var (
	tokKey1 = []byte("token key one, 32 bytes long....")
	tokKey2 = []byte("token key two, 32 bytes long....")
)

// withTokens configures signed URLs with keys k1 (the default) and k2, required everywhere.
func withTokens(c *Config) {
	c.Tokens = Tokens{
		Keys: map[string]TokenKey{
			"k1": {secret: tokKey1},
			"k2": {secret: tokKey2},
		},
		DefaultKeyID: "k1",
		Require:      true,
	}
}

// mint is a token for acl valid for an hour from now, signed by k1 or k2.
func mint(t testing.TB, acl, keyID string, change func(*token.Claims)) string {
	t.Helper()
	c := token.Claims{Expires: time.Now().Add(time.Hour), ACL: []string{acl}}
	if change != nil {
		change(&c)
	}
	key := map[string][]byte{"k1": tokKey1, "k2": tokKey2, "": tokKey1}[keyID]
	if key == nil {
		key = []byte("a key the edge does not hold....")
	}
	return token.Mint(c, keyID, key)
}

// tokenOrigin serves cacheable objects and counts, by path, the requests that reached it,
// and those that carried a token (query parameter or cookie) the edge should have removed.
type tokenOrigin struct {
	*testOrigin
	mu         sync.Mutex
	byPath     map[string]int
	leaked     atomic.Int64
	lastCookie atomic.Value // string
}

func newTokenOrigin(t *testing.T) *tokenOrigin {
	o := &tokenOrigin{byPath: map[string]int{}}
	o.testOrigin = newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.byPath[r.URL.Path]++
		o.mu.Unlock()
		if strings.Contains(r.URL.RawQuery, "token") || strings.Contains(r.Header.Get("Cookie"), "reel_token") ||
			strings.Contains(r.URL.Path, "/tok/") {
			o.leaked.Add(1)
		}
		o.lastCookie.Store(r.Header.Get("Cookie"))
		w.Header().Set("Cache-Control", "max-age=300")
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
			io.WriteString(w, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\nv0/seg_1.m4s\n#EXT-X-ENDLIST\n")
			return
		}
		w.Header().Set("Content-Type", "video/iso.segment")
		io.WriteString(w, "body of "+r.URL.Path)
	})
	return o
}

func (o *tokenOrigin) requests(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byPath[path]
}

// TestTokenRefusals: every reason a token fails is a 403 naming it, counted by reason — for
// an object not yet cached, and the same for one cached (the check comes before lookup, so a
// hit can't skip it) — while a valid token gets the object.
func TestTokenRefusals(t *testing.T) {
	o := newTokenOrigin(t)
	e, srv := newEdge(t, o.URL, withTokens)
	const seg = "/live/demo/v0/seg_1.m4s"
	otherIP := func(c *token.Claims) { c.IP = netip.MustParseAddr("127.0.0.2") }
	sameIP := func(c *token.Claims) { c.IP = netip.MustParseAddr("127.0.0.1") }
	expired := func(c *token.Claims) { c.Expires = time.Now().Add(-time.Second) }
	later := func(c *token.Claims) { c.Start = time.Now().Add(time.Hour); c.Expires = c.Start.Add(time.Hour) }
	good := mint(t, "/live/demo/*", "k1", nil)
	forged := strings.Replace(good, "exp=", "exp=9", 1) // a later expiry, not signed for
	q := func(tok string) string { return seg + "?token=" + url.QueryEscape(tok) }

	refusals := []struct {
		why, path, cookie, reason, label string
	}{
		{"no token at all", seg, "", "token missing", "missing"},
		{"an expired token", q(mint(t, "/live/demo/*", "k1", expired)), "", "token expired", "expired"},
		{"a token that starts in an hour", q(mint(t, "/live/demo/*", "k1", later)), "", "token not yet valid", "not_yet_valid"},
		{"a forged token (exp changed after signing)", q(forged), "", "bad token signature", "signature"},
		{"a token for another presentation", q(mint(t, "/live/other/*", "k1", nil)), "", "token not valid for this path", "path"},
		{"a token escaping its ACL by dot segments", "/live/demo/../../secret/x?token=" + url.QueryEscape(good), "", "token not valid for this path", "path"},
		{"a token bound to another client address", q(mint(t, "/live/demo/*", "k1", otherIP)), "", "token not valid for this address", "address"},
		{"a token that is not one", seg + "?token=hello", "", "malformed token", "malformed"},
		{"a token by a key id the edge doesn't hold", q(mint(t, "/live/demo/*", "k9", nil)), "", "unknown token key id", "unknown_key"},
		{"a forged token in the cookie", seg, "reel_token=" + forged, "bad token signature", "signature"},
		{"a path form without a path after the token", "/tok/" + url.PathEscape(good), "", "malformed token", "malformed"},
	}
	check := func(phase string, wantOrigin int) {
		t.Helper()
		for _, tc := range refusals {
			before := counterValue(e.m.tokenRejected.WithLabelValues(tc.label))
			var res result
			if tc.cookie != "" {
				res = get(t, srv.URL+tc.path, "Cookie", tc.cookie)
			} else {
				res = get(t, srv.URL+tc.path)
			}
			if res.status != http.StatusForbidden || res.body != tc.reason+"\n" {
				t.Errorf("%s, %s: %d %q, want 403 %q", phase, tc.why, res.status, res.body, tc.reason)
			}
			if got := counterValue(e.m.tokenRejected.WithLabelValues(tc.label)) - before; got != 1 {
				t.Errorf("%s, %s: reel_edge_token_rejected_total{reason=%q} rose by %v, want 1", phase, tc.why, tc.label, got)
			}
		}
		if n := o.requests(seg); n != wantOrigin {
			t.Errorf("%s: the origin saw %d requests for the segment, want %d", phase, n, wantOrigin)
		}
	}
	check("not cached", 0)

	for i, path := range []string{q(good), q(mint(t, "/live/demo/*", "k1", sameIP))} {
		res := get(t, srv.URL+path)
		if res.status != http.StatusOK || res.body != "body of "+seg {
			t.Fatalf("valid token %d: %d %q, want 200 and the segment", i, res.status, res.body)
		}
	}
	if res := get(t, srv.URL+q(good)); !strings.Contains(res.cacheStatus(), "hit") {
		t.Fatalf("the segment is not cached: Cache-Status %q", res.cacheStatus())
	}
	check("cached", 1)
	if o.leaked.Load() != 0 {
		t.Errorf("the origin saw a token %d times", o.leaked.Load())
	}
}

// TestTokenOneFetchForManyViewers: 100 viewers with 100 distinct tokens (two key ids,
// different expiries, in the query, the cookie or the path) at once cost one origin request:
// the token is out of the cache key. The origin never sees a token, and other cookies and
// query parameters reach it as sent.
func TestTokenOneFetchForManyViewers(t *testing.T) {
	o := newTokenOrigin(t)
	_, srv := newEdge(t, o.URL, withTokens)
	const seg = "/live/demo/v1/seg_7.m4s"
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := range 100 {
		id := []string{"k1", "k2", ""}[i%3]
		tok := mint(t, "/live/demo/*", id, func(c *token.Claims) { c.Expires = c.Expires.Add(time.Duration(i) * time.Second) })
		req, _ := http.NewRequest("GET", srv.URL+seg+"?token="+url.QueryEscape(tok), nil)
		switch i % 3 {
		case 1:
			req, _ = http.NewRequest("GET", srv.URL+seg, nil)
			req.Header.Set("Cookie", "reel_token="+tok)
		case 2:
			req, _ = http.NewRequest("GET", srv.URL+"/tok/"+url.PathEscape(tok)+seg, nil)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode == http.StatusOK && string(b) == "body of "+seg {
				ok.Add(1)
			} else {
				t.Errorf("viewer %d: %d %q", i, resp.StatusCode, b)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 100 {
		t.Errorf("%d of 100 viewers got the segment", ok.Load())
	}
	if n := o.requests(seg); n != 1 {
		t.Errorf("the origin saw %d requests for one segment and 100 tokens, want 1", n)
	}
	if o.leaked.Load() != 0 {
		t.Errorf("the origin saw a token %d times", o.leaked.Load())
	}

	// What isn't the token goes on as it was: the other cookies, the other parameters.
	tok := mint(t, "/live/demo/*", "k1", nil)
	res := get(t, srv.URL+"/live/demo/other.m4s?a=1&token="+url.QueryEscape(tok)+"&b=2", "Cookie", "session=s1; reel_token=x; theme=dark")
	if res.status != http.StatusOK {
		t.Fatalf("%d %q", res.status, res.body)
	}
	last := o.lastReq.Load().(*http.Request)
	if last.URL.RawQuery != "a=1&b=2" || last.Header.Get("Cookie") != "session=s1; theme=dark" {
		t.Errorf("the origin saw query %q and Cookie %q, want a=1&b=2 and session=s1; theme=dark", last.URL.RawQuery, last.Header.Get("Cookie"))
	}
	// A Cookie field that held the token alone is removed whole.
	if res := get(t, srv.URL+"/live/demo/third.m4s", "Cookie", "reel_token="+tok); res.status != http.StatusOK {
		t.Fatalf("%d %q", res.status, res.body)
	}
	if c, ok := o.lastReq.Load().(*http.Request).Header["Cookie"]; ok {
		t.Errorf("the origin saw Cookie %q, want none", c)
	}
}

// TestTokenKeyRotation: tokens by either of two key ids verify; once a key id is removed
// from the configuration, its tokens are refused and the other's still verify.
func TestTokenKeyRotation(t *testing.T) {
	o := newTokenOrigin(t)
	_, both := newEdge(t, o.URL, withTokens)
	_, onlyK2 := newEdge(t, o.URL, func(c *Config) {
		withTokens(c)
		c.Tokens.Keys = map[string]TokenKey{"k2": {secret: tokKey2}}
		c.Tokens.DefaultKeyID = ""
	})
	t1, t2 := mint(t, "/vod/*", "k1", nil), mint(t, "/vod/*", "k2", nil)
	for _, tc := range []struct {
		why, base, tok string
		status         int
		body           string
	}{
		{"k1's token, both keys configured", both.URL, t1, 200, "body of /vod/a.m4s"},
		{"k2's token, both keys configured", both.URL, t2, 200, "body of /vod/a.m4s"},
		{"k1's token once k1 is removed", onlyK2.URL, t1, 403, "unknown token key id"},
		{"k1's default-key token once k1 is removed", onlyK2.URL, mint(t, "/vod/*", "", nil), 403, "unknown token key id"},
		{"k2's token once k1 is removed", onlyK2.URL, t2, 200, "body of /vod/a.m4s"},
	} {
		res := get(t, tc.base+"/vod/a.m4s?token="+url.QueryEscape(tc.tok))
		if res.status != tc.status || res.body != tc.body && res.body != tc.body+"\n" {
			t.Errorf("%s: %d %q, want %d %q", tc.why, res.status, res.body, tc.status, tc.body)
		}
	}
}

// TestTokenPathForm: a player given a tokened master URL /tok/<t>/vod/master.m3u8 resolves
// the playlist's relative URIs against it, so its segment requests carry the token too; two
// viewers with two tokens share the segment's cache entry.
func TestTokenPathForm(t *testing.T) {
	o := newTokenOrigin(t)
	_, srv := newEdge(t, o.URL, withTokens)
	var segs []string
	for i, keyID := range []string{"k1", "k2"} {
		master, _ := url.Parse(srv.URL + "/tok/" + url.PathEscape(mint(t, "/vod/*", keyID, nil)) + "/vod/master.m3u8")
		res := get(t, master.String())
		if res.status != 200 || !strings.HasPrefix(res.body, "#EXTM3U") {
			t.Fatalf("viewer %d, master: %d %q", i, res.status, res.body)
		}
		var child string
		for _, line := range strings.Split(res.body, "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				child = line
				break
			}
		}
		ref, _ := url.Parse(child)
		u := master.ResolveReference(ref)
		if !strings.HasPrefix(u.EscapedPath(), "/tok/") || !strings.HasSuffix(u.Path, "/vod/v0/seg_1.m4s") {
			t.Fatalf("viewer %d: %q resolved against the master is %q, not under the tokened folder", i, child, u)
		}
		seg := get(t, u.String())
		if seg.status != 200 || seg.body != "body of /vod/v0/seg_1.m4s" {
			t.Fatalf("viewer %d, segment %s: %d %q", i, u, seg.status, seg.body)
		}
		segs = append(segs, seg.cacheStatus())
	}
	if !strings.Contains(segs[1], "hit") {
		t.Errorf("the second viewer's segment was not a hit of the first's entry: Cache-Status %q", segs[1])
	}
	if n := o.requests("/vod/v0/seg_1.m4s"); n != 1 {
		t.Errorf("the origin saw %d requests for the segment, want 1", n)
	}
	if o.leaked.Load() != 0 {
		t.Errorf("the origin saw a token %d times", o.leaked.Load())
	}
	// The token covers /vod/ only: the path form is checked against the path after it.
	res := get(t, srv.URL+"/tok/"+url.PathEscape(mint(t, "/vod/*", "k1", nil))+"/live/x.m4s")
	if res.status != 403 || res.body != "token not valid for this path\n" {
		t.Errorf("a /vod/ token for /live/: %d %q", res.status, res.body)
	}
}

// TestTokenRules: a rule's token: off serves without a token where tokens.require asks for
// one, token: required asks where it doesn't, and a rule without token inherits from the next
// shorter one.
func TestTokenRules(t *testing.T) {
	o := newTokenOrigin(t)
	_, required := newEdge(t, o.URL, func(c *Config) {
		withTokens(c)
		c.Rules = []Rule{{PathPrefix: "/free/", Token: "off"}, {PathPrefix: "/free/long/", TTL: time.Minute}}
	})
	_, optional := newEdge(t, o.URL, func(c *Config) {
		withTokens(c)
		c.Tokens.Require = false
		c.Rules = []Rule{{PathPrefix: "/paid/", Token: "required"}}
	})
	for _, tc := range []struct {
		why, url string
		status   int
	}{
		{"require: true, rule token: off", required.URL + "/free/a.m4s", 200},
		{"require: true, a longer rule without token inherits off", required.URL + "/free/long/a.m4s", 200},
		{"require: true, no rule", required.URL + "/paid/a.m4s", 403},
		{"require: false, no rule", optional.URL + "/free/a.m4s", 200},
		{"require: false, rule token: required", optional.URL + "/paid/a.m4s", 403},
	} {
		if res := get(t, tc.url); res.status != tc.status {
			t.Errorf("%s: %d %q, want %d", tc.why, res.status, res.body, tc.status)
		}
	}
}

// TestTokenConfig: the tokens section's errors name the setting, keys come from hex or a
// key_file, and no key is ever printed.
func TestTokenConfig(t *testing.T) {
	dir := t.TempDir()
	keyHex := hex.EncodeToString(tokKey1)
	keyFile := dir + "/k2.hex"
	writeFile(t, keyFile, hex.EncodeToString(tokKey2)+"\n")
	writeFile(t, dir+"/short.hex", "abcd")
	load := func(yaml string) (Config, error) {
		f := dir + "/edge.yaml"
		writeFile(t, f, "origins: [{url: 'http://127.0.0.1:1'}]\n"+yaml)
		cfg, err := LoadConfig(f)
		if err == nil {
			err = cfg.Validate()
		}
		return cfg, err
	}
	cfg, err := load("tokens:\n  keys:\n    k1: " + keyHex + "\n    k2: {key_file: " + keyFile + "}\n  default_key_id: k2\n")
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Tokens.keys; string(k["k1"]) != string(tokKey1) || string(k["k2"]) != string(tokKey2) || string(k[""]) != string(tokKey2) {
		t.Errorf("keys read as %v", k)
	}
	if printed := fmt.Sprintf("%v %+v %#v", cfg, cfg.Tokens, cfg.Tokens.Keys); strings.Contains(printed, keyHex[:16]) ||
		strings.Contains(printed, string(tokKey1[:8])) || strings.Contains(printed, fmt.Sprint([]byte(tokKey1[:4]))[1:10]) {
		t.Errorf("the configuration prints a key: %s", printed)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"tokens:\n  keys:\n    k1: not-hex-" + keyHex + "\n", "a token key is hex"},
		{"tokens:\n  keys:\n    k1: abcd\n", "tokens.keys.k1: the key must be at least 16 bytes"},
		{"tokens:\n  keys:\n    k1: {key_file: " + dir + "/short.hex}\n", "tokens.keys.k1: the key must be at least 16 bytes"},
		{"tokens:\n  keys:\n    k1: {key_file: " + dir + "/none.hex}\n", "tokens.keys.k1: open"},
		{"tokens:\n  keys:\n    k1: " + keyHex + "\n  default_key_id: k3\n", `tokens.default_key_id "k3" is not among tokens.keys`},
		{"tokens:\n  keys:\n    k1: " + keyHex + "\n  path_prefix: /a/b\n", "tokens.path_prefix"},
		{"tokens:\n  require: true\n", "tokens.require needs tokens.keys"},
		{"rules:\n  - path_prefix: /a/\n    token: maybe\n", `rules[0]: token "maybe" must be "required" or "off"`},
		{"rules:\n  - path_prefix: /a/\n    token: required\n", "rules[0]: token: required needs tokens.keys"},
	} {
		_, err := load(tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.yaml, err, tc.want)
		} else if strings.Contains(err.Error(), keyHex) {
			t.Errorf("%q: the error quotes the key: %v", tc.yaml, err)
		}
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
