//go:build race

package cachekey

const raceEnabled = true
