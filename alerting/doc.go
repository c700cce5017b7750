// Package alerting is the pure alert state machine and maintenance windows.
//
// Step feeds one check result of a target into its State and returns the
// transitions it caused (down, up, degraded, degraded_recovered,
// tls_expiring); Tick advances the clock and returns the reminders and the
// escalation due while a target is down. Both are pure functions of the
// state, the policy and their input: no I/O, no goroutines, no clock of
// their own. The caller persists the State after each call, so a restart
// carries on where it left off and never re-emits a DOWN for an incident
// already opened.
//
// Window says when a target's notifications are held back; the engine asks
// Window.Active and flags the incident, which is still recorded.
package alerting
