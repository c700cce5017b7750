package alerting_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

// quorumRig is an engine over a real registry with its location events
// and metrics captured.
type quorumRig struct {
	e      *alerting.Engine
	st     *registry.SQLite
	reg    *prometheus.Registry
	mu     sync.Mutex
	events []alerting.LocationEvent
}

func newQuorumRig(t *testing.T, q alerting.Quorum, ids ...string) *quorumRig {
	t.Helper()
	rig := &quorumRig{st: openStore(t, ""), reg: prometheus.NewRegistry()}
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{
		Store: rig.st, Now: func() time.Time { return t0 }, Registerer: rig.reg,
		OnLocationEvent: func(ev alerting.LocationEvent) {
			rig.mu.Lock()
			rig.events = append(rig.events, ev)
			rig.mu.Unlock()
		},
	})
	require.NoError(t, err)
	routes := map[string]alerting.Route{}
	for _, id := range ids {
		r := route(id)
		r.Policy.DownWhen = q
		r.Interval = time.Minute
		routes[id] = r
	}
	e.Update(routes, nil)
	rig.e = e
	return rig
}

// round feeds one result per location for target id at minute m after t0
// (each location a second after the previous): a location in failing
// fails, the others succeed; a location in silent sends nothing.
func (rig *quorumRig) round(t *testing.T, id string, m int, locs, failing, silent string) {
	t.Helper()
	for i, c := range locs {
		loc := string(c)
		if containsRune(silent, c) {
			continue
		}
		r := prober.Result{TargetID: id, Target: id, Kind: "http", Location: loc,
			Start: t0.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second), Duration: 100 * time.Millisecond, Success: !containsRune(failing, c)}
		if !r.Success {
			r.ErrorClass, r.Error = prober.ClassStatus, "503 not in 200-399"
		}
		require.NoError(t, rig.e.Observe(context.Background(), r))
	}
}

func containsRune(s string, c rune) bool {
	for _, x := range s {
		if x == c {
			return true
		}
	}
	return false
}

func (rig *quorumRig) incidents(t *testing.T, id string) []alerting.Incident {
	t.Helper()
	incs, err := rig.st.Incidents(context.Background(), registry.IncidentQuery{TargetID: id})
	require.NoError(t, err)
	return incs
}

func (rig *quorumRig) eventsOf(kind string) []string {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	var out []string
	for _, ev := range rig.events {
		if ev.Kind == kind {
			out = append(out, ev.Location)
		}
	}
	return out
}

// status feeds rounds 0..n-1 with the failing set and returns the state.
func runRounds(t *testing.T, rig *quorumRig, id string, from, to int, locs, failing, silent string) alerting.State {
	t.Helper()
	for m := from; m < to; m++ {
		rig.round(t, id, m, locs, failing, silent)
	}
	s, ok := rig.e.State(id)
	require.True(t, ok)
	return s
}

func TestQuorumOneLocationOfThreeFailing(t *testing.T) {
	for _, tc := range []struct {
		q    alerting.Quorum
		down bool
	}{{"", false}, {alerting.QuorumMajority, false}, {alerting.QuorumAny, true}, {alerting.QuorumAll, false}, {"2", false}, {"1", true}} {
		t.Run(string(tc.q), func(t *testing.T) {
			rig := newQuorumRig(t, tc.q, "web")
			runRounds(t, rig, "web", 0, 2, "abc", "", "")
			s := runRounds(t, rig, "web", 2, 8, "abc", "c", "")
			incs := rig.incidents(t, "web")
			if !tc.down {
				require.Equal(t, alerting.StatusUp, s.Status)
				require.Empty(t, incs)
				return
			}
			require.Equal(t, alerting.StatusDown, s.Status)
			require.Len(t, incs, 1)
			inc := incs[0]
			require.Equal(t, t0.Add(2*time.Minute+2*time.Second), inc.Start, "the first failed check at c")
			require.Equal(t, "status: 503 not in 200-399", inc.Cause)
			require.Equal(t, []alerting.IncidentLocation{{Location: "c",
				FirstFailure: t0.Add(2*time.Minute + 2*time.Second), LastFailure: t0.Add(4*time.Minute + 2*time.Second)}}, inc.Locations)
			require.Equal(t, "c", s.Incident.Locations[0].Location)
			require.Equal(t, t0.Add(7*time.Minute+2*time.Second), s.Incident.Locations[0].LastFailure, "the state follows the newest failure")
		})
	}
}

func TestQuorumAllAndNumber(t *testing.T) {
	for _, tc := range []struct {
		q       alerting.Quorum
		failing string
		down    bool
	}{
		{alerting.QuorumAll, "bc", false},
		{alerting.QuorumAll, "abc", true},
		{"2", "c", false},
		{"2", "bc", true},
		{"5", "bc", false}, // 5 of 3: every counting location
		{"5", "abc", true},
		{alerting.QuorumMajority, "bc", true},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.q, tc.failing), func(t *testing.T) {
			rig := newQuorumRig(t, tc.q, "web")
			runRounds(t, rig, "web", 0, 2, "abc", "", "")
			s := runRounds(t, rig, "web", 2, 8, "abc", tc.failing, "")
			incs := rig.incidents(t, "web")
			if !tc.down {
				require.Equal(t, alerting.StatusUp, s.Status)
				require.Empty(t, incs)
				return
			}
			require.Equal(t, alerting.StatusDown, s.Status)
			require.Len(t, incs, 1)
			require.Len(t, incs[0].Locations, len(tc.failing))
			// The quorum-th location to fail starts the confirmed outage:
			// the last of the failing ones within the round.
			need := len(tc.failing)
			if tc.q == alerting.QuorumMajority || tc.q == "2" {
				need = 2
			}
			last := rune(tc.failing[need-1]) - 'a'
			require.Equal(t, t0.Add(2*time.Minute+time.Duration(last)*time.Second), incs[0].Start)
		})
	}
}

func TestQuorumRecoveryBySameRule(t *testing.T) {
	rig := newQuorumRig(t, alerting.QuorumMajority, "web")
	runRounds(t, rig, "web", 0, 2, "abc", "", "")
	s := runRounds(t, rig, "web", 2, 6, "abc", "ab", "")
	require.Equal(t, alerting.StatusDown, s.Status)
	// b recovers alone: one success is not enough (success_threshold 2)...
	s = runRounds(t, rig, "web", 6, 7, "abc", "a", "")
	require.Equal(t, alerting.StatusDown, s.Status)
	// ...the second breaks the majority: UP at b's first success.
	s = runRounds(t, rig, "web", 7, 8, "abc", "a", "")
	require.Equal(t, alerting.StatusUp, s.Status)
	incs := rig.incidents(t, "web")
	require.Len(t, incs, 1)
	inc := incs[0]
	require.Equal(t, t0.Add(2*time.Minute+time.Second), inc.Start, "b completed the majority")
	require.Equal(t, t0.Add(6*time.Minute+time.Second), inc.End, "b's first success")
	require.Equal(t, []alerting.IncidentLocation{
		{Location: "a", FirstFailure: t0.Add(2 * time.Minute), LastFailure: t0.Add(7 * time.Minute)},
		{Location: "b", FirstFailure: t0.Add(2*time.Minute + time.Second), LastFailure: t0.Add(5*time.Minute + time.Second)},
	}, inc.Locations)

	// Under any, recovery needs every location back.
	rig = newQuorumRig(t, alerting.QuorumAny, "web")
	runRounds(t, rig, "web", 0, 2, "abc", "", "")
	s = runRounds(t, rig, "web", 2, 6, "abc", "ab", "")
	require.Equal(t, alerting.StatusDown, s.Status)
	s = runRounds(t, rig, "web", 6, 9, "abc", "a", "")
	require.Equal(t, alerting.StatusDown, s.Status)
	s = runRounds(t, rig, "web", 9, 11, "abc", "", "")
	require.Equal(t, alerting.StatusUp, s.Status)
	incs = rig.incidents(t, "web")
	require.Len(t, incs, 1)
	require.Equal(t, t0.Add(9*time.Minute), incs[0].End, "a's first success")
}

func TestQuorumStaleLocationDropsOut(t *testing.T) {
	rig := newQuorumRig(t, alerting.QuorumMajority, "web")
	runRounds(t, rig, "web", 0, 2, "abc", "", "")
	// c fails on its own (no quorum), then falls silent, still failing.
	s := runRounds(t, rig, "web", 2, 6, "abc", "c", "")
	require.Equal(t, alerting.StatusUp, s.Status)
	// Past the staleness window (3 intervals) b fails: without c's stale
	// verdict that is one of two, no majority.
	s = runRounds(t, rig, "web", 6, 9, "abc", "", "c")
	require.Equal(t, alerting.StatusUp, s.Status)
	s = runRounds(t, rig, "web", 9, 14, "abc", "b", "c")
	require.Equal(t, alerting.StatusUp, s.Status, "a silent location's old failures must not confirm b's")
	require.Empty(t, rig.incidents(t, "web"))

	// The engine's tick finds c silent: an event and the metric.
	rig.e.Tick(context.Background(), t0.Add(14*time.Minute))
	require.Equal(t, []string{"c"}, rig.eventsOf(alerting.LocationUnavailable))
	require.Equal(t, 0.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_available", "c")))
	require.Equal(t, 1.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_available", "a")))
	rig.e.Tick(context.Background(), t0.Add(15*time.Minute))
	require.Len(t, rig.eventsOf(alerting.LocationUnavailable), 1, "once per silence")

	// c comes back: available again.
	rig.round(t, "web", 15, "abc", "", "")
	require.Equal(t, []string{"c"}, rig.eventsOf(alerting.LocationAvailable))
	require.Equal(t, 1.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_available", "c")))
}

func TestQuorumSuspectLocationDropsOut(t *testing.T) {
	ids := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
	rig := newQuorumRig(t, alerting.QuorumAny, ids...)
	roundAll := func(m int, failing string) {
		for _, id := range ids {
			rig.round(t, id, m, "abc", failing, "")
		}
		rig.e.Tick(context.Background(), t0.Add(time.Duration(m)*time.Minute+30*time.Second))
	}
	roundAll(0, "")
	roundAll(1, "")
	// c's own network fails: every target fails there only.
	for m := 2; m < 8; m++ {
		roundAll(m, "c")
	}
	require.Equal(t, []string{"c"}, rig.eventsOf(alerting.LocationSuspect))
	require.Equal(t, 1.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_suspect", "c")))
	require.Equal(t, 0.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_suspect", "a")))
	for _, id := range ids {
		s, _ := rig.e.State(id)
		require.Equal(t, alerting.StatusUp, s.Status, id)
		require.Empty(t, rig.incidents(t, id), id)
	}
	// c recovers: it is trusted again, and its verdicts (still down until
	// two successes) open nothing on the way.
	for m := 8; m < 12; m++ {
		roundAll(m, "")
	}
	require.Equal(t, []string{"c"}, rig.eventsOf(alerting.LocationTrusted))
	require.Equal(t, 0.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_suspect", "c")))
	for _, id := range ids {
		require.Empty(t, rig.incidents(t, id), id)
	}

	// A real outage of one target seen from c alone, c trusted: any opens it.
	for m := 12; m < 16; m++ {
		for _, id := range ids {
			f := ""
			if id == "t1" {
				f = "c"
			}
			rig.round(t, id, m, "abc", f, "")
		}
		rig.e.Tick(context.Background(), t0.Add(time.Duration(m)*time.Minute+30*time.Second))
	}
	require.Len(t, rig.incidents(t, "t1"), 1)
	require.Len(t, rig.eventsOf(alerting.LocationSuspect), 1, "one target of six failing is no suspect location")
}

func TestQuorumFewTargetsNeverSuspect(t *testing.T) {
	// Fewer failing targets than the minimum never make a location suspect.
	ids := []string{"t1", "t2", "t3", "t4"}
	rig := newQuorumRig(t, alerting.QuorumAny, ids...)
	for m := 0; m < 6; m++ {
		for _, id := range ids {
			rig.round(t, id, m, "abc", "c", "")
		}
		rig.e.Tick(context.Background(), t0.Add(time.Duration(m)*time.Minute+30*time.Second))
	}
	require.Empty(t, rig.eventsOf(alerting.LocationSuspect))
	require.Len(t, rig.incidents(t, "t1"), 1)
}

// StepQuorum with one location is Step, result for result.
func TestStepQuorumSingleLocationIsStep(t *testing.T) {
	p := alerting.Policy{FailureThreshold: 2, SuccessThreshold: 2, DownWhen: alerting.QuorumAll, DegradedLatency: time.Second}
	v := alerting.QuorumView{Stale: time.Minute, Suspect: func(string) bool { return true }}
	pattern := "..xx.x..xxxx...x.x..xxx.."
	for _, loc := range []string{"", "local"} {
		a, b := alerting.NewState("web"), alerting.NewState("web")
		for i, c := range pattern {
			r := prober.Result{TargetID: "web", Location: loc, Start: t0.Add(time.Duration(i) * time.Hour), Duration: time.Duration(i%3) * time.Second, Success: c == '.'}
			var ta, tb []alerting.Transition
			a, ta = alerting.Step(a, p, r)
			b, tb = alerting.StepQuorum(b, p, r, v)
			require.Equal(t, ta, tb, "result %d", i)
			a.Location = loc
			require.Equal(t, a, b, "result %d", i)
		}
	}
}

func TestStepQuorumSecondLocationKeepsTheFirstsRun(t *testing.T) {
	p := alerting.Policy{FailureThreshold: 2, SuccessThreshold: 1}
	v := alerting.QuorumView{Stale: time.Hour}
	s := alerting.NewState("web")
	res := func(loc string, m int, ok bool) prober.Result {
		return prober.Result{TargetID: "web", Location: loc, Start: t0.Add(time.Duration(m) * time.Minute), Success: ok}
	}
	s, _ = alerting.StepQuorum(s, p, res("local", 0, false), v)
	s, _ = alerting.StepQuorum(s, p, res("local", 1, false), v)
	require.Equal(t, alerting.StatusDown, s.Status)
	// A second location that sees the target up breaks the majority of
	// one (local down) of two: need 2.
	s, trs := alerting.StepQuorum(s, p, res("eu", 2, true), v)
	require.Len(t, trs, 1)
	require.Equal(t, alerting.KindUp, trs[0].Kind)
	require.Equal(t, t0, trs[0].Incident.Start, "the incident local opened")
	require.Equal(t, alerting.StatusDown, s.Locations["local"].Status)
	require.Equal(t, alerting.StatusUp, s.Locations["eu"].Status)
	require.Empty(t, s.Location)
}

func TestQuorumValidate(t *testing.T) {
	for _, ok := range []alerting.Quorum{"", "majority", "all", "any", "1", "3", "100"} {
		require.NoError(t, ok.Validate(), ok)
	}
	for _, bad := range []alerting.Quorum{"most", "0", "-1", "101", "1.5", "All"} {
		require.ErrorContains(t, bad.Validate(), "must be majority, all, any or a number from 1 to 100", bad)
	}
}

func gaugeVec(t *testing.T, reg *prometheus.Registry, name, loc string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "location" && l.GetValue() == loc {
					g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name})
					g.Set(m.GetGauge().GetValue())
					return g
				}
			}
		}
	}
	t.Fatalf("no %s{location=%q}", name, loc)
	return nil
}

func TestQuorumNotificationsSayWhere(t *testing.T) {
	messages := func(rig *quorumRig) []string {
		ns, err := rig.st.Claim(context.Background(), t0.Add(time.Hour), time.Minute, 100)
		require.NoError(t, err)
		var out []string
		for _, n := range ns {
			if n.Channel == alerting.ChannelEmail && n.Message.To.Email == alice.Email {
				out = append(out, n.Message.Kind+": "+n.Message.Text)
			}
		}
		return out
	}
	rig := newQuorumRig(t, alerting.QuorumAny, "web")
	runRounds(t, rig, "web", 0, 2, "abc", "", "")
	runRounds(t, rig, "web", 2, 6, "abc", "bc", "")
	runRounds(t, rig, "web", 6, 8, "abc", "", "")
	got := messages(rig)
	require.Len(t, got, 2)
	require.Contains(t, got[0], "down: DOWN: web")
	require.Contains(t, got[0], "\nDown from: b, c\n")
	require.Contains(t, got[1], "up: UP: web")
	require.Contains(t, got[1], "\nWas down from: b, c\n")

	// One location: the messages are as they always were.
	rig = newQuorumRig(t, alerting.QuorumAny, "web")
	runRounds(t, rig, "web", 0, 2, "l", "", "")
	runRounds(t, rig, "web", 2, 6, "l", "l", "")
	got = messages(rig)
	require.Len(t, got, 1)
	require.NotContains(t, got[0], "from:")
}

// Each location's run survives a restart: the incident still starts at
// the run the quorum confirmed.
func TestQuorumStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	st := openStore(t, path)
	rig := &quorumRig{st: st}
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: st, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	r := route("web")
	r.Interval = time.Minute
	e.Update(map[string]alerting.Route{"web": r}, nil)
	rig.e = e
	runRounds(t, rig, "web", 0, 2, "abc", "", "")
	runRounds(t, rig, "web", 2, 4, "abc", "ab", "")

	e2, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: st, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	e2.Update(map[string]alerting.Route{"web": r}, nil)
	s, ok := e2.State("web")
	require.True(t, ok)
	require.Len(t, s.Locations, 3)
	require.Equal(t, t0.Add(2*time.Minute+time.Second), s.Locations["b"].RunStart)
	rig.e = e2
	s = runRounds(t, rig, "web", 4, 7, "abc", "ab", "")
	require.Equal(t, alerting.StatusDown, s.Status)
	incs := rig.incidents(t, "web")
	require.Len(t, incs, 1)
	require.Equal(t, t0.Add(2*time.Minute+time.Second), incs[0].Start)
}

// TestOnlyLocationSilentThenBack: with one location (serve alone) its
// results take a path without the watch's lock; a tick still finds it
// silent, once, and its next result brings it back, once.
func TestOnlyLocationSilentThenBack(t *testing.T) {
	rig := newQuorumRig(t, alerting.QuorumMajority, "web", "db")
	runRounds(t, rig, "web", 0, 3, "a", "", "")
	runRounds(t, rig, "db", 0, 4, "a", "", "")
	rig.e.Tick(context.Background(), t0.Add(6*time.Minute)) // 3 intervals after db's last result: not yet silent
	require.Empty(t, rig.eventsOf(alerting.LocationUnavailable))
	rig.e.Tick(context.Background(), t0.Add(7*time.Minute))
	require.Equal(t, []string{"a"}, rig.eventsOf(alerting.LocationUnavailable))
	rig.e.Tick(context.Background(), t0.Add(8*time.Minute))
	require.Len(t, rig.eventsOf(alerting.LocationUnavailable), 1, "once per silence")
	require.Equal(t, 0.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_available", "a")))

	runRounds(t, rig, "web", 8, 10, "a", "", "")
	require.Equal(t, []string{"a"}, rig.eventsOf(alerting.LocationAvailable))
	require.Equal(t, 1.0, testutil.ToFloat64(gaugeVec(t, rig.reg, "upwatch_location_available", "a")))
	rig.e.Tick(context.Background(), t0.Add(11*time.Minute))
	require.Len(t, rig.eventsOf(alerting.LocationUnavailable), 1)
	require.Len(t, rig.eventsOf(alerting.LocationAvailable), 1)
}

// A location that was silent (stale) and comes back with results from
// before the outage, as an agent's spool replays them, does not end it:
// the outage ends once, when the locations see the target up again.
func TestQuorumLateResultsFromBeforeAnOutageDoNotEndIt(t *testing.T) {
	p := alerting.Policy{FailureThreshold: 2, SuccessThreshold: 2, DownWhen: alerting.QuorumMajority}
	v := alerting.QuorumView{Stale: 3 * time.Minute}
	s := alerting.NewState("web")
	var kinds []string
	step := func(loc string, m int, ok bool) {
		t.Helper()
		var trs []alerting.Transition
		s, trs = alerting.StepQuorum(s, p, prober.Result{TargetID: "web", Location: loc, Start: t0.Add(time.Duration(m) * time.Minute), Success: ok}, v)
		for _, tr := range trs {
			kinds = append(kinds, fmt.Sprintf("%s@%d", tr.Kind, m))
		}
	}
	for m := range 2 {
		step("eu", m, true)
		step("us", m, true)
	}
	for m := 2; m < 6; m++ { // us falls silent
		step("eu", m, true)
	}
	step("eu", 6, false)
	step("eu", 7, false) // us is stale: eu alone is the majority
	require.Equal(t, alerting.StatusDown, s.Status)
	step("us", 2, true) // us's spool, from before the outage
	step("us", 3, true)
	require.Equal(t, alerting.StatusDown, s.Status, "results from before the outage ended it")
	step("us", 8, false) // its verdict is still up: no end on a failure
	step("us", 9, false)
	step("eu", 8, false)
	for m := 10; m < 12; m++ {
		step("eu", m, true)
		step("us", m, true)
	}
	require.Equal(t, alerting.StatusUp, s.Status)
	require.Equal(t, []string{"down@7", "up@11"}, kinds)
}
