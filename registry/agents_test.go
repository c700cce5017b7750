package registry_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/registry/registrytest"
)

// agentStore is what the agent tests need of a registry.
type agentStore interface {
	fleet.Store
	ClaimResults(ctx context.Context, keys []registry.ResultKey) ([]bool, error)
	PruneResults(ctx context.Context, before time.Time) (int64, error)
	Close() error
}

// testAgentResults: the same batch claimed twice (the second time after
// the registry is reopened, as after a restart) is new only once; pruning
// forgets keys by their scheduled time.
func testAgentResults(t *testing.T, open func() agentStore) {
	at := clocktest.Noon()
	batch := []registry.ResultKey{
		{TargetKey: "tk1", Location: "eu-west", Scheduled: at},
		{TargetKey: "tk1", Location: "us-east", Scheduled: at},
		{TargetKey: "tk1", Location: "eu-west", Scheduled: at.Add(time.Minute)},
		{TargetKey: "tk1", Location: "eu-west", Scheduled: at}, // repeated inside the batch
	}
	s := open()
	fresh, err := s.ClaimResults(t.Context(), batch)
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, true, false}, fresh)
	require.NoError(t, s.Close())

	s = open()
	defer s.Close()
	fresh, err = s.ClaimResults(t.Context(), batch)
	require.NoError(t, err)
	require.Equal(t, []bool{false, false, false, false}, fresh, "a resent batch is taken once, across a restart")

	n, err := s.PruneResults(t.Context(), at.Add(time.Second))
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	fresh, err = s.ClaimResults(t.Context(), batch[:3])
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false}, fresh)
}

func testAgentMembers(t *testing.T, s agentStore) {
	at := clocktest.Noon()
	ctx := t.Context()
	require.NoError(t, s.Heartbeat(ctx, fleet.Member{ID: "b", Location: "eu", Name: "host-b", KeyID: "key_1", SeenAt: at, ExpiresAt: at.Add(15 * time.Second)}))
	require.NoError(t, s.Heartbeat(ctx, fleet.Member{ID: "a", Location: "eu", SeenAt: at, ExpiresAt: at.Add(5 * time.Second)}))
	require.NoError(t, s.Heartbeat(ctx, fleet.Member{ID: "c", Location: "us", SeenAt: at, ExpiresAt: at.Add(15 * time.Second)}))
	live, err := s.LiveMembers(ctx, "eu", at.Add(time.Second))
	require.NoError(t, err)
	require.Len(t, live, 2)
	require.Equal(t, "a", live[0].ID)
	require.Equal(t, "host-b", live[1].Name)
	require.True(t, live[1].ExpiresAt.Equal(at.Add(15*time.Second)))
	live, err = s.LiveMembers(ctx, "eu", at.Add(5*time.Second))
	require.NoError(t, err)
	require.Len(t, live, 1, "a's heartbeat expired")
	// A heartbeat renews.
	require.NoError(t, s.Heartbeat(ctx, fleet.Member{ID: "a", Location: "eu", SeenAt: at.Add(4 * time.Second), ExpiresAt: at.Add(20 * time.Second)}))
	live, err = s.LiveMembers(ctx, "eu", at.Add(16*time.Second))
	require.NoError(t, err)
	require.Len(t, live, 1)
	require.Equal(t, "a", live[0].ID)
}

func TestSQLiteAgents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	open := func() agentStore { return openSQLite(t, path) }
	t.Run("results", func(t *testing.T) { testAgentResults(t, open) })
	t.Run("members", func(t *testing.T) {
		s := open()
		defer s.Close()
		testAgentMembers(t, s)
	})
}

func TestPostgresAgents(t *testing.T) {
	u := registrytest.PostgresSchemaURL(t)
	open := func() agentStore { return openPostgres(t, u) }
	t.Run("results", func(t *testing.T) { testAgentResults(t, open) })
	t.Run("members", func(t *testing.T) { testAgentMembers(t, open()) })
}
