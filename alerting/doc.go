// Package alerting decides when a target is DOWN or UP and who hears of it,
// and delivers what was decided exactly once.
//
// The state machine: Step feeds one check result of a target into its State
// and returns the transitions it caused (down, up, degraded,
// degraded_recovered, tls_expiring); Tick advances the clock and returns the
// reminders and the escalation due while a target is down. Both are pure
// functions of the state, the policy and their input: no I/O, no
// goroutines, no clock of their own. StepQuorum is Step for a target
// checked from several probe locations: each location keeps its own run and
// verdict, and the target is DOWN while the policy's quorum (down_when)
// holds over the fresh, not suspect ones; with one location it is Step.
//
// The Engine runs them for every routed target: it serialises each target's
// results, applies maintenance windows (Window) and dependencies (a child's
// DOWN waits for its parents and is suppressed while one fails), renders
// the messages, and commits the new State, the incidents and the outbox
// entries in one StateStore transaction before anything is sent, so a
// restart carries on where it left off and never re-alerts. After Start it
// commits in groups: many targets' changes to a transaction, by a committer
// goroutine behind a bounded queue; a failed commit puts the target's state
// back, so its next result derives the same transition again. It also
// watches the probe locations as a whole: one silent past its window is
// unavailable, one where most targets fail while others see them up is
// suspect, and either drops out of every quorum (events, metrics).
//
// The Dispatcher sends what the Outbox holds: leases so two dispatchers
// never send the same message, backoff with jitter, Retry-After pauses per
// channel, and a final failure for what cannot succeed. Retry, dedup and
// muting live there once; the notifiers in alerting/notify only talk to
// their provider.
package alerting
