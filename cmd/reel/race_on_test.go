//go:build race

package main

// raceEnabled scales down the heaviest load tests under the race detector, which slows
// them ~10x; make test also runs them at full size without it.
const raceEnabled = true
