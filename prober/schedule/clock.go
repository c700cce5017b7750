package schedule

import "time"

// clock is the scheduler's view of time, so tests can drive it by hand.
type clock interface {
	Now() time.Time
	// NewTimer returns a stopped timer.
	NewTimer() timer
}

// timer fires once at an absolute deadline. Taking a deadline rather than a
// duration means a test clock that moves between "read now" and "arm the
// timer" cannot lose a wake-up.
type timer interface {
	C() <-chan time.Time
	// ResetAt arms the timer for at, discarding any unreceived tick; a
	// deadline in the past fires at once.
	ResetAt(at time.Time)
	Stop()
}

// realClock reads now (time.Now, or the composition root's clock, which
// may be shifted from the wall clock) and arms real timers for the
// distance from it.
type realClock struct{ now func() time.Time }

func (c realClock) Now() time.Time { return c.now() }

func (c realClock) NewTimer() timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return realTimer{t, c.now}
}

// realTimer relies on Go ≥ 1.23 timer semantics: Reset and Stop discard a
// tick that was not received yet.
type realTimer struct {
	t   *time.Timer
	now func() time.Time
}

func (r realTimer) C() <-chan time.Time  { return r.t.C }
func (r realTimer) ResetAt(at time.Time) { r.t.Reset(at.Sub(r.now())) }
func (r realTimer) Stop()                { r.t.Stop() }
