package edge

import (
	"os"
	"runtime"
	"sync/atomic"
)

// eventLoops is how many event loops NewServer gives the HTTP/1.1 server (0: its default),
// as SetGoProcs chose.
var eventLoops atomic.Int32

// GoProcs is what SetGoProcs left in force.
type GoProcs struct {
	Procs   int  // GOMAXPROCS
	Loops   int  // HTTP/1.1 event loops (0: none)
	FromEnv bool // GOMAXPROCS came from the environment
}

// SetGoProcs gives the Go scheduler a processor (P) for each HTTP/1.1 event loop on top of one
// per CPU — GOMAXPROCS twice the CPUs, one loop per CPU — unless the environment set
// GOMAXPROCS (an operator's word wins; one loop per P then) or the configuration turned the
// loops off. Call it once, before NewFrontend or NewServer.
//
// Why: a loop waits for its next events in epoll_wait, a system call, and Go hands the loop's
// P to other work meanwhile; when the wait ends the loop needs a P back, and with one P per
// CPU it queues behind the garbage collector's mark worker and whatever else runs, and so
// does every request ready on it. Measured on 2 cores under wrk (-t2 -c64, 1 KB hits): p99
// 5.5-6.5 ms with 2 Ps, 3.7-4.4 ms with 4 (nginx: 3.5-4.7 ms in the same runs). The extra Ps
// add no CPU: the kernel still shares the same cores among the same threads.
func SetGoProcs(cfg Config) GoProcs {
	p := GoProcs{Procs: runtime.GOMAXPROCS(0)}
	_, p.FromEnv = os.LookupEnv("GOMAXPROCS")
	if !cfg.HTTP1.GoroutinePerConnection {
		p.Loops = p.Procs
		if !p.FromEnv {
			p.Procs = 2 * p.Loops
			runtime.GOMAXPROCS(p.Procs)
		}
	}
	eventLoops.Store(int32(p.Loops))
	return p
}
