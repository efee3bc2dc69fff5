//go:build race

package h1

// raceBuild: built with the race detector. The detector learns that what a goroutine did
// before writing to a socket happened before what the reader of those bytes does next only
// through the syscall package's Write and Sendfile (and Read), which tell it so; the raw
// loop uses them, and before a writev(2) (x/sys/unix's, which tells the detector through a
// variable of its own) an empty syscall.Write does it. Without, a test that reads a response
// and then changes what the handler read before writing it was reported as a race.
const raceBuild = true
