package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAccessSections(t *testing.T) {
	t.Setenv("UPWATCH_TEST_SCRAPE_PASSWORD", "pw")
	cfg, err := Parse(strings.NewReader(`
api:
  auth_failures: {max: 5, window: 10m, max_sources: 500}
  trusted_proxies: [10.0.0.0/8, 192.0.2.7, "fd00::/8", "::ffff:198.51.100.1", 172.16.1.9/12]
metrics:
  basic_auth: {username: prom, password: env:UPWATCH_TEST_SCRAPE_PASSWORD}
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, AuthFailures{Max: 5, Window: 10 * time.Minute, MaxSources: 500}, cfg.API.AuthFailures)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("172.16.0.0/12")},
		cfg.API.TrustedProxyPrefixes(), "an address is its own prefix; a prefix is masked")
	require.True(t, cfg.Metrics.Enabled())
	require.Equal(t, "pw", cfg.Metrics.BasicAuth.Password.Reveal())

	cfg, err = Parse(strings.NewReader(""), "t.yaml", noEnv)
	require.NoError(t, err)
	require.False(t, cfg.Metrics.Enabled(), "/metrics is open by default")
	require.Equal(t, PerTargetCore, cfg.Metrics.PerTarget, "the small per-target set by default")

	cfg, err = Parse(strings.NewReader("metrics: {per_target: full}\n"), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, PerTargetFull, cfg.Metrics.PerTarget)

	_, err = Parse(strings.NewReader(`
api:
  auth_failures: {max: 100001, window: 25h, max_sources: -1}
  trusted_proxies: [10.0.0.0/8, proxy.example.com, 10.0.0.0/33, "::ffff:10.0.0.0/104"]
metrics:
  bearer_token: ""
  basic_auth: {username: "a:b", password: x}
  per_target: phases
`), "t.yaml", noEnv)
	var ce *Error
	require.True(t, errors.As(err, &ce), "%v", err)
	got := map[string]string{}
	for _, e := range ce.Errors {
		got[e.Path] = e.Msg
	}
	require.Equal(t, map[string]string{
		"api.auth_failures.max":         "must be from 1 to 100000 (0 for the default, 20)",
		"api.auth_failures.window":      "must be from 1s to 24h0m0s (0 for the default, 1m)",
		"api.auth_failures.max_sources": "must be from 1 to 1000000 (0 for the default, 10000)",
		"api.trusted_proxies[1]":        `"proxy.example.com" is not an IP address or CIDR prefix (such as 10.0.0.0/8)`,
		"api.trusted_proxies[2]":        `"10.0.0.0/33" is not an IP address or CIDR prefix (such as 10.0.0.0/8)`,
		"api.trusted_proxies[3]":        `"::ffff:10.0.0.0/104" is not an IP address or CIDR prefix (such as 10.0.0.0/8)`,
		"metrics.basic_auth.username":   "must not contain ':'",
		"metrics.per_target":            `must be core or full, not "phases"`,
	}, got)

	many := "api:\n  trusted_proxies:\n" + strings.Repeat("    - 10.0.0.1\n", MaxTrustedProxies+1)
	_, err = Parse(strings.NewReader(many), "t.yaml", noEnv)
	require.ErrorContains(t, err, "api.trusted_proxies: has 101 entries, at most 100")

	_, err = Parse(strings.NewReader("metrics:\n  basic_auth: {username: prom}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, "metrics.basic_auth.password: is required with a username")
}

// TestEveryMissingSecretIsReported: two missing env: references and a
// missing file: one are all named, each with its line, not just the first.
func TestEveryMissingSecretIsReported(t *testing.T) {
	_, err := Parse(strings.NewReader(`registry:
  type: postgres
  postgres: {url: env:UPWATCH_TEST_MISSING_PG}
metrics:
  bearer_token: env:UPWATCH_TEST_MISSING_TOKEN
  basic_auth: {username: p, password: file:/nonexistent/upwatch-test-password}
`), "t.yaml", noEnv)
	require.Error(t, err)
	for _, want := range []string{
		"registry.postgres: environment variable UPWATCH_TEST_MISSING_PG is not set (line 3)",
		"metrics.bearer_token: environment variable UPWATCH_TEST_MISSING_TOKEN is not set (line 5)",
		"metrics.basic_auth: reading secret file: open /nonexistent/upwatch-test-password",
	} {
		require.ErrorContains(t, err, want)
	}
	// What follows from a missing secret (a required URL, a password) is
	// not reported again.
	require.True(t, strings.HasPrefix(err.Error(), "invalid config t.yaml (3 problems):"), err.Error())
}
