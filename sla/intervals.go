package sla

import (
	"slices"
	"time"
)

// Interval is the half-open span [Start, End). An interval whose End is not
// after its Start is empty. In Input.Incidents a zero End means the
// incident is still open.
type Interval struct {
	Start time.Time
	End   time.Time
}

// Duration returns End − Start, or 0 for an empty interval.
func (iv Interval) Duration() time.Duration {
	if !iv.End.After(iv.Start) {
		return 0
	}
	return iv.End.Sub(iv.Start)
}

// Union returns the union of the given interval lists, sorted by Start,
// with overlapping and touching intervals merged ([a,b) ∪ [b,c) = [a,c))
// and empty ones dropped. A zero End is treated as empty here; open
// incidents are closed by Compute before it unions them.
func Union(lists ...[]Interval) []Interval {
	var n int
	for _, l := range lists {
		n += len(l)
	}
	all := make([]Interval, 0, n)
	for _, l := range lists {
		all = append(all, l...)
	}
	return normalize(all, time.Time{}, time.Time{})
}

// normalize clips ivs to [lo, hi) (a zero bound is no bound), drops empty
// intervals, sorts by Start and merges overlapping or touching ones. It
// allocates a new slice and leaves ivs alone.
func normalize(ivs []Interval, lo, hi time.Time) []Interval {
	out := make([]Interval, 0, len(ivs))
	for _, iv := range ivs {
		s, e := iv.Start, iv.End
		if !lo.IsZero() && s.Before(lo) {
			s = lo
		}
		if !hi.IsZero() && e.After(hi) {
			e = hi
		}
		if s.Before(e) {
			out = append(out, Interval{s, e})
		}
	}
	if !slices.IsSortedFunc(out, cmpStart) {
		slices.SortFunc(out, cmpStart)
	}
	merged := out[:0]
	for _, iv := range out {
		if n := len(merged); n > 0 && !iv.Start.After(merged[n-1].End) {
			if iv.End.After(merged[n-1].End) {
				merged[n-1].End = iv.End
			}
			continue
		}
		merged = append(merged, iv)
	}
	return merged
}

func cmpStart(a, b Interval) int { return a.Start.Compare(b.Start) }

// subtract returns a \ b. Both must be normalized; so is the result.
func subtract(a, b []Interval) []Interval {
	if len(b) == 0 {
		return a
	}
	out := make([]Interval, 0, len(a))
	j := 0
	for _, x := range a {
		for j < len(b) && !b[j].End.After(x.Start) {
			j++
		}
		s := x.Start
		for k := j; k < len(b) && b[k].Start.Before(x.End); k++ {
			if b[k].Start.After(s) {
				out = append(out, Interval{s, b[k].Start})
			}
			if b[k].End.After(s) {
				s = b[k].End
			}
			if !s.Before(x.End) {
				break
			}
		}
		if s.Before(x.End) {
			out = append(out, Interval{s, x.End})
		}
	}
	return out
}

// total returns the summed length of disjoint intervals.
func total(ivs []Interval) time.Duration {
	var d time.Duration
	for _, iv := range ivs {
		d += iv.End.Sub(iv.Start)
	}
	return d
}
