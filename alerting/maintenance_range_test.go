package alerting

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func periods(t *testing.T, w *Window, from, to string) []Period {
	t.Helper()
	ps, err := w.Periods(utc(from), utc(to))
	require.NoError(t, err)
	return ps
}

func p(start, end string) Period { return Period{utc(start), utc(end)} }

func TestPeriodsOneOff(t *testing.T) {
	w := valid(t, Window{Start: utc("2024-05-06T22:00:00Z"), End: utc("2024-05-07T01:30:00Z")})
	require.Equal(t, []Period{p("2024-05-06T22:00:00Z", "2024-05-07T01:30:00Z")},
		periods(t, w, "2024-05-06T00:00:00Z", "2024-05-08T00:00:00Z"))
	// Clipped to the range on both sides.
	require.Equal(t, []Period{p("2024-05-07T00:00:00Z", "2024-05-07T01:00:00Z")},
		periods(t, w, "2024-05-07T00:00:00Z", "2024-05-07T01:00:00Z"))
	// Outside the range, an empty or inverted range: nothing.
	require.Empty(t, periods(t, w, "2024-05-07T01:30:00Z", "2024-05-08T00:00:00Z"))
	require.Empty(t, periods(t, w, "2024-05-07T00:00:00Z", "2024-05-07T00:00:00Z"))
	require.Empty(t, periods(t, w, "2024-05-08T00:00:00Z", "2024-05-07T00:00:00Z"))
}

func TestPeriodsDailyBerlinAcrossDST(t *testing.T) {
	// 02:00-04:00 Berlin time every day (see
	// TestWindowRecurringDailyBerlinAcrossDST for the instants).
	w := valid(t, Window{Cron: "0 2 * * *", Duration: 2 * time.Hour, TimeZone: "Europe/Berlin"})
	require.Equal(t, []Period{
		p("2024-03-30T01:00:00Z", "2024-03-30T03:00:00Z"), // CET
		p("2024-03-31T01:00:00Z", "2024-03-31T03:00:00Z"), // 02:00 does not exist: after the gap
		p("2024-04-01T00:00:00Z", "2024-04-01T02:00:00Z"), // CEST
	}, periods(t, w, "2024-03-30T00:00:00Z", "2024-04-02T00:00:00Z"))

	require.Equal(t, []Period{
		p("2024-10-26T00:00:00Z", "2024-10-26T02:00:00Z"), // CEST
		p("2024-10-27T00:00:00Z", "2024-10-27T02:00:00Z"), // 02:00 twice: the first, once
		p("2024-10-28T01:00:00Z", "2024-10-28T03:00:00Z"), // CET
	}, periods(t, w, "2024-10-26T00:00:00Z", "2024-10-29T00:00:00Z"))

	// A start before the range whose period reaches into it is found.
	require.Equal(t, []Period{p("2024-10-28T02:00:00Z", "2024-10-28T03:00:00Z")},
		periods(t, w, "2024-10-28T02:00:00Z", "2024-10-28T12:00:00Z"))
}

func TestPeriodsShortWindowAtFallBackOnce(t *testing.T) {
	w := valid(t, Window{Cron: "30 2 * * *", Duration: 30 * time.Minute, TimeZone: "Europe/Berlin"})
	require.Equal(t, []Period{p("2024-10-27T00:30:00Z", "2024-10-27T01:00:00Z")},
		periods(t, w, "2024-10-27T00:00:00Z", "2024-10-27T12:00:00Z"))
}

func TestPeriodsMergeOverlappingStarts(t *testing.T) {
	// Every hour for 90 minutes: one continuous period.
	w := valid(t, Window{Cron: "0 * * * *", Duration: 90 * time.Minute})
	require.Equal(t, []Period{p("2024-05-06T00:00:00Z", "2024-05-06T06:00:00Z")},
		periods(t, w, "2024-05-06T00:00:00Z", "2024-05-06T06:00:00Z"))
}

// TestPeriodsAgreeWithActive checks Periods against Active minute by
// minute over days holding the autumn DST changes of Europe and the US,
// for several schedules.
func TestPeriodsAgreeWithActive(t *testing.T) {
	from, to := utc("2024-10-25T00:00:00Z"), utc("2024-11-05T00:00:00Z")
	for _, w := range []Window{
		{Cron: "0 2 * * *", Duration: 2 * time.Hour, TimeZone: "Europe/Berlin"},
		{Cron: "30 2 * * *", Duration: 30 * time.Minute, TimeZone: "Europe/Berlin"},
		{Cron: "0 2 * * SUN", Duration: 3 * time.Hour, TimeZone: "Europe/Berlin"},
		{Cron: "*/20 1-3 * * *", Duration: 7 * time.Minute, TimeZone: "America/New_York"},
		{Cron: "0 23 * * *", Duration: 3 * time.Hour},
		{Start: utc("2024-10-27T00:10:00Z"), End: utc("2024-10-27T05:00:00Z")},
	} {
		t.Run(w.Cron, func(t *testing.T) {
			wp := valid(t, w)
			ps, err := wp.Periods(from, to)
			require.NoError(t, err)
			require.NotEmpty(t, ps)
			in := func(at time.Time) bool {
				for _, p := range ps {
					if !at.Before(p.Start) && at.Before(p.End) {
						return true
					}
				}
				return false
			}
			for at := from; at.Before(to); at = at.Add(time.Minute) {
				require.Equal(t, wp.Active(at, "web", nil), in(at), "at %s", at)
			}
		})
	}
}

func TestPeriodsInvalidAndTooFrequent(t *testing.T) {
	// Not validated: a recurring window has no compiled schedule.
	w := &Window{Cron: "0 2 * * *", Duration: time.Hour}
	ps, err := w.Periods(utc("2024-05-06T00:00:00Z"), utc("2024-05-08T00:00:00Z"))
	require.NoError(t, err)
	require.Empty(t, ps)

	// Every minute over a year is more starts than allowed (every five
	// minutes for a year is not).
	w = valid(t, Window{Cron: "* * * * *", Duration: time.Minute})
	_, err = w.Periods(utc("2023-01-01T00:00:00Z"), utc("2024-01-01T00:00:00Z"))
	require.ErrorIs(t, err, ErrTooManyStarts)
}
