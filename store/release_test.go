package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
)

// After a crash, the leases the dead process held are released at start, so
// its notifications go out at once rather than when the leases run out.
func TestReleaseLeases(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path})
	require.NoError(t, err)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := alerting.State{TargetID: "web", Status: alerting.StatusDown}
	queue := []alerting.Notification{
		{Key: "a", Channel: alerting.ChannelEmail, Message: notify.Message{Key: "a"}, NextAttempt: now, CreatedAt: now},
		{Key: "b", Channel: alerting.ChannelEmail, Message: notify.Message{Key: "b"}, NextAttempt: now, CreatedAt: now},
	}
	require.NoError(t, s.Commit(ctx, st, nil, queue))
	claimed, err := s.Claim(ctx, now, time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	require.NoError(t, s.Settle(ctx, "a", alerting.StatusSent, time.Time{}, "", now))
	require.NoError(t, s.Close()) // the process dies holding b's lease

	s, err = OpenSQLite(ctx, SQLiteOptions{Path: path})
	require.NoError(t, err)
	defer s.Close()
	again, err := s.Claim(ctx, now.Add(time.Second), time.Hour, 10)
	require.NoError(t, err)
	require.Empty(t, again, "b is still leased")
	n, err := s.ReleaseLeases(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the pending one")
	again, err = s.Claim(ctx, now.Add(time.Second), time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.Equal(t, "b", again[0].Key)
	require.Equal(t, 2, again[0].Attempts)
}
