package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpsSamples: the Prometheus scrape config parses and scrapes the admin listeners' default
// addresses with a bearer token, and every metric the Grafana dashboard queries is one the
// edge or `reel live` defines (a renamed metric must not leave a dashboard silently empty).
func TestOpsSamples(t *testing.T) {
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			Authorization struct {
				Type string `yaml:"type"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile(sample(filepath.Join("ops", "prometheus.yml")))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &prom); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, sc := range prom.ScrapeConfigs {
		if sc.Authorization.Type != "Bearer" || len(sc.StaticConfigs) == 0 {
			t.Errorf("job %s: no bearer token or no targets", sc.JobName)
			continue
		}
		targets[sc.JobName] = sc.StaticConfigs[0].Targets[0]
	}
	if targets["reel-edge"] != "127.0.0.1:9091" || targets["reel-live"] != "127.0.0.1:9092" {
		t.Errorf("scrape targets %v, want the admin listeners' defaults", targets)
	}

	defined := map[string]bool{}
	srcs, _ := filepath.Glob("../../edge/*.go") // metrics.go, metrics_ops.go, parents.go, pool.go, …
	for _, src := range append(srcs, "../../packager/live/metrics.go") {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		code, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?:Name: +|NewDesc\()"(reel_[a-z_]+)"`).FindAllStringSubmatch(string(code), -1) {
			defined[m[1]] = true
		}
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err = os.ReadFile(sample(filepath.Join("ops", "grafana-dashboard.json")))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Panels) < 10 {
		t.Fatalf("%d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range regexp.MustCompile(`reel_[a-z_]+`).FindAllString(tg.Expr, -1) {
				if base := strings.TrimSuffix(name, "_bucket"); !defined[base] {
					t.Errorf("panel %q queries %s, which neither the edge nor reel live defines", p.Title, name)
				}
			}
		}
	}
}
