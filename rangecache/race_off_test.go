//go:build !race

package rangecache

const raceEnabled = false
