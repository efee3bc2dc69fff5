// Package testkit holds the test helpers that the packager's, the edge's and the command's
// tests share: finding outside tools the CI way, small statistics for side-by-side
// benchmarks, the check that no key leaks into published bytes (secrets.go), the CPIX
// documents of the live encryption tests (cpix.go), and video with closed captions made with
// ffmpeg (captions.go), a MaxMind country database for the edge's access rules (mmdb.go). It is imported only from _test.go files.
package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// RequireTool returns the path of an outside tool (looked up in PATH, then in dirs). Without
// it the test is skipped on a developer machine but fails in CI (CI=true), where .ci/run
// must have installed it.
func RequireTool(tb testing.TB, name string, dirs ...string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is required in CI but not installed (.ci/run installs what tests need)", name)
	}
	tb.Skipf("%s not installed", name)
	return ""
}

// Median of v (v is not modified).
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// FmtAll formats v as "[a b c]" with prec decimals, for benchmark logs.
func FmtAll(v []float64, prec int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', prec, 64)
	}
	return "[" + strings.Join(s, " ") + "]"
}
