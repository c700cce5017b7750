package prober

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Checks one after another reuse one runner instead of a goroutine each.
func TestRunnersReuseIdleGoroutines(t *testing.T) {
	r := newRunners()
	r.idle = time.Minute
	before := runtime.NumGoroutine()
	var ran atomic.Int64 // also proves each check ran
	for range 200 {
		done := make(chan struct{})
		r.run(func() { ran.Add(1); close(done) })
		<-done
		// Let the runner get back to waiting, as it does between checks.
		waitGoroutines(t, before+1)
	}
	require.EqualValues(t, 200, ran.Load())
	require.LessOrEqual(t, runtime.NumGoroutine(), before+1, "200 sequential checks used more than one runner")
}

// A runner stuck in a check is never handed another: the next one starts
// on a runner of its own.
func TestRunnersNeverQueueBehindABusyOne(t *testing.T) {
	r := newRunners()
	stuck := make(chan struct{})
	defer close(stuck)
	r.run(func() { <-stuck })
	done := make(chan struct{})
	r.run(func() { close(done) })
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a check waited for a runner that was busy")
	}
}

// Idle runners end, so a burst of checks leaves no goroutines behind.
// The 50 checks block until all 50 run, which proves 50 runners; their end
// is seen through the process's goroutine count, which other tests'
// leftovers can only lower while this one waits.
func TestRunnersEndWhenIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	r := newRunners()
	r.idle = 10 * time.Millisecond
	var started sync.WaitGroup
	started.Add(50)
	release := make(chan struct{})
	for range 50 {
		r.run(func() { started.Done(); <-release })
	}
	started.Wait()
	close(release)
	waitGoroutines(t, before)
}

// waitGoroutines waits until at most n goroutines run (polling itself:
// require.Eventually would count its own).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
