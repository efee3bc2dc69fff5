package edge

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// cgiEnv is what a CGI, PHP, WSGI or Rack origin makes of the request fields: HTTP_ variables
// with '-' turned into '_', upper-cased (RFC 3875 §4.1.18), the later field winning.
func cgiEnv(h http.Header) map[string]string {
	env := map[string]string{}
	for name, v := range h {
		env["HTTP_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = strings.Join(v, ", ")
	}
	return env
}

// TestUnderscoredHeadersDropped (issue 13 item 3): "X_Forwarded_Host" reaches a CGI-style
// origin as X-Forwarded-Host; the edge must not forward it, so the reflected host can't be
// stored and served to the next plain client.
func TestUnderscoredHeadersDropped(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		env := cgiEnv(r.Header)
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "host="+env["HTTP_X_FORWARDED_HOST"]+" url="+env["HTTP_X_ORIGINAL_URL"]+" lang="+env["HTTP_ACCEPT_LANGUAGE"])
	})
	_, srv := newEdge(t, o.URL, nil)
	evil := get(t, srv.URL+"/p", "X_Forwarded_Host", "evil.com", "X-Original_URL", "/admin", "Accept_Language", "xx")
	victim := get(t, srv.URL+"/p")
	for _, r := range []result{evil, victim} {
		if r.status != 200 || r.body != "host= url= lang=" {
			t.Fatalf("underscored fields reached the origin: %d %q (%s)", r.status, r.body, r.cacheStatus())
		}
	}
	for name := range o.lastReq.Load().(*http.Request).Header {
		if strings.Contains(name, "_") {
			t.Errorf("origin got %q", name)
		}
	}
}

// TestRepeatedParamsOrder (item 4): "?id=2&id=1" and "?id=1&id=2" are different requests to
// the origin (first or last wins, or a list in order), so they must not share one entry.
func TestRepeatedParamsOrder(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "id="+strings.Join(r.URL.Query()["id"], ","))
	})
	_, srv := newEdge(t, o.URL, nil)
	if r := get(t, srv.URL+"/q?id=2&id=1"); r.body != "id=2,1" {
		t.Fatalf("first: %q", r.body)
	}
	r := get(t, srv.URL+"/q?id=1&id=2")
	if r.body != "id=1,2" {
		t.Fatalf("?id=1&id=2 got %q (%s): the entry of ?id=2&id=1", r.body, r.cacheStatus())
	}
	// Distinct names still share an entry whatever their order.
	get(t, srv.URL+"/q?a=1&b=2")
	if r := get(t, srv.URL+"/q?b=2&a=1"); !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("?b=2&a=1 after ?a=1&b=2: %q", r.cacheStatus())
	}
}

// TestCredentialedHeuristic (item 5): a response without Cache-Control but with Last-Modified,
// to a request with Cookie or Authorization, is not stored on a heuristic lifetime (web cache
// deception: /account/profile.css). Explicit freshness is still honoured, and RFC 9111 §3.5
// still applies to Authorization.
func TestCredentialedHeuristic(t *testing.T) {
	lastMod := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", lastMod)
		switch {
		case strings.HasPrefix(r.URL.Path, "/public/"):
			w.Header().Set("Cache-Control", "public")
		case strings.HasPrefix(r.URL.Path, "/explicit/"):
			w.Header().Set("Cache-Control", "max-age=60")
		}
		// Like many origins, it answers a matching If-Modified-Since without asking who.
		if r.Header.Get("If-Modified-Since") == lastMod {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, "user="+r.Header.Get("Cookie")+r.Header.Get("Authorization"))
	})
	_, srv := newEdge(t, o.URL, nil)
	for _, tc := range []struct {
		path  string
		creds []string
	}{
		{"/account/profile.css", []string{"Cookie", "session=alice"}},
		{"/account/auth.css", []string{"Authorization", "Basic YWxpY2U6cHc="}}, // §3.5: not stored
		{"/public/auth.css", []string{"Authorization", "Basic YWxpY2U6cHc="}},  // §3.5 allows public, the heuristic doesn't
		{"/public/cookie.css", []string{"Cookie", "session=alice"}},
	} {
		if r := get(t, srv.URL+tc.path, tc.creds...); !strings.Contains(r.body, "alice") && !strings.Contains(r.body, "YWxp") {
			t.Fatalf("%s with credentials: %q", tc.path, r.body)
		}
		if r := get(t, srv.URL+tc.path); r.body != "user=" {
			t.Fatalf("%s: the anonymous client got %q (%s)", tc.path, r.body, r.cacheStatus())
		}
	}
	// The origin's explicit word is kept: max-age with a cookie is stored and shared.
	get(t, srv.URL+"/explicit/a.css", "Cookie", "session=alice")
	if r := get(t, srv.URL+"/explicit/a.css"); !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("explicit max-age with a cookie was not stored: %q", r.cacheStatus())
	}
	// Without credentials the heuristic applies as before.
	get(t, srv.URL+"/plain.css")
	if r := get(t, srv.URL+"/plain.css"); !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("anonymous heuristic response not stored: %q", r.cacheStatus())
	}
}

// TestIgnoredParamsNotForwarded (item 6): parameters the key ignores are not forwarded, so
// "?utm_source=<script>" can't be reflected into the plain URL's entry.
func TestIgnoredParamsNotForwarded(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "<a href=\"/p?"+r.URL.RawQuery+"\">")
	})
	_, srv := newEdge(t, o.URL, nil)
	attack := "/p?utm_source=" + url.QueryEscape("<script>alert(1)</script>") + "&gclid=x&a=1"
	if r := get(t, srv.URL+attack); strings.Contains(r.body, "script") || r.body != `<a href="/p?a=1">` {
		t.Fatalf("attacker's request: origin saw %q", r.body)
	}
	r := get(t, srv.URL+"/p?a=1")
	if strings.Contains(r.body, "script") || !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("plain URL got %q (%s)", r.body, r.cacheStatus())
	}
}

// TestConformanceThroughEdge: the parsing rules of the policy audit, seen by a client of the
// edge in front of a real origin (RFC 9111 §5.1 Age, §5.3 Expires, §5.2 directive arguments).
func TestConformanceThroughEdge(t *testing.T) {
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UTC()
		switch r.URL.Path {
		case "/age-list": // §5.1: the first member counts, the response is 1 s old and fresh
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Age", "1, 2")
		case "/expires-one-digit-hour": // RFC 9110 §5.6.7: hour is 2DIGIT; §5.3: invalid → expired
			// 9 a.m. tomorrow: always in the future, if it were valid
			w.Header().Set("Expires", now.AddDate(0, 0, 1).Format("Mon, 02 Jan 2006 ")+"9:00:00 GMT")
		case "/max-age-junk": // §5.2: the whole argument is the value; "6"0 is no delta-seconds
			w.Header().Set("Cache-Control", `max-age="60"0`)
		case "/max-age-quoted": // §5.2: both forms accepted
			w.Header().Set("Cache-Control", `max-age="60"`)
		}
		io.WriteString(w, "body")
	})
	_, srv := newEdge(t, o.URL, nil)
	for _, tc := range []struct {
		path string
		hit  bool
	}{{"/age-list", true}, {"/expires-one-digit-hour", false}, {"/max-age-junk", false}, {"/max-age-quoted", true}} {
		get(t, srv.URL+tc.path)
		r := get(t, srv.URL+tc.path)
		if got := strings.Contains(r.cacheStatus(), "hit"); got != tc.hit {
			t.Errorf("%s: second request %q, want hit=%v", tc.path, r.cacheStatus(), tc.hit)
		}
		if tc.path == "/age-list" && r.header.Get("Age") == "" {
			t.Errorf("%s: no Age on the hit", tc.path)
		}
	}
}
