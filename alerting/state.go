package alerting

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// Policy defaults, applied by WithDefaults to fields left at zero.
const (
	DefaultFailureThreshold = 3
	DefaultSuccessThreshold = 2
	DefaultDegradedChecks   = 3
)

// Policy says when a target's transitions happen. It is configuration: it
// holds no state, and the same Policy may serve many targets.
type Policy struct {
	// FailureThreshold consecutive failed checks make a target DOWN (default 3).
	FailureThreshold int `yaml:"failure_threshold,omitempty" json:"failure_threshold,omitempty"`
	// SuccessThreshold consecutive successful checks make it UP (default 2).
	SuccessThreshold int `yaml:"success_threshold,omitempty" json:"success_threshold,omitempty"`
	// RepeatInterval is how often a reminder follows the DOWN notification
	// while the target stays down; 0 sends none.
	RepeatInterval time.Duration `yaml:"repeat_interval,omitempty" json:"repeat_interval,omitempty"`
	// DegradedLatency, when set, makes a target DEGRADED once DegradedChecks
	// consecutive successful checks took longer than it.
	DegradedLatency time.Duration `yaml:"degraded_latency,omitempty" json:"degraded_latency,omitempty"`
	// DegradedChecks is the number of slow checks in a row (default 3).
	DegradedChecks int `yaml:"degraded_checks,omitempty" json:"degraded_checks,omitempty"`
	// TLSExpiryDays, when set, warns once per certificate when a successful
	// check sees one expiring in fewer than this many days.
	TLSExpiryDays int `yaml:"tls_expiry_days,omitempty" json:"tls_expiry_days,omitempty"`
	// EscalateAfter, when set, emits one escalation once an incident has
	// lasted this long.
	EscalateAfter time.Duration `yaml:"escalate_after,omitempty" json:"escalate_after,omitempty"`
	// DownWhen is how many of the target's locations must see it down
	// (majority by default; see Quorum). With one location it changes
	// nothing.
	DownWhen Quorum `yaml:"down_when,omitempty" json:"down_when,omitempty"`
	// StaleAfter is how long a location may go without a result for the
	// target before it drops out of the quorum (default 3 intervals).
	StaleAfter time.Duration `yaml:"stale_after,omitempty" json:"stale_after,omitempty"`
}

// WithDefaults returns p with zero (or negative) thresholds replaced by their
// defaults and negative durations and day counts treated as off.
func (p Policy) WithDefaults() Policy {
	if p.FailureThreshold <= 0 {
		p.FailureThreshold = DefaultFailureThreshold
	}
	if p.SuccessThreshold <= 0 {
		p.SuccessThreshold = DefaultSuccessThreshold
	}
	if p.DegradedChecks <= 0 {
		p.DegradedChecks = DefaultDegradedChecks
	}
	p.RepeatInterval = max(p.RepeatInterval, 0)
	p.DegradedLatency = max(p.DegradedLatency, 0)
	p.TLSExpiryDays = max(p.TLSExpiryDays, 0)
	p.EscalateAfter = max(p.EscalateAfter, 0)
	p.StaleAfter = max(p.StaleAfter, 0)
	return p
}

// Status is a target's state after the thresholds.
type Status string

// The statuses. A zero State has an empty Status, which means unknown.
const (
	StatusUnknown Status = "unknown"
	StatusUp      Status = "up"
	StatusDown    Status = "down"
)

// State is everything the machine remembers about one target between
// results. The caller persists it (it is plain JSON) after every Step or Tick
// that changed it, keyed by target ID; it never lives in config.
type State struct {
	TargetID string `json:"target_id"`
	Status   Status `json:"status"`
	// Since is when Status began: for DOWN the incident start, for UP the
	// first successful check of the run that tripped it.
	Since time.Time `json:"since,omitzero"`

	ConsecutiveFailures  int `json:"consecutive_failures,omitzero"`
	ConsecutiveSuccesses int `json:"consecutive_successes,omitzero"`
	// RunStart is the start of the first check of the current run of
	// failures (or of successes); RunCause is the cause of the first failing
	// check of a failure run ("class: message"), empty in a success run.
	RunStart time.Time `json:"run_start,omitzero"`
	RunCause string    `json:"run_cause,omitempty"`
	// LastCheck is the start of the newest result processed; older or equal
	// results are ignored, so replaying a log after a restart is harmless.
	LastCheck time.Time `json:"last_check,omitzero"`

	// Incident is the open incident while DOWN, nil otherwise.
	Incident *Incident `json:"incident,omitempty"`

	// Degraded is set while the target is slow. SlowChecks counts the
	// current run of slow successful checks and DegradedSince is the start of
	// its first check (and so, while Degraded, when the slowness began).
	Degraded      bool      `json:"degraded,omitzero"`
	SlowChecks    int       `json:"slow_checks,omitzero"`
	DegradedSince time.Time `json:"degraded_since,omitzero"`

	// TLSWarnedExpiry is the certificate expiry last warned about.
	TLSWarnedExpiry time.Time `json:"tls_warned_expiry,omitzero"`

	// LastNotifiedAt is when the DOWN or the latest reminder was due;
	// reminders follow it every RepeatInterval. Escalated is set once the
	// open incident has been escalated.
	LastNotifiedAt time.Time `json:"last_notified_at,omitzero"`
	Escalated      bool      `json:"escalated,omitzero"`

	// Hold is set while the DOWN messages of the open incident wait for
	// the target's parents to answer; the engine sets and clears it. It is
	// part of the state so a restart keeps holding (and then releases or
	// suppresses) them rather than losing or re-deciding them.
	Hold *Hold `json:"hold,omitempty"`

	// Location is the one location every result so far came from, while
	// there is only one (see StepQuorum); Locations holds each location's
	// own run once a second one reports, and Location is then empty.
	Location  string                   `json:"location,omitempty"`
	Locations map[string]LocationState `json:"locations,omitempty"`
}

// Hold is a DOWN whose messages wait until every parent has answered a
// check started at or after Since, or until Until, whichever comes first.
type Hold struct {
	Since time.Time  `json:"since"`
	Until time.Time  `json:"until"`
	Down  Transition `json:"down"`
}

// NewState returns the state of a target never seen before: UNKNOWN.
func NewState(targetID string) State {
	return State{TargetID: targetID, Status: StatusUnknown}
}

// Incident is one outage of one target: from the first failed check of the
// run that tripped DOWN to the first successful check of the run that
// tripped UP. It is recorded whether or not anyone is notified.
type Incident struct {
	ID       string    `json:"id"`
	TargetID string    `json:"target_id"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"` // zero while open
	Cause    string    `json:"cause"`
	// Suppressed is set by the engine when notifications are held back
	// (a parent target is down); SuppressedReason says why, e.g.
	// "parent gateway down".
	Suppressed       bool   `json:"suppressed,omitempty"`
	SuppressedReason string `json:"suppressed_reason,omitempty"`
	// InMaintenance is set by the engine when the incident began inside a
	// maintenance window.
	InMaintenance bool `json:"in_maintenance,omitempty"`
	// Locations are where the failure was seen, with several locations:
	// each one's first and last failed check. Empty with one location.
	Locations []IncidentLocation `json:"locations,omitempty"`
	// AckedBy and AckedAt say who acknowledged the open incident and
	// when: someone is on it, so no reminder or escalation follows (the
	// UP message still does). The registry records them; the engine
	// learns of them when a reminder falls due (see AckReader).
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
}

// Acked reports whether someone acknowledged the incident.
func (i Incident) Acked() bool { return !i.AckedAt.IsZero() }

// Open reports whether the incident has not ended.
func (i Incident) Open() bool { return i.End.IsZero() }

// IncidentID is the deterministic ID of the incident of targetID starting
// at start, so that replaying the same results after a restart yields the
// same ID and notification dedup keys built on it still match.
func IncidentID(targetID string, start time.Time) string {
	h := sha256.New()
	h.Write([]byte(targetID))
	h.Write([]byte{0})
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start.UnixNano()))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// TransitionKind names what happened.
type TransitionKind string

// The transitions the machine emits.
const (
	KindDown              TransitionKind = "down"
	KindUp                TransitionKind = "up"
	KindReminder          TransitionKind = "reminder"
	KindDegraded          TransitionKind = "degraded"
	KindDegradedRecovered TransitionKind = "degraded_recovered"
	KindTLSExpiring       TransitionKind = "tls_expiring"
	KindEscalation        TransitionKind = "escalation"
)

// Transition is something worth telling people about. The machine only
// emits it; deciding who hears of it (maintenance, dependencies, contact
// groups) is the engine's job.
type Transition struct {
	Kind     TransitionKind `json:"kind"`
	TargetID string         `json:"target_id"`
	// At is when the transition happened: for results, the end of the check
	// that decided it (Start + Duration); for a reminder, the time it was
	// due (stable across restarts, so it can be part of a dedup key); for an
	// escalation, the tick that found it due.
	At time.Time `json:"at"`
	// Incident is a copy of the incident concerned (down, up, reminder,
	// escalation); zero for the others. For up its End is set.
	Incident Incident `json:"incident"`
	Cause    string   `json:"cause,omitempty"`
	// Duration is, for up, the length of the outage (first success of the
	// recovering run − incident start); for reminder and escalation, how
	// long the target has been down so far; for degraded_recovered, how long
	// it was slow.
	Duration time.Duration `json:"duration,omitempty"`
	// TLSExpiry is the certificate expiry for tls_expiring.
	TLSExpiry time.Time `json:"tls_expiry,omitempty"`
	// Since is, for degraded, when the slowness began: the start of the
	// first slow check of the run (At is when it was decided).
	Since time.Time `json:"since,omitempty"`
}

// Cause formats a failed result's error as "class: message".
func Cause(r prober.Result) string {
	switch {
	case r.ErrorClass == "" && r.Error == "":
		return "failed"
	case r.ErrorClass == "":
		return r.Error
	case r.Error == "":
		return string(r.ErrorClass)
	}
	return string(r.ErrorClass) + ": " + r.Error
}

// Step feeds one result, in order of r.Start, into the state of its target
// and returns the new state and the transitions it caused, in order. It is
// pure: s is not modified. A result that is not newer than the last one
// processed, or that belongs to another target, changes nothing.
func Step(s State, p Policy, r prober.Result) (State, []Transition) {
	p = p.WithDefaults()
	if s.TargetID == "" {
		s.TargetID = r.TargetID
	}
	if r.TargetID != "" && r.TargetID != s.TargetID {
		return s, nil
	}
	if !s.LastCheck.IsZero() && !r.Start.After(s.LastCheck) {
		return s, nil
	}
	if s.Status == "" {
		s.Status = StatusUnknown
	}
	if s.Incident != nil {
		inc := *s.Incident // never share the pointer with the caller's copy
		s.Incident = &inc
	}
	s.LastCheck = r.Start
	at := r.Start.Add(r.Duration)
	var out []Transition

	if !r.Success {
		if s.ConsecutiveFailures == 0 {
			s.RunStart, s.RunCause = r.Start, Cause(r)
		}
		s.ConsecutiveFailures++
		s.ConsecutiveSuccesses = 0
		s.SlowChecks, s.DegradedSince = 0, zeroIf(s.Degraded, s.DegradedSince)
		if s.Status != StatusDown && s.ConsecutiveFailures >= p.FailureThreshold {
			inc := Incident{
				ID:       IncidentID(s.TargetID, s.RunStart),
				TargetID: s.TargetID,
				Start:    s.RunStart,
				Cause:    s.RunCause,
			}
			s.Status, s.Since = StatusDown, s.RunStart
			s.Incident = &inc
			s.LastNotifiedAt, s.Escalated = at, false
			// DOWN supersedes DEGRADED: slowness is counted afresh after
			// recovery and no degraded_recovered follows the outage.
			s.Degraded, s.SlowChecks, s.DegradedSince = false, 0, time.Time{}
			out = append(out, Transition{
				Kind: KindDown, TargetID: s.TargetID, At: at,
				Incident: inc, Cause: inc.Cause,
			})
		}
		return s, out
	}

	if s.ConsecutiveSuccesses == 0 {
		s.RunStart, s.RunCause = r.Start, ""
	}
	s.ConsecutiveSuccesses++
	s.ConsecutiveFailures = 0
	if s.Status != StatusUp && s.ConsecutiveSuccesses >= p.SuccessThreshold {
		if s.Status == StatusDown && s.Incident != nil {
			inc := *s.Incident
			inc.End = s.RunStart
			out = append(out, Transition{
				Kind: KindUp, TargetID: s.TargetID, At: at,
				Incident: inc, Cause: inc.Cause, Duration: inc.End.Sub(inc.Start),
			})
		}
		// UNKNOWN → UP is silent: nobody needs to hear that a new target works.
		s.Status, s.Since = StatusUp, s.RunStart
		s.Incident = nil
		s.LastNotifiedAt, s.Escalated = time.Time{}, false
	}
	out = append(out, stepDegraded(&s, p, r, at)...)
	out = append(out, stepTLS(&s, p, r, at)...)
	return s, out
}

// zeroIf keeps t while keep is true and returns the zero time otherwise.
func zeroIf(keep bool, t time.Time) time.Time {
	if keep {
		return t
	}
	return time.Time{}
}

// stepDegraded counts slow successful checks. Slow checks while DOWN are
// counted but only reported once the target is no longer down.
func stepDegraded(s *State, p Policy, r prober.Result, at time.Time) []Transition {
	slow := p.DegradedLatency > 0 && r.Duration > p.DegradedLatency
	if !slow {
		s.SlowChecks = 0
		if !s.Degraded {
			s.DegradedSince = time.Time{}
			return nil
		}
		since := s.DegradedSince
		s.Degraded, s.DegradedSince = false, time.Time{}
		return []Transition{{
			Kind: KindDegradedRecovered, TargetID: s.TargetID, At: at,
			Cause:    fmt.Sprintf("latency %s back under %s", r.Duration, p.DegradedLatency),
			Duration: r.Start.Sub(since),
		}}
	}
	if s.SlowChecks == 0 && !s.Degraded {
		s.DegradedSince = r.Start
	}
	s.SlowChecks++
	if s.Degraded || s.Status == StatusDown || s.SlowChecks < p.DegradedChecks {
		return nil
	}
	s.Degraded = true
	return []Transition{{
		Kind: KindDegraded, TargetID: s.TargetID, At: at, Since: s.DegradedSince,
		Cause: fmt.Sprintf("latency %s above %s for %d checks in a row",
			r.Duration, p.DegradedLatency, s.SlowChecks),
	}}
}

// stepTLS warns once per certificate expiry seen on a successful check.
func stepTLS(s *State, p Policy, r prober.Result, at time.Time) []Transition {
	if p.TLSExpiryDays == 0 || r.TLSExpiry.IsZero() || r.TLSExpiry.Equal(s.TLSWarnedExpiry) {
		return nil
	}
	left := r.TLSExpiry.Sub(r.Start)
	if left >= time.Duration(p.TLSExpiryDays)*24*time.Hour {
		return nil
	}
	s.TLSWarnedExpiry = r.TLSExpiry
	cause := fmt.Sprintf("certificate expires %s (in %d days)",
		r.TLSExpiry.UTC().Format(time.RFC3339), int(left/(24*time.Hour)))
	if left <= 0 {
		cause = fmt.Sprintf("certificate expired %s", r.TLSExpiry.UTC().Format(time.RFC3339))
	}
	return []Transition{{
		Kind: KindTLSExpiring, TargetID: s.TargetID, At: at,
		Cause: cause, TLSExpiry: r.TLSExpiry,
	}}
}

// Tick advances the clock to now and returns the reminders and the
// escalation due while the target is DOWN. Call it on every engine tick; it
// is pure and cheap. At most one reminder is emitted per call: after a long
// pause (a restart) the missed ones collapse into the latest, and the
// cadence stays aligned to the DOWN notification. An acknowledged incident
// has nothing due.
func Tick(s State, p Policy, now time.Time) (State, []Transition) {
	p = p.WithDefaults()
	if s.Status != StatusDown || s.Incident == nil || s.Incident.Acked() {
		return s, nil
	}
	inc := *s.Incident
	s.Incident = &inc
	var out []Transition
	if p.EscalateAfter > 0 && !s.Escalated && now.Sub(inc.Start) >= p.EscalateAfter {
		s.Escalated = true
		out = append(out, Transition{
			Kind: KindEscalation, TargetID: s.TargetID, At: now,
			Incident: inc, Cause: inc.Cause, Duration: now.Sub(inc.Start),
		})
	}
	if p.RepeatInterval > 0 && !s.LastNotifiedAt.IsZero() {
		if n := now.Sub(s.LastNotifiedAt) / p.RepeatInterval; n >= 1 {
			due := s.LastNotifiedAt.Add(n * p.RepeatInterval)
			s.LastNotifiedAt = due
			out = append(out, Transition{
				Kind: KindReminder, TargetID: s.TargetID, At: due,
				Incident: inc, Cause: inc.Cause, Duration: due.Sub(inc.Start),
			})
		}
	}
	return s, out
}
