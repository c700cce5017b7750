package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVictoriaMetricsConfig(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
storage:
  victoriametrics: {url: "http://vm:8428"}
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, VictoriaMetrics{URL: "http://vm:8428", Timeout: DefaultVictoriaTimeout}, cfg.Storage.VictoriaMetrics)
	require.Equal(t, "sqlite", cfg.Storage.Type, "the mirror does not change the store")

	cfg, err = Parse(strings.NewReader(`
storage:
  victoriametrics: {url: "https://vm.example/", timeout: 3s}
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, cfg.Storage.VictoriaMetrics.Timeout)

	off, err := Parse(strings.NewReader(""), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, VictoriaMetrics{}, off.Storage.VictoriaMetrics, "off, no defaults, without a url")
}

func TestVictoriaMetricsInvalid(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"bad values", `
storage: {victoriametrics: {url: "ftp://h", timeout: 1h}}`, []string{
			`storage.victoriametrics.url: must be an http:// or https:// URL with a host (got "ftp://h")`,
			"storage.victoriametrics.timeout: must be more than 0 and at most 5m",
		}},
		{"no host", `
storage: {victoriametrics: {url: "http://", timeout: -1s}}`, []string{
			"storage.victoriametrics.url: must be an http:// or https:// URL with a host",
			"storage.victoriametrics.timeout: must be more than 0 and at most 5m",
		}},
		{"credentials in url", `
storage: {victoriametrics: {url: "http://u:hunter2@vm:8428"}}`, []string{
			"storage.victoriametrics.url: must not hold credentials",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := requireErrors(t, tc.yaml, tc.want)
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
}
