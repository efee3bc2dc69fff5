//go:build !race

package h1

// raceBuild: see race.go.
const raceBuild = false
