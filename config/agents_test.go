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
