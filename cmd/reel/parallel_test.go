package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// The tests that spend their time waiting on a clock — players playing in headless Chromium
// in real time, live channels making segments, origins that trickle bytes — run side by side:
// most of their wall time is waiting, and two cores can hold several of them (make test's
// -parallel lets it). Such a test calls t.Parallel() as its first statement, and may because
// it owns everything it touches: its reel processes on addresses from freeAddr, its folders
// from t.TempDir(), its own Chromium (each play.mjs or clearkey.mjs run launches one). It must
// not change process-wide state (t.Setenv, os.Setenv, os.Chdir, package variables), and its
// subtests, when each owns its servers and browser too, call t.Parallel() as well. Go runs
// the parallel tests once the sequential ones are done, so a test that needs t.Setenv (say)
// stays sequential and still never overlaps them. So does a test that measures how fast bytes
// flow (TestLiveSegmentInProgressCoalesced: a viewer must get bytes before the origin finishes a
// segment; beside another test and a CPU hog one did not), one that follows live playlists
// with a short window (TestLiveThroughEdge: its DASH follower, slowed beside two browser tests
// in a clean-clone CI run, saw a segment leave the 8 s window before it polled again — a gap
// it reports) and one that is short anyway.
//
// TestBrowserTestsParallel holds the browser tests to it: every TestBrowser… function of this
// package starts with t.Parallel(), but those of sequentialBrowserTests.
// sequentialBrowserTests run alone (before the parallel ones), and why.
var sequentialBrowserTests = map[string]string{
	// Its live players are held to latency targets, and beside another browser test and a CPU
	// hog hls.js 1.7.4's LL-HLS threw "Cannot read properties of null (reading 'start')" once
	// in five runs, after aborting a part load (a console error, which fails the test).
	"TestBrowser": "latency targets; hls.js LL-HLS under load",
	// Under load hls.js stalled (bufferStalledError), about once in 14 runs: the edge's pool
	// sent one playlist's reloads to either redundant origin at random, and their windows
	// differ (fixed: edge/pool.go pick). It still runs after the rest, on its own (`make test`:
	// go test -skip, then -run), until it has a clean record beside the suite.
	"TestBrowserLiveRedundantFailover": "an hls.js stall under load (the pool's random pick, fixed); on its own until proven",
	// In a clean-clone CI run on 2026-12-07 (6bb20ab), beside the other packages' race tests,
	// dash.js played no frame of the live channel and Shaka Player's HLS text timeline stood a
	// segment from its playhead's date; never alone or beside two CPU hogs, nor in 3 runs of the
	// whole race suite with it on 2026-12-07. Not understood: `make test` runs it on its own
	// after the rest, as the failover test, while it is; a failure prints what each player
	// loaded and did (play.mjs's events).
	"TestBrowserLiveSubtitles": "dash.js and Shaka HLS timing under the full suite's load, not understood",
}

func TestBrowserTestsParallel(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := 0
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "TestBrowser") || fn.Name.Name == "TestBrowserTestsParallel" {
				continue
			}
			found++
			if _, ok := sequentialBrowserTests[fn.Name.Name]; ok {
				if startsWithParallel(fn) {
					t.Errorf("%s: %s is listed in sequentialBrowserTests but calls t.Parallel()", fset.Position(fn.Pos()), fn.Name.Name)
				}
				continue
			}
			if !startsWithParallel(fn) {
				t.Errorf("%s: %s does not call t.Parallel() first (see parallel_test.go)", fset.Position(fn.Pos()), fn.Name.Name)
			}
		}
	}
	if found == 0 {
		t.Fatal("no TestBrowser… function found: is the test run from cmd/reel?")
	}
}

// startsWithParallel reports whether fn's first statement is <param>.Parallel().
func startsWithParallel(fn *ast.FuncDecl) bool {
	if fn.Body == nil || len(fn.Body.List) == 0 || len(fn.Type.Params.List) != 1 || len(fn.Type.Params.List[0].Names) != 1 {
		return false
	}
	stmt, ok := fn.Body.List[0].(*ast.ExprStmt)
	if !ok {
		return false
	}
	call, ok := stmt.X.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Parallel" {
		return false
	}
	recv, ok := sel.X.(*ast.Ident)
	return ok && recv.Name == fn.Type.Params.List[0].Names[0].Name
}
