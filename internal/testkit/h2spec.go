package testkit

import (
	"os"
	"sync"
	"testing"
	"time"
)

// h2spec (github.com/summerwind/h2spec), the HTTP/2 conformance tool, is built from the Go
// module proxy at the version pinned by internal/testkit/h2spec/go.mod, once per pinned version,
// into the user's cache (os.UserCacheDir()/reel-test/h2spec-<hash>/h2spec), like the S3 test
// server (s3.go). Seconds cold.

// h2specBuildTimeout bounds h2spec's build (seconds on an idle machine).
const h2specBuildTimeout = 10 * time.Minute

var h2specOnce struct {
	sync.Once
	path string
	err  error
}

// H2specBinary returns the path of the pinned h2spec binary, building it first if the cache
// has none (once per process; across processes under a file lock).
func H2specBinary() (string, error) {
	h2specOnce.Do(func() {
		h2specOnce.path, h2specOnce.err = buildPinnedTool("h2spec", "github.com/summerwind/h2spec/cmd/h2spec", "h2spec", "h2spec", h2specBuildTimeout)
	})
	return h2specOnce.path, h2specOnce.err
}

// RequireH2spec returns the path of h2spec as RequireTool does for installed tools: when it
// can't be built the test is skipped on a developer machine and fails in CI (CI=true).
func RequireH2spec(tb testing.TB) string {
	tb.Helper()
	bin, err := H2specBinary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("h2spec is required in CI: %v", err)
		}
		tb.Skipf("h2spec unavailable: %v", err)
	}
	return bin
}
