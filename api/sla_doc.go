package api

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/tsdb"
)

// The SLA document: what GET /targets/{id}/sla and GET /sla answer and
// what an encrypted report holds. Every duration is an object with
// seconds (a number) and a human reading; percentages are 0–100; every
// answer states its accounting and maintenance handling.

// durationDoc is a duration in seconds and as a human reading ("2h 40m").
type durationDoc struct {
	Seconds float64 `json:"seconds"`
	Human   string  `json:"human"`
}

func newDuration(d time.Duration) durationDoc {
	return durationDoc{Seconds: seconds(d), Human: humanDuration(d)}
}

// humanDuration writes d as days, hours, minutes and seconds, leaving out
// zero parts ("3d 4h", "2h 40m", "45m", "12.5s"); below a second in
// milliseconds or microseconds ("40ms"). Negative durations get a minus.
func humanDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		if d == math.MinInt64 {
			d++
		}
		return "-" + humanDuration(-d)
	}
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", int64(d))
	case d < time.Millisecond:
		return trimFloat(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return trimFloat(float64(d)/float64(time.Millisecond)) + "ms"
	case d < time.Minute:
		return trimFloat(float64(d)/float64(time.Second)) + "s"
	}
	d = d.Round(time.Second)
	parts := []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	var out []string
	for _, p := range parts {
		if n := d / p.unit; n > 0 {
			out = append(out, fmt.Sprintf("%d%s", n, p.name))
			d -= n * p.unit
		}
	}
	return strings.Join(out, " ")
}

// trimFloat prints v with at most three decimals and no trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// windowDoc is the window an answer covers.
type windowDoc struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Period is "month", "day" or "year" for a calendar period, "" for an
	// explicit from/to; TimeZone the zone the period was read in.
	Period   string `json:"period,omitempty"`
	TimeZone string `json:"time_zone,omitempty"`
	// Elapsed is the part of the window up to now (every figure is measured
	// in it); Future the rest.
	Elapsed durationDoc `json:"elapsed"`
	Future  durationDoc `json:"future"`
}

// slaFigures are the figures of one target, or of an aggregate.
type slaFigures struct {
	// UptimePercent is null when undefined: no data in the window (time
	// accounting) or no checks run (checks accounting).
	UptimePercent *float64    `json:"uptime_percent"`
	Up            durationDoc `json:"up"`
	Downtime      durationDoc `json:"downtime"`
	// Unknown is the time with no data, never counted as up or down.
	Unknown durationDoc `json:"unknown"`
	// Maintenance is the time in maintenance windows, reported whether or
	// not it is excluded.
	Maintenance durationDoc `json:"in_maintenance"`
	// CoveragePercent is the share of the elapsed window with data.
	CoveragePercent float64 `json:"coverage_percent"`

	Incidents     int         `json:"incidents"`
	LongestOutage durationDoc `json:"longest_outage"`
	// MTTR is the mean outage length; MTBF the mean up time per outage.
	// Both are null without incidents.
	MTTR *durationDoc `json:"mttr"`
	MTBF *durationDoc `json:"mtbf"`

	// Latency percentiles of the checks; null when no check ran.
	Latency *latencyDoc `json:"latency"`
	Checks  checksDoc   `json:"checks"`

	SLO *sloDoc `json:"slo,omitempty"`
}

type latencyDoc struct {
	P50 durationDoc `json:"p50"`
	P95 durationDoc `json:"p95"`
	P99 durationDoc `json:"p99"`
}

type checksDoc struct {
	Run    int64 `json:"run"`
	Failed int64 `json:"failed"`
}

// sloDoc is the error budget against an SLO. Under time accounting the
// budget is time (budget, used, left; left is negative once overspent);
// under checks accounting it is a number of failed checks.
type sloDoc struct {
	TargetPercent float64 `json:"target_percent"`
	// Met is null when there is no data to judge by.
	Met *bool `json:"met"`
	// BudgetLeftPercent is left / budget × 100 (negative when overspent);
	// null when the budget is zero.
	BudgetLeftPercent *float64     `json:"budget_left_percent"`
	Budget            *durationDoc `json:"budget,omitempty"`
	Used              *durationDoc `json:"used,omitempty"`
	Left              *durationDoc `json:"left,omitempty"`
	BudgetChecks      *float64     `json:"budget_checks,omitempty"`
	UsedChecks        *float64     `json:"used_checks,omitempty"`
	LeftChecks        *float64     `json:"left_checks,omitempty"`
}

// slaSettings are the caller's choices, echoed in every answer.
type slaSettings struct {
	Accounting  sla.Accounting `json:"accounting"`
	Maintenance string         `json:"maintenance"` // "include" or "exclude"
}

// targetSLADoc answers GET /targets/{id}/sla.
type targetSLADoc struct {
	TargetID string    `json:"target_id"`
	Name     string    `json:"name,omitempty"`
	Window   windowDoc `json:"window"`
	slaSettings
	slaFigures
	// LatencyByLocation are the latency percentiles per probe location,
	// when more than one location has checks in the window (raw samples
	// only: within raw retention).
	LatencyByLocation []locationLatencyDoc `json:"latency_by_location,omitempty"`
	// LatencyByLocationTruncated is set when the window held more raw
	// samples than are read for them.
	LatencyByLocationTruncated bool `json:"latency_by_location_truncated,omitempty"`
}

type locationLatencyDoc struct {
	Location string `json:"location"`
	Checks   int64  `json:"checks"`
	latencyDoc
}

func newLocationLatencyDocs(ls []sla.LocationLatency) []locationLatencyDoc {
	var out []locationLatencyDoc
	for _, l := range ls {
		out = append(out, locationLatencyDoc{Location: l.Location, Checks: l.Checks,
			latencyDoc: latencyDoc{P50: newDuration(l.P50), P95: newDuration(l.P95), P99: newDuration(l.P99)}})
	}
	return out
}

// targetFiguresDoc is one target inside a selector answer or a report.
type targetFiguresDoc struct {
	TargetID string            `json:"target_id"`
	Name     string            `json:"name,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	slaFigures
}

// aggregateMethod says, in every selector answer and report, how the
// aggregate is made.
const aggregateMethod = "pooled: durations, incidents and checks are summed over the targets; " +
	"uptime_percent is total up / (total up + total downtime) under time accounting and " +
	"(total checks - total failed) / total checks under checks accounting, so a target " +
	"weighs by its observed time or its checks; mean_uptime_percent is the unweighted mean " +
	"of the targets' uptimes and min_uptime_percent the worst, both over targets with data; " +
	"coverage_percent is total covered time / total elapsed time; latency percentiles come " +
	"from the targets' hourly histograms added together; mttr and mtbf divide the totals by " +
	"the total incident count; the slo is applied to the pooled uptime"

// aggregateDoc sums several targets' figures (see aggregateMethod).
type aggregateDoc struct {
	Method  string `json:"method"`
	Targets int    `json:"targets"`
	// TargetsWithData counts the targets whose uptime is defined.
	TargetsWithData   int      `json:"targets_with_data"`
	MeanUptimePercent *float64 `json:"mean_uptime_percent"`
	MinUptimePercent  *float64 `json:"min_uptime_percent"`
	slaFigures
}

// selectorSLADoc answers GET /sla?selector=...
type selectorSLADoc struct {
	Selector string    `json:"selector"`
	Window   windowDoc `json:"window"`
	slaSettings
	Targets   []targetFiguresDoc `json:"targets"`
	Aggregate aggregateDoc       `json:"aggregate"`
}

func newWindowDoc(rep sla.Report, period, tz string) windowDoc {
	return windowDoc{
		From: rep.From.UTC(), To: rep.To.UTC(), Period: period, TimeZone: tz,
		Elapsed: newDuration(rep.Elapsed), Future: newDuration(rep.Future),
	}
}

// newFigures turns a report into the document's figures.
func newFigures(rep sla.Report) slaFigures {
	f := slaFigures{
		UptimePercent:   rep.Uptime,
		Up:              newDuration(rep.Up),
		Downtime:        newDuration(rep.Downtime),
		Unknown:         newDuration(rep.Unknown),
		Maintenance:     newDuration(rep.Maintenance),
		CoveragePercent: rep.Coverage,
		Incidents:       rep.Incidents,
		LongestOutage:   newDuration(rep.LongestOutage),
		Checks:          checksDoc{Run: rep.Checks, Failed: rep.FailedChecks},
	}
	if rep.Incidents > 0 {
		mttr, mtbf := newDuration(rep.MTTR), newDuration(rep.MTBF)
		f.MTTR, f.MTBF = &mttr, &mtbf
	}
	if rep.Checks > 0 {
		f.Latency = &latencyDoc{
			P50: newDuration(rep.LatencyP50), P95: newDuration(rep.LatencyP95), P99: newDuration(rep.LatencyP99),
		}
	}
	if s := rep.SLO; s != nil {
		f.SLO = newSLODoc(*s, rep.Accounting, rep.HasData())
	}
	return f
}

func newSLODoc(s sla.SLOStatus, acc sla.Accounting, hasData bool) *sloDoc {
	d := &sloDoc{TargetPercent: s.Target}
	if hasData {
		d.Met = &s.Met
	}
	switch acc {
	case sla.AccountingChecks:
		b, u, l := s.BudgetChecks, s.UsedChecks, s.LeftChecks
		d.BudgetChecks, d.UsedChecks, d.LeftChecks = &b, &u, &l
		if b > 0 {
			p := l / b * 100
			d.BudgetLeftPercent = &p
		}
	default:
		b, u, l := newDuration(s.Budget), newDuration(s.Used), newDuration(s.Left)
		d.Budget, d.Used, d.Left = &b, &u, &l
		if s.Budget > 0 {
			p := float64(s.Left) / float64(s.Budget) * 100
			d.BudgetLeftPercent = &p
		}
	}
	return d
}

// aggregate pools several targets' reports (see aggregateMethod). counted
// are the sums of the rollups each target's report counted, for the
// latency percentiles; slo is the caller's SLO (0 for none).
func aggregate(reps []sla.Report, counted []tsdb.Rollup, acc sla.Accounting, slo float64) aggregateDoc {
	var sum sla.Report
	sum.Accounting = acc
	var covered, elapsed float64
	var uptimes []float64
	for _, r := range reps {
		sum.Up += r.Up
		sum.Downtime += r.Downtime
		sum.Unknown += r.Unknown
		sum.Maintenance += r.Maintenance
		sum.Incidents += r.Incidents
		sum.LongestOutage = max(sum.LongestOutage, r.LongestOutage)
		sum.Checks += r.Checks
		sum.FailedChecks += r.FailedChecks
		covered += r.Coverage / 100 * float64(r.Elapsed)
		elapsed += float64(r.Elapsed)
		if r.Uptime != nil {
			uptimes = append(uptimes, *r.Uptime)
		}
	}
	if elapsed > 0 {
		sum.Coverage = covered / elapsed * 100
	}
	if sum.Incidents > 0 {
		sum.MTTR = sum.Downtime / time.Duration(sum.Incidents)
		sum.MTBF = sum.Up / time.Duration(sum.Incidents)
	}
	switch acc {
	case sla.AccountingChecks:
		if sum.Checks > 0 {
			u := float64(sum.Checks-sum.FailedChecks) / float64(sum.Checks) * 100
			sum.Uptime = &u
		}
	default:
		if d := sum.Up + sum.Downtime; d > 0 {
			u := float64(sum.Up) / float64(d) * 100
			sum.Uptime = &u
		}
	}
	// Percentiles from the summed histograms of the rollups the targets'
	// reports counted.
	var all tsdb.Rollup
	for _, c := range counted {
		all.Merge(c)
	}
	sum.LatencyP50 = sla.Quantile(all, 0.50)
	sum.LatencyP95 = sla.Quantile(all, 0.95)
	sum.LatencyP99 = sla.Quantile(all, 0.99)
	sla.ApplySLO(&sum, slo)

	agg := aggregateDoc{
		Method: aggregateMethod, Targets: len(reps), TargetsWithData: len(uptimes),
		slaFigures: newFigures(sum),
	}
	if len(uptimes) > 0 {
		var total float64
		worst := uptimes[0]
		for _, u := range uptimes {
			total += u
			worst = min(worst, u)
		}
		mean := total / float64(len(uptimes))
		agg.MeanUptimePercent, agg.MinUptimePercent = &mean, &worst
	}
	return agg
}
