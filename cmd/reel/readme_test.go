package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// readmeInputRe finds the files the README's commands read: media and config files.
	readmeInputRe = regexp.MustCompile(`[A-Za-z0-9_./*-]+\.(?:mp4|yaml|conf|vtt|srt|ttml)\b`)
	// readmeLinkRe finds Markdown links and images: [text](target).
	readmeLinkRe = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// readmeOutsideRe finds paths named in code spans that lead out of the repository.
	readmeOutsideRe = regexp.MustCompile("`\\.\\./[^`]*`")
)

// TestREADMEPaths: the files the README's shell examples read exist in the repository (a
// newcomer copies them from the top of the checkout), and its links point at files inside
// it. It once had `reel package … ladder_*.mp4` (the files are in samples/) and a link to a
// document outside the repository.
func TestREADMEPaths(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	inBlock := false
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			inBlock = trimmed == "```sh"
			continue
		}
		if inBlock {
			for _, f := range readmeInputRe.FindAllString(line, -1) {
				if strings.HasPrefix(f, "out/") { // what the examples write
					continue
				}
				if m, _ := filepath.Glob(filepath.Join(root, f)); len(m) == 0 {
					t.Errorf("README.md:%d: %s does not exist in the repository: %s", i+1, f, trimmed)
				}
			}
			continue
		}
		for _, p := range readmeOutsideRe.FindAllString(line, -1) {
			t.Errorf("README.md:%d: %s is outside the repository", i+1, p)
		}
		for _, m := range readmeLinkRe.FindAllStringSubmatch(line, -1) {
			target := strings.SplitN(m[1], "#", 2)[0]
			if target == "" || strings.Contains(target, "://") {
				continue
			}
			clean := filepath.Clean(target)
			if strings.HasPrefix(clean, "..") || filepath.IsAbs(clean) {
				t.Errorf("README.md:%d: link %s leads out of the repository", i+1, m[1])
				continue
			}
			if _, err := os.Stat(filepath.Join(root, clean)); err != nil {
				t.Errorf("README.md:%d: link %s: %v", i+1, m[1], err)
			}
		}
	}
}
