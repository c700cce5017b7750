package alerting

import (
	"errors"
	"slices"
	"time"
)

// Period is a span [Start, End) during which a maintenance window is active.
type Period struct {
	Start, End time.Time
}

// MaxPeriodStarts bounds how many scheduled starts Periods walks for one
// window (every five minutes for a year fits); a schedule that fires more
// often over the range is refused with
// ErrTooManyStarts rather than answered slowly.
const MaxPeriodStarts = 1 << 17

// ErrTooManyStarts: the window's schedule fires more than MaxPeriodStarts
// times over the requested range.
var ErrTooManyStarts = errors.New("maintenance window fires too often over this range")

// Periods returns the times in [from, to) at which the window is active,
// ignoring which targets it covers (see Applies), clipped to [from, to),
// sorted and with overlapping or touching periods merged. It agrees with
// Active: an instant t in [from, to) lies in a returned period exactly
// when the window is active at t. Validate must have succeeded first; an
// invalid recurring window yields no periods.
//
// Recurring starts are taken on the wall clock of the window's zone and
// mapped to real instants as Active does, so across a DST change a daily
// "0 2 * * *" window of 2h still starts once a day and lasts 2h of
// elapsed time.
func (w *Window) Periods(from, to time.Time) ([]Period, error) {
	if !from.Before(to) {
		return nil, nil
	}
	var out []Period
	add := func(s, e time.Time) {
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		if s.Before(e) {
			out = append(out, Period{s.UTC(), e.UTC()})
		}
	}
	if !w.Start.IsZero() {
		add(w.Start, w.End)
	}
	if w.sched != nil && w.loc != nil && w.Duration > 0 {
		// Every start s with s < to and s+Duration > from, found on the
		// wall clock with slack for offset changes, as recurringActive does.
		lo := wallClock(from.Add(-w.Duration), w.loc).Add(-dstSlack)
		until := wallClock(to, w.loc).Add(dstSlack)
		n := 0
		for s := w.sched.Next(lo); !s.IsZero() && !s.After(until); s = w.sched.Next(s) {
			if n++; n > MaxPeriodStarts {
				return nil, ErrTooManyStarts
			}
			start := instant(s, w.loc)
			add(start, start.Add(w.Duration))
		}
	}
	return mergePeriods(out), nil
}

// mergePeriods sorts ps and merges overlapping or touching periods, in place.
func mergePeriods(ps []Period) []Period {
	slices.SortFunc(ps, func(a, b Period) int { return a.Start.Compare(b.Start) })
	merged := ps[:0]
	for _, p := range ps {
		if n := len(merged); n > 0 && !p.Start.After(merged[n-1].End) {
			if p.End.After(merged[n-1].End) {
				merged[n-1].End = p.End
			}
			continue
		}
		merged = append(merged, p)
	}
	if len(merged) == 0 {
		return nil
	}
	return merged
}
