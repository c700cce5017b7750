// Package procs sets how many Go processors upwatch runs: twice the CPUs
// the Go runtime would use (it already follows a container's CPU limit),
// unless GOMAXPROCS says otherwise.
//
// Why twice: a check is short and waits on the network, but the work that
// runs beside it is not: a batch of samples written to SQLite, an alert
// state commit, a compaction pass or the garbage collector each hold a
// processor for tens of milliseconds. With one processor per CPU, two of
// them at once leave checks queued behind Go's 10 ms preemption; with two
// per CPU the kernel shares the CPUs at a finer grain and checks start on
// time. Measured with `make load-scale` at 250,000 targets on 2 CPUs: lag
// p99 32-191 ms with 2 processors, 5-7 ms with 4, for the same CPU time.
package procs

import (
	"runtime"
	"sync"
)

var once sync.Once

// Tune sets GOMAXPROCS to twice its default unless getenv("GOMAXPROCS") is
// set, once per process, and returns the number in effect.
func Tune(getenv func(string) string) int {
	once.Do(func() {
		if getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
		}
	})
	return runtime.GOMAXPROCS(0)
}
