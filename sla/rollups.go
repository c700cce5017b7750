package sla

import (
	"math"
	"slices"
	"time"

	"github.com/upwatch/upwatch/tsdb"
)

// CoverageFromRollups returns the periods with data according to hourly
// rollups: every hour with at least one check, [Hour, Hour+1h), counts as
// covered in full; an hour without a rollup (or with zero checks) is not
// covered. Coverage is therefore resolved to the hour: a 20-minute gap
// inside an hour that still saw checks is not seen. The result is sorted
// and merged.
func CoverageFromRollups(rollups []tsdb.Rollup) []Interval {
	var ivs []Interval
	for i := range rollups {
		r := &rollups[i]
		if r.Checks <= 0 {
			continue
		}
		// Rollups usually come sorted: extend the last interval in place.
		if n := len(ivs); n > 0 && r.Hour.Equal(ivs[n-1].End) {
			ivs[n-1].End = r.Hour.Add(time.Hour)
			continue
		}
		ivs = append(ivs, Interval{r.Hour, r.Hour.Add(time.Hour)})
	}
	return normalize(ivs, time.Time{}, time.Time{})
}

// CoverageFromSamples returns the periods with data according to sample
// timestamps: a sample at t vouches for [t, t+maxGap), so two samples
// further than maxGap apart leave the time between them uncovered. Pass
// maxGap a little above the check interval (2× the interval absorbs
// scheduler jitter and one lost check). Timestamps need not be sorted.
func CoverageFromSamples(times []time.Time, maxGap time.Duration) []Interval {
	if maxGap <= 0 {
		return nil
	}
	ivs := make([]Interval, 0, len(times))
	for _, t := range times {
		ivs = append(ivs, Interval{t, t.Add(maxGap)})
	}
	return normalize(ivs, time.Time{}, time.Time{})
}

// Merge adds rollups of several targets hour by hour (for a label
// selector): checks, failures, latency sums and histogram buckets add;
// min and max are taken over the hours' non-empty rollups. The result is
// sorted by Hour; its TargetID is the common ID if all inputs share one,
// "" otherwise.
func Merge(rs ...[]tsdb.Rollup) []tsdb.Rollup {
	byHour := make(map[int64]int)
	var out []tsdb.Rollup
	id, sameID, first := "", true, true
	for _, list := range rs {
		for _, r := range list {
			if first {
				id, first = r.TargetID, false
			} else if r.TargetID != id {
				sameID = false
			}
			k := r.Hour.UnixNano()
			i, ok := byHour[k]
			if !ok {
				byHour[k] = len(out)
				out = append(out, r)
				continue
			}
			out[i].Merge(r)
		}
	}
	slices.SortFunc(out, func(a, b tsdb.Rollup) int { return a.Hour.Compare(b.Hour) })
	for i := range out {
		if sameID {
			out[i].TargetID = id
		} else {
			out[i].TargetID = ""
		}
	}
	return out
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) of the latencies in a
// summed rollup, the way Prometheus' histogram_quantile does: find the
// bucket holding the rank q×Checks and interpolate linearly between its
// lower and upper bound (the first bucket's lower bound is 0). Two
// refinements over Prometheus: the +Inf bucket interpolates up to the
// observed LatencyMax (not just 30 s), and the result is clamped to
// [LatencyMin, LatencyMax], so a histogram whose checks all took 120 ms
// answers 120 ms, not 175 ms. The result is rounded to the nanosecond; 0
// when there are no checks.
func Quantile(r tsdb.Rollup, q float64) time.Duration {
	if r.Checks <= 0 || math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	var count int64
	for _, n := range r.Buckets {
		count += n
	}
	if count == 0 {
		return 0
	}
	rank := q * float64(count)
	var cum int64
	for i, n := range r.Buckets {
		if n == 0 {
			continue
		}
		if float64(cum+n) < rank {
			cum += n
			continue
		}
		var lower, upper time.Duration
		if i > 0 {
			lower = tsdb.LatencyBuckets[i-1]
		}
		if i < len(tsdb.LatencyBuckets) {
			upper = tsdb.LatencyBuckets[i]
		} else {
			upper = max(r.LatencyMax, lower)
		}
		v := float64(lower) + float64(upper-lower)*(rank-float64(cum))/float64(n)
		d := time.Duration(math.Round(v))
		if r.LatencyMax > 0 {
			d = min(max(d, r.LatencyMin), r.LatencyMax)
		}
		return d
	}
	return 0
}
