package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// buildPinnedTool builds the Go command pkg, pinned by the module in the folder modDir beside
// this file (internal/testkit/<modDir>/go.mod and go.sum: a module of its own, so none of the
// tool's dependencies enter reel's), into the user's cache as
// os.UserCacheDir()/reel-test/<name>-<hash of go.mod, go.sum and the platform>/<name>, and
// returns its path. It builds once per pinned version: under a file lock across processes
// (parallel test packages, .ci/run's build in the background), reusing the binary after.
// what names the tool in messages.
func buildPinnedTool(modDir, pkg, name, what string, timeout time.Duration) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate internal/testkit")
	}
	mod := filepath.Join(filepath.Dir(file), modDir)
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil {
			return "", fmt.Errorf("the pinned module of %s: %w", what, err)
		}
		h.Write(b)
	}
	h.Write([]byte(runtime.GOOS + "/" + runtime.GOARCH))
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "reel-test", name+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, name)
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	// Another process building it holds the lock; when it lets go the binary is there (or its
	// build failed and this one tries again).
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isExecutable(bin) {
		return bin, nil
	}
	// A build whose test process died (its timeout) may have left its output: nobody else
	// builds while we hold the lock.
	if stale, _ := filepath.Glob(bin + ".tmp-*"); len(stale) > 0 {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	tmp := bin + ".tmp-" + strconv.Itoa(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	// Plain flags: the same build as a developer's `go build` in that folder, so Go's build
	// cache serves either.
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp, pkg)
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "GOWORK=off")
	// Dies with this process (a test binary killed by its timeout), and so lets go of the lock.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building %s (go build in %s): %v\n%s", what, mod, err, tail(string(out), 2000))
	}
	if err := os.Rename(tmp, bin); err != nil {
		os.Remove(tmp)
		return "", err
	}
	fmt.Fprintf(os.Stderr, "testkit: built %s in %v: %s\n", what, time.Since(start).Round(time.Second), bin)
	return bin, nil
}
