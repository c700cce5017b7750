package schedule

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

// t0 is where the fake clock starts; tests compute slots from it.
var t0 = time.Unix(1_700_000_000, 0)

const wait, tick = 5 * time.Second, time.Millisecond

type started struct {
	id               string
	planned, started time.Time
}

// harness runs a Scheduler on a fake clock and records what it does.
type harness struct {
	s   *Scheduler
	clk *fakeClock
	reg *prometheus.Registry

	mu      sync.Mutex
	starts  []started
	results []prober.Result
	sinkErr []error // ctx.Err() seen by the sink

	cancel context.CancelFunc
	done   chan error
}

func okCheck(_ context.Context, t *prober.Target) prober.Result {
	return prober.Result{TargetID: t.ID, Target: t.Name, Success: true}
}

func newHarness(t *testing.T, workers int, check CheckFunc) *harness {
	t.Helper()
	h := &harness{clk: newFakeClock(t0), reg: prometheus.NewRegistry()}
	h.s = New(Options{
		Check:      check,
		Sink:       h.sink,
		Workers:    workers,
		Registerer: h.reg,
		clock:      h.clk,
	})
	h.s.onStart = func(id string, planned, at time.Time) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.starts = append(h.starts, started{id, planned, at})
	}
	return h
}

func (h *harness) sink(ctx context.Context, r prober.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.results = append(h.results, r)
	h.sinkErr = append(h.sinkErr, ctx.Err())
}

// run starts the scheduler; the test's cleanup stops it.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.s.Run(ctx) }()
	require.Eventually(t, h.s.Running, wait, tick)
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
}

// unblockAtCleanup returns a function that closes ch once. It also runs at
// cleanup, before the scheduler stops, so a failing test does not hang
// waiting for a blocked check.
func unblockAtCleanup(t *testing.T, ch chan struct{}) func() {
	var once sync.Once
	open := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(open)
	return open
}

func (h *harness) startsOf(id string) []started {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []started
	for _, s := range h.starts {
		if s.id == id {
			out = append(out, s)
		}
	}
	return out
}

func (h *harness) nStarts() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.starts)
}

func (h *harness) nResults() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.results)
}

// waitIdle waits until no check is queued or running.
func (h *harness) waitIdle(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		return len(h.s.busy) == 0
	}, wait, tick)
}

func (h *harness) next(t *testing.T, id string) time.Time {
	t.Helper()
	at, ok := h.s.nextRun(id)
	require.True(t, ok, "target %s not scheduled", id)
	return at
}

func target(id string, interval time.Duration) prober.Target {
	return prober.Target{ID: id, Name: id, Kind: "http", Interval: interval, Timeout: interval / 2,
		HTTP: &prober.HTTPSpec{URL: "http://" + id + ".example/"}}
}

// phase is where at falls within interval, counted from the Unix epoch.
func phase(at time.Time, interval time.Duration) time.Duration {
	return time.Duration(at.UnixNano() % int64(interval))
}

func TestOffsetStableAndInRange(t *testing.T) {
	for _, tc := range []struct {
		id       string
		interval time.Duration
	}{
		{"a", time.Second},
		{"api.example.com", 30 * time.Second},
		{"db:5432", time.Minute},
		{"x", time.Nanosecond},
		{"", 10 * time.Second},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.id, tc.interval), func(t *testing.T) {
			o := Offset(tc.id, tc.interval)
			require.Equal(t, o, Offset(tc.id, tc.interval), "not deterministic")
			require.GreaterOrEqual(t, o, time.Duration(0))
			require.Less(t, o, tc.interval)
		})
	}
	require.Zero(t, Offset("a", 0))
}

func TestOffsetSpread(t *testing.T) {
	const n, interval, buckets = 1000, 30 * time.Second, 10
	seen := map[time.Duration]bool{}
	var perBucket [buckets]int
	for i := range n {
		o := Offset(fmt.Sprintf("target-%d", i), interval)
		seen[o] = true
		perBucket[int(o*buckets/interval)]++
	}
	require.Greater(t, len(seen), n*99/100, "offsets collide")
	for b, c := range perBucket {
		// Expect about n/buckets = 100 in each tenth of the interval.
		require.Greater(t, c, n/buckets/2, "tenth %d of the interval holds only %d targets: %v", b, c, perBucket)
	}
}

func TestNextSlot(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name     string
		now      time.Time
		interval time.Duration
		offset   time.Duration
		want     time.Time
	}{
		{"later this interval", time.Unix(100, 0), 10 * s, 3 * s, time.Unix(103, 0)},
		{"exactly now", time.Unix(103, 0), 10 * s, 3 * s, time.Unix(103, 0)},
		{"passed, next interval", time.Unix(104, 0), 10 * s, 3 * s, time.Unix(113, 0)},
		{"zero offset", time.Unix(101, 1), 10 * s, 0, time.Unix(110, 0)},
		{"before epoch", time.Unix(-7, 0), 10 * s, 3 * s, time.Unix(-7, 0)},
		{"before epoch, passed", time.Unix(-6, 0), 10 * s, 3 * s, time.Unix(3, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := nextSlot(tc.now, tc.interval, tc.offset)
			require.True(t, tc.want.Equal(got), "got %v, want %v", got.Unix(), tc.want.Unix())
		})
	}
}

func TestFirstRunAtStablePhase(t *testing.T) {
	ids := []string{"a", "b", "c", "api", "db"}
	plan := func(now time.Time) map[string]time.Time {
		h := newHarness(t, 1, okCheck)
		h.clk.Set(now)
		var ts []prober.Target
		for _, id := range ids {
			ts = append(ts, target(id, 30*time.Second))
		}
		h.s.Update(ts)
		out := map[string]time.Time{}
		for _, id := range ids {
			out[id] = h.next(t, id)
		}
		return out
	}
	first := plan(t0)
	// A restart at another moment keeps every target's phase.
	restart := plan(t0.Add(17*time.Hour + 1234*time.Millisecond))
	for _, id := range ids {
		at := first[id]
		require.False(t, at.Before(t0), id)
		require.True(t, at.Before(t0.Add(30*time.Second)), id)
		require.Equal(t, Offset(id, 30*time.Second), phase(at, 30*time.Second), id)
		require.Equal(t, phase(at, 30*time.Second), phase(restart[id], 30*time.Second), id)
	}
}

func TestRunsAtInterval(t *testing.T) {
	h := newHarness(t, 2, okCheck)
	h.s.Update([]prober.Target{target("a", 10*time.Second), target("b", 7*time.Second)})
	h.run(t)

	// Step the clock from deadline to deadline; each target runs exactly
	// at its slots, spaced by its interval.
	end := t0.Add(60 * time.Second)
	for {
		na, nb := h.next(t, "a"), h.next(t, "b")
		at := na
		if nb.Before(at) {
			at = nb
		}
		if at.After(end) {
			break
		}
		n := h.nStarts()
		h.clk.Set(at)
		require.Eventually(t, func() bool { return h.nStarts() > n }, wait, tick)
		h.waitIdle(t)
	}
	for _, tc := range []struct {
		id       string
		interval time.Duration
	}{{"a", 10 * time.Second}, {"b", 7 * time.Second}} {
		runs := h.startsOf(tc.id)
		require.Len(t, runs, int(60*time.Second/tc.interval), tc.id)
		for i, r := range runs {
			require.Equal(t, Offset(tc.id, tc.interval), phase(r.planned, tc.interval), tc.id)
			require.Equal(t, r.planned, r.started, "fake clock stands still while the worker starts")
			if i > 0 {
				require.Equal(t, tc.interval, r.planned.Sub(runs[i-1].planned), tc.id)
			}
		}
	}
	require.Equal(t, h.nStarts(), h.nResults())
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBusy))
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBehind))
	require.Zero(t, testutil.ToFloat64(h.s.m.late))
}

func TestBoundedConcurrency(t *testing.T) {
	for _, workers := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			var cur, peak atomic.Int64
			release := make(chan struct{})
			check := func(_ context.Context, tg *prober.Target) prober.Result {
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				<-release
				cur.Add(-1)
				return prober.Result{TargetID: tg.ID, Success: true}
			}
			h := newHarness(t, workers, check)
			const n = 20
			var ts []prober.Target
			for i := range n {
				ts = append(ts, target(fmt.Sprintf("t%02d", i), 10*time.Second))
			}
			h.s.Update(ts)
			h.run(t)
			unblockAtCleanup(t, release)
			// Make every target due at once.
			last := t0
			for _, tg := range ts {
				if at := h.next(t, tg.ID); at.After(last) {
					last = at
				}
			}
			h.clk.Set(last)
			for done := 0; done < n; done++ {
				want := min(workers, n-done)
				require.Eventually(t, func() bool { return cur.Load() == int64(want) }, wait, tick)
				require.Eventually(t, func() bool { return testutil.ToFloat64(h.s.m.inFlight) == float64(want) }, wait, tick)
				release <- struct{}{}
			}
			require.Eventually(t, func() bool { return h.nResults() == n }, wait, tick)
			require.Equal(t, int64(workers), peak.Load())
			require.Zero(t, testutil.ToFloat64(h.s.m.inFlight))
		})
	}
}

func TestSlowCheckSkipsSlots(t *testing.T) {
	var cur, peak atomic.Int64
	release := make(chan struct{})
	check := func(_ context.Context, tg *prober.Target) prober.Result {
		if n := cur.Add(1); n > peak.Load() {
			peak.Store(n)
		}
		defer cur.Add(-1)
		<-release
		return prober.Result{TargetID: tg.ID, Success: true}
	}
	h := newHarness(t, 4, check)
	h.s.Update([]prober.Target{target("slow", time.Second)})
	h.run(t)
	open := unblockAtCleanup(t, release)

	first := h.next(t, "slow")
	h.clk.Set(first)
	require.Eventually(t, func() bool { return h.nStarts() == 1 }, wait, tick)
	// Three slots pass while the first check still runs.
	for k := 1; k <= 3; k++ {
		h.clk.Set(first.Add(time.Duration(k) * time.Second))
		require.Eventually(t, func() bool { return testutil.ToFloat64(h.s.m.missedBusy) == float64(k) }, wait, tick)
		require.Equal(t, first.Add(time.Duration(k+1)*time.Second), h.next(t, "slow"))
	}
	open()
	h.waitIdle(t)
	h.clk.Set(first.Add(4 * time.Second))
	require.Eventually(t, func() bool { return h.nStarts() == 2 }, wait, tick)
	runs := h.startsOf("slow")
	require.Equal(t, first.Add(4*time.Second), runs[1].planned)
	require.Equal(t, int64(1), peak.Load(), "two checks of one target ran at once")
	require.Equal(t, 3.0, testutil.ToFloat64(h.s.m.missedBusy))
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBehind))
}

func TestFallingBehindDropsMissedSlots(t *testing.T) {
	h := newHarness(t, 1, okCheck)
	h.s.Update([]prober.Target{target("a", time.Second)})
	h.run(t)
	first := h.next(t, "a")
	h.clk.Set(first)
	require.Eventually(t, func() bool { return h.nStarts() == 1 }, wait, tick)
	h.waitIdle(t)

	// The clock jumps 5.5 intervals: the overdue slot runs once, late, and
	// the four slots after it are dropped, not run back to back.
	h.clk.Set(first.Add(5500 * time.Millisecond))
	require.Eventually(t, func() bool { return h.nStarts() == 2 }, wait, tick)
	runs := h.startsOf("a")
	require.Equal(t, first.Add(time.Second), runs[1].planned)
	require.Equal(t, first.Add(6*time.Second), h.next(t, "a"))
	require.Equal(t, 4.0, testutil.ToFloat64(h.s.m.missedBehind))
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBusy))
	require.Equal(t, 1.0, testutil.ToFloat64(h.s.m.late))

	// Lags: 0 for the first run, 4.5 s for the late one.
	require.NoError(t, testutil.CollectAndCompare(h.s.m.lag, strings.NewReader(`
# HELP upwatch_scheduler_lag_seconds Time from a check's planned start to a worker starting it.
# TYPE upwatch_scheduler_lag_seconds histogram
upwatch_scheduler_lag_seconds_bucket{le="0.0005"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.001"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.0025"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.005"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.01"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.025"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.05"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.1"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.25"} 1
upwatch_scheduler_lag_seconds_bucket{le="0.5"} 1
upwatch_scheduler_lag_seconds_bucket{le="1"} 1
upwatch_scheduler_lag_seconds_bucket{le="2.5"} 1
upwatch_scheduler_lag_seconds_bucket{le="5"} 2
upwatch_scheduler_lag_seconds_bucket{le="10"} 2
upwatch_scheduler_lag_seconds_bucket{le="30"} 2
upwatch_scheduler_lag_seconds_bucket{le="60"} 2
upwatch_scheduler_lag_seconds_bucket{le="300"} 2
upwatch_scheduler_lag_seconds_bucket{le="900"} 2
upwatch_scheduler_lag_seconds_bucket{le="3600"} 2
upwatch_scheduler_lag_seconds_bucket{le="14400"} 2
upwatch_scheduler_lag_seconds_bucket{le="86400"} 2
upwatch_scheduler_lag_seconds_bucket{le="+Inf"} 2
upwatch_scheduler_lag_seconds_sum 4.5
upwatch_scheduler_lag_seconds_count 2
`)))
}

func TestLateAfter(t *testing.T) {
	for interval, want := range map[time.Duration]time.Duration{
		time.Second: 100 * time.Millisecond, 5 * time.Second: 500 * time.Millisecond,
		10 * time.Second: time.Second, time.Minute: time.Second, 24 * time.Hour: time.Second,
	} {
		require.Equal(t, want, lateAfter(interval), interval)
	}
}

// A check that waits for a worker is late once it starts more than
// lateAfter its planned slot: the checks of a saturated prober count even
// when no slot is missed.
func TestLateChecksAreCounted(t *testing.T) {
	release := make(chan struct{})
	check := func(_ context.Context, tg *prober.Target) prober.Result {
		if tg.ID == "blocker" {
			<-release
		}
		return prober.Result{TargetID: tg.ID, Success: true}
	}
	h := newHarness(t, 1, check)
	const iv = time.Minute
	h.s.Update([]prober.Target{target("blocker", iv), target("waiter", iv)})
	h.run(t)
	unblockAtCleanup(t, release)

	// The blocker holds the only worker past the waiter's slot; the waiter
	// starts when it is released, lag after its slot.
	round := func(lag time.Duration) {
		t.Helper()
		b, w := h.next(t, "blocker"), h.next(t, "waiter")
		if w.Before(b) { // let the blocker's slot come first
			h.clk.Set(w)
			require.Eventually(t, func() bool { return len(h.startsOf("waiter")) > 0 }, wait, tick)
			h.waitIdle(t)
			w = h.next(t, "waiter")
		}
		n := len(h.startsOf("waiter"))
		h.clk.Set(b)
		require.Eventually(t, func() bool { return len(h.startsOf("blocker")) > 0 && testutil.ToFloat64(h.s.m.inFlight) == 1 }, wait, tick)
		h.clk.Set(w.Add(lag))
		require.Eventually(t, func() bool {
			h.s.mu.Lock()
			defer h.s.mu.Unlock()
			_, queued := h.s.busy["waiter"]
			return queued
		}, wait, tick)
		release <- struct{}{}
		require.Eventually(t, func() bool { return len(h.startsOf("waiter")) == n+1 }, wait, tick)
		h.waitIdle(t)
		runs := h.startsOf("waiter")
		require.Equal(t, lag, runs[n].started.Sub(runs[n].planned))
	}
	before := testutil.ToFloat64(h.s.m.late)
	round(time.Second) // exactly lateAfter(1m): on time
	require.Equal(t, before, testutil.ToFloat64(h.s.m.late))
	round(1500 * time.Millisecond)
	require.Equal(t, before+1, testutil.ToFloat64(h.s.m.late))
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBusy)+testutil.ToFloat64(h.s.m.missedBehind), "late, but no slot missed")
}

// A daily check that starts three hours late (a stalled process) shows
// in the lag histogram as 1-4 h, not as "more than 5 s".
func TestLongLagsAreMeasured(t *testing.T) {
	h := newHarness(t, 1, okCheck)
	h.s.Update([]prober.Target{target("daily", 24*time.Hour)})
	h.run(t)
	first := h.next(t, "daily")
	h.clk.Set(first.Add(3 * time.Hour))
	require.Eventually(t, func() bool { return h.nResults() == 1 }, wait, tick)
	m := &dto.Metric{}
	require.NoError(t, h.s.m.lag.Write(m))
	buckets := map[float64]uint64{}
	for _, b := range m.GetHistogram().GetBucket() {
		buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	require.Equal(t, uint64(0), buckets[3600])
	require.Equal(t, uint64(1), buckets[4*3600])
	require.Equal(t, 1.0, testutil.ToFloat64(h.s.m.late))
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBehind), "less than an interval behind")
	require.Equal(t, first.Add(24*time.Hour), h.next(t, "daily"))
}

func TestUpdateLeavesOthersAlone(t *testing.T) {
	base := func() []prober.Target {
		var ts []prober.Target
		for i := range 50 {
			ts = append(ts, target(fmt.Sprintf("t%02d", i), time.Duration(5+i%4*10)*time.Second))
		}
		return ts
	}
	for _, tc := range []struct {
		name   string
		edit   func([]prober.Target) []prober.Target
		id     string // the target the edit is about
		absent bool   // it must no longer be scheduled
		period time.Duration
	}{
		{name: "add", id: "new", period: 20 * time.Second, edit: func(ts []prober.Target) []prober.Target {
			return append(ts, target("new", 20*time.Second))
		}},
		{name: "remove", id: "t07", absent: true, edit: func(ts []prober.Target) []prober.Target {
			return append(ts[:7], ts[8:]...)
		}},
		{name: "pause", id: "t07", absent: true, edit: func(ts []prober.Target) []prober.Target {
			ts[7].Paused = true
			return ts
		}},
		{name: "change url", id: "t07", period: 35 * time.Second, edit: func(ts []prober.Target) []prober.Target {
			ts[7].HTTP = &prober.HTTPSpec{URL: "http://elsewhere.example/"}
			return ts
		}},
		{name: "change interval", id: "t07", period: 60 * time.Second, edit: func(ts []prober.Target) []prober.Target {
			ts[7].Interval = 60 * time.Second
			return ts
		}},
		{name: "reorder", id: "t00", period: 5 * time.Second, edit: func(ts []prober.Target) []prober.Target {
			ts[0], ts[49] = ts[49], ts[0]
			return ts
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 1, okCheck)
			h.s.Update(base())
			before := map[string]time.Time{}
			for _, tg := range base() {
				before[tg.ID] = h.next(t, tg.ID)
			}
			// Time passes; the edit must still not move anyone else.
			h.clk.Set(t0.Add(3 * time.Second))
			h.s.Update(tc.edit(base()))

			for id, at := range before {
				if id == tc.id {
					continue
				}
				require.Equal(t, at, h.next(t, id), "target %s moved", id)
			}
			got, ok := h.s.nextRun(tc.id)
			if tc.absent {
				require.False(t, ok)
				require.Equal(t, 49.0, testutil.ToFloat64(h.s.m.targets))
				return
			}
			require.True(t, ok)
			require.Equal(t, Offset(tc.id, tc.period), phase(got, tc.period), "phase")
			if b, ok := before[tc.id]; ok && b.Sub(t0) < tc.period && phase(b, tc.period) == phase(got, tc.period) {
				require.Equal(t, b, got, "an unchanged interval keeps the planned slot")
			} else {
				require.False(t, got.Before(t0.Add(3*time.Second)), "a new slot is not in the past")
			}
		})
	}
}

func TestChangedTargetRunsNewConfig(t *testing.T) {
	var mu sync.Mutex
	var urls []string
	check := func(_ context.Context, tg *prober.Target) prober.Result {
		mu.Lock()
		urls = append(urls, tg.HTTP.URL)
		mu.Unlock()
		return prober.Result{TargetID: tg.ID, Success: true}
	}
	h := newHarness(t, 1, check)
	a := target("a", 10*time.Second)
	h.s.Update([]prober.Target{a})
	h.run(t)
	at := h.next(t, "a")
	h.clk.Set(at)
	require.Eventually(t, func() bool { return h.nStarts() == 1 }, wait, tick)
	h.waitIdle(t)

	a.HTTP = &prober.HTTPSpec{URL: "http://moved.example/"}
	h.s.Update([]prober.Target{a})
	require.Equal(t, at.Add(10*time.Second), h.next(t, "a"))
	h.clk.Set(at.Add(10 * time.Second))
	require.Eventually(t, func() bool { return h.nStarts() == 2 }, wait, tick)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"http://a.example/", "http://moved.example/"}, urls)
}

func TestRemoveWhileInFlight(t *testing.T) {
	release := make(chan struct{})
	var cur, peak atomic.Int64
	check := func(_ context.Context, tg *prober.Target) prober.Result {
		if n := cur.Add(1); n > peak.Load() {
			peak.Store(n)
		}
		defer cur.Add(-1)
		<-release
		return prober.Result{TargetID: tg.ID, Success: true}
	}
	h := newHarness(t, 4, check)
	a := target("a", time.Second)
	h.s.Update([]prober.Target{a})
	h.run(t)
	unblockAtCleanup(t, release)
	first := h.next(t, "a")
	h.clk.Set(first)
	require.Eventually(t, func() bool { return h.nStarts() == 1 }, wait, tick)

	h.s.Update(nil)
	require.Zero(t, testutil.ToFloat64(h.s.m.targets))
	_, ok := h.s.nextRun("a")
	require.False(t, ok)

	// Added back while its old check still runs: its next slot is
	// skipped, not overlapped.
	h.clk.Set(first.Add(500 * time.Millisecond))
	h.s.Update([]prober.Target{a})
	require.Equal(t, first.Add(time.Second), h.next(t, "a"))
	h.clk.Set(first.Add(time.Second))
	require.Eventually(t, func() bool { return testutil.ToFloat64(h.s.m.missedBusy) == 1 }, wait, tick)
	h.s.Update(nil)

	release <- struct{}{}
	require.Eventually(t, func() bool { return h.nResults() == 1 }, wait, tick)
	h.waitIdle(t)
	require.Len(t, h.startsOf("a"), 1)
	require.Equal(t, int64(1), peak.Load())
}

func TestPausedNeverRuns(t *testing.T) {
	h := newHarness(t, 2, okCheck)
	p := target("paused", time.Second)
	p.Paused = true
	h.s.Update([]prober.Target{p, target("live", time.Second)})
	h.run(t)
	require.Equal(t, 1.0, testutil.ToFloat64(h.s.m.targets))
	_, ok := h.s.nextRun("paused")
	require.False(t, ok)

	first := h.next(t, "live")
	for k := range 3 {
		h.clk.Set(first.Add(time.Duration(k) * time.Second))
		require.Eventually(t, func() bool { return h.nStarts() == k+1 }, wait, tick)
		h.waitIdle(t)
	}
	require.Empty(t, h.startsOf("paused"))
	require.Len(t, h.startsOf("live"), 3)
}

func TestRealignOnStart(t *testing.T) {
	h := newHarness(t, 2, okCheck)
	var ts []prober.Target
	for i := range 10 {
		ts = append(ts, target(fmt.Sprintf("t%d", i), 10*time.Second))
	}
	h.s.Update(ts)
	// Run starts 25 s after the targets were given: overdue first runs
	// move to their next slot at the same phase instead of firing at once.
	h.clk.Set(t0.Add(25 * time.Second))
	h.run(t)
	for _, tg := range ts {
		at := h.next(t, tg.ID)
		require.False(t, at.Before(t0.Add(25*time.Second)), tg.ID)
		require.True(t, at.Before(t0.Add(35*time.Second)), tg.ID)
		require.Equal(t, Offset(tg.ID, 10*time.Second), phase(at, 10*time.Second))
	}
	require.Zero(t, h.nStarts())
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBusy), "the slots before Run are not missed: nothing was running")
	require.Zero(t, testutil.ToFloat64(h.s.m.missedBehind))
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	release := make(chan struct{})
	checkErr := make(chan error, 2)
	check := func(ctx context.Context, tg *prober.Target) prober.Result {
		<-release
		checkErr <- ctx.Err()
		return prober.Result{TargetID: tg.ID, Success: true}
	}
	h := newHarness(t, 2, check)
	h.s.Update([]prober.Target{target("a", time.Second), target("b", time.Second)})
	h.run(t)
	open := unblockAtCleanup(t, release)
	h.clk.Set(t0.Add(time.Second))
	require.Eventually(t, func() bool { return h.nStarts() == 2 }, wait, tick)

	h.cancel()
	require.Eventually(t, func() bool { return !h.s.Running() }, wait, tick)
	select {
	case <-h.done:
		t.Fatal("Run returned while checks were running")
	default:
	}
	// Nothing new starts once shutdown began.
	h.clk.Set(t0.Add(5 * time.Second))

	open()
	require.NoError(t, <-h.done)
	h.done <- nil // for the cleanup
	require.NoError(t, <-checkErr, "check context cancelled at shutdown")
	require.NoError(t, <-checkErr, "check context cancelled at shutdown")
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.results, 2)
	require.Equal(t, []error{nil, nil}, h.sinkErr)
	require.Len(t, h.starts, 2)
	require.Zero(t, testutil.ToFloat64(h.s.m.inFlight))
}

func TestPanicsAreContained(t *testing.T) {
	check := func(_ context.Context, tg *prober.Target) prober.Result {
		if tg.ID == "boom" {
			panic("kaboom")
		}
		return prober.Result{TargetID: tg.ID, Success: true}
	}
	h := newHarness(t, 1, check)
	var sunk atomic.Int64
	h.s.sink = func(ctx context.Context, r prober.Result) {
		h.sink(ctx, r)
		if sunk.Add(1) == 1 {
			panic("sink too")
		}
	}
	h.s.Update([]prober.Target{target("boom", time.Second), target("ok", time.Second)})
	h.run(t)
	for k := range 3 {
		h.clk.Set(t0.Add(time.Duration(k+1) * time.Second))
		require.Eventually(t, func() bool { return h.nResults() == 2*(k+1) }, wait, tick)
		h.waitIdle(t)
	}
	require.True(t, h.s.Running())
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.results {
		if r.TargetID == "boom" {
			require.False(t, r.Success)
			require.Equal(t, prober.ClassInternal, r.ErrorClass)
			require.Contains(t, r.Error, "kaboom")
		} else {
			require.True(t, r.Success)
		}
	}
}

func TestRunTwice(t *testing.T) {
	h := newHarness(t, 1, okCheck)
	h.run(t)
	require.ErrorContains(t, h.s.Run(context.Background()), "already running")
}

func TestRestartAfterStop(t *testing.T) {
	h := newHarness(t, 1, okCheck)
	h.s.Update([]prober.Target{target("a", time.Second)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, h.s.Run(ctx))
	require.False(t, h.s.Running())
	h.run(t)
	h.clk.Set(h.next(t, "a"))
	require.Eventually(t, func() bool { return h.nResults() == 1 }, wait, tick)
}

func TestMetricsRegistered(t *testing.T) {
	h := newHarness(t, 1, okCheck)
	h.s.Update([]prober.Target{target("a", time.Second), target("b", time.Second)})
	problems, err := testutil.GatherAndLint(h.reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	require.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP upwatch_scheduler_targets Targets currently scheduled (paused ones excluded).
# TYPE upwatch_scheduler_targets gauge
upwatch_scheduler_targets 2
# HELP upwatch_checks_in_flight Checks running now.
# TYPE upwatch_checks_in_flight gauge
upwatch_checks_in_flight 0
# HELP upwatch_scheduler_missed_checks_total Check slots that passed without a check, by reason: busy (the target's previous check was still queued or running) or behind (the scheduler fell more than an interval behind and dropped them).
# TYPE upwatch_scheduler_missed_checks_total counter
upwatch_scheduler_missed_checks_total{reason="behind"} 0
upwatch_scheduler_missed_checks_total{reason="busy"} 0
# HELP upwatch_scheduler_late_checks_total Checks that started late: more than 1 s, or a tenth of the interval if shorter, after their planned start.
# TYPE upwatch_scheduler_late_checks_total counter
upwatch_scheduler_late_checks_total 0
`), "upwatch_scheduler_targets", "upwatch_checks_in_flight", "upwatch_scheduler_missed_checks_total", "upwatch_scheduler_late_checks_total"))

	// A second scheduler on the same registry shares the collectors.
	s2 := New(Options{Check: okCheck, Registerer: h.reg})
	s2.Update(nil)
	require.Equal(t, 0.0, testutil.ToFloat64(h.s.m.targets))
}

// TestRealClock runs a few 1 s targets on the real clock.
func TestRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	var mu sync.Mutex
	planned := map[string][]time.Time{}
	s := New(Options{Check: okCheck, Workers: 2})
	s.onStart = func(id string, p, _ time.Time) {
		mu.Lock()
		defer mu.Unlock()
		planned[id] = append(planned[id], p)
	}
	ids := []string{"r1", "r2", "r3"}
	var ts []prober.Target
	for _, id := range ids {
		ts = append(ts, target(id, time.Second))
	}
	s.Update(ts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if len(planned[id]) < 3 {
				return false
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		ps := planned[id]
		for i, p := range ps {
			require.Equal(t, Offset(id, time.Second), phase(p, time.Second), id)
			if i > 0 {
				require.Equal(t, time.Second, p.Sub(ps[i-1]), id)
			}
		}
	}
}

// CheckNow runs one extra check at once, keeps the target's phase, and
// waits for a check already running instead of overlapping it.
func TestCheckNowRunsAnExtraCheckKeepingThePhase(t *testing.T) {
	release := make(chan struct{})
	unblock := unblockAtCleanup(t, release)
	var block atomic.Bool
	h := newHarness(t, 2, func(ctx context.Context, tg *prober.Target) prober.Result {
		if block.Load() {
			<-release
		}
		return okCheck(ctx, tg)
	})
	const iv = time.Hour
	h.s.Update([]prober.Target{target("gw", iv)})
	h.run(t)
	slot := h.next(t, "gw")
	require.False(t, h.s.CheckNow("nope"), "an unscheduled target")

	now := t0.Add(time.Second)
	h.clk.Set(now)
	require.True(t, h.s.CheckNow("gw"))
	require.Eventually(t, func() bool { return h.nResults() == 1 }, wait, tick)
	st := h.startsOf("gw")
	require.Equal(t, now, st[0].started)
	require.Equal(t, slot, h.next(t, "gw"), "the schedule is untouched")

	// While a check runs, a request waits for it and then runs once more.
	block.Store(true)
	require.True(t, h.s.CheckNow("gw"))
	require.Eventually(t, func() bool { return len(h.startsOf("gw")) == 2 }, wait, tick)
	block.Store(false)
	require.True(t, h.s.CheckNow("gw"))
	require.True(t, h.s.CheckNow("gw"))
	unblock()
	require.Eventually(t, func() bool { return h.nResults() == 3 }, wait, tick)
	h.waitIdle(t)
	require.Len(t, h.startsOf("gw"), 3, "two requests during a running check ask once")
}

// A repeated ID is ignored after its first occurrence, whether the target
// is new or already scheduled, and an unchanged copy keeps the scheduled
// configuration without being counted as a change.
func TestUpdateRepeatedIDsAndCopies(t *testing.T) {
	h := newHarness(t, 1, okCheck)
	a, b := target("a", 10*time.Second), target("b", 10*time.Second)
	other := target("a", 10*time.Second)
	other.HTTP = &prober.HTTPSpec{URL: "http://other.example/"}
	h.s.Update([]prober.Target{a, other, b, b})
	require.Equal(t, 2.0, testutil.ToFloat64(h.s.m.targets))
	h.s.mu.Lock()
	first := h.s.entries["a"].target
	h.s.mu.Unlock()
	require.Equal(t, "http://a.example/", first.HTTP.URL, "the first of a repeated new id")

	h.s.Update([]prober.Target{a, other, b})
	h.s.mu.Lock()
	require.Same(t, first, h.s.entries["a"].target, "a copy keeps the scheduled target")
	h.s.mu.Unlock()

	h.s.Update([]prober.Target{other, a, b})
	h.s.mu.Lock()
	require.Equal(t, "http://other.example/", h.s.entries["a"].target.HTTP.URL, "the first of a repeated scheduled id")
	h.s.mu.Unlock()
	require.Equal(t, 2.0, testutil.ToFloat64(h.s.m.targets))
}

// With Coalesce, slots run at the next multiple of it: not before (the
// clock just short of it starts nothing), and every slot of one window on
// the same wake-up, each still planned at its own slot.
func TestCoalesceRunsAWindowsSlotsTogether(t *testing.T) {
	const c = 10 * time.Millisecond
	const iv = time.Second
	h := newHarness(t, 8, okCheck)
	h.s.coalesce = c
	// Targets whose slots fall within one window, found by their offset.
	window := map[time.Duration][]string{}
	var ids []string
	for i := 0; len(ids) < 3; i++ {
		id := fmt.Sprintf("t%d", i)
		w := Offset(id, iv).Truncate(c)
		if w == 0 || Offset(id, iv) == w { // keep slots strictly inside a window
			continue
		}
		window[w] = append(window[w], id)
		if len(window[w]) == 3 {
			ids = window[w]
		}
	}
	var ts []prober.Target
	for _, id := range ids {
		ts = append(ts, target(id, iv))
	}
	h.s.Update(ts)
	h.run(t)

	first := h.next(t, ids[0])
	for _, id := range ids[1:] {
		if n := h.next(t, id); n.Before(first) {
			first = n
		}
	}
	boundary := coalesced(first, c)
	require.True(t, boundary.After(first))
	require.Eventually(t, func() bool { return h.clk.armedAt().Equal(boundary) }, wait, tick,
		"the dispatcher's wake-up is not at the window's end")
	h.clk.Set(boundary.Add(-time.Nanosecond))
	require.Zero(t, h.nStarts(), "a slot ran before its window closed")
	h.clk.Set(boundary)
	require.Eventually(t, func() bool { return h.nStarts() == 3 }, wait, tick)
	for _, id := range ids {
		s := h.startsOf(id)
		require.Len(t, s, 1)
		require.Equal(t, boundary, s[0].started, "%s started before its window closed", id)
		require.Equal(t, Offset(id, iv), phase(s[0].planned, iv), "planned stays the target's own slot")
		require.Less(t, s[0].started.Sub(s[0].planned), c)
	}
}

func TestCoalesced(t *testing.T) {
	at := time.Unix(100, 3_000_000)
	require.Equal(t, time.Unix(100, 10_000_000), coalesced(at, 10*time.Millisecond))
	require.Equal(t, time.Unix(100, 0), coalesced(time.Unix(100, 0), 10*time.Millisecond), "a multiple stays")
	require.Equal(t, at, coalesced(at, 0))
}
