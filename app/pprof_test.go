package app

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/internal/logbuf"
)

// TestPProf: /debug/pprof/ is absent by default; with debug.pprof on it
// answers admin keys of tenant "default" only, and its failed
// authentications count and are logged like the API's.
func TestPProf(t *testing.T) {
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)
	getenv := func(name string) string {
		if name == EnvBootstrapKey {
			return admin
		}
		return ""
	}
	call := func(url, key string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	t.Run("off by default", func(t *testing.T) {
		r := start(t, testConfig(t, ""), Options{Getenv: getenv})
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
			status, _ := call(r.addr+p, admin)
			require.Equal(t, http.StatusNotFound, status, p)
		}
	})

	t.Run("on", func(t *testing.T) {
		var logs logbuf.Buffer
		cfg := testConfig(t, "debug: {pprof: true}\napi: {auth_failures: {max: 3, window: 1h}}\n")
		r := start(t, cfg, Options{Getenv: getenv, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

		status, body := apiCall(t, http.MethodPost, r.addr+"/api/v1/keys", admin, map[string]any{"name": "reader", "scopes": []string{"read"}})
		require.Equal(t, http.StatusCreated, status, body)
		reader := body["key"].(string)
		status, body = apiCall(t, http.MethodPost, r.addr+"/api/v1/tenants", admin, map[string]any{"id": "acme"})
		require.Equal(t, http.StatusCreated, status, body)
		otherAdmin := body["admin_key"].(map[string]any)["key"].(string)

		status, text := call(r.addr+"/debug/pprof/", admin)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, text, "goroutine")
		status, text = call(r.addr+"/debug/pprof/cmdline", admin)
		require.Equal(t, http.StatusOK, status)
		require.NotEmpty(t, text)
		status, text = call(r.addr+"/debug/pprof/profile?seconds=1", admin)
		require.Equal(t, http.StatusOK, status, text)
		require.NotEmpty(t, text, "a CPU profile (gzipped protobuf)")
		status, _ = call(r.addr+"/debug/pprof/heap", admin)
		require.Equal(t, http.StatusOK, status)

		status, text = call(r.addr+"/debug/pprof/cmdline", reader)
		require.Equal(t, http.StatusForbidden, status)
		require.Contains(t, text, `lacks the \"admin\" scope`)
		status, text = call(r.addr+"/debug/pprof/cmdline", otherAdmin)
		require.Equal(t, http.StatusForbidden, status)
		require.Contains(t, text, `tenant \"default\"`)

		for range 3 {
			status, text = call(r.addr+"/debug/pprof/cmdline", "")
			require.Equal(t, http.StatusUnauthorized, status)
			require.Contains(t, text, "an API key is required")
		}
		require.Contains(t, logs.String(), "api authentication failed")
		require.Contains(t, logs.String(), "path=/debug/pprof/cmdline")
		status, _ = call(r.addr+"/debug/pprof/cmdline", admin)
		require.Equal(t, http.StatusTooManyRequests, status, "failed authentications on /debug/pprof count like the API's")
		require.False(t, strings.Contains(logs.String(), admin), "the key is never logged")
	})
}
