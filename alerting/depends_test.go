package alerting_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

// Two targets that depend on each other (validation refuses this, the
// engine must still not deadlock) going DOWN and UP together, over and over.
func TestEngineMutualDependenciesDoNotDeadlock(t *testing.T) {
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"a": route("a", "b"), "b": route("b", "a")})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Both targets take each step together, so their DOWN
		// transitions meet.
		at := t0
		for range 100 {
			for _, ok := range []bool{false, false, false, true, true} {
				var wg sync.WaitGroup
				start := make(chan struct{})
				for _, id := range []string{"a", "b"} {
					wg.Go(func() {
						r := prober.Result{TargetID: id, Kind: "http", Start: at, Duration: time.Millisecond, Success: ok}
						if !ok {
							r = r.Fail(prober.ClassConnect, "refused")
						}
						<-start
						_ = e.Observe(context.Background(), r)
					})
				}
				close(start)
				wg.Wait()
				at = at.Add(time.Minute)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Observe of mutually dependent targets deadlocked")
	}
	incs, err := s.Incidents(context.Background(), registry.IncidentQuery{TargetID: "a", Limit: 1000})
	require.NoError(t, err)
	require.Len(t, incs, 100)
}

// depEngine is an engine over s with gw (checked every minute) and app
// depending on it, recording the targets it is asked to check at once.
func depEngine(t *testing.T, s alerting.StateStore, clk *clocktest.Manual) (*alerting.Engine, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var asked []string
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{
		Store: s, Now: clk.Now, Registerer: prometheus.NewRegistry(),
		CheckNow: func(id string) { mu.Lock(); asked = append(asked, id); mu.Unlock() },
	})
	require.NoError(t, err)
	gw := route("gw")
	gw.Interval = time.Minute
	e.Update(map[string]alerting.Route{"gw": gw, "app": route("app", "gw")}, nil)
	return e, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), asked...) }
}

func targetsOf(ns []alerting.Notification) map[string]int {
	out := map[string]int{}
	for _, n := range ns {
		out[n.Message.TargetID+"/"+n.Message.Kind]++
	}
	return out
}

// The child's third failure is processed before any of the parent's
// failures (its check comes earlier in the interval): the child's DOWN is
// held, the parent is asked at once, and its failure suppresses the page.
func TestEngineChildFirstIsSuppressedByAFailingParent(t *testing.T) {
	s := openStore(t, "")
	clk := clocktest.NewManual(t0)
	e, asked := depEngine(t, s, clk)
	ctx := context.Background()
	feed(t, e, "gw", t0.Add(-90*time.Second), ".") // healthy before the outage
	feed(t, e, "app", t0, "xxx")                   // DOWN decided by the check at 12:02
	clk.Set(t0.Add(2*time.Minute + time.Second))
	e.Tick(ctx, clk.Now())
	require.Empty(t, queued(t, s), "the child's DOWN waits for its parent")
	require.Equal(t, []string{"gw"}, asked(), "the parent is checked at once")
	st, _ := e.State("app")
	require.Equal(t, alerting.StatusDown, st.Status)
	require.NotNil(t, st.Hold)

	// The parent's extra check fails: not yet DOWN, but failing.
	feed(t, e, "gw", t0.Add(2*time.Minute+2*time.Second), "x")
	e.Tick(ctx, t0.Add(2*time.Minute+3*time.Second))
	require.Empty(t, queued(t, s))
	incs, err := s.Incidents(ctx, registry.IncidentQuery{TargetID: "app"})
	require.NoError(t, err)
	require.Len(t, incs, 1)
	require.True(t, incs[0].Suppressed)
	require.Equal(t, "parent gw failing", incs[0].SuppressedReason)

	// The parent goes DOWN and pages; the child stays quiet, through its
	// reminders and its recovery.
	feed(t, e, "gw", t0.Add(3*time.Minute+2*time.Second), "xx")
	e.Tick(ctx, t0.Add(30*time.Minute))
	feed(t, e, "app", t0.Add(31*time.Minute), "..")
	for k := range targetsOf(queued(t, s)) {
		require.Regexp(t, "^gw/", k)
	}
	incs, err = s.Incidents(ctx, registry.IncidentQuery{TargetID: "app"})
	require.NoError(t, err)
	require.True(t, incs[0].Suppressed, "the UP keeps the suppression")
	require.False(t, incs[0].Open())
}

// A parent that answers healthy releases the child's DOWN at once; a
// parent that does not answer releases it after interval × threshold.
func TestEngineHeldDownGoesOutWhenTheParentAnswersOrTheGracePasses(t *testing.T) {
	t.Run("parent healthy", func(t *testing.T) {
		s := openStore(t, "")
		clk := clocktest.NewManual(t0)
		e, _ := depEngine(t, s, clk)
		ctx := context.Background()
		feed(t, e, "gw", t0.Add(-90*time.Second), ".")
		feed(t, e, "app", t0, "xxx")
		require.Empty(t, queued(t, s))
		// A parent check started before the child's deciding check does
		// not answer.
		feed(t, e, "gw", t0.Add(2*time.Minute-time.Second), ".")
		e.Tick(ctx, t0.Add(2*time.Minute+time.Second))
		require.Empty(t, queued(t, s))
		feed(t, e, "gw", t0.Add(2*time.Minute+time.Second), ".")
		e.Tick(ctx, t0.Add(2*time.Minute+2*time.Second))
		require.Equal(t, map[string]int{"app/down": 3}, targetsOf(queued(t, s)))
		st, _ := e.State("app")
		require.Nil(t, st.Hold)
		incs, err := s.Incidents(ctx, registry.IncidentQuery{TargetID: "app"})
		require.NoError(t, err)
		require.False(t, incs[0].Suppressed)
	})
	t.Run("grace passes, across a restart", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "registry.db")
		s := openStore(t, path)
		clk := clocktest.NewManual(t0)
		e, _ := depEngine(t, s, clk)
		ctx := context.Background()
		feed(t, e, "gw", t0.Add(-90*time.Second), ".")
		feed(t, e, "app", t0, "xxx") // decided at 12:02:00.1; grace 3 × 1m
		e.Tick(ctx, t0.Add(5*time.Minute))
		require.Empty(t, queued(t, s), "still inside the grace")

		// A restart keeps holding: the hold is in the stored state.
		s2 := openStore(t, path)
		e2, _ := depEngine(t, s2, clk)
		st, _ := e2.State("app")
		require.NotNil(t, st.Hold)
		e2.Tick(ctx, t0.Add(5*time.Minute+100*time.Millisecond))
		require.Equal(t, map[string]int{"app/down": 3}, targetsOf(queued(t, s2)))
		// Once, whatever is replayed or ticked again.
		e2.Tick(ctx, t0.Add(5*time.Minute+200*time.Millisecond))
		feed(t, e2, "app", t0, "xxx")
		e.Tick(ctx, t0.Add(6*time.Minute)) // the old engine, still holding in memory
		require.Equal(t, map[string]int{"app/down": 3}, targetsOf(queued(t, s2)))
		// Reminders follow the released DOWN.
		e2.Tick(ctx, t0.Add(12*time.Minute+200*time.Millisecond))
		require.Equal(t, map[string]int{"app/down": 3, "app/reminder": 3}, targetsOf(queued(t, s2)))
	})
	t.Run("child recovers first", func(t *testing.T) {
		s := openStore(t, "")
		clk := clocktest.NewManual(t0)
		e, _ := depEngine(t, s, clk)
		feed(t, e, "gw", t0.Add(-90*time.Second), ".")
		feed(t, e, "app", t0, "xxx..")
		require.Equal(t, map[string]int{"app/down": 3, "app/up": 3}, targetsOf(queued(t, s)), "an outage no parent explains is told, DOWN and UP")
	})
}
