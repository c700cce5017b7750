package schedule

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

// With Overran set, a check that ignores its deadline is answered for once
// its timeout and the grace have passed; a new worker takes its place, so
// the only worker being stuck stops nothing; its late result is dropped;
// and the target is checked again at its next slot.
func TestOverrunCheckIsAnsweredAndItsWorkerReplaced(t *testing.T) {
	release := make(chan struct{})
	stuck, returned := make(chan struct{}, 1), make(chan struct{})
	var stuckRuns atomic.Int64
	check := func(_ context.Context, tg *prober.Target) prober.Result {
		if tg.ID == "stuck" && stuckRuns.Add(1) == 1 {
			stuck <- struct{}{}
			<-release
			defer close(returned)
			return prober.Result{TargetID: tg.ID, Success: true, Error: "late"}
		}
		return prober.Result{TargetID: tg.ID, Success: true}
	}
	h := newHarness(t, 1, check)
	h.s.overran = func(tg *prober.Target, start time.Time) prober.Result {
		return prober.Result{TargetID: tg.ID, Start: start}.Fail(prober.ClassTimeout, "overran")
	}
	const iv = time.Minute
	st := target("stuck", iv)
	st.Timeout = 50 * time.Millisecond // real time: the watchdog is not on the scheduler's clock
	h.s.Update([]prober.Target{st, target("other", iv)})
	h.run(t)
	unblock := unblockAtCleanup(t, release)

	h.clk.Set(h.next(t, "stuck"))
	<-stuck
	require.Eventually(t, func() bool { return len(h.resultsOf("stuck")) == 1 }, wait, tick)
	r := h.resultsOf("stuck")[0]
	require.Equal(t, prober.ClassTimeout, r.ErrorClass)
	require.Equal(t, "overran", r.Error)
	require.False(t, r.Scheduled.IsZero())
	require.Eventually(t, func() bool { return testutil.ToFloat64(h.s.m.inFlight) == 0 }, wait, tick)

	// The only worker is still stuck, yet the other target is checked.
	h.clk.Set(h.next(t, "other"))
	require.Eventually(t, func() bool { return len(h.resultsOf("other")) == 1 }, wait, tick)

	// The late result is dropped; the target's next slot runs normally.
	unblock()
	<-returned
	h.clk.Set(h.next(t, "stuck"))
	require.Eventually(t, func() bool { return len(h.resultsOf("stuck")) == 2 }, wait, tick)
	require.True(t, h.resultsOf("stuck")[1].Success)
	require.Empty(t, h.resultsOf("stuck")[1].Error, "the overrun check's late result reached the sink")
	require.Len(t, h.resultsOf("stuck"), 2)
}

func (h *harness) resultsOf(id string) []prober.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []prober.Result
	for _, r := range h.results {
		if r.TargetID == id {
			out = append(out, r)
		}
	}
	return out
}
