package statuspage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Recent days are kept an hour; older ones longer, their expiries spread
// over the day so they are not all read again in the same hour.
func TestKeepForStaggersOldDays(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	today := now.Truncate(24 * time.Hour)
	for d := 1; d < recentDays; d++ {
		require.Equal(t, settledTTL, keepFor(today.AddDate(0, 0, -d), now), "day -%d", d)
	}
	expiries := map[time.Duration]bool{}
	for d := recentDays; d < recentDays+24; d++ {
		ttl := keepFor(today.AddDate(0, 0, -d), now)
		require.GreaterOrEqual(t, ttl, settledTTL)
		require.LessOrEqual(t, ttl, oldTTL)
		expiries[ttl] = true
	}
	require.Greater(t, len(expiries), 20, "24 consecutive days expire at different hours")
}
