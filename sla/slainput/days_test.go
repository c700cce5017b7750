package slainput

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// TestDaysMatchesTargetPerDay: with a check every minute (so the hours
// with checks are the seconds with data) each day of Days is the SLA that
// Target computes for that day with maintenance excluded, in every time
// figure; the last day stops at now.
func TestDaysMatchesTargetPerDay(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "s.db"), PruneInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	now := base.Add(4*24*time.Hour + 6*time.Hour)
	incidents := map[string][]alerting.Incident{}
	var targets []tenancy.TargetInfo
	var batch []prober.Result
	for j := range 3 {
		id := fmt.Sprintf("t%d", j)
		targets = append(targets, tenancy.TargetInfo{Key: id, Target: config.Target{Target: prober.Target{ID: id, Interval: time.Minute}}})
		for at := base; at.Before(now); at = at.Add(time.Minute) {
			if j == 2 && at.Day() == 2 { // a day without data
				continue
			}
			batch = append(batch, prober.Result{TargetID: id, Start: at, Duration: time.Millisecond, Success: true})
		}
	}
	require.NoError(t, st.WriteSamples(ctx, batch))
	incidents["t0"] = []alerting.Incident{
		{ID: "a", TargetID: "t0", Start: base.Add(23 * time.Hour), End: base.Add(25*time.Hour + 30*time.Minute)}, // across midnight
		{ID: "b", TargetID: "t0", Start: base.Add(4*24*time.Hour + 5*time.Hour)},                                 // still open
	}
	incidents["t1"] = []alerting.Incident{{ID: "c", TargetID: "t1", Start: base.Add(50 * time.Hour), End: base.Add(51 * time.Hour)}}
	windows := []alerting.Window{{Name: "m", Targets: []string{"t1"}, Start: base.Add(50*time.Hour + 30*time.Minute), End: base.Add(52 * time.Hour)}}
	for i := range windows {
		require.Empty(t, windows[i].Validate("w"))
	}
	rd := New(st, fakeIncidents(incidents), func() time.Time { return now })

	const n = 7
	days, err := rd.Days(ctx, targets, n, windows)
	require.NoError(t, err)
	require.Len(t, days, len(targets))
	first := now.Truncate(24*time.Hour).AddDate(0, 0, 1-n)
	for i, ti := range targets {
		require.Len(t, days[i], n)
		for d := range n {
			from := first.AddDate(0, 0, d)
			want, err := rd.Target(ctx, ti, Query{From: from, To: from.AddDate(0, 0, 1), ExcludeMaintenance: true, Windows: windows})
			require.NoError(t, err)
			got, w := days[i][d], want.Report
			name := fmt.Sprintf("%s %s", ti.Target.ID, from.Format("Jan 2"))
			require.Equal(t, w.Uptime, got.Uptime, name)
			require.Equal(t, []time.Duration{w.Up, w.Downtime, w.Unknown, w.Maintenance}, []time.Duration{got.Up, got.Downtime, got.Unknown, got.Maintenance}, name)
			require.Equal(t, w.Incidents, got.Incidents, name)
		}
	}
	// Spot checks: t0 lost an hour on May 1 and 1.5 h on May 2; t2 has no
	// data on May 2; t1's outage is half inside maintenance.
	require.Equal(t, time.Hour, days[0][n-5].Downtime)
	require.Equal(t, 90*time.Minute, days[0][n-4].Downtime)
	require.Equal(t, time.Hour, days[0][n-1].Downtime, "the open incident runs to now")
	require.False(t, days[2][n-4].HasData())
	require.Equal(t, 30*time.Minute, days[1][n-3].Downtime)
	require.Equal(t, 90*time.Minute, days[1][n-3].Maintenance)

	_, err = rd.Days(ctx, targets, 0, nil)
	require.Error(t, err)
}
