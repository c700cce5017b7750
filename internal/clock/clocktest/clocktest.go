// Package clocktest gives tests the dates they compare against. No test
// reads the wall clock for a date: each takes Start (or a date derived from
// it) and injects a clock built on it, so the suite passes on any day.
// UPWATCH_TEST_NOW (RFC 3339) moves that start, e.g. years ahead, to prove it.
package clocktest

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// EnvNow shifts Start to the given RFC 3339 instant.
const EnvNow = "UPWATCH_TEST_NOW"

var (
	startOnce sync.Once
	start     time.Time
	// monotonic is when Start was fixed; Running measures from it.
	monotonic time.Time
)

// Start is the instant this test process treats as "now" when it began:
// UPWATCH_TEST_NOW if set, else the wall clock, in UTC and truncated to
// the second. It is the same for every call in one process.
func Start() time.Time {
	startOnce.Do(func() {
		monotonic = time.Now()
		start = monotonic.UTC().Truncate(time.Second)
		if v := os.Getenv(EnvNow); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				panic(fmt.Sprintf("%s=%q: %v", EnvNow, v, err))
			}
			start = t.UTC()
		}
	})
	return start
}

// Noon is 12:00 UTC on Start's day: a base for tests whose cases are
// written in times of day.
func Noon() time.Time {
	s := Start()
	return time.Date(s.Year(), s.Month(), s.Day(), 12, 0, 0, 0, time.UTC)
}

// Running returns a clock that reads base plus the real time elapsed since
// it was made: dates follow the test's base while timers and deadlines
// still see time pass.
func Running(base time.Time) func() time.Time {
	from := time.Now()
	return func() time.Time { return base.Add(time.Since(from)) }
}

// Now is Running(Start()) shared by the process: the clock to inject where
// a test needs "now" but no particular date.
func Now() time.Time {
	Start()
	return start.Add(time.Since(monotonic))
}

// Manual is a clock that moves only when told to. Safe for concurrent use.
type Manual struct {
	mu sync.Mutex
	t  time.Time
}

// NewManual returns a Manual clock reading t.
func NewManual(t time.Time) *Manual { return &Manual{t: t} }

// Now reads the clock.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

// Advance moves the clock forward by d and returns the new time.
func (m *Manual) Advance(d time.Duration) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = m.t.Add(d)
	return m.t
}

// Set moves the clock to t.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = t
}
