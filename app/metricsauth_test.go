package app

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMetricsAuth: with a metrics section /metrics needs its bearer token
// or basic-auth credentials (401 and a challenge without); /healthz and
// /readyz stay open.
func TestMetricsAuth(t *testing.T) {
	t.Setenv("UPWATCH_TEST_METRICS_TOKEN", "scrape-t0ken")
	t.Setenv("UPWATCH_TEST_METRICS_PASSWORD", "scrape-passw0rd")
	cfg := testConfig(t, `
metrics:
  bearer_token: env:UPWATCH_TEST_METRICS_TOKEN
  basic_auth: {username: prometheus, password: env:UPWATCH_TEST_METRICS_PASSWORD}
`)
	r := start(t, cfg, Options{})
	get := func(path string, auth func(*http.Request)) (int, http.Header, string) {
		req, err := http.NewRequest(http.MethodGet, r.addr+path, nil)
		require.NoError(t, err)
		if auth != nil {
			auth(req)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, resp.Header, string(b)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+tok) }
	}
	basic := func(u, p string) func(*http.Request) { return func(q *http.Request) { q.SetBasicAuth(u, p) } }

	status, h, body := get("/metrics", nil)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, h.Get("WWW-Authenticate"), "Basic realm=")
	require.NotContains(t, body, "upwatch_build_info")
	for _, bad := range []func(*http.Request){
		bearer("wrong"), bearer("scrape-t0ke"), bearer("scrape-t0ken-and-more"),
		basic("prometheus", "wrong"), basic("someone", "scrape-passw0rd"), basic("prometheus", ""),
	} {
		status, _, _ = get("/metrics", bad)
		require.Equal(t, http.StatusUnauthorized, status)
	}
	for _, good := range []func(*http.Request){bearer("scrape-t0ken"), basic("prometheus", "scrape-passw0rd")} {
		status, _, body = get("/metrics", good)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "upwatch_build_info")
	}
	// A scraper that accepts gzip (as Prometheus does) gets it behind the
	// credentials too.
	zipped := func(q *http.Request) { bearer("scrape-t0ken")(q); q.Header.Set("Accept-Encoding", "gzip") }
	status, h, body = get("/metrics", zipped)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "gzip", h.Get("Content-Encoding"))
	zr, err := gzip.NewReader(strings.NewReader(body))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Contains(t, string(plain), "upwatch_build_info")
	for _, open := range []string{"/healthz", "/readyz"} {
		status, _, _ = get(open, nil)
		require.Equal(t, http.StatusOK, status, open)
	}
	r.shutdown(t)
}
