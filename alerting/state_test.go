package alerting

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

var t0 = time.Date(2024, 5, 6, 12, 0, 0, 0, time.UTC)

const (
	every   = 10 * time.Second       // check interval in the sequences
	fast    = 100 * time.Millisecond // duration of an ordinary check
	slowDur = 2 * time.Second        // duration of a slow check ('L')
)

// at is the start of check i of a sequence.
func at(i int) time.Time { return t0.Add(time.Duration(i) * every) }

// results turns a sequence into results of target "web": 'F' a failed check
// (error "connect: refused #i"), 'S' a successful one, 'L' a slow successful
// one, '.' no check at that slot.
func results(seq string) []prober.Result { return resultsFrom(0, seq) }

// resultsFrom is results with the sequence starting at slot first.
func resultsFrom(first int, seq string) []prober.Result {
	var out []prober.Result
	for j, c := range seq {
		i := first + j
		r := prober.Result{TargetID: "web", Target: "Web", Start: at(i), Duration: fast, Success: true}
		switch c {
		case 'F':
			r = r.Fail(prober.ClassConnect, fmt.Sprintf("refused #%d", i))
		case 'L':
			r.Duration = slowDur
		case '.':
			continue
		}
		out = append(out, r)
	}
	return out
}

// feed runs the results through Step from s and returns the final state and
// every transition.
func feed(s State, p Policy, rs []prober.Result) (State, []Transition) {
	var all []Transition
	for _, r := range rs {
		var ts []Transition
		s, ts = Step(s, p, r)
		all = append(all, ts...)
	}
	return s, all
}

// kinds renders transitions as "kind@i", i being the index of the check
// that caused it.
func kinds(ts []Transition) []string {
	out := []string{}
	for _, tr := range ts {
		i := int(tr.At.Sub(t0) / every)
		out = append(out, fmt.Sprintf("%s@%d", tr.Kind, i))
	}
	return out
}

func TestStepSequences(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		seq    string
		want   []string
		status Status
	}{
		{"no results", Policy{}, "", []string{}, StatusUnknown},
		{"fresh target, failures below threshold", Policy{}, "FF", []string{}, StatusUnknown},
		{"fresh target, failure threshold exactly met", Policy{}, "FFF", []string{"down@2"}, StatusDown},
		{"fresh target, more failures stay down once", Policy{}, "FFFFFF", []string{"down@2"}, StatusDown},
		{"fresh target, one success is not enough", Policy{}, "S", []string{}, StatusUnknown},
		{"fresh target goes up silently", Policy{}, "SS", []string{}, StatusUp},
		{"up then down", Policy{}, "SSFFF", []string{"down@4"}, StatusDown},
		{"up, failures below threshold", Policy{}, "SSFFSFF", []string{}, StatusUp},
		{"down then up", Policy{}, "FFFSS", []string{"down@2", "up@4"}, StatusUp},
		{"down, one success is not enough", Policy{}, "FFFSFS", []string{"down@2"}, StatusDown},
		{"flapping from unknown never transitions", Policy{}, "FSFSFSFSFSFS", []string{}, StatusUnknown},
		{"flapping while up never transitions", Policy{}, "SSFSFFSFFSFSFF", []string{}, StatusUp},
		{"flapping while down never transitions", Policy{}, "FFFSFSFSFSF", []string{"down@2"}, StatusDown},
		{"custom thresholds 1/1", Policy{FailureThreshold: 1, SuccessThreshold: 1}, "SFSFFS", []string{"down@1", "up@2", "down@3", "up@5"}, StatusUp},
		{"custom failure threshold 5 not met", Policy{FailureThreshold: 5}, "SSFFFFSFFFF", []string{}, StatusUp},
		{"custom failure threshold 5 met", Policy{FailureThreshold: 5}, "SSFFFFF", []string{"down@6"}, StatusDown},
		{"custom success threshold 4", Policy{SuccessThreshold: 4}, "FFFSSSFSSSS", []string{"down@2", "up@10"}, StatusUp},
		{"two incidents", Policy{}, "FFFSSFFFSS", []string{"down@2", "up@4", "down@7", "up@9"}, StatusUp},
		{"gaps in the schedule do not matter", Policy{}, "F..F.F..S.S", []string{"down@5", "up@10"}, StatusUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := feed(NewState("web"), tt.policy, results(tt.seq))
			require.Equal(t, tt.want, kinds(ts))
			require.Equal(t, tt.status, s.Status)
		})
	}
}

func TestZeroStateIsUnknown(t *testing.T) {
	s, ts := Step(State{}, Policy{}, results("F")[0])
	require.Empty(t, ts)
	require.Equal(t, StatusUnknown, s.Status)
	require.Equal(t, "web", s.TargetID, "the target ID comes from the first result")
}

func TestIncidentAttribution(t *testing.T) {
	// Check 1 fails alone (a blip), 3..5 trip DOWN, 6 recovers briefly, 7
	// fails, 8 and 9 trip UP.
	s, ts := feed(NewState("web"), Policy{}, results("SFSFFFSFSS"))
	require.Equal(t, []string{"down@5", "up@9"}, kinds(ts))
	down, up := ts[0], ts[1]

	want := Incident{
		ID:       IncidentID("web", at(3)),
		TargetID: "web",
		Start:    at(3), // the first failed check of the run that tripped DOWN
		Cause:    "connect: refused #3",
	}
	require.Equal(t, want, down.Incident)
	require.Equal(t, "connect: refused #3", down.Cause)
	require.Equal(t, at(5).Add(fast), down.At, "DOWN happens when the third failing check ends")
	require.True(t, down.Incident.Open())

	want.End = at(8) // the first success of the run that tripped UP, not check 6
	require.Equal(t, want, up.Incident)
	require.False(t, up.Incident.Open())
	require.Equal(t, 50*time.Second, up.Duration)
	require.Equal(t, "connect: refused #3", up.Cause)
	require.Equal(t, at(9).Add(fast), up.At)

	require.Nil(t, s.Incident)
	require.Equal(t, at(8), s.Since)
}

func TestIncidentWhileDownState(t *testing.T) {
	s, _ := feed(NewState("web"), Policy{}, results("SSFFFF"))
	require.Equal(t, StatusDown, s.Status)
	require.Equal(t, at(2), s.Since)
	require.NotNil(t, s.Incident)
	require.Equal(t, at(2), s.Incident.Start)
	require.Equal(t, at(4).Add(fast), s.LastNotifiedAt)
}

func TestIncidentID(t *testing.T) {
	id := IncidentID("web", at(3))
	require.Len(t, id, 16)
	require.Equal(t, id, IncidentID("web", at(3)), "deterministic")
	require.Equal(t, id, IncidentID("web", at(3).In(time.FixedZone("X", 3600))), "independent of the zone")
	require.NotEqual(t, id, IncidentID("web", at(4)))
	require.NotEqual(t, id, IncidentID("api", at(3)))
}

func TestCause(t *testing.T) {
	r := prober.Result{}
	require.Equal(t, "timeout: after 10s", Cause(r.Fail(prober.ClassTimeout, "after 10s")))
	require.Equal(t, "status", Cause(r.Fail(prober.ClassStatus, "")))
	require.Equal(t, "boom", Cause(r.Fail("", "boom")))
	require.Equal(t, "failed", Cause(r.Fail("", "")))
}

func TestOutOfOrderAndDuplicatesIgnored(t *testing.T) {
	rs := results("FFFF")
	s, ts := Step(NewState("web"), Policy{}, rs[3])
	require.Empty(t, ts)
	before := s
	for _, r := range []prober.Result{rs[0], rs[1], rs[2], rs[3]} {
		s, ts = Step(s, Policy{}, r)
		require.Empty(t, ts)
		require.Equal(t, before, s, "older or equal result %s changed the state", r.Start)
	}
	require.Equal(t, 1, s.ConsecutiveFailures)
}

func TestOtherTargetIgnored(t *testing.T) {
	r := results("F")[0]
	r.TargetID = "api"
	s, ts := Step(NewState("web"), Policy{FailureThreshold: 1}, r)
	require.Empty(t, ts)
	require.Equal(t, NewState("web"), s)
}

func TestStepDoesNotShareIncident(t *testing.T) {
	s, _ := feed(NewState("web"), Policy{}, results("FFF"))
	orig := *s.Incident
	next, _ := Step(s, Policy{}, results("FFFF")[3])
	next.Incident.Suppressed = true
	require.Equal(t, orig, *s.Incident, "Step must not alias the caller's incident")
	ticked, _ := Tick(s, Policy{}, at(100))
	ticked.Incident.InMaintenance = true
	require.Equal(t, orig, *s.Incident, "Tick must not alias the caller's incident")
}

func TestWithDefaults(t *testing.T) {
	require.Equal(t, Policy{FailureThreshold: 3, SuccessThreshold: 2, DegradedChecks: 3}, Policy{}.WithDefaults())
	p := Policy{FailureThreshold: 1, SuccessThreshold: 5, DegradedChecks: 2, RepeatInterval: time.Hour}
	require.Equal(t, p, p.WithDefaults())
	neg := Policy{FailureThreshold: -1, RepeatInterval: -time.Second, EscalateAfter: -1, TLSExpiryDays: -3, DegradedLatency: -1}
	require.Equal(t, Policy{}.WithDefaults(), neg.WithDefaults())
}

// ticks calls Tick every step from from to to (inclusive) and returns the
// final state and the transitions.
func ticks(s State, p Policy, from, to time.Time, step time.Duration) (State, []Transition) {
	var all []Transition
	for now := from; !now.After(to); now = now.Add(step) {
		var ts []Transition
		s, ts = Tick(s, p, now)
		all = append(all, ts...)
	}
	return s, all
}

func TestReminders(t *testing.T) {
	p := Policy{RepeatInterval: 5 * time.Minute}
	s, ts := feed(NewState("web"), p, results("FFF"))
	require.Len(t, ts, 1)
	downAt := ts[0].At
	inc := ts[0].Incident

	s, ts = ticks(s, p, downAt, downAt.Add(16*time.Minute), 7*time.Second)
	require.Len(t, ts, 3)
	for i, tr := range ts {
		due := downAt.Add(time.Duration(i+1) * 5 * time.Minute)
		require.Equal(t, KindReminder, tr.Kind)
		require.Equal(t, due, tr.At, "reminder %d is due on the cadence, not at the tick", i)
		require.Equal(t, due.Sub(inc.Start), tr.Duration)
		require.Equal(t, inc, tr.Incident)
		require.Equal(t, inc.Cause, tr.Cause)
	}

	// Recovery: no reminder afterwards.
	s, rec := feed(s, p, resultsFrom(100, "SS"))
	require.Len(t, rec, 1)
	require.Equal(t, KindUp, rec[0].Kind)
	_, ts = ticks(s, p, rec[0].At, rec[0].At.Add(time.Hour), time.Minute)
	require.Empty(t, ts)
}

func TestRemindersAfterPauseCollapse(t *testing.T) {
	p := Policy{RepeatInterval: 5 * time.Minute}
	s, ts := feed(NewState("web"), p, results("FFF"))
	downAt := ts[0].At

	s, ts = Tick(s, p, downAt.Add(4*time.Minute+59*time.Second))
	require.Empty(t, ts)
	// A restart kept the engine away for 17 minutes: one reminder, on the
	// 15-minute slot, and the next one at 20 minutes.
	s, ts = Tick(s, p, downAt.Add(17*time.Minute))
	require.Equal(t, []Transition{{
		Kind: KindReminder, TargetID: "web", At: downAt.Add(15 * time.Minute),
		Incident: *s.Incident, Cause: s.Incident.Cause, Duration: downAt.Add(15 * time.Minute).Sub(at(0)),
	}}, ts)
	s, ts = Tick(s, p, downAt.Add(19*time.Minute))
	require.Empty(t, ts)
	_, ts = Tick(s, p, downAt.Add(20*time.Minute))
	require.Len(t, ts, 1)
}

func TestNoRemindersWhenOff(t *testing.T) {
	s, _ := feed(NewState("web"), Policy{}, results("FFF"))
	_, ts := ticks(s, Policy{}, at(0), at(0).Add(24*time.Hour), time.Minute)
	require.Empty(t, ts)
}

func TestTickWhenNotDown(t *testing.T) {
	p := Policy{RepeatInterval: time.Minute, EscalateAfter: time.Minute}
	for _, seq := range []string{"", "FF", "SS", "FFFSS"} {
		s, _ := feed(NewState("web"), p, results(seq))
		_, ts := ticks(s, p, t0, t0.Add(time.Hour), 30*time.Second)
		require.Empty(t, ts, "sequence %q", seq)
	}
}

func TestEscalationOnce(t *testing.T) {
	p := Policy{EscalateAfter: 30 * time.Minute}
	s, ts := feed(NewState("web"), p, results("SSFFF"))
	inc := ts[0].Incident

	s, ts = ticks(s, p, at(5), inc.Start.Add(30*time.Minute-time.Second), 20*time.Second)
	require.Empty(t, ts)
	now := inc.Start.Add(30*time.Minute + 5*time.Second)
	s, ts = Tick(s, p, now)
	require.Equal(t, []Transition{{
		Kind: KindEscalation, TargetID: "web", At: now, Incident: inc,
		Cause: inc.Cause, Duration: 30*time.Minute + 5*time.Second,
	}}, ts)
	require.True(t, s.Escalated)
	s, ts = ticks(s, p, now, now.Add(3*time.Hour), time.Minute)
	require.Empty(t, ts, "escalation happens once")

	// After recovery and a new incident, it may escalate again.
	base := int(now.Add(3*time.Hour).Sub(t0)/every) + 1
	s, ts = feed(s, p, resultsFrom(base, "SSFFF"))
	require.Len(t, ts, 2)
	require.Equal(t, KindUp, ts[0].Kind)
	require.Equal(t, KindDown, ts[1].Kind)
	require.False(t, s.Escalated)
	_, ts = Tick(s, p, ts[1].Incident.Start.Add(31*time.Minute))
	require.Len(t, ts, 1)
	require.Equal(t, KindEscalation, ts[0].Kind)
}

func TestEscalationAndReminderTogether(t *testing.T) {
	p := Policy{EscalateAfter: 10 * time.Minute, RepeatInterval: 10 * time.Minute}
	s, ts := feed(NewState("web"), p, results("FFF"))
	downAt := ts[0].At
	_, ts = Tick(s, p, downAt.Add(10*time.Minute))
	require.Equal(t, []TransitionKind{KindEscalation, KindReminder}, []TransitionKind{ts[0].Kind, ts[1].Kind})
}

func TestDegraded(t *testing.T) {
	p := Policy{DegradedLatency: time.Second}
	tests := []struct {
		name     string
		policy   Policy
		seq      string
		want     []string
		degraded bool
	}{
		{"off by default", Policy{}, "LLLLLL", []string{}, false},
		{"below the count", p, "SSLLS", []string{}, false},
		{"exactly the count", p, "SSLLL", []string{"degraded@4"}, true},
		{"once while slow", p, "SSLLLLLLL", []string{"degraded@4"}, true},
		{"recovers on a fast check", p, "SSLLLLS", []string{"degraded@4", "degraded_recovered@6"}, false},
		{"a fast check restarts the count", p, "SSLLSLL", []string{}, false},
		{"a failure restarts the count", p, "SSLLFLL", []string{}, false},
		{"a failure keeps it degraded", p, "SSLLLFL", []string{"degraded@4"}, true},
		{"custom count", Policy{DegradedLatency: time.Second, DegradedChecks: 1}, "SLSL", []string{"degraded@1", "degraded_recovered@2", "degraded@3"}, true},
		{"slow from unknown", p, "LLL", []string{"degraded@2"}, true},
		{"down clears it silently", p, "SSLLLFFFSS", []string{"degraded@4", "down@7", "up@9"}, false},
		{"slow recovery reported once up", p, "FFFLLL", []string{"down@2", "up@4", "degraded@5"}, true},
		{"at the threshold is not slow", Policy{DegradedLatency: slowDur}, "LLLL", []string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ts := feed(NewState("web"), tt.policy, results(tt.seq))
			require.Equal(t, tt.want, kinds(ts))
			require.Equal(t, tt.degraded, s.Degraded)
		})
	}

	t.Run("fields", func(t *testing.T) {
		_, ts := feed(NewState("web"), p, results("SLLLLS"))
		require.Len(t, ts, 2)
		require.Equal(t, "latency 2s above 1s for 3 checks in a row", ts[0].Cause)
		require.Equal(t, Incident{}, ts[0].Incident)
		require.Equal(t, at(1), ts[0].Since, "slow since the first slow check, not the deciding one")
		require.Equal(t, "latency 100ms back under 1s", ts[1].Cause)
		require.Equal(t, at(5).Sub(at(1)), ts[1].Duration, "slow since the first slow check")
	})
}

func TestTLSExpiring(t *testing.T) {
	p := Policy{TLSExpiryDays: 14}
	day := 24 * time.Hour
	certA := t0.Add(10 * day)
	certB := t0.Add(40 * day)
	certC := t0.Add(20 * day)
	type check struct {
		ok     bool
		expiry time.Time
		offset time.Duration // added to the check's start
	}
	tests := []struct {
		name   string
		policy Policy
		checks []check
		want   []string
	}{
		{"off by default", Policy{}, []check{{true, certA, 0}}, []string{}},
		{"no TLS", p, []check{{true, time.Time{}, 0}}, []string{}},
		{"far from expiry", p, []check{{true, certB, 0}, {true, certB, 0}}, []string{}},
		{"once per certificate", p, []check{{true, certA, 0}, {true, certA, 0}, {true, certA, 0}}, []string{"tls_expiring@0"}},
		{"not on a failed check", p, []check{{false, certA, 0}, {true, certA, 0}}, []string{"tls_expiring@1"}},
		{"renewed, then the new one nears expiry", p, []check{
			{true, certA, 0}, {true, certC, 0}, {true, certC, 7 * day}, {true, certC, 7 * day},
		}, []string{"tls_expiring@0", "tls_expiring@2"}},
		{"exactly N days left is not within", p, []check{{true, t0.Add(14 * day), 0}, {true, t0.Add(14 * day), 0}}, []string{"tls_expiring@1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []prober.Result
			for i, c := range tt.checks {
				r := prober.Result{TargetID: "web", Start: at(i).Add(c.offset), Duration: fast, Success: c.ok, TLSExpiry: c.expiry}
				if !c.ok {
					r = r.Fail(prober.ClassCertError, "expiring")
				}
				rs = append(rs, r)
			}
			_, ts := feed(NewState("web"), tt.policy, rs)
			got := []string{}
			for _, tr := range ts {
				for i, r := range rs {
					if tr.At.Equal(r.Start.Add(r.Duration)) {
						got = append(got, fmt.Sprintf("%s@%d", tr.Kind, i))
					}
				}
			}
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("fields", func(t *testing.T) {
		r := prober.Result{TargetID: "web", Start: t0, Duration: fast, Success: true, TLSExpiry: certA}
		s, ts := Step(NewState("web"), p, r)
		require.Equal(t, []Transition{{
			Kind: KindTLSExpiring, TargetID: "web", At: t0.Add(fast),
			Cause: "certificate expires 2024-05-16T12:00:00Z (in 10 days)", TLSExpiry: certA,
		}}, ts)
		require.Equal(t, certA, s.TLSWarnedExpiry)
	})
}

// event is a result or a clock tick, for sequences that mix both.
type event struct {
	r    *prober.Result
	tick time.Time
}

func apply(s State, p Policy, e event) (State, []Transition) {
	if e.r != nil {
		return Step(s, p, *e.r)
	}
	return Tick(s, p, e.tick)
}

// restartScript is a long life of one target exercising every transition,
// with a tick after every check.
func restartScript() []event {
	seq := "SSSLLLSFSFFFFFFFFFFFFFFFFFFFFFFFFFFFFSFSSLLLLSSFFFFFFSS"
	var evs []event
	for i, r := range results(seq) {
		if i == 3 || i == 50 {
			r.TLSExpiry = t0.Add(time.Duration(5+i) * 24 * time.Hour)
		}
		evs = append(evs, event{r: &r}, event{tick: r.Start.Add(every - time.Second)})
	}
	return evs
}

func TestRestartInTheMiddle(t *testing.T) {
	p := Policy{
		RepeatInterval: time.Minute, EscalateAfter: 2 * time.Minute,
		DegradedLatency: time.Second, TLSExpiryDays: 30,
	}
	evs := restartScript()

	// The uninterrupted run.
	s := NewState("web")
	var want []Transition
	for _, e := range evs {
		var ts []Transition
		s, ts = apply(s, p, e)
		want = append(want, ts...)
	}
	wantFinal := s
	// The script covers every kind.
	seen := map[TransitionKind]int{}
	for _, tr := range want {
		seen[tr.Kind]++
	}
	for _, k := range []TransitionKind{KindDown, KindUp, KindReminder, KindEscalation, KindDegraded, KindDegradedRecovered, KindTLSExpiring} {
		require.NotZero(t, seen[k], "script never emits %s", k)
	}

	for cut := range evs {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			s := NewState("web")
			var got []Transition
			for _, e := range evs[:cut] {
				var ts []Transition
				s, ts = apply(s, p, e)
				got = append(got, ts...)
			}

			// Persist and restore, as the engine does across a restart.
			b, err := json.Marshal(s)
			require.NoError(t, err)
			var restored State
			require.NoError(t, json.Unmarshal(b, &restored))
			require.Equal(t, s, restored, "state survives JSON")

			// A restart replays the result log from the start: results
			// already processed change nothing and re-emit nothing (in
			// particular no second DOWN for the open incident).
			replayed := restored
			for _, e := range evs[:cut] {
				if e.r == nil {
					continue
				}
				var ts []Transition
				replayed, ts = Step(replayed, p, *e.r)
				require.Empty(t, ts, "replaying %s re-emitted", e.r.Start)
			}
			require.Equal(t, restored, replayed)

			for _, e := range evs[cut:] {
				var ts []Transition
				restored, ts = apply(restored, p, e)
				got = append(got, ts...)
			}
			require.Equal(t, want, got)
			require.Equal(t, wantFinal, restored)
		})
	}
}

// TestStateJSONOmitsZeroFields: the registry stores a State as JSON for
// every target, so a routine UP state holds only what is set (half the
// bytes to write), and decodes to the same state, as do the old encodings
// that spelled every zero out.
func TestStateJSONOmitsZeroFields(t *testing.T) {
	st := State{TargetID: "web", Status: StatusUp, Since: t0, ConsecutiveSuccesses: 2,
		RunStart: t0, LastCheck: at(1), Location: "local"}
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	require.JSONEq(t, `{"target_id":"web","status":"up","since":"2024-05-06T12:00:00Z","consecutive_successes":2,
		"run_start":"2024-05-06T12:00:00Z","last_check":"2024-05-06T12:00:10Z","location":"local"}`, string(raw))
	var back State
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, st, back)

	old := `{"target_id":"web","status":"up","since":"2024-05-06T12:00:00Z","consecutive_failures":0,"consecutive_successes":2,
		"run_start":"2024-05-06T12:00:00Z","last_check":"2024-05-06T12:00:10Z","degraded":false,"slow_checks":0,
		"degraded_since":"0001-01-01T00:00:00Z","tls_warned_expiry":"0001-01-01T00:00:00Z","last_notified_at":"0001-01-01T00:00:00Z",
		"escalated":false,"location":"local"}`
	back = State{}
	require.NoError(t, json.Unmarshal([]byte(old), &back))
	require.Equal(t, st, back)

	ls := LocationState{Status: StatusUp, ConsecutiveSuccesses: 2, RunStart: t0, LastCheck: at(1)}
	raw, err = json.Marshal(ls)
	require.NoError(t, err)
	require.JSONEq(t, `{"status":"up","consecutive_successes":2,"run_start":"2024-05-06T12:00:00Z","last_check":"2024-05-06T12:00:10Z"}`, string(raw))
}
