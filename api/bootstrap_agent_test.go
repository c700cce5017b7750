package api

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/registry"
)

func TestBootstrapAgent(t *testing.T) {
	h := newHarness(t)
	key, _, _, err := NewKey()
	require.NoError(t, err)
	created, err := BootstrapAgent(t.Context(), h.reg, key, "eu-west", h.clock.Now())
	require.NoError(t, err)
	require.True(t, created)
	created, err = BootstrapAgent(t.Context(), h.reg, key, "eu-west", h.clock.Now())
	require.NoError(t, err)
	require.False(t, created, "a second start stores nothing")
	var stored []registry.APIKey
	for _, k := range mustKeys(t, h, registry.DefaultTenant) {
		if k.Name == "bootstrap agent eu-west" {
			stored = append(stored, k)
		}
	}
	require.Len(t, stored, 1)
	require.Equal(t, []string{"agent:eu-west"}, stored[0].Scopes)
	require.Equal(t, HashKey(key), stored[0].Hash)

	// The same key named for another location is refused, not moved.
	_, err = BootstrapAgent(t.Context(), h.reg, key, "us-east", h.clock.Now())
	require.ErrorContains(t, err, "already stored with scopes [agent:eu-west], not as the agent key of us-east")
	require.NotContains(t, err.Error(), key[3:])

	// Revoked: it stays revoked, whatever the location.
	require.NoError(t, h.reg.RevokeAPIKey(t.Context(), registry.DefaultTenant, stored[0].ID, h.clock.Now()))
	for _, loc := range []string{"eu-west", "us-east"} {
		created, err = BootstrapAgent(t.Context(), h.reg, key, loc, h.clock.Now())
		require.NoError(t, err)
		require.False(t, created)
	}

	_, err = BootstrapAgent(t.Context(), h.reg, "uw_tooshort", "eu-west", h.clock.Now())
	require.ErrorContains(t, err, "malformed")
	require.NotContains(t, err.Error(), "tooshort")
	_, err = BootstrapAgent(t.Context(), h.reg, key, "eu west", h.clock.Now())
	require.ErrorContains(t, err, "location must be")
}
