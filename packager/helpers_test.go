package packager

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/reelvideo/reel/internal/testkit"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// samplesDir is the repository's samples folder, relative to this package.
const samplesDir = "../samples"

func samplePath(name string) string { return filepath.Join(samplesDir, name) }

var ladder = []string{samplePath("ladder_720p.mp4"), samplePath("ladder_480p.mp4"), samplePath("ladder_360p.mp4")}

// requireTool: see testkit.RequireTool.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	return testkit.RequireTool(t, name)
}

// ffprobeJSON runs ffprobe with args and decodes its JSON output.
func ffprobeJSON(t testing.TB, args ...string) map[string]any {
	t.Helper()
	bin := requireTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-v", "error", "-of", "json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %v: %v: %s", args, err, stderr.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return v
}

// probeStreams returns ffprobe's streams array.
func probeStreams(t testing.TB, args ...string) []map[string]any {
	t.Helper()
	v := ffprobeJSON(t, append(args, "-show_streams")...)
	raw, _ := v["streams"].([]any)
	var out []map[string]any
	for _, s := range raw {
		out = append(out, s.(map[string]any))
	}
	return out
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, k string) float64 {
	switch v := m[k].(type) {
	case float64:
		return v
	case string:
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	return 0
}

// packageTo packages inputs into a fresh folder and fails the test on error.
func packageTo(t testing.TB, opt Options) (string, *Options) {
	t.Helper()
	if opt.Output == "" {
		opt.Output = filepath.Join(t.TempDir(), "out")
	}
	if _, err := Package(context.Background(), opt); err != nil {
		t.Fatalf("Package: %v", err)
	}
	return opt.Output, &opt
}
