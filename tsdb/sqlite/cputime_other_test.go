//go:build !unix

package sqlite

import "time"

// cpuTime is unknown here: benchmarks report a CPU time of 0.
func cpuTime() time.Duration { return 0 }
