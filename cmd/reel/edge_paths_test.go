package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEdgePathConfigBad: a mistake in a config file's per-path origins stops `reel edge` with
// one line naming the file and the key, exit 1, before it listens.
func TestEdgePathConfigBad(t *testing.T) {
	origins := "origins:\n  - {name: vod, url: http://127.0.0.1:1}\n  - {name: live, url: http://127.0.0.1:2}\n"
	for _, tc := range []struct{ name, rules, want string }{
		{"unknown origin", "  - {path_prefix: /vod/, origin: vdo}\n", `rules[0]: origin "vdo" is not the name of an origin`},
		{"same prefix twice", "  - {path_prefix: /v/, origin: vod}\n  - {path_prefix: /v/, origin: live}\n", `rules[1]: the same conditions as rules[0] (path_prefix "/v/")`},
		{"prefix without its slash", "  - {path_prefix: vod/, origin: vod}\n", `rules[0]: path_prefix "vod/" must be a clean absolute path`},
		{"ttl by cookie", "  - {match: {cookies: {session: \"*\"}}, ttl: 1h}\n", "rules[0]: ttl can't depend on methods, headers or cookies"},
		{"strip without origin", "  - {path_prefix: /vod/, strip_prefix: true}\n", "rules[0]: strip_prefix needs origin"},
		{"strip of a partial segment", "  - {path_prefix: /vod, origin: vod, strip_prefix: true}\n", "rules[0]: strip_prefix needs a path_prefix ending in '/'"},
	} {
		cfg := writeConfig(t, "edge.yaml", origins+"rules:\n"+tc.rules)
		code, stdout, stderr := runReel(t, "edge", "--admin", "", "--listen", "127.0.0.1:0", "--config", cfg)
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, cfg+": "+tc.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d with %s: %s", tc.name, code, stdout, stderr, exitFailure, cfg, tc.want)
		}
		assertOneLine(t, tc.name, stderr)
	}
	// Two origins by the same name.
	cfg := writeConfig(t, "edge.yaml", "origins:\n  - {name: vod, url: http://127.0.0.1:1}\n  - {name: vod, url: http://127.0.0.1:2}\n")
	if code, _, stderr := runReel(t, "edge", "--admin", "", "--config", cfg); code != exitFailure || !strings.Contains(stderr, `origins[1]: name "vod" listed twice`) {
		t.Errorf("same name twice: exit %d, %q", code, stderr)
	}
}

// TestEdgePathConfigWithOriginFlag: --origin sets the default ("*") origin beside the named
// ones a config file routes by path; it does not take a named origin's place.
func TestEdgePathConfigWithOriginFlag(t *testing.T) {
	named := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s:%s", name, r.URL.Path)
		}))
		t.Cleanup(s.Close)
		return s
	}
	vod, def := named("vod"), named("default")
	cfg := writeConfig(t, "edge.yaml", "origins:\n  - {name: vod, url: "+vod.URL+"}\nrules:\n  - {path_prefix: /vod/, origin: vod, strip_prefix: true}\n")
	_, base := startEdge(t, buildReel(t), "--config", cfg, "--origin", def.URL)
	for path, want := range map[string]string{"/vod/a": "vod:/a", "/b": "default:/b"} {
		if status, body, _ := fetch(t, base+path); status != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, status, body, want)
		}
	}
}
