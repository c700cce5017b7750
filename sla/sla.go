// Package sla computes service-level figures for a window from incidents,
// maintenance periods, data coverage and hourly rollups (DESIGN §4). It is
// pure arithmetic: no I/O, no clock, no goroutines. The caller reads the
// inputs from the stores and passes Now.
//
// # The window
//
// The window is [From, To). The part of it after Now (when Now is set and
// before To) has not happened yet: it is reported as Future and takes no
// part in any figure. The rest, [From, min(To, Now)), is the elapsed
// window, and every duration below is measured inside it. Open incidents
// (zero End) run to its end.
//
// # Time accounting (default)
//
// Let E be the elapsed window, D the union of incidents, M the union of
// maintenance periods and C the union of periods with data, each clipped
// to E (overlapping or touching intervals are merged, so two overlapping
// incidents never count twice). Then
//
//   - Downtime = |D|, or |D \ M| with ExcludeMaintenance.
//   - Unknown  = |E \ (C ∪ D)|, or |E \ (C ∪ D ∪ M)| with
//     ExcludeMaintenance: no-data time. Time inside an incident is never
//     unknown — an incident is evidence that the target was down, even if
//     no check data covers that time (the prober may have stopped writing
//     while the incident stayed open).
//   - Maintenance = |M|, reported in either mode.
//   - Up = |C \ D|, or |C \ D \ M| with ExcludeMaintenance: time with data,
//     outside incidents (and outside maintenance when excluded).
//   - Uptime = Up / (Up + Downtime) × 100, which is the design's
//     1 − downtime / (window − unknown [− maintenance]). Undefined (nil)
//     when Up + Downtime is 0.
//
// So the elapsed window splits exactly, to the nanosecond, into
// Up + Downtime + Unknown, plus Maintenance when it is excluded (with
// ExcludeMaintenance, Unknown and Downtime never overlap Maintenance).
// Without exclusion Maintenance is informational and overlaps the others.
//
// Coverage = |C| / |E| × 100, the share of the elapsed window with data,
// whatever the accounting; 0 for an empty window.
//
// # Checks accounting
//
// Uptime = (Checks − FailedChecks) / Checks × 100, undefined when Checks
// is 0. The durations above are still computed and reported.
//
// # Checks, latency
//
// Checks, FailedChecks and the latency percentiles come from Counted when
// the caller summed them itself (exactly, e.g. from raw samples at the
// window's partial edge hours); otherwise from the rollups whose Hour
// starts in [From, To) (rollups are whole hours, so a window that does not
// start on an hour boundary counts the checks of its whole last hour and
// none of its partial first hour). With ExcludeMaintenance, hours lying
// wholly inside maintenance are left out; hours partly inside are counted
// in full. Percentiles: see Quantile.
//
// # Outages
//
// An outage is one connected part of D (incidents merged as above). With
// ExcludeMaintenance its length is the part outside maintenance, and an
// outage wholly inside maintenance is not counted. Incidents is the number
// of outages counted; LongestOutage the longest length; MTTR =
// Downtime / Incidents (mean outage length); MTBF = Up / Incidents (mean
// observed up time per outage; unknown and excluded maintenance time do
// not count). Both divisions truncate to the nanosecond. All three are 0
// when there are no incidents (MTBF is then undefined, not infinite).
//
// # SLO
//
// The target is read to 1e-4 percent (99.95 and 99.999 are exact). Time
// accounting: Budget = (1 − SLO/100) × (Up + Downtime), computed in integer
// arithmetic and rounded to the nearest nanosecond; Used = Downtime;
// Left = Budget − Used, negative once the budget is overspent. Checks
// accounting: the same in checks, BudgetChecks = (1 − SLO/100) × Checks
// (fractional). Met is true when there is data and Left ≥ 0, i.e. when
// Uptime ≥ SLO.
package sla

import (
	"fmt"
	"math"
	"math/bits"
	"sort"
	"time"

	"github.com/upwatch/upwatch/tsdb"
)

// Accounting says how uptime is measured.
type Accounting string

// The accounting methods.
const (
	// AccountingTime measures incident durations over the window, with
	// no-data time reported apart (the default).
	AccountingTime Accounting = "time"
	// AccountingChecks measures failed checks over checks run.
	AccountingChecks Accounting = "checks"
)

// ParseAccounting reads an accounting method; "" means time.
func ParseAccounting(s string) (Accounting, error) {
	switch Accounting(s) {
	case "", AccountingTime:
		return AccountingTime, nil
	case AccountingChecks:
		return AccountingChecks, nil
	}
	return "", fmt.Errorf("accounting %q: want %q or %q", s, AccountingTime, AccountingChecks)
}

// Input is everything Compute needs. Interval lists need not be sorted or
// disjoint; Compute clips and merges them.
type Input struct {
	// From and To bound the window [From, To).
	From, To time.Time
	// Now closes open incidents and cuts off the future part of the window;
	// zero means the whole window has elapsed (open incidents run to To).
	Now time.Time

	// Incidents are the target's outages; a zero End means still open.
	Incidents []Interval
	// Maintenance are maintenance periods, already expanded from the
	// (recurring) windows by the caller.
	Maintenance []Interval
	// ExcludeMaintenance removes maintenance time from downtime and from
	// the denominator (and maintenance hours from the check counts).
	ExcludeMaintenance bool

	// Data are the periods with data coverage. Nil means derive them from
	// Rollups with CoverageFromRollups; a non-nil empty slice means no data.
	Data []Interval
	// Rollups are the hourly rollups of the target (or the Merge of several
	// targets' rollups); those whose Hour is outside [From, To) are ignored.
	Rollups []tsdb.Rollup
	// Counted, when set, is the window's checks already summed (and
	// maintenance already left out) by the caller; Rollups then serve only
	// to derive Data when it is nil.
	Counted *tsdb.Rollup

	// Accounting is AccountingTime when empty.
	Accounting Accounting
	// SLO is an optional target in percent (99.9); 0, a negative value or
	// NaN means none, and a value above 100 is read as 100.
	SLO float64
}

// Report is the SLA of one window. See the package documentation for the
// exact definitions.
type Report struct {
	Accounting Accounting
	From, To   time.Time
	// Elapsed is the part of the window up to Now; Future the rest.
	Elapsed, Future time.Duration

	// Uptime is in percent (0–100); nil when undefined (no data).
	Uptime *float64
	// Up is the time observed up; Downtime the time in incidents; Unknown
	// the no-data time; Maintenance the time in maintenance.
	Up, Downtime, Unknown, Maintenance time.Duration
	// Coverage is the share of the elapsed window with data, in percent.
	Coverage float64

	Incidents                 int
	LongestOutage, MTTR, MTBF time.Duration

	LatencyP50, LatencyP95, LatencyP99 time.Duration
	Checks, FailedChecks               int64

	// SLO is set when Input.SLO is.
	SLO *SLOStatus
}

// HasData reports whether Uptime is defined.
func (r Report) HasData() bool { return r.Uptime != nil }

// SLOStatus is the error budget against a target. The durations are set
// under time accounting, the *Checks fields under checks accounting.
type SLOStatus struct {
	// Target is the SLO in percent, as read (to 1e-4).
	Target float64
	// Met is true when there is data and the budget is not overspent.
	Met bool

	Budget, Used, Left                   time.Duration
	BudgetChecks, UsedChecks, LeftChecks float64
}

// ppmScale is the resolution of an SLO: parts per million of the
// denominator, i.e. 1e-4 percent.
const ppmScale = 1_000_000

// Compute returns the SLA report of in. It never fails: an empty or
// inverted window gives a report with no data.
func Compute(in Input) Report {
	acc := in.Accounting
	if acc != AccountingChecks {
		acc = AccountingTime
	}
	rep := Report{Accounting: acc, From: in.From, To: in.To}

	// The elapsed window [from, end).
	from, end := in.From, in.To
	if end.Before(from) {
		end = from
	}
	if !in.Now.IsZero() && in.Now.Before(end) {
		rep.Future = end.Sub(maxTime(in.Now, from))
		end = maxTime(in.Now, from)
	}
	elapsed := end.Sub(from)
	rep.Elapsed = elapsed

	// Interval sets, clipped to the elapsed window.
	var incidents []Interval
	if len(in.Incidents) > 0 {
		incidents = make([]Interval, len(in.Incidents))
		for i, iv := range in.Incidents {
			if iv.End.IsZero() {
				iv.End = end
			}
			incidents[i] = iv
		}
	}
	down := normalize(incidents, from, end)
	maint := normalize(in.Maintenance, from, end)
	data := in.Data
	if data == nil {
		// All rollups: the hour holding From may start before it.
		data = CoverageFromRollups(in.Rollups)
	}
	covered := normalize(data, from, end)
	window := []Interval{}
	if elapsed > 0 {
		window = []Interval{{from, end}}
	}

	rep.Maintenance = total(maint)
	known := Union(covered, down)
	counted := down
	if in.ExcludeMaintenance {
		counted = subtract(down, maint)
		known = subtract(known, maint)
		rep.Unknown = total(subtract(subtract(window, known), maint))
	} else {
		rep.Unknown = total(subtract(window, known))
	}
	rep.Downtime = total(counted)
	rep.Up = total(known) - rep.Downtime
	if elapsed > 0 {
		rep.Coverage = float64(total(covered)) / float64(elapsed) * 100
	}

	// Outages: the length of each connected part of down that is counted.
	// Every piece of counted lies inside exactly one part of down.
	j := 0
	for _, o := range down {
		var length time.Duration
		for j < len(counted) && !counted[j].Start.Before(o.Start) && !counted[j].End.After(o.End) {
			length += counted[j].Duration()
			j++
		}
		if length > 0 {
			rep.Incidents++
			rep.LongestOutage = max(rep.LongestOutage, length)
		}
	}
	if rep.Incidents > 0 {
		rep.MTTR = rep.Downtime / time.Duration(rep.Incidents)
		rep.MTBF = rep.Up / time.Duration(rep.Incidents)
	}

	// Checks and latency: the rollups whose hour starts in the window,
	// less those wholly in maintenance when it is excluded, summed.
	// Maintenance is not clipped at Now here: an hour in progress that
	// maintenance will cover to its end counts as covered.
	var maintAll []Interval
	if in.ExcludeMaintenance {
		maintAll = normalize(in.Maintenance, time.Time{}, time.Time{})
	}
	var sum tsdb.Rollup
	if in.Counted != nil {
		sum = *in.Counted
	} else {
		for i := range in.Rollups {
			r := &in.Rollups[i]
			if r.Hour.Before(in.From) || !r.Hour.Before(in.To) {
				continue
			}
			if in.ExcludeMaintenance && coversWholly(maintAll, r.Hour, r.Hour.Add(time.Hour)) {
				continue
			}
			sum.Merge(*r)
		}
	}
	rep.Checks, rep.FailedChecks = sum.Checks, sum.Failures
	rep.LatencyP50 = Quantile(sum, 0.50)
	rep.LatencyP95 = Quantile(sum, 0.95)
	rep.LatencyP99 = Quantile(sum, 0.99)

	// Uptime.
	switch acc {
	case AccountingTime:
		if denom := rep.Up + rep.Downtime; denom > 0 {
			u := float64(rep.Up) / float64(denom) * 100
			rep.Uptime = &u
		}
	case AccountingChecks:
		if rep.Checks > 0 {
			u := float64(rep.Checks-rep.FailedChecks) / float64(rep.Checks) * 100
			rep.Uptime = &u
		}
	}

	ApplySLO(&rep, in.SLO)
	return rep
}

// ApplySLO sets rep.SLO for a target of slo percent (read to 1e-4 percent;
// none when slo is not positive): the error budget of rep's accounting, what
// rep used of it and what is left. Callers that pool several reports (label
// selectors) apply it to the pooled figures.
func ApplySLO(rep *Report, slo float64) {
	if slo <= 0 || math.IsNaN(slo) {
		return
	}
	ppm := int64(math.Round(min(slo, 100) * ppmScale / 100))
	s := &SLOStatus{Target: float64(ppm) * 100 / ppmScale}
	allowed := uint64(ppmScale - ppm)
	switch rep.Accounting {
	case AccountingChecks:
		s.BudgetChecks = float64(rep.Checks) * float64(allowed) / ppmScale
		s.UsedChecks = float64(rep.FailedChecks)
		s.LeftChecks = s.BudgetChecks - s.UsedChecks
		// Compare exactly: failed ≤ checks × allowed / 1e6.
		hi, lo := bits.Mul64(uint64(rep.FailedChecks), ppmScale)
		bhi, blo := bits.Mul64(uint64(rep.Checks), allowed)
		s.Met = rep.HasData() && (hi < bhi || hi == bhi && lo <= blo)
	default:
		s.Budget = time.Duration(mulDivRound(uint64(rep.Up+rep.Downtime), allowed, ppmScale))
		s.Used = rep.Downtime
		s.Left = s.Budget - s.Used
		s.Met = rep.HasData() && s.Left >= 0
	}
	rep.SLO = s
}

// coversWholly reports whether the normalized set ivs contains [s, e).
func coversWholly(ivs []Interval, s, e time.Time) bool {
	// The last interval starting at or before s is the only candidate.
	i := sort.Search(len(ivs), func(i int) bool { return ivs[i].Start.After(s) })
	return i > 0 && !ivs[i-1].End.Before(e)
}

// mulDivRound returns a×b/d rounded half up, without overflow for
// a×b < 2⁶⁴×d.
func mulDivRound(a, b, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, r := bits.Div64(hi, lo, d)
	if 2*r >= d {
		q++
	}
	return q
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
