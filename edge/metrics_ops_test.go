package edge

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// opsOrigin serves /ok (cacheable), /missing (404), /boom (500), /hang (no answer until the
// client goes) and /reset (the connection closed without a response).
func opsOrigin(t *testing.T) *testOrigin {
	return newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.Error(w, "no", http.StatusNotFound)
		case "/boom":
			http.Error(w, "down", http.StatusInternalServerError)
		case "/hang":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case "/reset":
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.(*net.TCPConn).SetLinger(0) // RST, not FIN
				c.Close()
			}
		default:
			cacheable("ok", "max-age=60")(w, r)
		}
	})
}

// scrapeOps is the edge's /metrics text.
func scrapeOps(t *testing.T, e *Edge) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer tok")
	e.AdminHandler("tok").ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestOpsMetrics: responses are counted by configured host (any other Host is "other"),
// status class and cache status; origin responses by class and origin failures by kind; the
// tiers' capacities are exposed — all from requests against a real loopback origin.
func TestOpsMetrics(t *testing.T) {
	o := opsOrigin(t)
	e, srv := newEdge(t, o.URL, func(c *Config) {
		c.Origins = append(c.Origins,
			Origin{Host: "video.example", URL: o.URL},
			Origin{Host: "dead.example", URL: "http://127.0.0.1:1"}) // nothing listens on port 1
		c.Rules = []Rule{{Match: RuleMatch{Host: "API.example"}, Bypass: ptr(true)}}
		c.Limits.OriginFirstByteTimeout = 300 * time.Millisecond
	})
	get(t, srv.URL+"/ok", "Host", "video.example")
	get(t, srv.URL+"/ok", "Host", "video.example:80")
	get(t, srv.URL+"/missing", "Host", "video.example")
	get(t, srv.URL+"/boom", "Host", "video.example")
	get(t, srv.URL+"/ok", "Host", "api.example")
	get(t, srv.URL+"/ok", "Host", "somewhere.else")
	get(t, srv.URL+"/x", "Host", "dead.example")
	get(t, srv.URL+"/hang", "Host", "video.example")
	get(t, srv.URL+"/reset", "Host", "video.example")

	// A request is counted once its handler returns, which may be just after its client has
	// the response: wait for all nine.
	var m map[string]float64
	waitUntil(t, func() bool { m = metricsOf(scrapeOps(t, e)); return total(m, "reel_edge_responses_total") == 9 })
	for series, want := range map[string]float64{
		`reel_edge_responses_total{cache="miss",class="2xx",host="video.example"}`: 1,
		`reel_edge_responses_total{cache="hit",class="2xx",host="video.example"}`:  1,
		`reel_edge_responses_total{cache="miss",class="4xx",host="video.example"}`: 1,
		`reel_edge_responses_total{cache="bypass",class="2xx",host="api.example"}`: 1,
		`reel_edge_responses_total{cache="miss",class="2xx",host="other"}`:         1,
		`reel_edge_origin_responses_total{class="2xx"}`:                            3,
		`reel_edge_origin_responses_total{class="4xx"}`:                            1,
		`reel_edge_origin_responses_total{class="5xx"}`:                            1,
		`reel_edge_origin_errors_total{kind="connect"}`:                            1,
		`reel_edge_origin_errors_total{kind="timeout"}`:                            1,
		`reel_edge_origin_errors_total{kind="reset"}`:                              1,
		`reel_edge_origin_errors_total{kind="tls"}`:                                0,
		`reel_edge_store_capacity_bytes{tier="memory"}`:                            float64(tierMemory(e.cfg)),
		`reel_edge_store_capacity_bytes{tier="disk"}`:                              0,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", series, got, ok, want)
		}
	}
	// The 5xx of /boom and the 502/504 of the failures are client 5xx of video.example and
	// dead.example.
	if got := m[`reel_edge_responses_total{cache="miss",class="5xx",host="video.example"}`] +
		m[`reel_edge_responses_total{cache="error",class="5xx",host="video.example"}`]; got != 3 {
		t.Errorf("video.example 5xx: %v, want 3 (boom, hang, reset)\n%s", got, grepSeries(m, "reel_edge_responses_total"))
	}

	// A flood of Host values adds no series.
	before := grepSeries(m, "reel_edge_responses_total")
	for i := range 200 {
		get(t, srv.URL+"/ok", "Host", fmt.Sprintf("h%d.attacker.example", i))
	}
	waitUntil(t, func() bool { m = metricsOf(scrapeOps(t, e)); return total(m, "reel_edge_responses_total") == 209 })
	after := grepSeries(m, "reel_edge_responses_total")
	if len(after) != len(before) {
		t.Errorf("a Host flood changed the series from %d to %d:\n%s", len(before), len(after), strings.Join(after, "\n"))
	}
	for _, s := range after {
		if !regexp.MustCompile(`host="(video\.example|api\.example|dead\.example|other)"`).MatchString(s) {
			t.Errorf("series with an unconfigured host: %s", s)
		}
	}
	if got := m[`reel_edge_responses_total{cache="miss",class="2xx",host="other"}`]; got != 201 {
		t.Errorf("misses under host=other after the flood: %v, want 201 (each host is its own key)", got)
	}
}

// metricsOf parses Prometheus text exposition into series → value.
func metricsOf(text string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		fmt.Sscan(line[i+1:], &v)
		m[line[:i]] = v
	}
	return m
}

// total sums the series of a metric.
func total(m map[string]float64, name string) float64 {
	sum := 0.0
	for _, s := range grepSeries(m, name) {
		sum += m[s]
	}
	return sum
}

func grepSeries(m map[string]float64, name string) []string {
	var out []string
	for s := range m {
		if strings.HasPrefix(s, name+"{") {
			out = append(out, s)
		}
	}
	return out
}
