package alerting_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/internal/cputime"
	"github.com/upwatch/upwatch/registry"
)

// BenchmarkObserveUp is the engine's cost per result in the steady state
// issue 11 measures: 100,000 routed targets, all UP, each result a success
// from one location (as serve alone) or from one of three. Nothing changes
// that a restart must remember, so nothing is committed: the cost is the
// state machine and its bookkeeping, and should be close to allocation-free.
func BenchmarkObserveUp(b *testing.B) {
	for _, nloc := range []int{1, 3} {
		b.Run(fmt.Sprintf("locations=%d", nloc), func(b *testing.B) {
			s, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: b.TempDir() + "/registry.db"})
			require.NoError(b, err)
			defer s.Close()
			const n = 100000
			routes, ids := manyRoutes(n)
			e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: s, Now: func() time.Time { return t0 }})
			require.NoError(b, err)
			e.Update(routes, nil)
			locs := []string{"eu", "us", "ap"}[:nloc]
			// Results of round i start at t0 + i minutes, location j's j
			// seconds later.
			observe := func(i, j int, id string) {
				r := result(id, t0.Add(time.Duration(i)*time.Minute+time.Duration(j)*time.Second), true)
				r.Location = locs[j]
				if err := e.Observe(context.Background(), r); err != nil {
					b.Fatal(err)
				}
			}
			// Every target UP with every location's view, committed in
			// batches; a target's results are n apart, so none waits for
			// its commit.
			e.Start()
			for i := range 3 {
				for j := range locs {
					for _, id := range ids {
						observe(i, j, id)
					}
				}
			}
			require.NoError(b, e.Stop(context.Background()))
			for _, id := range ids {
				st, _ := e.State(id)
				require.Equal(b, alerting.StatusUp, st.Status)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for k := range b.N {
				i, id := 3+k/n, ids[k%n]
				for j := range locs {
					observe(i, j, id)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nloc), "ns/result")
		})
	}
}

// BenchmarkFirstUpBurst is the burst after a start that issue 11 measured:
// every target's second result moves it UNKNOWN → UP, a state the engine
// commits, with results arriving at the pace of 100,000 targets a minute
// (one every 600µs). One op is one target; cpu-ns/op is the process's CPU
// time (the engine and the registry) per committed target.
func BenchmarkFirstUpBurst(b *testing.B) {
	s, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: b.TempDir() + "/registry.db"})
	require.NoError(b, err)
	defer s.Close()
	routes, ids := manyRoutes(b.N)
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: s, Now: func() time.Time { return t0 }})
	require.NoError(b, err)
	e.Update(routes, nil)
	e.Start()
	for _, id := range ids { // a first success commits nothing
		require.NoError(b, e.Observe(context.Background(), result(id, t0, true)))
	}
	const pace = 600 * time.Microsecond
	b.ResetTimer()
	cpu0, start := cputime.Used(), time.Now()
	for i, id := range ids {
		if i%16 == 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * pace)))
		}
		require.NoError(b, e.Observe(context.Background(), result(id, t0.Add(time.Minute), true)))
	}
	require.NoError(b, e.Stop(context.Background()))
	b.ReportMetric(float64((cputime.Used()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	states, err := s.LoadStates(context.Background())
	require.NoError(b, err)
	require.Len(b, states, b.N)
}
