// Package slainput reads what an SLA needs of the stores and hands it to
// package sla, which does the arithmetic (and no I/O): a target's incidents
// (the registry), its hourly rollups (the sample store: checks, latency
// histograms and data coverage, the hours with checks trimmed to the second
// from raw samples where a run of them begins and ends) and the maintenance
// windows that cover it, expanded over the window. Every backend answers
// the same.
package slainput

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb"
)

// slaWorkers bounds how many targets' inputs are read at once for a
// selector or a report.
const slaWorkers = 8

// Samples is what the SLA reads of the sample store (tsdb.Reader has it).
type Samples interface {
	RollupTotals(ctx context.Context, ids []string, from, to time.Time) (map[string]tsdb.RollupTotal, error)
	Samples(ctx context.Context, q tsdb.SampleQuery) (tsdb.SamplePage, error)
}

// Incidents lists incidents (the registry does).
type Incidents interface {
	Incidents(ctx context.Context, q registry.IncidentQuery) ([]alerting.Incident, error)
}

// Reader computes targets' SLAs from the stores.
type Reader struct {
	samples   Samples
	incidents Incidents
	now       func() time.Time
}

// New returns a Reader over the sample store and the incidents, on the
// clock now.
func New(samples Samples, incidents Incidents, now func() time.Time) *Reader {
	return &Reader{samples: samples, incidents: incidents, now: now}
}

// Query is the window and the settings of an SLA.
type Query struct {
	From, To           time.Time
	ExcludeMaintenance bool
	Accounting         sla.Accounting
	SLO                float64
	// Windows are the tenant's maintenance windows (validated).
	Windows []alerting.Window
}

// WindowTooLongError: a maintenance window starts too often to expand over
// the SLA window.
type WindowTooLongError struct{ Window string }

func (e *WindowTooLongError) Error() string {
	return fmt.Sprintf("maintenance window %q fires too often to expand over this SLA window; ask for a shorter window", e.Window)
}

// Result is one target's computed report and the sum of the rollups it
// counted for checks and latency.
type Result struct {
	Target  tenancy.TargetInfo
	Report  sla.Report
	Counted tsdb.Rollup
}

// inputs are what compute needs besides the target.
type inputs struct {
	q   Query
	now time.Time
	// incidents, when set, holds every incident of the tenant in the
	// window by target (read once for many targets); nil reads per target.
	incidents map[string][]alerting.Incident
	// totals, when set, holds the rollup totals of every target over the
	// whole hours of the window, first those of the hour holding From when
	// it starts before From, and last those of the hour holding To when To
	// is not on the hour (read once for many targets); nil reads per target.
	totals, first, last map[string]tsdb.RollupTotal
}

// edges splits a window into its whole hours [start, end) and the partial
// hours at either end: [From, start) when From is not on the hour, and
// [end, To) when To is not (a window inside one hour is all first edge).
func edges(from, to time.Time) (start, end time.Time, firstEdge, lastEdge bool) {
	start = ceilHour(from)
	end = to.UTC().Truncate(time.Hour)
	firstEdge = start.After(from)
	lastEdge = end.Before(to) && !end.Before(start)
	if end.Before(start) {
		end = start
	}
	return start, end, firstEdge, lastEdge
}

// Target computes one target's SLA over q.
func (s *Reader) Target(ctx context.Context, ti tenancy.TargetInfo, q Query) (Result, error) {
	return s.compute(ctx, ti, inputs{q: q, now: s.now()})
}

// Targets computes the SLA of every target, in the order given.
func (s *Reader) Targets(ctx context.Context, targets []tenancy.TargetInfo, q Query) ([]Result, error) {
	return s.computeAll(ctx, targets, inputs{q: q, now: s.now()})
}

// compute reads one target's inputs and computes its SLA.
//
// sla.Compute needs of the samples only the hours with checks (coverage)
// and the checks of the window summed (checks, failures, latency
// histogram). The sample store sums whole hours (RollupTotals), so a 30-day
// report over 1 000 targets does not move 720 000 rows; the partial hours
// at the window's edges are summed from raw samples, so a window of twenty
// minutes counts exactly its own checks.
func (s *Reader) compute(ctx context.Context, ti tenancy.TargetInfo, in inputs) (Result, error) {
	id := ti.Key // the target's data belongs to its key
	incs, ok := in.incidents[id]
	if !ok && in.incidents == nil {
		var err error
		if incs, err = s.incidentsIn(ctx, id, in.q.From, in.q.To); err != nil {
			return Result{}, err
		}
	}
	maint, err := maintenanceOf(in.q.Windows, ti.Target.ID, ti.Target.Labels, in.q.From, in.q.To)
	if err != nil {
		return Result{}, err
	}
	data, counted, err := s.rollupInputs(ctx, id, in, maint)
	if err != nil {
		return Result{}, fmt.Errorf("rollups of %s: %w", id, err)
	}
	if data, err = s.trimCoverage(ctx, id, ti.Target.Interval, data); err != nil {
		return Result{}, fmt.Errorf("samples of %s: %w", id, err)
	}
	input := sla.Input{
		From: in.q.From, To: in.q.To, Now: in.now,
		Maintenance: maint, ExcludeMaintenance: in.q.ExcludeMaintenance,
		Data: data, Counted: &counted, Accounting: in.q.Accounting, SLO: in.q.SLO,
	}
	for _, inc := range incs {
		input.Incidents = append(input.Incidents, sla.Interval{Start: inc.Start, End: inc.End})
	}
	rep := sla.Compute(input)
	return Result{Target: ti, Report: rep, Counted: counted}, nil
}

// rollupInputs returns what sla.Compute needs of a target's samples: the
// hours with checks from the one holding From to the one holding To (the
// partial edge hours count as covered when they had checks), and the
// window's checks summed: whole hours from the rollups, less those wholly
// inside maintenance when it is excluded, and the partial edge hours from
// the raw samples inside the window (less those in maintenance). Edge hours
// older than raw retention count in full from their rollup.
func (s *Reader) rollupInputs(ctx context.Context, id string, in inputs, maint []sla.Interval) (
	data []sla.Interval, counted tsdb.Rollup, err error) {
	q := in.q
	start, end, firstEdge, lastEdge := edges(q.From, q.To)
	read := func(m map[string]tsdb.RollupTotal, from, to time.Time) (tsdb.RollupTotal, error) {
		if t, ok := m[id]; ok || m != nil {
			return t, nil
		}
		got, err := s.samples.RollupTotals(ctx, []string{id}, from, to)
		return got[id], err
	}
	counted = tsdb.Rollup{TargetID: id}
	data = []sla.Interval{} // non-nil: Compute must not derive coverage itself
	if firstEdge {
		hour, err := read(in.first, q.From.UTC().Truncate(time.Hour), start)
		if err != nil {
			return nil, counted, err
		}
		data = appendCovered(data, hour.Covered)
		edgeEnd := start
		if q.To.Before(edgeEnd) {
			edgeEnd = q.To
		}
		if err := s.countEdge(ctx, id, q.From, edgeEnd, hour, in, maint, &counted); err != nil {
			return nil, counted, err
		}
	}
	total, err := read(in.totals, start, end)
	if err != nil {
		return nil, counted, err
	}
	data = appendCovered(data, total.Covered)
	if lastEdge {
		hour, err := read(in.last, end, q.To)
		if err != nil {
			return nil, counted, err
		}
		data = appendCovered(data, hour.Covered)
		if err := s.countEdge(ctx, id, end, q.To, hour, in, maint, &counted); err != nil {
			return nil, counted, err
		}
	}
	excluded := []tsdb.HourRange(nil)
	if q.ExcludeMaintenance && total.Sum.Checks > 0 {
		excluded = maintenanceHours(maint, start, end)
	}
	if len(excluded) == 0 {
		counted.Merge(total.Sum)
		return data, counted, nil
	}
	// Sum the runs of hours between the excluded ones.
	at := start
	for i := 0; i <= len(excluded); i++ {
		stop := end
		if i < len(excluded) {
			stop = excluded[i].From
		}
		if at.Before(stop) {
			got, err := s.samples.RollupTotals(ctx, []string{id}, at, stop)
			if err != nil {
				return nil, counted, err
			}
			counted.Merge(got[id].Sum)
		}
		if i < len(excluded) {
			at = excluded[i].To
		}
	}
	return data, counted, nil
}

// trimCoverage narrows the hours with checks to the second at the edges of
// each run of them: data begins at the first check of a run's first hour
// and ends one interval after the last check of its last hour, so a window
// that starts (or a target that stops) mid-hour does not count the minutes
// without checks as covered (and so as up). A check within one interval
// across the run's edge (the hour beyond was not read) keeps the edge; an
// hour whose raw samples are gone (retention) stays covered in full.
func (s *Reader) trimCoverage(ctx context.Context, id string, interval time.Duration, data []sla.Interval) ([]sla.Interval, error) {
	if interval <= 0 {
		interval = prober.DefaultInterval
	}
	runs := sla.Union(data)
	for i := range runs {
		start, end := runs[i].Start, runs[i].End
		page, err := s.samples.Samples(ctx, tsdb.SampleQuery{TargetID: id, From: start.Add(-interval), To: start.Add(time.Hour), Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(page.Samples) > 0 && page.Samples[0].Start.After(start) {
			runs[i].Start = page.Samples[0].Start
		}
		var last time.Time
		q := tsdb.SampleQuery{TargetID: id, From: end.Add(-time.Hour), To: end.Add(interval), Limit: 10000} // the store's largest page
		for {
			page, err := s.samples.Samples(ctx, q)
			if err != nil {
				return nil, err
			}
			if n := len(page.Samples); n > 0 {
				last = page.Samples[n-1].Start
			}
			if page.NextCursor == "" || len(page.Samples) == 0 {
				break
			}
			q.Cursor = page.NextCursor
		}
		if !last.IsZero() && last.Add(interval).Before(end) {
			runs[i].End = last.Add(interval)
		}
	}
	return runs, nil
}

// countEdge adds the checks of a partial hour [from, to) from the raw
// samples. When the hour's rollup has checks but no raw sample is left
// (older than raw retention), the whole hour's rollup stands in.
func (s *Reader) countEdge(ctx context.Context, id string, from, to time.Time, hour tsdb.RollupTotal,
	in inputs, maint []sla.Interval, counted *tsdb.Rollup) error {
	if hour.Sum.Checks == 0 {
		return nil
	}
	var edge tsdb.Rollup
	q := tsdb.SampleQuery{TargetID: id, From: from, To: to}
	seen := 0
	for {
		page, err := s.samples.Samples(ctx, q)
		if err != nil {
			return err
		}
		for _, r := range page.Samples {
			seen++
			if in.q.ExcludeMaintenance && inAny(maint, r.Start) {
				continue
			}
			edge.Add(r)
		}
		if page.NextCursor == "" || len(page.Samples) == 0 {
			break
		}
		q.Cursor = page.NextCursor
	}
	if seen == 0 {
		// None in the edge: either the hour's checks fell outside it, or
		// its raw samples are gone (retention). Only the latter leaves the
		// whole hour without a raw sample.
		hourStart := from.UTC().Truncate(time.Hour)
		page, err := s.samples.Samples(ctx, tsdb.SampleQuery{TargetID: id, From: hourStart, To: hourStart.Add(time.Hour), Limit: 1})
		if err != nil {
			return err
		}
		if len(page.Samples) == 0 {
			edge = hour.Sum
		}
	}
	counted.Merge(edge)
	return nil
}

func inAny(ivs []sla.Interval, t time.Time) bool {
	for _, iv := range ivs {
		if !t.Before(iv.Start) && t.Before(iv.End) {
			return true
		}
	}
	return false
}

func appendCovered(data []sla.Interval, hours []tsdb.HourRange) []sla.Interval {
	for _, h := range hours {
		data = append(data, sla.Interval{Start: h.From, End: h.To})
	}
	return data
}

// ceilHour returns the first hour start at or after t.
func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// maintenanceHours returns the hours starting in [from, to) that lie
// wholly inside maintenance, as sorted runs.
func maintenanceHours(maint []sla.Interval, from, to time.Time) []tsdb.HourRange {
	var out []tsdb.HourRange
	for _, iv := range sla.Union(maint) {
		lo := ceilHour(iv.Start)
		if lo.Before(from) {
			lo = from
		}
		hi := iv.End.UTC().Truncate(time.Hour) // the hour ending at or before End
		if hi.After(to) {
			hi = to
		}
		if lo.Before(hi) {
			out = append(out, tsdb.HourRange{From: lo, To: ceilHour(hi)})
		}
	}
	return out
}

// computeAll computes the SLA of every target, slaWorkers at a time, in
// the order given. Incidents and rollup totals are read once for all
// targets.
func (s *Reader) computeAll(ctx context.Context, targets []tenancy.TargetInfo, in inputs) ([]Result, error) {
	if len(targets) > 1 {
		all, err := s.incidentsIn(ctx, "", in.q.From, in.q.To)
		if err != nil {
			return nil, err
		}
		in.incidents = make(map[string][]alerting.Incident, len(targets))
		ids := make([]string, 0, len(targets))
		for _, t := range targets {
			in.incidents[t.Key] = nil
			ids = append(ids, t.Key)
		}
		for _, inc := range all {
			if _, ok := in.incidents[inc.TargetID]; ok {
				in.incidents[inc.TargetID] = append(in.incidents[inc.TargetID], inc)
			}
		}
		start, end, firstEdge, lastEdge := edges(in.q.From, in.q.To)
		if in.totals, err = s.samples.RollupTotals(ctx, ids, start, end); err != nil {
			return nil, fmt.Errorf("rollups: %w", err)
		}
		if firstEdge {
			if in.first, err = s.samples.RollupTotals(ctx, ids, in.q.From.UTC().Truncate(time.Hour), start); err != nil {
				return nil, fmt.Errorf("rollups: %w", err)
			}
		}
		if lastEdge {
			if in.last, err = s.samples.RollupTotals(ctx, ids, end, in.q.To); err != nil {
				return nil, fmt.Errorf("rollups: %w", err)
			}
		}
	}
	out := make([]Result, len(targets))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for range min(slaWorkers, len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := s.compute(ctx, targets[i], in)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				out[i] = r
			}
		}()
	}
feed:
	for i := range targets {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// incidentsIn returns the incidents of targetID ("" for every target of
// the registry) overlapping [from, to), reading past the store's page
// limit. The store answers newest first; each further page asks for the
// incidents that started before the oldest one seen.
func (s *Reader) incidentsIn(ctx context.Context, targetID string, from, to time.Time) ([]alerting.Incident, error) {
	var out []alerting.Incident
	seen := map[string]bool{}
	upper := to
	for {
		page, err := s.incidents.Incidents(ctx, registry.IncidentQuery{
			TargetID: targetID, From: from, To: upper, Limit: registry.MaxLimit,
		})
		if err != nil {
			return nil, fmt.Errorf("incidents: %w", err)
		}
		added := 0
		oldest := upper
		for _, inc := range page {
			if inc.Start.Before(oldest) {
				oldest = inc.Start
			}
			if seen[inc.ID] {
				continue
			}
			seen[inc.ID] = true
			out = append(out, inc)
			added++
		}
		if len(page) < registry.MaxLimit || added == 0 {
			break
		}
		// Incidents starting at the oldest start may continue on the next
		// page: ask up to just after it; the ones already seen are skipped.
		upper = oldest.Add(time.Nanosecond)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// maintenanceOf expands the windows that cover the target over [from, to).
func maintenanceOf(windows []alerting.Window, id string, labels map[string]string, from, to time.Time) ([]sla.Interval, error) {
	var out []sla.Interval
	for i := range windows {
		w := &windows[i]
		if !w.Applies(id, labels) {
			continue
		}
		ps, err := w.Periods(from, to)
		if errors.Is(err, alerting.ErrTooManyStarts) {
			return nil, &WindowTooLongError{Window: w.Name}
		}
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			out = append(out, sla.Interval{Start: p.Start, End: p.End})
		}
	}
	return out, nil
}

// MaxLocationSamples bounds the raw samples LocationLatency reads.
const MaxLocationSamples = 1_000_000

// LocationLatency reads the target's raw samples in q's window (up to
// now; those in maintenance left out when q excludes it) and returns each
// probe location's latency percentiles, or nil when fewer than two
// locations have checks. Rollups do not keep the location, so only the
// part of the window within raw retention counts; truncated reports that
// MaxLocationSamples stopped the read before the window's end.
func (s *Reader) LocationLatency(ctx context.Context, ti tenancy.TargetInfo, q Query) (lat []sla.LocationLatency, truncated bool, err error) {
	to := q.To
	if now := s.now(); now.Before(to) {
		to = now
	}
	if !q.From.Before(to) {
		return nil, false, nil
	}
	var maint []sla.Interval
	if q.ExcludeMaintenance {
		if maint, err = maintenanceOf(q.Windows, ti.Target.ID, ti.Target.Labels, q.From, to); err != nil {
			return nil, false, err
		}
	}
	var by sla.ByLocation
	sq := tsdb.SampleQuery{TargetID: ti.Key, From: q.From, To: to, Limit: 10000}
	seen := 0
	for {
		page, err := s.samples.Samples(ctx, sq)
		if err != nil {
			return nil, false, fmt.Errorf("samples of %s: %w", ti.Key, err)
		}
		for _, r := range page.Samples {
			if q.ExcludeMaintenance && inAny(maint, r.Start) {
				continue
			}
			by.Add(r)
		}
		seen += len(page.Samples)
		if page.NextCursor == "" || len(page.Samples) == 0 {
			break
		}
		if seen >= MaxLocationSamples {
			truncated = true
			break
		}
		sq.Cursor = page.NextCursor
	}
	return by.Latencies(), truncated, nil
}
