package web

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// countingReader answers RollupTotals with one check per key and counts
// the keys asked for.
type countingReader struct {
	tsdb.Reader
	asked int
}

func (c *countingReader) RollupTotals(_ context.Context, keys []string, _, _ time.Time) (map[string]tsdb.RollupTotal, error) {
	c.asked += len(keys)
	out := map[string]tsdb.RollupTotal{}
	for _, k := range keys {
		out[k] = tsdb.RollupTotal{Sum: tsdb.Rollup{Checks: 1}}
	}
	return out, nil
}

func TestHourCacheKeepsOnlyClosedHours(t *testing.T) {
	var c hourCache
	r := &countingReader{}
	ctx := t.Context()
	hour := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	// The current hour and the grace after it: read every time.
	for _, now := range []time.Time{hour.Add(30 * time.Minute), hour.Add(time.Hour + time.Minute)} {
		before := r.asked
		got, err := c.hourly(ctx, r, []string{"a", "b"}, hour, now)
		require.NoError(t, err)
		require.Equal(t, int64(1), got["a"].Checks)
		require.Equal(t, before+2, r.asked)
	}
	// Closed: read once, then from the cache; a new key is read alone.
	closed := hour.Add(time.Hour + hourGrace)
	_, err := c.hourly(ctx, r, []string{"a", "b"}, hour, closed)
	require.NoError(t, err)
	asked := r.asked
	_, err = c.hourly(ctx, r, []string{"a", "b"}, hour, closed.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, asked, r.asked)
	got, err := c.hourly(ctx, r, []string{"a", "b", "c"}, hour, closed.Add(2*time.Minute))
	require.NoError(t, err)
	require.Equal(t, asked+1, r.asked)
	require.Equal(t, int64(1), got["c"].Checks)
	// A day later the hour is forgotten.
	_, err = c.hourly(ctx, r, []string{"a"}, hour.Add(26*time.Hour), hour.Add(27*time.Hour+hourGrace))
	require.NoError(t, err)
	c.mu.Lock()
	_, kept := c.spans[spanKey{hour.Unix(), hour.Add(time.Hour).Unix()}]
	c.mu.Unlock()
	require.False(t, kept)
}

// The 30-day figure is the 29 days before the sparkline's 24 hours (read
// once an hour) plus those hours; a check older than 30 days is not in it.
func TestDashboardUptime30Days(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := h.createTarget(tenantA, "shop", nil)
	h.setState(key, alerting.State{Status: alerting.StatusUp, Since: t0.Add(-time.Hour)})
	var rs []prober.Result
	add := func(at time.Time, ok bool) {
		rs = append(rs, prober.Result{TargetID: key, Kind: "http", Location: "local", Start: at, Duration: 100 * time.Millisecond, Success: ok})
	}
	add(t0.Add(-31*24*time.Hour), false) // out of the window
	add(t0.Add(-10*24*time.Hour), false) // in the 29 days
	add(t0.Add(-10*24*time.Hour+time.Minute), true)
	for i := range 2 { // in the last 24 h
		add(t0.Add(-time.Duration(i+1)*time.Hour), true)
	}
	require.NoError(t, h.samples.WriteSamples(t.Context(), rs))
	vera := h.as(tenantA, "vera")
	for range 2 { // the second from the cache
		body := vera.get("/ui/").body
		// 24 h: 2 of 2; 30 days: 3 of 4.
		require.Regexp(t, `<td>100%</td>\s*<td>75.00%</td>`, body)
		h.clock.Advance(time.Minute)
	}
}
