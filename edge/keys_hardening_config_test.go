package edge

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestKeyHardeningSwitches: each default of keys_hardening_test.go can be turned off by its
// configuration key, for origins known to need it.
func TestKeyHardeningSwitches(t *testing.T) {
	lastMod := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	o := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", lastMod)
		io.WriteString(w, "q="+r.URL.RawQuery+" u="+r.Header.Get("X_Trace")+" c="+r.Header.Get("Cookie"))
	})
	_, srv := newEdge(t, o.URL, func(c *Config) {
		c.Cache.UnderscoresInHeaders = true
		c.Cache.HeuristicWithCredentials = true
		c.Rules = []Rule{{PathPrefix: "/signed/", ExcludeParams: []string{"token"}, ForwardIgnoredParams: ptr(true)}}
	})
	if r := get(t, srv.URL+"/signed/a?token=s3cret&utm_source=x&v=1"); r.body != "q=token=s3cret&utm_source=x&v=1 u= c=" {
		t.Fatalf("forward_ignored_params: origin saw %q", r.body)
	}
	if r := get(t, srv.URL+"/u", "X_Trace", "1"); r.body != "q= u=1 c=" {
		t.Fatalf("underscores_in_headers: origin saw %q", r.body)
	}
	get(t, srv.URL+"/c.css", "Cookie", "k=v")
	if r := get(t, srv.URL+"/c.css"); !strings.Contains(r.cacheStatus(), "hit") {
		t.Fatalf("heuristic_with_credentials: not stored: %q", r.cacheStatus())
	}
}
