package slainput

import (
	"context"
	"fmt"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/tenancy"
)

// MaxDays bounds Days: a status page shows 90.
const MaxDays = 400

// Days computes the SLA of each of n whole UTC days, the last one the day
// holding now (its future cut off), for every target: out[i][d] is
// targets[i]'s day d, oldest first. Maintenance time is left out of the
// uptime (a status page shows planned work apart). Coverage is to the hour
// (the days' rollups, not trimmed to the second from raw samples as Target
// does): cheap enough for a public page of many targets, read as one
// incident scan and one rollup read per day for all targets together.
func (s *Reader) Days(ctx context.Context, targets []tenancy.TargetInfo, n int, windows []alerting.Window) ([][]sla.Report, error) {
	if n < 1 || n > MaxDays {
		return nil, fmt.Errorf("days: %d days; want 1 to %d", n, MaxDays)
	}
	now := s.now()
	end := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	from := end.AddDate(0, 0, -n)
	out := make([][]sla.Report, len(targets))
	if len(targets) == 0 {
		return out, nil
	}
	all, err := s.incidentsIn(ctx, "", from, end)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(targets))
	incs := make(map[string][]sla.Interval, len(targets))
	maint := make([][]sla.Interval, len(targets))
	for i, t := range targets {
		ids[i] = t.Key
		incs[t.Key] = nil
		if maint[i], err = maintenanceOf(windows, t.Target.ID, t.Target.Labels, from, end); err != nil {
			return nil, err
		}
		out[i] = make([]sla.Report, n)
	}
	for _, inc := range all {
		if list, ok := incs[inc.TargetID]; ok {
			incs[inc.TargetID] = append(list, sla.Interval{Start: inc.Start, End: inc.End})
		}
	}
	for d := range n {
		dayFrom := from.AddDate(0, 0, d)
		dayTo := dayFrom.AddDate(0, 0, 1)
		if !dayFrom.Before(now) {
			for i := range targets {
				out[i][d] = sla.Compute(sla.Input{From: dayFrom, To: dayTo, Now: now, Data: []sla.Interval{}})
			}
			continue
		}
		totals, err := s.samples.RollupTotals(ctx, ids, dayFrom, dayTo)
		if err != nil {
			return nil, fmt.Errorf("rollups: %w", err)
		}
		for i, id := range ids {
			tot := totals[id]
			counted := tot.Sum
			out[i][d] = sla.Compute(sla.Input{
				From: dayFrom, To: dayTo, Now: now,
				Incidents: overlapping(incs[id], dayFrom, dayTo), Maintenance: overlapping(maint[i], dayFrom, dayTo), ExcludeMaintenance: true,
				Data: appendCovered([]sla.Interval{}, tot.Covered), Counted: &counted,
			})
		}
	}
	return out, nil
}

// overlapping are the intervals of ivs that overlap [from, to) (an open
// one, zero End, runs on): Compute clips them itself, but sorting and
// clipping 90 days' worth for each day would be most of a page's work.
func overlapping(ivs []sla.Interval, from, to time.Time) []sla.Interval {
	var out []sla.Interval
	for _, iv := range ivs {
		if iv.Start.Before(to) && (iv.End.IsZero() || iv.End.After(from)) {
			out = append(out, iv)
		}
	}
	return out
}
