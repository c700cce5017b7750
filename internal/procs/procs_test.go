package procs

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fresh lets a test call Tune as a new process would, and puts the
// processors back after it.
func fresh(t *testing.T) int {
	before := runtime.GOMAXPROCS(0)
	once = sync.Once{}
	t.Cleanup(func() { runtime.GOMAXPROCS(before); once = sync.Once{} })
	return before
}

// Twice the default, once: a second call (serve in a test process, say)
// does not double it again.
func TestTuneDoublesOnce(t *testing.T) {
	before := fresh(t)
	noEnv := func(string) string { return "" }
	require.Equal(t, 2*before, Tune(noEnv))
	require.Equal(t, 2*before, Tune(noEnv))
}

// A GOMAXPROCS the operator set is left as it is.
func TestTuneLeavesAnExplicitSetting(t *testing.T) {
	before := fresh(t)
	require.Equal(t, before, Tune(func(k string) string {
		if k == "GOMAXPROCS" {
			return "3"
		}
		return ""
	}))
}
