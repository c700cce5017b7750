package app

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
)

// TestBootstrapAgentKey: UPWATCH_BOOTSTRAP_AGENT_KEY and _LOCATION store
// an agent key for that location (hashed, never in clear on disk); a key
// an admin revoked stays revoked after a restart with the same environment.
func TestBootstrapAgentKey(t *testing.T) {
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)
	agentKey, _, _, err := api.NewKey()
	require.NoError(t, err)
	env := map[string]string{EnvBootstrapKey: admin, EnvBootstrapAgentKey: agentKey, EnvBootstrapAgentLocation: "docker-agent"}
	opts := Options{Registry: prometheus.NewRegistry(), Now: clocktest.Running(clocktest.Noon()),
		Getenv: func(name string) string { return env[name] }}
	cfg := testConfig(t, agentTestConfig)
	r := start(t, cfg, opts)

	st, body := apiCall(t, http.MethodPost, r.addr+"/api/v1/agent/heartbeat", agentKey, fleet.Hello{ID: "a1", Name: "host"})
	require.Equal(t, http.StatusOK, st, "%v", body)
	require.Equal(t, "docker-agent", body["location"])
	st, _ = apiCall(t, http.MethodGet, r.addr+"/api/v1/keys", agentKey, nil)
	require.Equal(t, http.StatusForbidden, st, "an agent key is nothing more")

	st, body = apiCall(t, http.MethodGet, r.addr+"/api/v1/keys", admin, nil)
	require.Equal(t, http.StatusOK, st)
	var id string
	for _, k := range body["items"].([]any) {
		if k := k.(map[string]any); k["location"] == "docker-agent" {
			require.Equal(t, []any{"agent"}, k["scopes"])
			id = k["id"].(string)
		}
	}
	require.NotEmpty(t, id, "the agent key is listed")

	r.shutdown(t)
	files, err := filepath.Glob(filepath.Join(cfg.DataDir, "*"))
	require.NoError(t, err)
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			require.NotContains(t, string(b), agentKey[len("uw_"):], "%s holds the agent key in clear", f)
		}
	}

	// Revoked, then a restart with the same environment: still refused.
	opts.Registry = prometheus.NewRegistry()
	r = start(t, cfg, opts)
	st, _ = apiCall(t, http.MethodDelete, r.addr+"/api/v1/keys/"+id, admin, nil)
	require.Equal(t, http.StatusNoContent, st)
	r.shutdown(t)
	opts.Registry = prometheus.NewRegistry()
	r = start(t, cfg, opts)
	st, _ = apiCall(t, http.MethodPost, r.addr+"/api/v1/agent/heartbeat", agentKey, fleet.Hello{ID: "a1", Name: "host"})
	require.Equal(t, http.StatusUnauthorized, st, "a revoked bootstrap agent key comes back")
}

func TestBootstrapAgentKeyErrors(t *testing.T) {
	good, _, _, err := api.NewKey()
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"key without location": {map[string]string{EnvBootstrapAgentKey: good}, "set both UPWATCH_BOOTSTRAP_AGENT_KEY and UPWATCH_BOOTSTRAP_AGENT_LOCATION"},
		"location without key": {map[string]string{EnvBootstrapAgentLocation: "eu"}, "set both"},
		"malformed key":        {map[string]string{EnvBootstrapAgentKey: "uw_short-secret", EnvBootstrapAgentLocation: "eu"}, "UPWATCH_BOOTSTRAP_AGENT_KEY: the bootstrap agent key is malformed"},
		"bad location":         {map[string]string{EnvBootstrapAgentKey: good, EnvBootstrapAgentLocation: "eu west"}, "location must be"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, agentTestConfig)
			err := Run(context.Background(), Options{Config: cfg, Registry: prometheus.NewRegistry(),
				Now: clocktest.Running(clocktest.Noon()), Getenv: func(n string) string { return tc.env[n] }})
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.False(t, strings.Contains(err.Error(), "short-secret"), "the key is repeated in the error")
		})
	}
}
