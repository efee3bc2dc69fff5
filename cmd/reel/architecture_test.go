package main

import (
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

const modulePath = "github.com/reelvideo/reel"

// TestArchitecture checks ARCHITECTURE.md against the code: every package of the module is
// named in it, every file it names exists, and the dependency rules it states hold (by each
// package's transitive dependencies, so a rule can't be broken through a third package).
func TestArchitecture(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)

	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-json=ImportPath,Deps", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{} // package (relative to the module) → its module dependencies
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, modulePath), "/")
		deps[rel] = nil
		for _, d := range p.Deps {
			if r, ok := strings.CutPrefix(d, modulePath+"/"); ok {
				deps[rel] = append(deps[rel], r)
			}
		}
	}
	if len(deps) < 10 {
		t.Fatalf("go list found %d packages", len(deps))
	}

	for pkg := range deps {
		if pkg != "" && !strings.Contains(text, "`"+pkg+"`") {
			t.Errorf("ARCHITECTURE.md does not name package %s", pkg)
		}
	}

	// The rules: no package under `from` depends on one under any of `not` ("edge" is the
	// package alone, "edge/" everything under it).
	under := func(pkg, prefix string) bool {
		if p, ok := strings.CutSuffix(prefix, "/"); ok {
			return pkg == p || strings.HasPrefix(pkg, prefix)
		}
		return pkg == prefix
	}
	rules := []struct {
		from string
		not  []string
	}{
		{"rangecache/", []string{"edge/", "packager/", "manifest/", "cmd/"}},
		{"manifest/", []string{"edge/", "packager/", "rangecache/", "cmd/"}},
		{"packager/", []string{"edge/", "cmd/"}},
		{"edge/", []string{"packager/", "cmd/"}},
		{"edge/live", []string{"edge"}},
		{"edge/policy", []string{"edge"}},
		{"edge/store", []string{"edge"}},
	}
	for _, rule := range rules {
		for pkg, ds := range deps {
			if !under(pkg, rule.from) {
				continue
			}
			for _, d := range ds {
				for _, n := range rule.not {
					if under(d, n) {
						t.Errorf("%s depends on %s (ARCHITECTURE.md: it must not)", pkg, d)
					}
				}
			}
		}
	}

	// Files: a path with a folder must exist as written; a bare name somewhere in the module.
	names := map[string]bool{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			names[d.Name()] = true
		}
		return nil
	})
	for _, m := range regexp.MustCompile("`([\\w./]+\\.go)`").FindAllStringSubmatch(text, -1) {
		f := m[1]
		if strings.Contains(f, "/") {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("ARCHITECTURE.md names %s, which does not exist", f)
			}
		} else if !names[f] {
			t.Errorf("ARCHITECTURE.md names %s, which no folder holds", f)
		}
	}
}
