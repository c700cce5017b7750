package cputime

import (
	"runtime"
	"testing"
)

// Work done shows in Used (where the system reports CPU time at all).
func TestUsedGrowsWithWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no process CPU time here")
	}
	before := Used()
	x := 0
	for i := 0; Used() == before; i++ {
		x += i * i // burn CPU until the clock ticks
	}
	_ = x
	if Used() <= before {
		t.Fatalf("Used went from %s to %s", before, Used())
	}
}
