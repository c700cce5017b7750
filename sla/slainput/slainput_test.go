package slainput

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// referenceSLA computes the SLA the slow, obvious way: coverage from every
// hourly rollup from the hour holding From, each run of covered hours
// trimmed to its first check and to one interval after its last (found by
// scanning every raw sample), and the counted checks from
// the raw samples one by one — those of whole hours in the window unless
// the hour lies wholly inside excluded maintenance, and those of the
// partial edge hours unless the sample itself is in excluded maintenance.
func referenceSLA(t *testing.T, st tsdb.Reader, ti tenancy.TargetInfo, in inputs) Result {
	t.Helper()
	id := ti.Target.ID
	rollups, err := st.Rollups(context.Background(), id, in.q.From.UTC().Truncate(time.Hour), in.q.To)
	require.NoError(t, err)
	maint, err := maintenanceOf(in.q.Windows, id, ti.Target.Labels, in.q.From, in.q.To)
	require.NoError(t, err)
	var m []sla.Interval
	if in.q.ExcludeMaintenance {
		m = sla.Union(maint)
	}
	inMaint := func(from, to time.Time) bool { // [from, to) wholly inside m
		i := sort.Search(len(m), func(i int) bool { return m[i].Start.After(from) })
		return i > 0 && !m[i-1].End.Before(to)
	}
	sum := tsdb.Rollup{TargetID: id}
	page, err := st.Samples(context.Background(), tsdb.SampleQuery{TargetID: id, From: in.q.From, To: in.q.To, Limit: 10000})
	require.NoError(t, err)
	require.Empty(t, page.NextCursor)
	for _, r := range page.Samples {
		hour := r.Start.UTC().Truncate(time.Hour)
		whole := !hour.Before(in.q.From) && !hour.Add(time.Hour).After(in.q.To)
		if whole && inMaint(hour, hour.Add(time.Hour)) || !whole && inMaint(r.Start, r.Start.Add(time.Nanosecond)) {
			continue
		}
		var one tsdb.Rollup
		one.Add(r)
		sum.Merge(one)
	}
	all, err := st.Samples(context.Background(), tsdb.SampleQuery{TargetID: id, From: time.Unix(0, 0), To: in.q.To.Add(24 * time.Hour), Limit: 10000})
	require.NoError(t, err)
	require.Empty(t, all.NextCursor)
	iv := ti.Target.Interval
	if iv == 0 {
		iv = prober.DefaultInterval
	}
	data := sla.CoverageFromRollups(rollups)
	for i, run := range data {
		for _, r := range all.Samples {
			if !r.Start.Before(run.Start.Add(-iv)) {
				if r.Start.After(run.Start) {
					data[i].Start = r.Start
				}
				break
			}
		}
		var last time.Time
		for _, r := range all.Samples {
			if !r.Start.Before(run.End.Add(-time.Hour)) && r.Start.Before(run.End.Add(iv)) {
				last = r.Start
			}
		}
		if !last.IsZero() && last.Add(iv).Before(run.End) {
			data[i].End = last.Add(iv)
		}
	}
	input := sla.Input{
		From: in.q.From, To: in.q.To, Now: in.now,
		Maintenance: maint, ExcludeMaintenance: in.q.ExcludeMaintenance,
		Data: data, Counted: &sum, Accounting: in.q.Accounting, SLO: in.q.SLO,
	}
	if input.Data == nil {
		input.Data = []sla.Interval{}
	}
	for _, inc := range in.incidents[id] {
		input.Incidents = append(input.Incidents, sla.Interval{Start: inc.Start, End: inc.End})
	}
	return Result{Target: ti, Report: sla.Compute(input), Counted: sum}
}

// TestSLAFromTotalsMatchesRollups: the SLA computed from rollup totals and
// raw edge hours is the one computed sample by sample, for windows on and
// off the hour, with gaps, incidents and maintenance included or excluded,
// one target at a time and for many at once (and so the pooled aggregate).
func TestSLAFromTotalsMatchesRollups(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db"), PruneInterval: -1,
		RawRetention: 400 * 24 * time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	incidents := map[string][]alerting.Incident{}
	rd := New(st, fakeIncidents(incidents), nil) // compute is given its now

	rng := rand.New(rand.NewPCG(11, 12))
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	const days = 4
	var targets []tenancy.TargetInfo
	var batch []prober.Result
	for j := range 12 {
		id := fmt.Sprintf("t%02d", j)
		targets = append(targets, tenancy.TargetInfo{Key: id, Target: config.Target{Target: prober.Target{ID: id, Name: id,
			Labels: map[string]string{"team": []string{"a", "b"}[j%2]}}}})
		if j == 5 {
			continue // no data
		}
		for at := base; at.Before(base.Add(days * 24 * time.Hour)); at = at.Add(time.Duration(5+rng.IntN(20)) * time.Minute) {
			if j%3 == 0 && at.Hour()%7 == 2 { // gaps
				continue
			}
			r := prober.Result{TargetID: id, Start: at, Duration: time.Duration(rng.Int64N(int64(12 * time.Second))),
				Success: rng.IntN(9) != 0}
			batch = append(batch, r)
		}
		for range rng.IntN(4) {
			start := base.Add(time.Duration(rng.Int64N(int64(days * 24 * time.Hour))))
			incidents[id] = append(incidents[id], alerting.Incident{ID: id + start.String(), TargetID: id, Start: start,
				End: start.Add(time.Duration(rng.Int64N(int64(5 * time.Hour))))})
		}
	}
	require.NoError(t, st.WriteSamples(ctx, batch))

	windows := []alerting.Window{
		{Name: "a", Labels: map[string]string{"team": "a"}, Start: base.Add(26*time.Hour + 20*time.Minute), End: base.Add(31 * time.Hour)},
		{Name: "b", Targets: []string{"t01", "t03"}, Start: base.Add(50 * time.Hour), End: base.Add(53*time.Hour + 59*time.Minute)},
		{Name: "c", Targets: []string{"t04"}, Start: base.Add(-2 * time.Hour), End: base.Add(3*time.Hour + 30*time.Minute)},
		{Name: "d", Targets: []string{"t07"}, Start: base.Add(90 * time.Hour), End: base.Add(200 * time.Hour)},
	}
	for _, w := range [][2]time.Time{
		{base, base.Add(days * 24 * time.Hour)},
		{base.Add(-5 * time.Hour), base.Add(days*24*time.Hour + 5*time.Hour)},
		{base.Add(17*time.Minute + 3*time.Second), base.Add(75*time.Hour + 41*time.Minute)},
		{base.Add(2*time.Hour + 30*time.Minute), base.Add(2*time.Hour + 50*time.Minute)},
		{base.Add(10 * time.Hour), base.Add(10 * time.Hour)},
	} {
		for _, exclude := range []bool{false, true} {
			for _, acc := range []sla.Accounting{sla.AccountingTime, sla.AccountingChecks} {
				name := fmt.Sprintf("%s-%s/exclude=%v/%s", w[0].Format(time.RFC3339), w[1].Format(time.RFC3339), exclude, acc)
				in := inputs{q: Query{From: w[0], To: w[1], Accounting: acc, ExcludeMaintenance: exclude, SLO: 99.5, Windows: windows},
					now: base.Add(80 * time.Hour), incidents: incidents}
				var want []Result
				for _, ti := range targets {
					ref := referenceSLA(t, st, ti, in)
					got, err := rd.compute(ctx, ti, in)
					require.NoError(t, err)
					require.Equal(t, ref, got, "%s %s", name, ti.Target.ID)
					want = append(want, ref)
				}
				in.incidents = nil // read from the incident store
				got, err := rd.computeAll(ctx, targets, in)
				require.NoError(t, err)
				require.Equal(t, want, got, name)
			}
		}
	}
}

// fakeIncidents answers the incidents overlapping the query's window.
type fakeIncidents map[string][]alerting.Incident

func (f fakeIncidents) Incidents(_ context.Context, q registry.IncidentQuery) ([]alerting.Incident, error) {
	var out []alerting.Incident
	for id, incs := range f {
		if q.TargetID != "" && q.TargetID != id {
			continue
		}
		for _, inc := range incs {
			if inc.Start.Before(q.To) && (inc.End.IsZero() || inc.End.After(q.From)) { // zero End: open
				out = append(out, inc)
			}
		}
	}
	return out, nil
}
