package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAgentsConfig(t *testing.T) {
	c, err := Parse(strings.NewReader(""), "x.yaml", noEnv)
	require.NoError(t, err)
	require.True(t, c.Server.ChecksLocally(), "serve checks its own targets by default")
	require.Equal(t, DefaultAgentTTL, c.Agents.TTL)
	require.Equal(t, DefaultMaxBatch, c.Agents.MaxBatch)

	c, err = Parse(strings.NewReader("server: {check_locally: false}\nagents: {ttl: 3s, max_batch: 50}\n"+
		"targets:\n  - {name: a, kind: tcp, tcp: {address: \"h:1\"}, locations: [eu-west, us-east]}\n"), "x.yaml", noEnv)
	require.NoError(t, err)
	require.False(t, c.Server.ChecksLocally())
	require.Empty(t, c.Server.AdvertiseURL, "derived from listen when serving")
	require.Equal(t, 3*time.Second, c.Agents.TTL)
	require.Equal(t, 50, c.Agents.MaxBatch)
	require.Equal(t, []string{"eu-west", "us-east"}, c.Targets[0].Locations)
	require.True(t, c.Targets[0].CheckedFrom("us-east"))
	require.False(t, c.Targets[0].CheckedFrom("local"))
}

// TestAgentsEnvOverrides: server.*, agents.* and the lease timings take
// UPWATCH_* overrides over the file; a bad value names its variable, and
// an override is validated like the field.
func TestAgentsEnvOverrides(t *testing.T) {
	file := "server: {check_locally: true}\nagents: {ttl: 10s, max_batch: 100}\nregistry: {lease: {ttl: 6s, renew: 2s}}\n"
	env := map[string]string{
		"UPWATCH_SERVER_CHECK_LOCALLY": "false", "UPWATCH_AGENTS_TTL": "5s", "UPWATCH_AGENTS_MAX_BATCH": "250",
		"UPWATCH_REGISTRY_LEASE_TTL": "10s", "UPWATCH_REGISTRY_LEASE_RENEW": "3s",
	}
	cfg, err := Parse(strings.NewReader(file), "t.yaml", func(k string) string { return env[k] })
	require.NoError(t, err)
	require.False(t, cfg.Server.ChecksLocally())
	require.Equal(t, 5*time.Second, cfg.Agents.TTL)
	require.Equal(t, 250, cfg.Agents.MaxBatch)
	require.Equal(t, 10*time.Second, cfg.Registry.Lease.TTL)
	require.Equal(t, 3*time.Second, cfg.Registry.Lease.Renew)

	// Unset variables leave the file's values.
	cfg, err = Parse(strings.NewReader(file), "t.yaml", func(string) string { return "" })
	require.NoError(t, err)
	require.True(t, cfg.Server.ChecksLocally())
	require.Equal(t, 10*time.Second, cfg.Agents.TTL)

	_, err = Parse(strings.NewReader(file), "t.yaml", func(k string) string {
		return map[string]string{"UPWATCH_SERVER_CHECK_LOCALLY": "sometimes", "UPWATCH_AGENTS_TTL": "15",
			"UPWATCH_AGENTS_MAX_BATCH": "lots", "UPWATCH_REGISTRY_LEASE_RENEW": "2 s"}[k]
	})
	require.ErrorContains(t, err, "env UPWATCH_SERVER_CHECK_LOCALLY: must be true or false")
	require.ErrorContains(t, err, "env UPWATCH_AGENTS_TTL: must be a duration such as 15s")
	require.ErrorContains(t, err, "env UPWATCH_AGENTS_MAX_BATCH: must be a whole number")
	require.ErrorContains(t, err, "env UPWATCH_REGISTRY_LEASE_RENEW: must be a duration such as 15s")

	_, err = Parse(strings.NewReader(file), "t.yaml", func(k string) string {
		return map[string]string{"UPWATCH_AGENTS_TTL": "1m"}[k]
	})
	require.ErrorContains(t, err, "agents.ttl: must be between 1s and 15s (got 1m0s)")
}

func TestAdvertiseURL(t *testing.T) {
	c, err := Parse(strings.NewReader("server: {advertise_url: \"https://mon-1.internal:8443/upwatch\"}\n"), "x.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, "https://mon-1.internal:8443/upwatch", c.Server.AdvertiseURL)
	c, err = Parse(strings.NewReader(""), "x.yaml", func(k string) string {
		return map[string]string{"UPWATCH_ADVERTISE_URL": "http://10.1.2.3:8080"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, "http://10.1.2.3:8080", c.Server.AdvertiseURL)
}
