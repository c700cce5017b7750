package sla

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/tsdb"
)

const (
	sec    = time.Second
	minute = time.Minute
	hour   = time.Hour
)

// day is the window of most golden cases: [2026-03-10 00:00Z,
// 2026-03-11 00:00Z), 24 h = 86 400 s.
var day = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

// at returns day + h hours + m minutes (h may be negative or ≥ 24).
func at(h, m int) time.Time {
	return day.Add(time.Duration(h)*hour + time.Duration(m)*minute)
}

// lat40 is the latency of every check in the golden cases: 40 ms, which
// falls in the (25 ms, 50 ms] bucket. Interpolation would give 37.5 ms,
// clamped to the observed [40 ms, 40 ms], so every percentile is 40 ms.
const lat40 = 40 * time.Millisecond

// hours returns one rollup per hour starting at from.Add(h) for every h in
// hs, each with 120 checks (one every 30 s) of 40 ms, none failed.
func hours(from time.Time, hs ...int) []tsdb.Rollup {
	out := make([]tsdb.Rollup, 0, len(hs))
	for _, h := range hs {
		r := tsdb.Rollup{TargetID: "t", Hour: from.Add(time.Duration(h) * hour),
			Checks: 120, LatencyMin: lat40, LatencyMax: lat40, LatencySum: 120 * lat40}
		r.Buckets[tsdb.BucketIndex(lat40)] = 120
		out = append(out, r)
	}
	return out
}

// span returns 0, 1, …, n−1.
func span(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// except returns span(n) without the listed hours.
func except(n int, skip ...int) []int {
	var out []int
	for i := range n {
		ok := true
		for _, s := range skip {
			ok = ok && s != i
		}
		if ok {
			out = append(out, i)
		}
	}
	return out
}

// fail sets the failures of the rollup at hour h (index into rs).
func fail(rs []tsdb.Rollup, h int, n int64) []tsdb.Rollup {
	rs[h].Failures = n
	return rs
}

func pct(num, den float64) *float64 {
	v := num / den * 100
	return &v
}

// withChecks fills the check counts and percentiles of a golden report.
func withChecks(r Report, checks, failed int64) Report {
	r.Checks, r.FailedChecks = checks, failed
	if checks > 0 {
		r.LatencyP50, r.LatencyP95, r.LatencyP99 = lat40, lat40, lat40
	}
	return r
}

func requireReport(t *testing.T, want, got Report) {
	t.Helper()
	if want.Uptime == nil {
		require.Nil(t, got.Uptime, "uptime")
	} else {
		require.NotNil(t, got.Uptime, "uptime")
		require.InDelta(t, *want.Uptime, *got.Uptime, 1e-9, "uptime")
	}
	require.InDelta(t, want.Coverage, got.Coverage, 1e-9, "coverage")
	if want.SLO == nil {
		require.Nil(t, got.SLO, "slo")
	} else {
		require.NotNil(t, got.SLO, "slo")
		w, g := *want.SLO, *got.SLO
		require.InDelta(t, w.BudgetChecks, g.BudgetChecks, 1e-9, "budget checks")
		require.InDelta(t, w.UsedChecks, g.UsedChecks, 1e-9, "used checks")
		require.InDelta(t, w.LeftChecks, g.LeftChecks, 1e-9, "left checks")
		w.BudgetChecks, w.UsedChecks, w.LeftChecks = 0, 0, 0
		g.BudgetChecks, g.UsedChecks, g.LeftChecks = 0, 0, 0
		require.Equal(t, w, g, "slo")
	}
	want.Uptime, got.Uptime = nil, nil
	want.Coverage, got.Coverage = 0, 0
	want.SLO, got.SLO = nil, nil
	require.Equal(t, want, got)
}

// Golden cases. Unless a case says otherwise the window is day (24 h =
// 86 400 s), Now is zero (the whole window has elapsed), and every hour has
// a rollup of 120 checks, so coverage is 100 %, Unknown is 0 and there are
// 24 × 120 = 2 880 checks.
func TestComputeGolden(t *testing.T) {
	full := func() []tsdb.Rollup { return hours(day, span(24)...) }
	base := func(r Report) Report {
		r.From, r.To = day, at(24, 0)
		if r.Accounting == "" {
			r.Accounting = AccountingTime
		}
		if r.Elapsed == 0 && r.Future == 0 {
			r.Elapsed = 24 * hour
		}
		return r
	}
	tests := []struct {
		name string
		in   Input
		want Report
	}{
		{
			// Incident [03-09 23:30, 03-10 00:45) crosses the start; only
			// [00:00, 00:45) = 45 min = 2 700 s is inside.
			// Up = 86 400 − 2 700 = 83 700 s = 23 h 15 min.
			// Uptime = 83 700 / 86 400 = 96.875 %.
			// One outage: longest = MTTR = 45 min; MTBF = Up / 1 = 23 h 15 min.
			name: "incident crossing the window start",
			in: Input{From: day, To: at(24, 0), Rollups: full(),
				Incidents: []Interval{{at(-1, 30), at(0, 45)}}},
			want: withChecks(base(Report{
				Uptime: pct(83700, 86400), Up: 23*hour + 15*minute, Downtime: 45 * minute,
				Coverage: 100, Incidents: 1, LongestOutage: 45 * minute, MTTR: 45 * minute,
				MTBF: 23*hour + 15*minute,
			}), 2880, 0),
		},
		{
			// Incident [23:50, 03-11 00:20) crosses the end; inside:
			// [23:50, 24:00) = 10 min = 600 s. Up = 85 800 s = 23 h 50 min.
			// Uptime = 85 800 / 86 400 = 99.3055… % (= 1 − 1/144).
			name: "incident crossing the window end",
			in: Input{From: day, To: at(24, 0), Rollups: full(),
				Incidents: []Interval{{at(23, 50), at(24, 20)}}},
			want: withChecks(base(Report{
				Uptime: pct(85800, 86400), Up: 23*hour + 50*minute, Downtime: 10 * minute,
				Coverage: 100, Incidents: 1, LongestOutage: 10 * minute, MTTR: 10 * minute,
				MTBF: 23*hour + 50*minute,
			}), 2880, 0),
		},
		{
			// Now = 12:00: the elapsed window is [00:00, 12:00) = 12 h and
			// [12:00, 24:00) = 12 h is Future. Rollups for hours 0–11
			// (12 × 120 = 1 440 checks; hour 11 failed all 120). The open
			// incident [11:00, —) is clipped at Now: 1 h.
			// Coverage = 12 h / 12 h = 100 %; Unknown 0; Up = 11 h.
			// Uptime = 11 / 12 = 91.666… %. MTBF = 11 h / 1.
			name: "open incident clipped at Now",
			in: Input{From: day, To: at(24, 0), Now: at(12, 0),
				Rollups:   fail(hours(day, span(12)...), 11, 120),
				Incidents: []Interval{{Start: at(11, 0)}}},
			want: withChecks(base(Report{
				Elapsed: 12 * hour, Future: 12 * hour,
				Uptime: pct(11, 12), Up: 11 * hour, Downtime: hour,
				Coverage: 100, Incidents: 1, LongestOutage: hour, MTTR: hour, MTBF: 11 * hour,
			}), 1440, 120),
		},
		{
			// Now zero: the open incident [22:00, —) runs to To: 2 h.
			// Up = 22 h; Uptime = 22 / 24 = 91.666… %.
			name: "open incident clipped at To without Now",
			in: Input{From: day, To: at(24, 0), Rollups: full(),
				Incidents: []Interval{{Start: at(22, 0)}}},
			want: withChecks(base(Report{
				Uptime: pct(22, 24), Up: 22 * hour, Downtime: 2 * hour,
				Coverage: 100, Incidents: 1, LongestOutage: 2 * hour, MTTR: 2 * hour, MTBF: 22 * hour,
			}), 2880, 0),
		},
		{
			// Now after To: nothing is in the future; same as above.
			name: "open incident with Now after To",
			in: Input{From: day, To: at(24, 0), Now: at(30, 0), Rollups: full(),
				Incidents: []Interval{{Start: at(22, 0)}}},
			want: withChecks(base(Report{
				Uptime: pct(22, 24), Up: 22 * hour, Downtime: 2 * hour,
				Coverage: 100, Incidents: 1, LongestOutage: 2 * hour, MTTR: 2 * hour, MTBF: 22 * hour,
			}), 2880, 0),
		},
		{
			// Incident [02:00, 04:00) = 2 h, maintenance [03:00, 05:00) = 2 h,
			// not excluded: maintenance is only reported. Downtime 2 h,
			// Up = 22 h, Uptime = 22 / 24 = 91.666… %. All 2 880 checks count.
			name: "overlapping maintenance, not excluded",
			in: Input{From: day, To: at(24, 0), Rollups: full(),
				Incidents:   []Interval{{at(2, 0), at(4, 0)}},
				Maintenance: []Interval{{at(3, 0), at(5, 0)}}},
			want: withChecks(base(Report{
				Uptime: pct(22, 24), Up: 22 * hour, Downtime: 2 * hour, Maintenance: 2 * hour,
				Coverage: 100, Incidents: 1, LongestOutage: 2 * hour, MTTR: 2 * hour, MTBF: 22 * hour,
			}), 2880, 0),
		},
		{
			// Same, excluded. Downtime = [02:00, 04:00) \ [03:00, 05:00) =
			// [02:00, 03:00) = 1 h. Denominator = 24 h − 2 h maintenance = 22 h;
			// Up = 22 h − 1 h = 21 h. Uptime = 21 / 22 = 95.4545… %.
			// Window = Up 21 + Down 1 + Maintenance 2 + Unknown 0 = 24 h.
			// Hours 03 and 04 lie wholly inside maintenance: their 240
			// checks are left out, 2 880 − 240 = 2 640.
			name: "overlapping maintenance, excluded",
			in: Input{From: day, To: at(24, 0), Rollups: full(), ExcludeMaintenance: true,
				Incidents:   []Interval{{at(2, 0), at(4, 0)}},
				Maintenance: []Interval{{at(3, 0), at(5, 0)}}},
			want: withChecks(base(Report{
				Uptime: pct(21, 22), Up: 21 * hour, Downtime: hour, Maintenance: 2 * hour,
				Coverage: 100, Incidents: 1, LongestOutage: hour, MTTR: hour, MTBF: 21 * hour,
			}), 2640, 0),
		},
		{
			// Incident [03:15, 03:45) wholly inside maintenance [03:00, 05:00),
			// excluded: no downtime and no outage counted. Up = 24 − 2 = 22 h,
			// Uptime 100 %. Checks 2 640 as above.
			name: "incident inside maintenance, excluded",
			in: Input{From: day, To: at(24, 0), Rollups: full(), ExcludeMaintenance: true,
				Incidents:   []Interval{{at(3, 15), at(3, 45)}},
				Maintenance: []Interval{{at(3, 0), at(5, 0)}}},
			want: withChecks(base(Report{
				Uptime: pct(1, 1), Up: 22 * hour, Maintenance: 2 * hour, Coverage: 100,
			}), 2640, 0),
		},
		{
			// No rollups for hours 06, 07, 08: data C = [00, 06) ∪ [09, 24) =
			// 21 h; coverage 21 / 24 = 87.5 %. Incident D = [07:30, 09:30) = 2 h,
			// half in the gap: its time counts as downtime, not unknown.
			// C ∪ D = [00, 06) ∪ [07:30, 24) = 6 h + 16.5 h = 22.5 h, so
			// Unknown = [06:00, 07:30) = 1.5 h = 5 400 s.
			// Up = 22.5 h − 2 h = 20.5 h = 73 800 s.
			// Uptime = 20.5 / 22.5 = 91.111… %. MTBF = 20 h 30 min.
			// Checks: 21 × 120 = 2 520.
			name: "gap with no data under an incident",
			in: Input{From: day, To: at(24, 0), Rollups: hours(day, except(24, 6, 7, 8)...),
				Incidents: []Interval{{at(7, 30), at(9, 30)}}},
			want: withChecks(base(Report{
				Uptime: pct(20.5, 22.5), Up: 20*hour + 30*minute, Downtime: 2 * hour,
				Unknown: 90 * minute, Coverage: 87.5, Incidents: 1, LongestOutage: 2 * hour,
				MTTR: 2 * hour, MTBF: 20*hour + 30*minute,
			}), 2520, 0),
		},
		{
			// Gap [06:00, 09:00), maintenance [05:00, 07:00) excluded, no
			// incident. Unknown = gap \ maintenance = [07:00, 09:00) = 2 h
			// (the hour [06, 07) is maintenance, not counted twice).
			// Up = 24 − 2 (maintenance) − 2 (unknown) = 20 h; Uptime 100 %.
			// Coverage 21 / 24 = 87.5 %. Checks: hour 05 is wholly in
			// maintenance (hour 06 has no rollup): 21 − 1 = 20 rollups = 2 400.
			name: "gap overlapping maintenance, excluded",
			in: Input{From: day, To: at(24, 0), Rollups: hours(day, except(24, 6, 7, 8)...),
				ExcludeMaintenance: true, Maintenance: []Interval{{at(5, 0), at(7, 0)}}},
			want: withChecks(base(Report{
				Uptime: pct(1, 1), Up: 20 * hour, Unknown: 2 * hour, Maintenance: 2 * hour,
				Coverage: 87.5,
			}), 2400, 0),
		},
		{
			// No rollups, no incidents: nothing is known. Uptime undefined,
			// Unknown = the whole 24 h, Coverage 0, no checks, percentiles 0.
			// SLO 99.9: budget 0.1 % of a zero denominator = 0; not met
			// (there is nothing to meet it with).
			name: "window with no checks",
			in:   Input{From: day, To: at(24, 0), SLO: 99.9},
			want: base(Report{Unknown: 24 * hour, SLO: &SLOStatus{Target: 99.9}}),
		},
		{
			// No rollups, but an incident open since before the window:
			// the incident is evidence, so the whole 24 h is downtime, not
			// unknown. Uptime = 0 / 24 = 0 %; Coverage still 0.
			// MTBF = Up 0 / 1 = 0.
			name: "no checks under an open incident",
			in: Input{From: day, To: at(24, 0),
				Incidents: []Interval{{Start: at(-4, 0)}}},
			want: base(Report{
				Uptime: pct(0, 1), Downtime: 24 * hour, Incidents: 1,
				LongestOutage: 24 * hour, MTTR: 24 * hour,
			}),
		},
		{
			// Incidents [02:00, 03:00) and [02:30, 04:00) overlap and
			// [04:00, 04:10) touches the second: one outage [02:00, 04:10) =
			// 2 h 10 min = 7 800 s. [10:00, 10:30) = 1 800 s is another.
			// Downtime = 9 600 s = 2 h 40 min (not 3 h 40 min); Incidents 2;
			// longest 2 h 10 min; MTTR = 9 600 / 2 = 4 800 s = 1 h 20 min.
			// Up = 86 400 − 9 600 = 76 800 s; MTBF = 38 400 s = 10 h 40 min.
			// Uptime = 76 800 / 86 400 = 88.888… %.
			name: "overlapping incidents merged",
			in: Input{From: day, To: at(24, 0), Rollups: full(),
				Incidents: []Interval{
					{at(10, 0), at(10, 30)}, {at(2, 30), at(4, 0)},
					{at(2, 0), at(3, 0)}, {at(4, 0), at(4, 10)},
				}},
			want: withChecks(base(Report{
				Uptime: pct(76800, 86400), Up: 21*hour + 20*minute, Downtime: 2*hour + 40*minute,
				Coverage: 100, Incidents: 2, LongestOutage: 2*hour + 10*minute,
				MTTR: hour + 20*minute, MTBF: 10*hour + 40*minute,
			}), 2880, 0),
		},
		{
			// Checks accounting: hour 05 had 12 failed checks, hour 17 had 6,
			// below the DOWN threshold, so no incident: 18 failed of 2 880.
			// Uptime = 1 − 18 / 2 880 = 2 862 / 2 880 = 99.375 %.
			// SLO 99.5: budget = 0.5 % × 2 880 = 14.4 checks; used 18;
			// left = 14.4 − 18 = −3.6; not met (99.375 < 99.5).
			// The time figures are still reported: Up 24 h, Downtime 0.
			name: "checks accounting",
			in: Input{From: day, To: at(24, 0), Accounting: AccountingChecks, SLO: 99.5,
				Rollups: fail(fail(full(), 5, 12), 17, 6)},
			want: withChecks(base(Report{
				Accounting: AccountingChecks,
				Uptime:     pct(2862, 2880), Up: 24 * hour, Coverage: 100,
				SLO: &SLOStatus{Target: 99.5, BudgetChecks: 14.4, UsedChecks: 18, LeftChecks: -3.6},
			}), 2880, 18),
		},
		{
			// Checks accounting over a window with no checks: undefined.
			name: "checks accounting without checks",
			in:   Input{From: day, To: at(24, 0), Accounting: AccountingChecks},
			want: base(Report{Accounting: AccountingChecks, Unknown: 24 * hour}),
		},
		{
			// Now before From: the whole window is in the future; nothing
			// elapsed, nothing known, coverage 0.
			name: "window entirely in the future",
			in:   Input{From: day, To: at(24, 0), Now: at(-1, 0)},
			want: base(Report{Future: 24 * hour}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.in)
			if tt.want.Accounting == "" {
				tt.want.Accounting = AccountingTime
			}
			requireReport(t, tt.want, got)
		})
	}
}

// October 2026 in Europe/Berlin: 1 Oct 00:00 CEST = 30 Sep 22:00Z to
// 1 Nov 00:00 CET = 31 Oct 23:00Z, 31 days + the hour repeated when DST
// ends on 25 Oct = 745 h. One rollup per hour: 745 × 120 = 89 400 checks.
// Incident from 25 Oct 00:30 CEST (24 Oct 22:30Z) to 25 Oct 02:30 CET
// (01:30Z): the wall clock says 2 h, but 02:00–03:00 happens twice, so it
// lasted 3 h = 10 800 s.
// Up = 742 h; Uptime = 742 / 745 = 99.5973… %.
// SLO 99.9: budget = 0.1 % × 745 h = 2 682 s = 44 min 42 s; used 3 h =
// 10 800 s; left = 2 682 − 10 800 = −8 118 s = −2 h 15 min 18 s; not met.
func TestComputeBerlinOctober(t *testing.T) {
	from, to, err := MonthWindow("2026-10", "Europe/Berlin")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 9, 30, 22, 0, 0, 0, time.UTC), from.UTC())
	require.Equal(t, time.Date(2026, 10, 31, 23, 0, 0, 0, time.UTC), to.UTC())
	require.Equal(t, 745*hour, to.Sub(from))

	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	start := time.Date(2026, 10, 25, 0, 30, 0, 0, berlin)
	// 02:30 happens twice that night; time.Date does not promise which,
	// so name the second (CET) one by its UTC instant.
	end := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)
	require.Equal(t, "2026-10-24T22:30:00Z", start.UTC().Format(time.RFC3339))
	require.Equal(t, "2026-10-25 02:30 CET", end.In(berlin).Format("2006-01-02 15:04 MST"))

	got := Compute(Input{From: from, To: to, Rollups: hours(from, span(745)...),
		Incidents: []Interval{{start, end}}, SLO: 99.9})
	requireReport(t, withChecks(Report{
		Accounting: AccountingTime, From: from, To: to, Elapsed: 745 * hour,
		Uptime: pct(742, 745), Up: 742 * hour, Downtime: 3 * hour, Coverage: 100,
		Incidents: 1, LongestOutage: 3 * hour, MTTR: 3 * hour, MTBF: 742 * hour,
		SLO: &SLOStatus{Target: 99.9, Budget: 44*minute + 42*sec, Used: 3 * hour,
			Left: -(2*hour + 15*minute + 18*sec)},
	}, 89400, 0), got)
}

// April 2026 (UTC) is 30 days = 720 h = 2 592 000 s, fully covered.
// One 20-minute incident. SLO 99.9: budget = 0.1 % × 2 592 000 s =
// 2 592 s = 43 min 12 s; used 1 200 s; left 1 392 s = 23 min 12 s; met.
// Uptime = 2 590 800 / 2 592 000 = 99.9537… %.
// SLO 99.95: budget 1 296 s = 21 min 36 s; left 96 s; met.
// SLO 99.99: budget 259.2 s = 4 min 19.2 s; left −940.8 s; not met.
func TestComputeSLOBudgetLeft(t *testing.T) {
	from, to, err := MonthWindow("2026-04", "")
	require.NoError(t, err)
	require.Equal(t, 720*hour, to.Sub(from))
	incident := Interval{from.Add(100 * hour), from.Add(100*hour + 20*minute)}
	for _, tc := range []struct {
		slo          float64
		budget, left time.Duration
		met          bool
	}{
		{99.9, 43*minute + 12*sec, 23*minute + 12*sec, true},
		{99.95, 21*minute + 36*sec, 96 * sec, true},
		{99.99, 4*minute + 19200*time.Millisecond, -940800 * time.Millisecond, false},
	} {
		got := Compute(Input{From: from, To: to, Rollups: hours(from, span(720)...),
			Incidents: []Interval{incident}, SLO: tc.slo})
		require.NotNil(t, got.Uptime)
		require.InDelta(t, 2590800.0/2592000*100, *got.Uptime, 1e-9)
		require.Equal(t, &SLOStatus{Target: tc.slo, Met: tc.met, Budget: tc.budget,
			Used: 20 * minute, Left: tc.left}, got.SLO, "slo %v", tc.slo)
	}
}

func TestMonthWindow(t *testing.T) {
	for _, tc := range []struct {
		month, tz string
		from      string // UTC
		length    time.Duration
	}{
		{"2026-10", "Europe/Berlin", "2026-09-30T22:00:00Z", 745 * hour}, // DST ends 25 Oct
		{"2026-03", "Europe/Berlin", "2026-02-28T23:00:00Z", 743 * hour}, // DST starts 29 Mar
		{"2026-07", "Europe/Berlin", "2026-06-30T22:00:00Z", 744 * hour},
		{"2026-02", "", "2026-02-01T00:00:00Z", 672 * hour},
		{"2024-02", "UTC", "2024-02-01T00:00:00Z", 696 * hour}, // leap year
		{"2026-12", "America/New_York", "2026-12-01T05:00:00Z", 744 * hour},
		{"2026-10", "Asia/Kolkata", "2026-09-30T18:30:00Z", 744 * hour},
	} {
		from, to, err := MonthWindow(tc.month, tc.tz)
		require.NoError(t, err, tc.month+" "+tc.tz)
		require.Equal(t, tc.from, from.UTC().Format(time.RFC3339), tc.month+" "+tc.tz)
		require.Equal(t, tc.length, to.Sub(from), tc.month+" "+tc.tz)
		require.Equal(t, 1, from.Day())
		require.Equal(t, 0, from.Hour())
	}
	for _, bad := range [][2]string{
		{"2026-13", ""}, {"2026-1", ""}, {"2026-10-01", ""}, {"", ""},
		{"2026-10", "Mars/Olympus"}, {"2026-10", "Local"},
	} {
		_, _, err := MonthWindow(bad[0], bad[1])
		require.Error(t, err, bad)
	}
}

// A known histogram of 100 checks, split over two hours:
//
//	bucket      (25,50] (50,100] (100,250] (250,500] (500,1000]
//	hour 1          20       30        6         0          0
//	hour 2          20       20        0         3          1
//	summed          40       50        6         3          1   cumulative 40 90 96 99 100
//
// p50: rank 0.50 × 100 = 50 → bucket (50,100] (cumulative 40 → 90):
// 50 + 50 × (50 − 40) / 50 = 60 ms.
// p95: rank 95 → bucket (100,250] (90 → 96): 100 + 150 × (95 − 90) / 6 = 225 ms.
// p99: rank 99 → bucket (250,500] (96 → 99): 250 + 250 × (99 − 96) / 3 = 500 ms.
func TestPercentilesKnownHistogram(t *testing.T) {
	r1 := tsdb.Rollup{Hour: at(0, 0), Checks: 56, LatencyMin: 30 * time.Millisecond, LatencyMax: 240 * time.Millisecond}
	r1.Buckets[3], r1.Buckets[4], r1.Buckets[5] = 20, 30, 6
	r2 := tsdb.Rollup{Hour: at(1, 0), Checks: 44, LatencyMin: 26 * time.Millisecond, LatencyMax: 900 * time.Millisecond}
	r2.Buckets[3], r2.Buckets[4], r2.Buckets[6], r2.Buckets[7] = 20, 20, 3, 1

	got := Compute(Input{From: at(0, 0), To: at(2, 0), Rollups: []tsdb.Rollup{r1, r2}})
	require.Equal(t, int64(100), got.Checks)
	require.Equal(t, 60*time.Millisecond, got.LatencyP50)
	require.Equal(t, 225*time.Millisecond, got.LatencyP95)
	require.Equal(t, 500*time.Millisecond, got.LatencyP99)
}

func TestQuantileEdges(t *testing.T) {
	// All 10 checks took 120 ms: bucket (100, 250]. Interpolation gives
	// 100 + 150 × 0.5 = 175 ms for p50, clamped to the observed max 120 ms.
	r := tsdb.Rollup{Checks: 10, LatencyMin: 120 * time.Millisecond, LatencyMax: 120 * time.Millisecond}
	r.Buckets[tsdb.BucketIndex(120*time.Millisecond)] = 10
	require.Equal(t, 120*time.Millisecond, Quantile(r, 0.5))

	// 10 checks between 31 s and 41 s, all in the +Inf bucket, which spans
	// (30 s, max 41 s]: p50 = 30 + 11 × 0.5 = 35.5 s; p99 = 30 + 11 × 0.99
	// = 40.89 s; p0 = 30 s, clamped to min 31 s.
	r = tsdb.Rollup{Checks: 10, LatencyMin: 31 * sec, LatencyMax: 41 * sec}
	r.Buckets[tsdb.NumBuckets-1] = 10
	require.Equal(t, 35500*time.Millisecond, Quantile(r, 0.5))
	require.Equal(t, 40890*time.Millisecond, Quantile(r, 0.99))
	require.Equal(t, 31*sec, Quantile(r, 0))

	// 4 checks: 1 in (0, 5 ms], 3 in (5, 10 ms]; min 2 ms, max 9 ms.
	// p25: rank 1 → first bucket, 0 + 5 × 1/1 = 5 ms. p50: rank 2 →
	// second bucket, 5 + 5 × (2 − 1) / 3 = 6.666 667 ms (rounded to the ns).
	r = tsdb.Rollup{Checks: 4, LatencyMin: 2 * time.Millisecond, LatencyMax: 9 * time.Millisecond}
	r.Buckets[0], r.Buckets[1] = 1, 3
	require.Equal(t, 5*time.Millisecond, Quantile(r, 0.25))
	require.Equal(t, 6666667*time.Nanosecond, Quantile(r, 0.5))

	require.Zero(t, Quantile(tsdb.Rollup{}, 0.5))
}

func TestMerge(t *testing.T) {
	a := hours(at(0, 0), 0, 1)
	b := hours(at(0, 0), 1, 2)
	b[0].TargetID, b[1].TargetID = "u", "u"
	b[0].Failures = 7
	b[0].LatencyMin, b[0].LatencyMax = 10*time.Millisecond, 90*time.Millisecond
	m := Merge(a, b)
	require.Len(t, m, 3)
	for i, h := range []int{0, 1, 2} {
		require.Equal(t, at(h, 0), m[i].Hour)
		require.Equal(t, "", m[i].TargetID)
	}
	require.Equal(t, int64(240), m[1].Checks)
	require.Equal(t, int64(7), m[1].Failures)
	require.Equal(t, 10*time.Millisecond, m[1].LatencyMin)
	require.Equal(t, 90*time.Millisecond, m[1].LatencyMax)
	require.Equal(t, int64(240), m[1].Buckets[tsdb.BucketIndex(lat40)])
	require.Equal(t, 240*lat40, m[1].LatencySum)
	require.Equal(t, "t", Merge(a)[0].TargetID)
	// Inputs untouched.
	require.Equal(t, int64(120), a[1].Checks)
}

func TestCoverage(t *testing.T) {
	// Samples at 0, 30, 60 and 150 s, each vouching for 60 s:
	// [0, 60) ∪ [30, 90) ∪ [60, 120) ∪ [150, 210) = [0, 120) ∪ [150, 210).
	s := func(n int) time.Time { return day.Add(time.Duration(n) * sec) }
	got := CoverageFromSamples([]time.Time{s(150), s(0), s(60), s(30)}, 60*sec)
	require.Equal(t, []Interval{{s(0), s(120)}, {s(150), s(210)}}, got)

	// Rollups for hours 0, 1, 3 (and an empty hour 4): [0, 2 h) ∪ [3 h, 4 h).
	rs := hours(day, 0, 1, 3, 4)
	rs[3].Checks = 0
	require.Equal(t, []Interval{{at(0, 0), at(2, 0)}, {at(3, 0), at(4, 0)}}, CoverageFromRollups(rs))

	// Explicit Data overrides rollups; a non-hour-aligned window still
	// gets coverage from the hour that started before it.
	got2 := Compute(Input{From: at(0, 30), To: at(2, 0), Rollups: hours(day, 0, 1)})
	require.Equal(t, 100.0, got2.Coverage)
	require.Equal(t, int64(120), got2.Checks) // only hour 1 starts inside the window
	got3 := Compute(Input{From: at(0, 0), To: at(2, 0), Rollups: hours(day, 0, 1),
		Data: []Interval{{at(0, 0), at(0, 30)}}})
	require.Equal(t, 25.0, got3.Coverage)
	require.Equal(t, 90*minute, got3.Unknown)
	got4 := Compute(Input{From: at(0, 0), To: at(2, 0), Rollups: hours(day, 0, 1), Data: []Interval{}})
	require.Nil(t, got4.Uptime)
}

func TestParseAccounting(t *testing.T) {
	for in, want := range map[string]Accounting{"": AccountingTime, "time": AccountingTime, "checks": AccountingChecks} {
		got, err := ParseAccounting(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := ParseAccounting("samples")
	require.Error(t, err)
}

func TestIntervalAlgebra(t *testing.T) {
	iv := func(a, b int) Interval { return Interval{at(a, 0), at(b, 0)} }
	require.Equal(t, []Interval{iv(0, 3), iv(4, 5)}, Union([]Interval{iv(2, 3), iv(0, 1)}, []Interval{iv(1, 2), iv(4, 5), iv(6, 6)}))
	require.Equal(t, []Interval{iv(0, 1), iv(2, 3), iv(5, 6)},
		subtract([]Interval{iv(0, 3), iv(4, 6)}, []Interval{iv(1, 2), iv(3, 5)}))
	require.Equal(t, []Interval{}, subtract([]Interval{iv(1, 2)}, []Interval{iv(0, 3)}))
	require.Equal(t, hour, iv(1, 2).Duration())
	require.Zero(t, iv(2, 1).Duration())
}

// TestComputeAgainstMinuteGrid checks Compute on random inputs whose edges
// all fall on whole minutes against a brute-force classification of every
// minute of the elapsed window.
func TestComputeAgainstMinuteGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := func(n int) time.Time { return day.Add(time.Duration(n) * minute) }
	randIvs := func(n, span, maxLen int, open bool) []Interval {
		out := make([]Interval, rng.IntN(n+1))
		for i := range out {
			s := rng.IntN(span+120) - 60
			out[i] = Interval{m(s), m(s + 1 + rng.IntN(maxLen))}
			if open && rng.IntN(8) == 0 {
				out[i].End = time.Time{}
			}
		}
		return out
	}
	for iter := range 500 {
		span := 60 + rng.IntN(600)
		in := Input{
			From: m(0), To: m(span),
			Incidents:          randIvs(6, span, 90, true),
			Maintenance:        randIvs(3, span, 120, false),
			Data:               randIvs(8, span, 200, false),
			ExcludeMaintenance: rng.IntN(2) == 0,
		}
		if rng.IntN(3) == 0 {
			in.Now = m(rng.IntN(span+60) - 30)
		}
		got := Compute(in)

		end := span
		if !in.Now.IsZero() {
			end = min(span, max(0, int(in.Now.Sub(day)/minute)))
		}
		has := func(ivs []Interval, x int) bool {
			for _, iv := range ivs {
				e := iv.End
				if e.IsZero() {
					e = m(end)
				}
				if !m(x).Before(iv.Start) && m(x).Before(e) {
					return true
				}
			}
			return false
		}
		var up, down, unknown, maint, covered, incidents, longest, run int
		inRun := false
		closeRun := func() {
			if inRun && run > 0 {
				incidents++
				longest = max(longest, run)
			}
			inRun, run = false, 0
		}
		for x := range end {
			d, mt, c := has(in.Incidents, x), has(in.Maintenance, x), has(in.Data, x)
			if c {
				covered++
			}
			if mt {
				maint++
			}
			if !d {
				closeRun()
			}
			switch {
			case in.ExcludeMaintenance && mt:
				inRun = inRun || d
			case d:
				down++
				inRun = true
				run++
			case c:
				up++
			default:
				unknown++
			}
		}
		closeRun()

		msg := func(what string) string { return fmt.Sprintf("iter %d: %s (%+v)", iter, what, in) }
		require.Equal(t, time.Duration(end)*minute, got.Elapsed, msg("elapsed"))
		require.Equal(t, time.Duration(span-end)*minute, got.Future, msg("future"))
		require.Equal(t, time.Duration(up)*minute, got.Up, msg("up"))
		require.Equal(t, time.Duration(down)*minute, got.Downtime, msg("down"))
		require.Equal(t, time.Duration(unknown)*minute, got.Unknown, msg("unknown"))
		require.Equal(t, time.Duration(maint)*minute, got.Maintenance, msg("maintenance"))
		require.Equal(t, incidents, got.Incidents, msg("incidents"))
		require.Equal(t, time.Duration(longest)*minute, got.LongestOutage, msg("longest"))
		if end > 0 {
			require.InDelta(t, float64(covered)/float64(end)*100, got.Coverage, 1e-9, msg("coverage"))
		}
		if up+down == 0 {
			require.Nil(t, got.Uptime, msg("uptime"))
		} else {
			require.NotNil(t, got.Uptime, msg("uptime"))
			require.InDelta(t, float64(up)/float64(up+down)*100, *got.Uptime, 1e-9, msg("uptime"))
		}
	}
}

func TestComputeLeavesInputAlone(t *testing.T) {
	in := Input{From: day, To: at(24, 0), Now: at(12, 0), Rollups: hours(day, 0, 1),
		Incidents:   []Interval{{at(3, 0), at(2, 0)}, {Start: at(11, 0)}, {at(1, 0), at(2, 0)}},
		Maintenance: []Interval{{at(5, 0), at(6, 0)}, {at(0, 0), at(1, 0)}}, ExcludeMaintenance: true}
	incs := slices.Clone(in.Incidents)
	maint := slices.Clone(in.Maintenance)
	got := Compute(in)
	require.Equal(t, incs, in.Incidents)
	require.Equal(t, maint, in.Maintenance)
	// [03:00, 02:00) is empty and ignored; [11:00, Now) and [01:00, 02:00)
	// are 2 h together.
	require.Equal(t, 2*hour, got.Downtime)
	require.Equal(t, 2, got.Incidents)
	// Hour 0 is wholly in maintenance: only hour 1's 120 checks count.
	require.Equal(t, int64(120), got.Checks)
}

// A caller that summed the window's checks itself (exact edge hours) hands
// them over as Counted; the rollups are then not summed again.
func TestCountedOverridesRollups(t *testing.T) {
	from := time.Date(2026, 11, 25, 12, 10, 0, 0, time.UTC)
	to := from.Add(30 * time.Minute)
	counted := tsdb.Rollup{Checks: 60, Failures: 6, LatencyMin: 10 * time.Millisecond, LatencyMax: 40 * time.Millisecond, LatencySum: 1500 * time.Millisecond}
	counted.Buckets[tsdb.BucketIndex(20*time.Millisecond)] = 60
	rep := Compute(Input{
		From: from, To: to, Accounting: AccountingChecks,
		Data:    []Interval{{Start: from, End: to}},
		Rollups: []tsdb.Rollup{{Hour: from.Truncate(time.Hour), Checks: 120, Failures: 50}},
		Counted: &counted,
	})
	if rep.Checks != 60 || rep.FailedChecks != 6 {
		t.Fatalf("checks %d failed %d, want 60 and 6 from Counted", rep.Checks, rep.FailedChecks)
	}
	if rep.Uptime == nil || *rep.Uptime != 90 {
		t.Fatalf("uptime %v, want 90", rep.Uptime)
	}
}
