package alerting_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

// hookedStore is a real registry whose CommitBatch first asks hook, which
// may fail the batch or hold it; it records every batch it stored.
type hookedStore struct {
	*registry.SQLite
	hook func(ctx context.Context, cs []alerting.Commit) error

	mu      sync.Mutex
	batches [][]alerting.Commit
}

func (h *hookedStore) CommitBatch(ctx context.Context, cs []alerting.Commit) error {
	if h.hook != nil {
		if err := h.hook(ctx, cs); err != nil {
			return err
		}
	}
	if err := h.SQLite.CommitBatch(ctx, cs); err != nil {
		return err
	}
	h.mu.Lock()
	h.batches = append(h.batches, slices.Clone(cs))
	h.mu.Unlock()
	return nil
}

// sizes is the size of every batch stored so far.
func (h *hookedStore) sizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int, len(h.batches))
	for i, b := range h.batches {
		out[i] = len(b)
	}
	return out
}

// states is every state stored so far for id, in commit order.
func (h *hookedStore) states(id string) []alerting.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []alerting.State
	for _, b := range h.batches {
		for _, c := range b {
			if c.State.TargetID == id {
				out = append(out, c.State)
			}
		}
	}
	return out
}

func groupEngine(t *testing.T, s alerting.StateStore, routes map[string]alerting.Route, batch int, delay time.Duration) *alerting.Engine {
	t.Helper()
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{
		Store: s, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry(),
		CommitBatch: batch, CommitDelay: delay,
	})
	require.NoError(t, err)
	e.Update(routes, nil)
	e.Start()
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

func result(id string, at time.Time, ok bool) prober.Result {
	r := prober.Result{TargetID: id, Target: id, Kind: "http", Start: at, Duration: 100 * time.Millisecond, Success: ok}
	if !ok {
		r.ErrorClass, r.Error = prober.ClassStatus, "503 not in 200-399"
	}
	return r
}

// manyRoutes routes n targets t000, t001, ….
func manyRoutes(n int) (map[string]alerting.Route, []string) {
	routes := map[string]alerting.Route{}
	var ids []string
	for i := range n {
		id := fmt.Sprintf("t%03d", i)
		routes[id] = route(id)
		ids = append(ids, id)
	}
	return routes, ids
}

func TestGroupCommitBatchesBySizeAndFlushesOnStop(t *testing.T) {
	s := &hookedStore{SQLite: openStore(t, "")}
	routes, ids := manyRoutes(110)
	// The delay is too long to close a batch: only size and Stop do.
	e := groupEngine(t, s, routes, 50, time.Hour)
	ctx := context.Background()
	for _, id := range ids {
		// A first failure starts a failure run: worth a write.
		require.NoError(t, e.Observe(ctx, result(id, t0, false)))
	}
	require.Eventually(t, func() bool { return slices.Equal(s.sizes(), []int{50, 50}) }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, e.Stop(ctx))
	require.Equal(t, []int{50, 50, 10}, s.sizes(), "Stop commits the open batch")
	states, err := s.LoadStates(ctx)
	require.NoError(t, err)
	require.Len(t, states, 110)
	for _, id := range ids {
		require.Equal(t, 1, states[id].ConsecutiveFailures, id)
	}

	// After Stop commits are made at once again.
	require.NoError(t, e.Observe(ctx, result(ids[0], t0.Add(time.Minute), true)))
	require.Equal(t, []int{50, 50, 10, 1}, s.sizes())
}

func TestGroupCommitClosesABatchAfterTheDelay(t *testing.T) {
	s := &hookedStore{SQLite: openStore(t, "")}
	e := groupEngine(t, s, map[string]alerting.Route{"web": route("web")}, 2000, 5*time.Millisecond)
	require.NoError(t, e.Observe(context.Background(), result("web", t0, false)))
	require.Eventually(t, func() bool { return slices.Equal(s.sizes(), []int{1}) }, 30*time.Second, 5*time.Millisecond)
}

// A DOWN whose commit fails is not remembered: the next result derives it
// again, and its notifications are queued once, by the commit that worked.
func TestGroupCommitFailedCommitIsDerivedAgain(t *testing.T) {
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprintf("group=%v", group), func(t *testing.T) {
			var mu sync.Mutex
			failing := false
			s := &hookedStore{SQLite: openStore(t, ""), hook: func(context.Context, []alerting.Commit) error {
				mu.Lock()
				defer mu.Unlock()
				if failing {
					return errors.New("disk full")
				}
				return nil
			}}
			routes := map[string]alerting.Route{"web": route("web")}
			var e *alerting.Engine
			if group {
				e = groupEngine(t, s, routes, 2000, time.Millisecond)
			} else {
				e = newEngine(t, s, routes)
			}
			ctx := context.Background()
			settle := func() {
				if group { // a round trip through the committer
					require.NoError(t, e.Stop(ctx))
					e.Start()
				}
			}
			for i := range 2 {
				require.NoError(t, e.Observe(ctx, result("web", t0.Add(time.Duration(i)*time.Minute), false)))
			}
			settle()
			mu.Lock()
			failing = true
			mu.Unlock()
			err := e.Observe(ctx, result("web", t0.Add(2*time.Minute), false))
			if !group {
				require.ErrorContains(t, err, "disk full")
			}
			settle()
			st, _ := e.State("web")
			require.NotEqual(t, alerting.StatusDown, st.Status, "a failed commit does not advance the state")
			require.Equal(t, 2, st.ConsecutiveFailures)
			require.Empty(t, queued(t, s.SQLite))

			mu.Lock()
			failing = false
			mu.Unlock()
			require.NoError(t, e.Observe(ctx, result("web", t0.Add(3*time.Minute), false)))
			settle()
			st, _ = e.State("web")
			require.Equal(t, alerting.StatusDown, st.Status)
			require.Equal(t, t0, st.Incident.Start, "the incident still starts at the first failed check")
			require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1}, kinds(queued(t, s.SQLite)))
		})
	}
}

// A batch the store rejects is tried commit by commit, so one bad commit
// does not hold back the others.
func TestGroupCommitOneBadCommitFailsAlone(t *testing.T) {
	s := &hookedStore{SQLite: openStore(t, "")}
	s.hook = func(_ context.Context, cs []alerting.Commit) error {
		if slices.ContainsFunc(cs, func(c alerting.Commit) bool { return c.State.TargetID == "t003" }) {
			return errors.New("rejected")
		}
		return nil
	}
	routes, ids := manyRoutes(10)
	e := groupEngine(t, s, routes, 10, time.Hour)
	ctx := context.Background()
	for _, id := range ids {
		require.NoError(t, e.Observe(ctx, result(id, t0, false)))
	}
	require.NoError(t, e.Stop(ctx))
	states, err := s.LoadStates(ctx)
	require.NoError(t, err)
	require.Len(t, states, 9)
	require.NotContains(t, states, "t003")
	st, _ := e.State("t003")
	require.Zero(t, st.ConsecutiveFailures, "the rejected target's state is not advanced")
}

// A target's next result waits for its commit in flight, so its states are
// committed in the order of its results.
func TestGroupCommitKeepsEachTargetsOrder(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	s := &hookedStore{SQLite: openStore(t, "")}
	s.hook = func(context.Context, []alerting.Commit) error {
		once.Do(func() { <-release }) // hold the first batch
		return nil
	}
	e := groupEngine(t, s, map[string]alerting.Route{"web": route("web")}, 2000, time.Millisecond)
	ctx := context.Background()
	require.NoError(t, e.Observe(ctx, result("web", t0, false))) // queued, then held in the store
	second := make(chan error, 1)
	go func() { second <- e.Observe(ctx, result("web", t0.Add(time.Minute), true)) }()
	select {
	case err := <-second:
		t.Fatalf("the second result did not wait for the first's commit: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-second)
	require.NoError(t, e.Stop(ctx))
	got := s.states("web")
	require.Len(t, got, 2)
	require.Equal(t, 1, got[0].ConsecutiveFailures)
	require.Equal(t, 1, got[1].ConsecutiveSuccesses, "the success that ends the failure run is committed after it")
}

// With the queue full, Observe waits; if its context ends first, the
// result is not taken and the state does not move.
func TestGroupCommitQueueIsBounded(t *testing.T) {
	release := make(chan struct{})
	s := &hookedStore{SQLite: openStore(t, "")}
	s.hook = func(context.Context, []alerting.Commit) error { <-release; return nil }
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{
		Store: s, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry(),
		CommitBatch: 1, CommitQueue: 1,
	})
	require.NoError(t, err)
	routes, ids := manyRoutes(3)
	e.Update(routes, nil)
	e.Start()
	ctx := context.Background()
	require.NoError(t, e.Observe(ctx, result(ids[0], t0, false))) // taken by the committer, held
	require.Eventually(t, func() bool {
		// ids[1] fills the queue once the committer holds ids[0].
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		err := e.Observe(short, result(ids[1], t0, false))
		return err == nil
	}, 30*time.Second, time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, e.Observe(short, result(ids[2], t0, false)), context.DeadlineExceeded)
	st, _ := e.State(ids[2])
	require.Zero(t, st.ConsecutiveFailures, "a result not taken does not move the state")
	close(release)
	require.NoError(t, e.Stop(ctx))
	states, err := s.LoadStates(ctx)
	require.NoError(t, err)
	require.Len(t, states, 2)
}

// What results write: a new target's first success nothing (its UP later
// does), an UP target's routine successes nothing, a failure run's start
// and the success that ends it one state each.
func TestGroupCommitWritesOnlyWhatARestartNeeds(t *testing.T) {
	s := &hookedStore{SQLite: openStore(t, "")}
	e := newEngine(t, s, map[string]alerting.Route{"web": route("web")})
	ctx := context.Background()
	at := t0
	step := func(ok bool) int {
		before := len(s.states("web"))
		require.NoError(t, e.Observe(ctx, result("web", at, ok)))
		at = at.Add(time.Minute)
		return len(s.states("web")) - before
	}
	require.Zero(t, step(true), "a new target's first success")
	require.Equal(t, 1, step(true), "UNKNOWN → UP")
	for range 5 {
		require.Zero(t, step(true), "a routine success of an UP target")
	}
	require.Equal(t, 1, step(false), "the first failure of a run: the incident would start here")
	require.Zero(t, step(false), "a count inside the run")
	require.Equal(t, 1, step(true), "the success that ends the failure run")
	require.Zero(t, step(true))

	// A new target whose first result fails writes at once.
	e.Update(map[string]alerting.Route{"web": route("web"), "api": route("api")}, nil)
	require.NoError(t, e.Observe(ctx, result("api", t0, false)))
	require.Len(t, s.states("api"), 1)
}

// Ticks and the retirement of a removed target go through the committer
// too: one reminder per due time, and the removed target's incident closed.
func TestGroupCommitRemindersAndRetirement(t *testing.T) {
	s := &hookedStore{SQLite: openStore(t, "")}
	e := groupEngine(t, s, map[string]alerting.Route{"web": route("web")}, 2000, time.Millisecond)
	ctx := context.Background()
	for i := range 3 {
		require.NoError(t, e.Observe(ctx, result("web", t0.Add(time.Duration(i)*time.Minute), false)))
	}
	require.Eventually(t, func() bool { return len(queued(t, s.SQLite)) == 3 }, 30*time.Second, 5*time.Millisecond)
	e.Tick(ctx, t0.Add(13*time.Minute))
	require.NoError(t, e.Stop(ctx))
	e.Start()
	e.Tick(ctx, t0.Add(13*time.Minute)) // the same tick again queues nothing new
	e.Update(map[string]alerting.Route{}, nil)
	require.NoError(t, e.Stop(ctx))
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1, "reminder/email": 2, "reminder/sms": 1}, kinds(queued(t, s.SQLite)))
	incs, err := s.Incidents(ctx, registry.IncidentQuery{TargetID: "web"})
	require.NoError(t, err)
	require.Len(t, incs, 1)
	require.False(t, incs[0].Open(), "the removed target's incident is closed")
}

// Tick visits only DOWN and held targets: the set it walks follows every
// state change, a failed commit's rollback and a restart's loaded states,
// and a reminder still comes from it.
func TestTickVisitsOnlyDownTargets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	routes, ids := manyRoutes(50)
	e := newEngine(t, openStore(t, path), routes)
	standby := newEngine(t, openStore(t, path), routes) // built before anything is DOWN
	ctx := context.Background()
	for _, id := range ids {
		for i := range 2 {
			require.NoError(t, e.Observe(ctx, result(id, t0.Add(time.Duration(i)*time.Minute), true)))
		}
	}
	require.Zero(t, e.Watched(), "UP targets have nothing due")
	for i := range 3 {
		require.NoError(t, e.Observe(ctx, result("t007", t0.Add(time.Duration(2+i)*time.Minute), false)))
	}
	require.Equal(t, 1, e.Watched(), "the DOWN target")
	again := newEngine(t, openStore(t, path), routes)
	require.Equal(t, 1, again.Watched(), "a DOWN state loaded at start")
	before, _ := again.State("t007")
	again.Tick(ctx, t0.Add(20*time.Minute))
	after, _ := again.State("t007")
	require.Equal(t, before.LastNotifiedAt.Add(routes["t007"].Policy.RepeatInterval), after.LastNotifiedAt, "the loaded DOWN target is reminded")

	// A server taking over alerting loads the states anew (Engine.Load):
	// the DOWN one is watched there too, and nothing else.
	require.Zero(t, standby.Watched())
	require.NoError(t, standby.Load(ctx))
	require.Equal(t, 1, standby.Watched(), "a DOWN state taken over by Load")
	for i := range 2 {
		require.NoError(t, e.Observe(ctx, result("t007", t0.Add(time.Duration(5+i)*time.Minute), true)))
	}
	require.Zero(t, e.Watched(), "back UP")
}

// BenchmarkCommitTransitions is the start-up cost issue 11 measured: every
// result makes a write (a new target's first failure), committed one
// transaction each (sync) or in groups (group), from 64 goroutines as the
// scheduler's workers call Observe.
func BenchmarkCommitTransitions(b *testing.B) {
	for _, group := range []bool{false, true} {
		b.Run(fmt.Sprintf("group=%v", group), func(b *testing.B) {
			s, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: b.TempDir() + "/registry.db"})
			require.NoError(b, err)
			defer s.Close()
			routes := map[string]alerting.Route{}
			for i := range b.N {
				id := fmt.Sprintf("t%07d", i)
				routes[id] = route(id)
			}
			e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: s, Now: func() time.Time { return t0 }})
			require.NoError(b, err)
			e.Update(routes, nil)
			if group {
				e.Start()
			}
			var next atomic.Int64
			b.SetParallelism(32) // × GOMAXPROCS goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("t%07d", next.Add(1)-1)
					if err := e.Observe(context.Background(), result(id, t0, false)); err != nil {
						b.Error(err)
					}
				}
			})
			require.NoError(b, e.Stop(context.Background()))
		})
	}
}

// BenchmarkTickUpTargets is the engine's once-a-second tick over 50,000
// routed targets that are all UP: nothing is due, so it should cost little
// more than a lock per target.
func BenchmarkTickUpTargets(b *testing.B) {
	s, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: b.TempDir() + "/registry.db"})
	require.NoError(b, err)
	defer s.Close()
	routes, ids := manyRoutes(50000)
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: s, Now: func() time.Time { return t0 }})
	require.NoError(b, err)
	e.Update(routes, nil)
	for _, id := range ids {
		for i := range 2 {
			require.NoError(b, e.Observe(context.Background(), result(id, t0.Add(time.Duration(i)*time.Minute), true)))
		}
	}
	b.ResetTimer()
	for i := range b.N {
		e.Tick(context.Background(), t0.Add(time.Duration(i)*time.Second))
	}
}

// quietEngine runs group commit with quiet commits waiting up to quiet and
// the others up to delay.
func quietEngine(t *testing.T, s alerting.StateStore, routes map[string]alerting.Route, delay, quiet time.Duration) *alerting.Engine {
	t.Helper()
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{
		Store: s, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry(),
		CommitBatch: 100, CommitDelay: delay, QuietDelay: quiet,
	})
	require.NoError(t, err)
	e.Update(routes, nil)
	e.Start()
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}

// TestGroupCommitQuietStatesWaitForAnUrgentOne: a new target's first UP
// (nobody is told) waits in its batch past CommitDelay, and goes out with
// the next commit that matters: a DOWN with its incident and messages,
// which waits no longer than CommitDelay. A restart finds both.
func TestGroupCommitQuietStatesWaitForAnUrgentOne(t *testing.T) {
	s := &hookedStore{SQLite: openStore(t, "")}
	web := route("web")
	web.Policy.FailureThreshold = 1
	e := quietEngine(t, s, map[string]alerting.Route{"new": route("new"), "web": web}, 10*time.Millisecond, time.Hour)
	ctx := context.Background()
	for i := range 2 {
		require.NoError(t, e.Observe(ctx, result("new", t0.Add(time.Duration(i)*time.Minute), true)))
	}
	require.Never(t, func() bool { return len(s.sizes()) > 0 }, 20*(10*time.Millisecond), time.Millisecond,
		"a quiet commit does not go out after CommitDelay")
	require.NoError(t, e.Observe(ctx, result("web", t0, false)))
	require.Eventually(t, func() bool { return len(s.sizes()) > 0 }, 30*time.Second, 5*time.Millisecond)
	require.Equal(t, []int{2}, s.sizes(), "the quiet commit went out with the DOWN")
	states, err := s.LoadStates(ctx)
	require.NoError(t, err)
	require.Equal(t, alerting.StatusUp, states["new"].Status)
	require.Equal(t, t0, states["new"].Since.UTC(), "a restart finds when the target came up")
	require.Equal(t, alerting.StatusDown, states["web"].Status)
}

// TestGroupCommitResultWaitingForItsCommitHurriesIt: a target's next
// result waits for the target's commit in flight; the batch holding it
// closes at once rather than after its delay, so the result (and the
// scheduler worker feeding it) is not held for long.
func TestGroupCommitResultWaitingForItsCommitHurriesIt(t *testing.T) {
	s := &hookedStore{SQLite: openStore(t, "")}
	e := quietEngine(t, s, map[string]alerting.Route{"web": route("web")}, time.Hour, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		require.NoError(t, e.Observe(ctx, result("web", t0.Add(time.Duration(i)*time.Minute), true)))
	}
	require.NoError(t, e.Observe(ctx, result("web", t0.Add(2*time.Minute), true)), "the third result waited for the UP's commit")
	require.Equal(t, []int{1}, s.sizes())
	st, _ := e.State("web")
	require.Equal(t, 3, st.ConsecutiveSuccesses)
}
