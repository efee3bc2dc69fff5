package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/reelvideo/reel/internal/testkit"
)

// alertRules is samples/ops/alerts.yml, decoded strictly (an unknown key is an error).
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readAlertRules(t *testing.T) alertRules {
	t.Helper()
	b, err := os.ReadFile(sample(filepath.Join("ops", "alerts.yml")))
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	return rules
}

// TestOpsAlerts: the alert rules parse strictly, each has an expression, a duration, a
// severity and a summary, they cover what an operator pages on, and every reel_* series they
// or the Grafana dashboard query is one a real `reel edge` exposes on /metrics — an edge with
// a disk tier, an origin pool and a parent, so that the series only those create are there.
func TestOpsAlerts(t *testing.T) {
	t.Parallel()
	rules := readAlertRules(t)
	var exprs []string
	names := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("group %s: rule %q lacks alert, expr, severity or summary", g.Name, r.Alert)
			}
			if _, err := time.ParseDuration(r.For); err != nil {
				t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
			}
			names[r.Alert] = true
			exprs = append(exprs, r.Expr)
		}
	}
	for _, want := range []string{"ReelEdgeOriginErrors", "ReelEdgeHitRatioDrop", "ReelEdgeNotFoundSpike",
		"ReelEdgeParentDown", "ReelEdgeOriginMemberDown", "ReelEdgeDiskTierOverCapacity"} {
		if !names[want] {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile(sample(filepath.Join("ops", "grafana-dashboard.json")))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "reel_edge_") {
				exprs = append(exprs, tg.Expr)
			}
		}
	}

	// A real edge with every feature whose series the rules use.
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/missing") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`cache_dir: %s
disk: 64MiB
origins:
  - host: "*"
    urls: [%s, http://127.0.0.1:1]
parents:
  urls: [http://127.0.0.1:1]
rules:
  - path_prefix: /direct/
    parent: false
`, filepath.Join(dir, "cache"), origin.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildReel(t)
	addr, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "edge", "--listen", addr, "--admin", admin, "--config", cfg)
	cmd.Env = append(os.Environ(), "REEL_ADMIN_TOKEN=test")
	runUntilServing(t, "edge", cmd)
	for _, p := range []string{"/direct/a", "/direct/a", "/direct/missing"} {
		resp, err := http.Get("http://" + addr + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// A request is counted once its handler returns, which may be after its client has the
	// response: scrape until the last one is.
	var body []byte
	for deadline := time.Now().Add(20 * time.Second); ; {
		req, _ := http.NewRequest("GET", "http://"+admin+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(body, []byte(`reel_edge_responses_total{cache="miss",class="4xx"`)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	exposed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(reel_[a-z_]+)[{ ]`).FindAllStringSubmatch(string(body), -1) {
		exposed[m[1]] = true
	}
	var missing []string
	for _, e := range exprs {
		for _, name := range regexp.MustCompile(`reel_[a-z_]+`).FindAllString(e, -1) {
			if !exposed[name] && !exposed[strings.TrimSuffix(name, "_bucket")] {
				missing = append(missing, name)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("queried but not on the edge's /metrics: %v", missing)
	}
	// The series the alerts name are there, with their labels.
	for _, want := range []string{`reel_edge_parent_up{parent="http://127.0.0.1:1"}`, `reel_edge_origin_member_up{`,
		`reel_edge_store_capacity_bytes{tier="disk"} 6.7108864e+07`, `reel_edge_responses_total{cache="miss",class="4xx",host="other"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, regexp.MustCompile(`(?m)^reel_edge_responses_total.*$`).FindAllString(string(body), -1))
		}
	}
}

// TestOpsAlertsPromtool: Prometheus's own checker accepts the rules (PromQL syntax included).
func TestOpsAlertsPromtool(t *testing.T) {
	promtool := testkit.RequireTool(t, "promtool")
	out, err := exec.Command(promtool, "check", "rules", sample(filepath.Join("ops", "alerts.yml"))).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
