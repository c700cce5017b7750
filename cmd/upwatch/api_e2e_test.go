package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
)

// apiClient talks to a running upwatch with one key.
type apiClient struct {
	t    *testing.T
	base string
	key  string
}

func (c apiClient) do(method, path string, body any) (int, []byte, http.Header) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b, resp.Header
}

func (c apiClient) json(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	status, b, _ := c.do(method, path, body)
	require.Equal(c.t, want, status, "%s %s: %s", method, path, b)
	var v map[string]any
	require.NoError(c.t, json.Unmarshal(b, &v), "%s", b)
	return v
}

// TestAPIEndToEnd runs the built binary: create a target through the API,
// watch it go down and up, fetch its incidents and SLA and an encrypted
// report, decrypt the report with the CLI, and compare with what happened.
func TestAPIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)

	target, down := flakyTarget(t)

	listen := freePort(t)
	cfg := filepath.Join(dir, "upwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("listen: "+listen+"\ndata_dir: "+filepath.Join(dir, "data")+
		"\nallow_private_targets: true\nquotas: {min_interval: 1s}\n"), 0o600))
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)
	logf, err := os.Create(filepath.Join(dir, "upwatch.log"))
	require.NoError(t, err)
	defer logf.Close()
	b := &binary{path: bin, config: cfg, log: logf, env: []string{"UPWATCH_BOOTSTRAP_KEY=" + admin}}
	defer func() {
		if t.Failed() {
			logs, _ := os.ReadFile(logf.Name())
			t.Logf("upwatch log:\n%s", logs)
		}
	}()
	b.start(t, listen)
	defer b.stop(t)
	c := apiClient{t: t, base: "http://" + listen, key: admin}

	start := time.Now().UTC().Truncate(time.Second)
	c.json(http.MethodPost, "/api/v1/targets", map[string]any{
		"id": "shop", "name": "Shop", "kind": "http", "interval": "1s", "timeout": "500ms",
		"http": map[string]any{"url": target.URL + "/", "body_contains": []string{"fine"}},
	}, http.StatusCreated)

	targetUp := func() float64 {
		resp, err := http.Get(c.base + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		// An API target's series are labelled with its key, <tenant>/<id>.
		return metricValue(string(text), `upwatch_target_up{target="default/shop"}`)
	}
	require.Eventually(t, func() bool { return targetUp() == 1 }, 20*time.Second, 100*time.Millisecond, "shop goes UP")
	down.Store(true)
	wentDown := time.Now()
	require.Eventually(t, func() bool { return targetUp() == 0 }, 20*time.Second, 100*time.Millisecond, "shop goes DOWN")
	time.Sleep(2 * time.Second)
	down.Store(false)
	cameBack := time.Now()
	require.Eventually(t, func() bool { return targetUp() == 1 }, 20*time.Second, 100*time.Millisecond, "shop comes back")

	// The incident: it started at the first failed check and ended at the
	// first good one, so its length is the outage we caused, give or take a
	// check interval at each end.
	incs := c.json(http.MethodGet, "/api/v1/targets/shop/incidents", nil, http.StatusOK)["incidents"].([]any)
	require.Len(t, incs, 1)
	inc := incs[0].(map[string]any)
	require.Equal(t, false, inc["open"])
	require.Contains(t, inc["cause"], "status")
	outage := cameBack.Sub(wentDown).Seconds()
	incSeconds := inc["duration"].(map[string]any)["seconds"].(float64)
	require.InDelta(t, outage, incSeconds, 2.5, "incident %v s, outage %v s", incSeconds, outage)

	to := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	window := "from=" + url.QueryEscape(start.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	sla := c.json(http.MethodGet, "/api/v1/targets/shop/sla?"+window, nil, http.StatusOK)
	require.Equal(t, "time", sla["accounting"])
	require.EqualValues(t, 1, sla["incidents"])
	downtime := sla["downtime"].(map[string]any)["seconds"].(float64)
	require.InDelta(t, incSeconds, downtime, 0.001, "the SLA's downtime is the incident")
	uptime := sla["uptime_percent"].(float64)
	require.Less(t, uptime, 100.0)
	require.Greater(t, uptime, 0.0)
	checks := sla["checks"].(map[string]any)
	require.Positive(t, checks["failed"].(float64), "the failed checks of a window inside one hour are counted")

	// An encrypted report, opened with the CLI and the key the API gave once.
	key := c.json(http.MethodPost, "/api/v1/report-keys", nil, http.StatusCreated)
	jwk, err := json.Marshal(key["jwk"])
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "report-key.json")
	require.NoError(t, os.WriteFile(keyFile, jwk, 0o600))
	status, token, hdr := c.do(http.MethodGet, "/api/v1/reports/sla?"+window, nil)
	require.Equal(t, http.StatusOK, status, "%s", token)
	require.Equal(t, "application/jose", hdr.Get("Content-Type"))
	require.Equal(t, 4, strings.Count(string(token), "."), "JWE compact serialization")
	tokenFile := filepath.Join(dir, "report.jwe")
	require.NoError(t, os.WriteFile(tokenFile, token, 0o600))
	out, err := exec.Command(bin, "report", "decrypt", "-key-file", keyFile, tokenFile).Output()
	require.NoError(t, err)
	var report struct {
		GeneratedAt time.Time `json:"generated_at"`
		Tenant      struct{ ID string }
		Targets     []struct {
			TargetID      string   `json:"target_id"`
			UptimePercent *float64 `json:"uptime_percent"`
			Incidents     int      `json:"incidents"`
			Downtime      struct{ Seconds float64 }
		} `json:"targets"`
	}
	require.NoError(t, json.Unmarshal(out, &report), "%s", out)
	require.Equal(t, "default", report.Tenant.ID)
	require.WithinDuration(t, time.Now(), report.GeneratedAt, time.Minute)
	require.Len(t, report.Targets, 1)
	got := report.Targets[0]
	require.Equal(t, "shop", got.TargetID)
	require.Equal(t, 1, got.Incidents)
	require.InDelta(t, downtime, got.Downtime.Seconds, 0.001, "the report says what the SLA said")
	require.NotNil(t, got.UptimePercent)
	require.InDelta(t, uptime, *got.UptimePercent, 0.5)

	// A tampered report does not open.
	token[len(token)/2] ^= 1
	require.NoError(t, os.WriteFile(tokenFile, token, 0o600))
	require.Error(t, exec.Command(bin, "report", "decrypt", "-key-file", keyFile, tokenFile).Run())

	// The key is never in the log.
	logs, err := os.ReadFile(logf.Name())
	require.NoError(t, err)
	require.NotContains(t, string(logs), admin)
}

// metricValue finds a series line in the exposition text, or returns -2.
func metricValue(text, series string) float64 {
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, series)), 64)
			if err == nil {
				return v
			}
		}
	}
	return -2
}
