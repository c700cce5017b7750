package alerting

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// Quorum is how many of a target's counting locations (fresh and not
// suspect) must see it down for it to be DOWN: "majority" (the default,
// more than half), "all", "any", or a number N (N locations, or every
// counting one when fewer than N count). Recovery uses the same rule: the
// target is UP again once it no longer holds and a counting location sees
// the target up.
type Quorum string

// The named quorums.
const (
	QuorumMajority Quorum = "majority"
	QuorumAll      Quorum = "all"
	QuorumAny      Quorum = "any"
)

// MaxQuorum bounds a numeric quorum.
const MaxQuorum = 100

// Validate reports whether q is a quorum this package knows.
func (q Quorum) Validate() error {
	switch q {
	case "", QuorumMajority, QuorumAll, QuorumAny:
		return nil
	}
	n, err := strconv.Atoi(string(q))
	if err != nil || n < 1 || n > MaxQuorum {
		return fmt.Errorf("must be majority, all, any or a number from 1 to %d (got %q)", MaxQuorum, string(q))
	}
	return nil
}

// need is how many of n counting locations must see the target down; 0
// when n is 0 (nothing counts, nothing is decided).
func (q Quorum) need(n int) int {
	if n <= 0 {
		return 0
	}
	switch q {
	case QuorumAll:
		return n
	case QuorumAny:
		return 1
	case "", QuorumMajority:
		return n/2 + 1
	}
	k, err := strconv.Atoi(string(q))
	if err != nil || k < 1 {
		return n/2 + 1
	}
	return min(k, n)
}

// DefaultStaleIntervals is how many of a target's intervals a location may
// stay silent for the target before it drops out of its quorum.
const DefaultStaleIntervals = 3

// LocationState is one location's view of a target: its own run of
// failures or successes and its verdict after the policy's thresholds.
type LocationState struct {
	// Status is the location's verdict: down after FailureThreshold
	// failures in a row, up after SuccessThreshold successes in a row.
	Status               Status    `json:"status"`
	ConsecutiveFailures  int       `json:"consecutive_failures,omitzero"`
	ConsecutiveSuccesses int       `json:"consecutive_successes,omitzero"`
	RunStart             time.Time `json:"run_start,omitzero"`
	RunCause             string    `json:"run_cause,omitempty"`
	// LastCheck is the start of the newest result from the location.
	LastCheck time.Time `json:"last_check,omitzero"`
	// DownSince and DownCause are the start and cause of the failure run
	// that made the location's verdict down.
	DownSince time.Time `json:"down_since,omitzero"`
	DownCause string    `json:"down_cause,omitempty"`
}

// IncidentLocation is where an incident was seen: a location and its first
// and last failed check during the incident.
type IncidentLocation struct {
	Location     string    `json:"location"`
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
}

// QuorumView is what the engine knows beyond one target's state when it
// feeds a result: how long a silent location still counts, and which
// locations are suspect (their own network is failing).
type QuorumView struct {
	// Stale is how long a location may go without a result for the
	// target and still count; 0 means every location counts.
	Stale time.Duration
	// Suspect reports whether a location is suspect; nil means none is.
	Suspect func(location string) bool
}

// StepQuorum feeds one result from r.Location into s. While every result
// the target has had came from one location (nothing else ever runs it, as
// with serve alone), it is Step: the behaviour is exactly the single-prober
// one. Once a second location reports, each location keeps its own run and
// verdict (State.Locations) and the target is DOWN while p.DownWhen holds
// over the counting locations' verdicts: those with a result within
// v.Stale before r.Start and not suspect. It is pure: s is not modified.
//
// The incident starts at the failure run of the location that completed
// the quorum (for a majority of three, the second location's run start),
// so downtime is what the quorum confirms; it ends at the first success of
// the run that broke it, or at the check that found it broken (a location
// dropping out). Results older than their location's last are ignored;
// locations may report out of order with each other.
func StepQuorum(s State, p Policy, r prober.Result, v QuorumView) (State, []Transition) {
	loc := r.Location
	if len(s.Locations) == 0 && (s.Location == "" || s.Location == loc || s.LastCheck.IsZero()) {
		next, trs := Step(s, p, r)
		if !next.LastCheck.Equal(s.LastCheck) {
			next.Location = loc
		}
		return next, trs
	}
	p = p.WithDefaults()
	if s.TargetID == "" {
		s.TargetID = r.TargetID
	}
	if r.TargetID != "" && r.TargetID != s.TargetID {
		return s, nil
	}
	locs := maps.Clone(s.Locations)
	if locs == nil {
		// A second location: the first one's run is the target's so far.
		locs = map[string]LocationState{s.Location: {
			Status: s.Status, ConsecutiveFailures: s.ConsecutiveFailures, ConsecutiveSuccesses: s.ConsecutiveSuccesses,
			RunStart: s.RunStart, RunCause: s.RunCause, LastCheck: s.LastCheck,
			DownSince: zeroIf(s.Status == StatusDown, s.Since), DownCause: incidentCause(s),
		}}
	}
	ls := locs[loc]
	if !ls.LastCheck.IsZero() && !r.Start.After(ls.LastCheck) {
		return s, nil
	}
	if s.Incident != nil {
		inc := *s.Incident
		inc.Locations = slices.Clone(inc.Locations)
		s.Incident = &inc
	}
	prevLoc := ls
	stepLocation(&ls, p, r)
	locs[loc] = ls
	s.Locations, s.Location = locs, ""
	if r.Start.After(s.LastCheck) {
		s.LastCheck = r.Start
	}
	if s.Status == "" {
		s.Status = StatusUnknown
	}
	at := r.Start.Add(r.Duration)

	// The counting locations, and the quorum over their verdicts. The
	// buffers keep a routine result off the heap with a few locations.
	var countBuf [8]string
	var downBuf, failBuf [4]LocationState
	counting := countBuf[:0]
	for name, l := range locs {
		if v.Stale > 0 && l.LastCheck.Before(r.Start.Add(-v.Stale)) {
			continue
		}
		if v.Suspect != nil && v.Suspect(name) {
			continue
		}
		counting = append(counting, name)
	}
	slices.Sort(counting)
	need := p.DownWhen.need(len(counting))
	downs, failing, ups := downBuf[:0], failBuf[:0], 0
	for _, name := range counting {
		l := locs[name]
		switch l.Status {
		case StatusDown:
			downs = append(downs, l)
		case StatusUp:
			ups++
		}
		if l.ConsecutiveFailures > 0 {
			failing = append(failing, l)
		}
	}
	holds := need > 0 && len(downs) >= need
	if s.Status != StatusDown {
		// A new outage needs its locations failing now: one whose verdict is
		// still down but has begun to succeed (coming back from being
		// suspect or silent) does not open one.
		downs = slices.DeleteFunc(downs, func(l LocationState) bool { return l.ConsecutiveFailures == 0 })
		holds = need > 0 && len(downs) >= need
	}
	quorumRun(&s, failing, need)
	if !r.Success && s.Status == StatusDown && s.Incident != nil {
		s.Incident.Locations = seenAt(s.Incident.Locations, loc, ls.RunStart, r.Start)
	}

	var out []Transition
	switch {
	case holds && s.Status != StatusDown:
		// The quorum-th location to go down started the confirmed outage.
		slices.SortFunc(downs, func(a, b LocationState) int { return a.DownSince.Compare(b.DownSince) })
		start, cause := downs[need-1].DownSince, downs[0].DownCause
		inc := Incident{
			ID: IncidentID(s.TargetID, start), TargetID: s.TargetID, Start: start, Cause: cause,
			Locations: failureLocations(locs, counting),
		}
		s.Status, s.Since = StatusDown, start
		s.Incident = &inc
		s.LastNotifiedAt, s.Escalated = at, false
		s.Degraded, s.SlowChecks, s.DegradedSince = false, 0, time.Time{}
		out = append(out, Transition{Kind: KindDown, TargetID: s.TargetID, At: at, Incident: inc, Cause: inc.Cause})
	case !holds && ups > 0 && s.Status != StatusUp && (s.Status != StatusDown || endsOutage(s, r)):
		end := r.Start
		if r.Success && ls.Status == StatusUp && prevLoc.Status != StatusUp {
			end = ls.RunStart // the first success of the run that broke the quorum
		}
		if s.Status == StatusDown && s.Incident != nil {
			inc := *s.Incident
			inc.End = maxTime(end, inc.Start)
			out = append(out, Transition{
				Kind: KindUp, TargetID: s.TargetID, At: at,
				Incident: inc, Cause: inc.Cause, Duration: inc.End.Sub(inc.Start),
			})
		}
		s.Status, s.Since = StatusUp, end
		s.Incident = nil
		s.LastNotifiedAt, s.Escalated = time.Time{}, false
	}
	if r.Success {
		out = append(out, stepDegraded(&s, p, r, at)...)
		out = append(out, stepTLS(&s, p, r, at)...)
	} else {
		s.SlowChecks, s.DegradedSince = 0, zeroIf(s.Degraded, s.DegradedSince)
	}
	return s, out
}

// endsOutage says whether r may end the outage s is in, once the quorum no
// longer holds: only a success from after the outage began. A location back
// from being silent (stale or suspect) still has its verdict from before,
// and its agent's spool replays results from before the outage: either
// ended an incident that was still going on, with a failure or a result
// older than the incident, and the next results opened it again.
func endsOutage(s State, r prober.Result) bool {
	return r.Success && !r.Start.Before(s.Since)
}

// stepLocation advances one location's run and verdict by r.
func stepLocation(l *LocationState, p Policy, r prober.Result) {
	l.LastCheck = r.Start
	if l.Status == "" {
		l.Status = StatusUnknown
	}
	if !r.Success {
		if l.ConsecutiveFailures == 0 {
			l.RunStart, l.RunCause = r.Start, Cause(r)
		}
		l.ConsecutiveFailures++
		l.ConsecutiveSuccesses = 0
		if l.Status != StatusDown && l.ConsecutiveFailures >= p.FailureThreshold {
			l.Status, l.DownSince, l.DownCause = StatusDown, l.RunStart, l.RunCause
		}
		return
	}
	if l.ConsecutiveSuccesses == 0 {
		l.RunStart, l.RunCause = r.Start, ""
	}
	l.ConsecutiveSuccesses++
	l.ConsecutiveFailures = 0
	if l.Status != StatusUp && l.ConsecutiveSuccesses >= p.SuccessThreshold {
		l.Status, l.DownSince, l.DownCause = StatusUp, time.Time{}, ""
	}
}

// quorumRun sets the target's run fields from its counting locations, so
// that what reads them (a child checking whether its parent is failing,
// the engine deciding what to commit) sees the quorum: the target is in a
// failure run while at least need counting locations are, counting the
// failures they all share and starting when the need-th of them began.
func quorumRun(s *State, failing []LocationState, need int) {
	if need > 0 && len(failing) >= need {
		slices.SortFunc(failing, func(a, b LocationState) int { return a.RunStart.Compare(b.RunStart) })
		start := failing[need-1].RunStart
		if s.ConsecutiveFailures == 0 || !s.RunStart.Equal(start) {
			s.RunStart, s.RunCause = start, failing[0].RunCause
		}
		n := failing[0].ConsecutiveFailures
		for _, l := range failing[:need] {
			n = min(n, l.ConsecutiveFailures)
		}
		s.ConsecutiveFailures, s.ConsecutiveSuccesses = n, 0
		return
	}
	if s.ConsecutiveFailures > 0 || s.ConsecutiveSuccesses == 0 {
		s.RunStart, s.RunCause = s.LastCheck, ""
		s.ConsecutiveSuccesses = 0
	}
	s.ConsecutiveFailures = 0
	s.ConsecutiveSuccesses++
}

// failureLocations lists the counting locations in a failure run or down,
// with their first and last failed check so far.
func failureLocations(locs map[string]LocationState, counting []string) []IncidentLocation {
	var out []IncidentLocation
	for _, name := range counting {
		l := locs[name]
		switch {
		case l.ConsecutiveFailures > 0:
			first := l.RunStart
			if l.Status == StatusDown && !l.DownSince.IsZero() {
				first = l.DownSince
			}
			out = append(out, IncidentLocation{Location: name, FirstFailure: first, LastFailure: l.LastCheck})
		case l.Status == StatusDown:
			out = append(out, IncidentLocation{Location: name, FirstFailure: l.DownSince, LastFailure: l.DownSince})
		}
	}
	return out
}

// seenAt records a failed check at loc, started at at, in an open
// incident's locations; runStart is the start of loc's failure run.
func seenAt(ls []IncidentLocation, loc string, runStart, at time.Time) []IncidentLocation {
	for i := range ls {
		if ls[i].Location == loc {
			if at.After(ls[i].LastFailure) {
				ls[i].LastFailure = at
			}
			return ls
		}
	}
	ls = append(ls, IncidentLocation{Location: loc, FirstFailure: runStart, LastFailure: at})
	slices.SortFunc(ls, func(a, b IncidentLocation) int {
		if a.Location < b.Location {
			return -1
		}
		if a.Location > b.Location {
			return 1
		}
		return 0
	})
	return ls
}

func incidentCause(s State) string {
	if s.Incident != nil {
		return s.Incident.Cause
	}
	return ""
}

// locationsMatter reports whether a location's run or verdict changed in a
// way a restart must not forget (the same rule as runMatters, per location).
func locationsMatter(prev, next State) bool {
	if len(next.Locations) == 0 {
		return false
	}
	if len(prev.Locations) == 0 {
		return true
	}
	for name, n := range next.Locations {
		p, ok := prev.Locations[name]
		if !ok || p.Status != n.Status {
			return true
		}
		if !p.RunStart.Equal(n.RunStart) && (n.ConsecutiveFailures > 0 || p.ConsecutiveFailures > 0) {
			return true
		}
	}
	return false
}
