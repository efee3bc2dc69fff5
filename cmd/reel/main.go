// Command reel packages video ladders into CMAF with HLS and DASH manifests and serves them.
//
// Run `reel help` for the subcommands and examples.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…" (make build: git describe);
// otherwise the build information's module version and VCS stamp are used (describeBuild).
var version = ""

// Exit codes: 0 success, 1 failure, 2 usage error.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"package", "package MP4 renditions into CMAF segments with HLS and DASH manifests", runPackage},
		{"origin", "serve packaged presentations over HTTP, ready for a CDN", runOrigin},
		{"live", "package and serve live channels (HLS, LL-HLS, DASH) with a DVR window", runLive},
		{"edge", "run the caching reverse proxy in front of an origin", runEdge},
		{"token", "mint a signed-URL token (or a URL carrying one) for the edge", runToken},
		{"demo", "run everything on this machine: VOD and a live channel through the edge", runDemo},
		{"version", "print the version", runVersion},
		{"help", "show help for a command", runHelp},
	}
}

const mainUsage = `Reel packages video and delivers it: an ABR ladder of MP4 files becomes CMAF
segments described by HLS and DASH manifests, served by an origin a CDN can front.

Usage:
  reel <command> [flags] [arguments]

Commands:
%s
Examples:
  reel package samples/ladder_720p.mp4 samples/ladder_480p.mp4 samples/ladder_360p.mp4 -o out/vod
  reel origin --dir out --listen 127.0.0.1:8080
  reel live --loop demo=samples/ladder_720p.mp4,samples/ladder_360p.mp4
  reel edge --origin http://127.0.0.1:8080 --listen 127.0.0.1:8081
  reel token --key-id k1 --key-file k1.hex --url http://127.0.0.1:8081/vod/master.m3u8
  reel demo
  reel package -h
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printMainUsage(stdout)
		return exitOK
	case "-version", "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "reel: unknown command %q (run 'reel help')\n", args[0])
	return exitUsage
}

func printMainUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, mainUsage, b.String())
}

func runHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] && c.name != "help" {
			return c.run([]string{"-h"}, stdout, stderr)
		}
	}
	if args[0] == "help" {
		printMainUsage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "reel help: unknown command %q\n", args[0])
	return exitUsage
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "reel %s\n", versionString())
	return exitOK
}

func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, bi)
}

// describeBuild says which build this is: the version given at link time (make build sets it
// from git describe, as Go leaves no VCS stamp in a linked git worktree or with
// -buildvcs=false), else the module's version; then the commit and whether the tree had
// uncommitted changes, when Go stamped them (vcs.revision, vcs.modified), and the Go
// toolchain and platform. bi may be nil (a binary without build information).
func describeBuild(linked string, bi *debug.BuildInfo) string {
	v := linked
	if v == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	var details []string
	if bi != nil {
		var revision, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if revision != "" {
			c := "commit " + revision[:min(12, len(revision))]
			if modified == "true" {
				c += ", modified"
			}
			details = append(details, c)
		}
	}
	goVersion := runtime.Version()
	if bi != nil && bi.GoVersion != "" {
		goVersion = bi.GoVersion
	}
	details = append(details, goVersion+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return v + " (" + strings.Join(details, ", ") + ")"
}

// parseFlags parses flags that may come before, between or after positional arguments
// (`reel package a.mp4 b.mp4 -o out`), which the standard flag package stops at. It returns
// the positional arguments, or an exit code when parsing ended the command (-h or an error).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) ([]string, int, bool) {
	fs.SetOutput(io.Discard)
	// Everything after "--" is positional; split it off ourselves because flag.Parse
	// consumes the "--" and our loop would then read flags again.
	var after []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, after = args[:i], args[i+1:]
	}
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, exitOK, false
		}
		if err != nil {
			fmt.Fprintf(stderr, "reel %s: %v (run 'reel %s -h')\n", fs.Name(), err, fs.Name())
			return nil, exitUsage, false
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, after...), 0, true
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usageFunc prints a command's usage text followed by its flags.
func usageFunc(fs *flag.FlagSet, text string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, text)
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
}
