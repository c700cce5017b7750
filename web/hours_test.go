package web

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	_, kept := c.hours[hour]
	c.mu.Unlock()
	require.False(t, kept)
}
