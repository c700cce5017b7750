package app

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
)

// TestWebInterfaceIsServed: / leads to the sign-in page, the demo user
// signs in and sees the config's targets, and the API and /metrics are
// still where they were.
func TestWebInterfaceIsServed(t *testing.T) {
	cfg := &config.Config{Demo: true, AllowPrivateTargets: true, DataDir: t.TempDir()}
	cfg.Normalize()
	r := start(t, cfg, Options{})
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(r.addr + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/ui/signin", resp.Request.URL.Path, "/ leads to the sign-in page")
	require.Contains(t, string(body), `id="demo-note"`)
	tok := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(body))
	require.NotNil(t, tok)

	resp, err = c.PostForm(r.addr+"/ui/signin", url.Values{"csrf": {tok[1]}, "tenant": {"default"}, "name": {"demo"}, "password": {"demo"}})
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/ui/", resp.Request.URL.Path)
	require.Contains(t, string(body), `data-page="dashboard"`)
	require.Contains(t, string(body), "demo · default · viewer")

	resp, err = http.Get(r.addr + "/api/v1/targets")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the API still wants a key")
	require.True(t, strings.HasPrefix(get(t, r.addr+"/metrics"), "#"), "/metrics untouched")
}
