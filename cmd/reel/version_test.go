package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion: `reel version` names the build — never a bare "dev" — with the Go toolchain.
func TestVersion(t *testing.T) {
	code, stdout, _ := runReel(t, "version")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stdout, runtime.Version()) || strings.TrimSpace(stdout) == "reel dev" {
		t.Errorf("reel version printed %q, want the build described with %s", stdout, runtime.Version())
	}
}

func TestDescribeBuild(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261206200000-f11a37a9a32e+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "f11a37a9a32ed8cd25f9bdaa713a7672984c14b0"}, {Key: "vcs.modified", Value: "true"}}}
	clean := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "f11a37a9a32ed8cd25f9bdaa713a7672984c14b0"}, {Key: "vcs.modified", Value: "false"}}}
	unstamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name, linked string
		bi           *debug.BuildInfo
		want         string
	}{
		{"stamped by go build in a checkout", "", stamped,
			"v0.0.0-20261206200000-f11a37a9a32e+dirty (commit f11a37a9a32e, modified, go1.26.8 " + platform + ")"},
		{"a clean tagged build", "", clean, "v1.2.0 (commit f11a37a9a32e, go1.26.8 " + platform + ")"},
		{"make build: git describe at link time", "f11a37a-dirty", unstamped, "f11a37a-dirty (go1.26.8 " + platform + ")"},
		{"no VCS stamp, no version given", "", unstamped, "devel (go1.26.8 " + platform + ")"},
		{"no build information", "", nil, "devel (" + runtime.Version() + " " + platform + ")"},
	}
	for _, tc := range tests {
		if got := describeBuild(tc.linked, tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
