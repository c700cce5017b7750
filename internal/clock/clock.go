// Package clock is where upwatch's components take the time from. The
// composition root (app.Options.Now) picks one clock and passes it by
// constructor to the engine, the dispatcher, the API and the stores, so a
// test can run the whole service at any date.
package clock

import "time"

// Now returns the current time; time.Now is the production clock.
type Now = func() time.Time

// Or returns now, or the wall clock when now is nil: components default to
// it when no clock is passed.
func Or(now Now) Now {
	if now == nil {
		return time.Now
	}
	return now
}
