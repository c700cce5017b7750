package app

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/internal/logbuf"
)

func apiCall(t *testing.T, method, url, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// TestAPITargetsRunLive creates a target through the API of a running
// instance, sees it checked, and deletes it again.
func TestAPITargetsRunLive(t *testing.T) {
	flap := &flapper{}
	srv := httptest.NewServer(flap)
	defer srv.Close()
	// A 1s interval needs the quota's minimum lowered (default 10s).
	cfg := testConfig(t, "allow_private_targets: true\nquotas: {min_interval: 1s}\n")
	key, _, _, err := api.NewKey()
	require.NoError(t, err)
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := start(t, cfg, Options{Logger: log, Getenv: func(name string) string {
		if name == EnvBootstrapKey {
			return key
		}
		return ""
	}})

	// No master key configured: one was made in the data dir, 0600, with a warning.
	fi, err := os.Stat(filepath.Join(cfg.DataDir, MasterKeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Contains(t, logs.String(), "no master key configured")

	has := r.checks(t)
	status, body := apiCall(t, http.MethodPost, r.addr+"/api/v1/targets", key, map[string]any{
		"id": "api-web", "name": "API web", "kind": "http", "interval": "1s", "timeout": "500ms",
		"http": map[string]any{"url": srv.URL + "/", "auth": map[string]any{"type": "bearer", "token": "s3cr3t-t0ken"}},
	})
	require.Equal(t, http.StatusCreated, status, body)
	// Series of API targets are named by key: <tenant>/<id>.
	require.Eventually(t, func() bool { return has("default/api-web") }, 10*time.Second, 50*time.Millisecond)

	status, body = apiCall(t, http.MethodGet, r.addr+"/api/v1/status", key, nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, body["items"], 1)
	// The incident counter exists from the start, so the first incident is
	// an increase.
	assert.Equal(t, 0.0, metricValue(get(t, r.addr+"/metrics"), "upwatch_incidents_total", `target="default/api-web"`))

	// Paused while down: no probe_success 0, no upwatch_target_up 0 left
	// behind (they fired TargetDown); resumed: checked again.
	flap.down.Store(true)
	require.Eventually(t, func() bool {
		m := get(t, r.addr+"/metrics")
		return metricValue(m, "upwatch_target_up", `target="default/api-web"`) == 0 &&
			metricValue(m, "upwatch_incidents_total", `target="default/api-web"`) == 1
	}, 30*time.Second, 50*time.Millisecond)
	status, _ = apiCall(t, http.MethodPost, r.addr+"/api/v1/targets/api-web/pause", key, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, seriesOf(get(t, r.addr+"/metrics"), "default/api-web"), "a paused target exports no per-target series")
	status, _ = apiCall(t, http.MethodPost, r.addr+"/api/v1/targets/api-web/resume", key, nil)
	require.Equal(t, http.StatusOK, status)
	flap.down.Store(false)
	require.Eventually(t, func() bool { return has("default/api-web") }, 10*time.Second, 50*time.Millisecond)

	status, _ = apiCall(t, http.MethodDelete, r.addr+"/api/v1/targets/api-web", key, nil)
	require.Equal(t, http.StatusNoContent, status)
	assert.False(t, has("default/api-web"), "deleting stops the target and drops its series at once")
	assert.Empty(t, seriesOf(get(t, r.addr+"/metrics"), "default/api-web"), "no per-target series outlives the target")
	assert.NotContains(t, logs.String(), "s3cr3t-t0ken")
	assert.NotContains(t, logs.String(), key)
	r.shutdown(t)
}

// seriesOf lists the exposition's lines of series labelled target=id.
func seriesOf(exposition, id string) []string {
	var out []string
	for line := range strings.Lines(exposition) {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, `target="`+id+`"`) {
			out = append(out, line)
		}
	}
	return out
}
