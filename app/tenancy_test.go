package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/report"
)

// TestReusedIDLeaksNothing is the cross-tenant leak through a reused target
// id: tenant A's failing target opens an incident and is deleted; tenant B
// then takes the same id and must read none of A's data (incident, latest
// result, samples, export, SLA, report), and A's incident is closed by the
// delete rather than left open for ever.
func TestReusedIDLeaksNothing(t *testing.T) {
	failing := &flapper{}
	failing.down.Store(true)
	srv := httptest.NewServer(failing)
	defer srv.Close()
	cfg := testConfig(t, "allow_private_targets: true\nquotas: {min_interval: 1s}\n")
	keyA, _, _, err := api.NewKey()
	require.NoError(t, err)
	base := clocktest.Start()
	r := start(t, cfg, Options{Now: clocktest.Running(base), Getenv: func(name string) string {
		if name == EnvBootstrapKey {
			return keyA
		}
		return ""
	}})
	v1 := r.addr + "/api/v1"

	status, body := apiCall(t, http.MethodPost, v1+"/tenants", keyA, map[string]any{"id": "tenant-b"})
	require.Equal(t, http.StatusCreated, status, body)
	keyB := body["admin_key"].(map[string]any)["key"].(string)

	target := func(paused bool) map[string]any {
		return map[string]any{"id": "shared-id", "name": "shared", "kind": "http", "interval": "1s", "timeout": "500ms",
			"paused": paused, "http": map[string]any{"url": srv.URL + "/"}}
	}
	status, body = apiCall(t, http.MethodPost, v1+"/targets", keyA, target(false))
	require.Equal(t, http.StatusCreated, status, body)
	require.Eventually(t, func() bool {
		_, body := apiCall(t, http.MethodGet, v1+"/targets/shared-id/incidents?open=true", keyA, nil)
		incs, _ := body["incidents"].([]any)
		return len(incs) == 1
	}, 60*time.Second, 100*time.Millisecond, "A's failing target opens an incident")
	status, _ = apiCall(t, http.MethodGet, v1+"/targets/shared-id/latest", keyA, nil)
	require.Equal(t, http.StatusOK, status)
	status, _ = apiCall(t, http.MethodDelete, v1+"/targets/shared-id", keyA, nil)
	require.Equal(t, http.StatusNoContent, status)

	// B takes the id, paused, so nothing of its own is ever checked: all
	// it may read is nothing.
	status, body = apiCall(t, http.MethodPost, v1+"/targets", keyB, target(true))
	require.Equal(t, http.StatusCreated, status, body)
	status, body = apiCall(t, http.MethodGet, v1+"/targets/shared-id/incidents", keyB, nil)
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, body["incidents"], "A's incident")
	status, _ = apiCall(t, http.MethodGet, v1+"/targets/shared-id/latest", keyB, nil)
	assert.Equal(t, http.StatusNotFound, status, "A's last result")
	from := url.QueryEscape(base.Add(-time.Hour).Format(time.RFC3339))
	status, body = apiCall(t, http.MethodGet, v1+"/targets/shared-id/samples?from="+from, keyB, nil)
	require.Equal(t, http.StatusOK, status, body)
	assert.Empty(t, body["samples"], "A's samples")
	status, export := rawGet(t, v1+"/targets/shared-id/export?format=ndjson&from="+from, keyB)
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, strings.TrimSpace(export), "A's samples through export")
	status, body = apiCall(t, http.MethodGet, v1+"/targets/shared-id/sla?from="+from, keyB, nil)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, 0.0, body["checks"].(map[string]any)["run"], "an SLA from A's checks")
	status, body = apiCall(t, http.MethodGet, v1+"/status", keyB, nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, body["items"], 1)
	assert.NotContains(t, body["items"].([]any)[0], "last_check")

	// The encrypted report says the same.
	status, body = apiCall(t, http.MethodPost, v1+"/report-keys", keyB, nil)
	require.Equal(t, http.StatusCreated, status, body)
	jwk, err := json.Marshal(body["jwk"])
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "b.jwk")
	require.NoError(t, os.WriteFile(keyFile, jwk, 0o600))
	status, token := rawGet(t, v1+"/reports/sla?from="+from, keyB)
	require.Equal(t, http.StatusOK, status, token)
	plain, err := report.DecryptFile([]byte(token), keyFile)
	require.NoError(t, err)
	var rep map[string]any
	require.NoError(t, json.Unmarshal(plain, &rep))
	targets := rep["targets"].([]any)
	require.Len(t, targets, 1)
	assert.Equal(t, "shared-id", targets[0].(map[string]any)["target_id"])
	assert.Equal(t, 0.0, targets[0].(map[string]any)["checks"].(map[string]any)["run"], "A's checks in B's report")
	assert.Equal(t, 0.0, targets[0].(map[string]any)["incidents"], "A's incident in B's report")

	// A sees its old id free again, and its incident was closed by the delete.
	r.shutdown(t)
	reg, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: filepath.Join(cfg.DataDir, RegistryFile)})
	require.NoError(t, err)
	defer reg.Close()
	incs, err := reg.Incidents(context.Background(), registry.IncidentQuery{})
	require.NoError(t, err)
	require.Len(t, incs, 1)
	assert.False(t, incs[0].Open(), "deleting a target closes its open incident")
	assert.Equal(t, "default/shared-id", incs[0].TargetID, "the incident belongs to A's key")
}

// rawGet returns the status and body of a GET with key.
func rawGet(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
