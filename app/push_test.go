package app

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/internal/logbuf"
	"github.com/upwatch/upwatch/prober"
)

func pingURL(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(""))
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPushTargetUpAndDown runs a config push target in the service on a
// manual clock: a ping makes it UP (samples, metrics, alerting as any
// check), silence makes it DOWN once period + grace have passed, and not
// before.
func TestPushTargetUpAndDown(t *testing.T) {
	const token = "uwp_thisIsATestTokenOf128bitsOrMore"
	cfg := testConfig(t, `
targets:
  - name: nightly backup
    id: backup
    kind: push
    push: {token: `+token+`, period: 1h, grace: 5m}
`)
	clk := clocktest.NewManual(clocktest.Noon())
	var logs logbuf.Buffer
	r := start(t, cfg, Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	up := func() float64 { return metricValue(get(t, r.addr+"/metrics"), "upwatch_target_up", `target="backup"`) }

	require.Equal(t, http.StatusNotFound, pingURL(t, r.addr+"/ping/uwp_notTheTokenButLongEnoughToLook"))
	require.Equal(t, http.StatusOK, pingURL(t, r.addr+"/ping/"+token))
	require.Eventually(t, func() bool { return up() == 1 }, 30*time.Second, 20*time.Millisecond, "one ping is UP")
	assert.Equal(t, 1.0, metricValue(get(t, r.addr+"/metrics"), "probe_success", `target="backup"`))

	// Just short of period + grace: still up, however long we wait for the
	// once-a-second tick to run.
	clk.Advance(time.Hour + 5*time.Minute - time.Second)
	time.Sleep(1500 * time.Millisecond) // two ticks at most see the deadline not yet passed
	require.Equal(t, 1.0, up())
	clk.Advance(time.Second)
	require.Eventually(t, func() bool { return up() == 0 }, 30*time.Second, 20*time.Millisecond, "no ping by period + grace is DOWN")
	assert.Equal(t, 0.0, metricValue(get(t, r.addr+"/metrics"), "probe_success", `target="backup"`))

	clk.Advance(time.Minute)
	require.Equal(t, http.StatusOK, pingURL(t, r.addr+"/ping/"+token+"/0"))
	require.Eventually(t, func() bool { return up() == 1 }, 30*time.Second, 20*time.Millisecond, "a ping ends the outage")
	clk.Advance(time.Minute)
	require.Equal(t, http.StatusOK, pingURL(t, r.addr+"/ping/"+token+"/fail"))
	require.Eventually(t, func() bool { return up() == 0 }, 30*time.Second, 20*time.Millisecond, "a reported failure is DOWN")
	r.shutdown(t)
	assert.NotContains(t, logs.String(), token, "the token is never logged")
}

// TestPushTargetAPI creates a push target through the API: the server
// makes the token and shows it once; reads show it redacted; it works at
// /ping/; a token chosen by the client is refused.
func TestPushTargetAPI(t *testing.T) {
	cfg := testConfig(t, "")
	key, _, _, err := api.NewKey()
	require.NoError(t, err)
	var logs logbuf.Buffer
	r := start(t, cfg, Options{Now: clocktest.Running(clocktest.Start()), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(name string) string {
			if name == EnvBootstrapKey {
				return key
			}
			return ""
		}})
	v1 := r.addr + "/api/v1"

	status, body := apiCall(t, http.MethodPost, v1+"/targets", key, map[string]any{
		"id": "cron", "name": "cron", "kind": "push", "push": map[string]any{"token": "uwp_myOwnChosenTokenThatIsLongEnough", "period": "10m"}})
	require.Equal(t, http.StatusUnprocessableEntity, status, body)
	require.Contains(t, body["errors"].([]any)[0].(map[string]any)["path"], "push.token")

	status, body = apiCall(t, http.MethodPost, v1+"/targets", key, map[string]any{
		"id": "cron", "name": "cron", "kind": "push", "push": map[string]any{"period": "10m", "grace": "1m"}})
	require.Equal(t, http.StatusCreated, status, body)
	token, _ := body["push"].(map[string]any)["token"].(string)
	require.True(t, strings.HasPrefix(token, prober.PushTokenPrefix), "token shown at creation: %v", body)
	require.GreaterOrEqual(t, len(token), len(prober.PushTokenPrefix)+32, "192 bits, base64url")

	status, body = apiCall(t, http.MethodGet, v1+"/targets/cron", key, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "<secret>", body["push"].(map[string]any)["token"])

	// A PATCH keeps the token.
	status, body = apiCall(t, http.MethodPatch, v1+"/targets/cron", key, map[string]any{"push": map[string]any{"grace": "2m"}})
	require.Equal(t, http.StatusOK, status, body)

	require.Equal(t, http.StatusOK, pingURL(t, r.addr+"/ping/"+token))
	require.Eventually(t, func() bool {
		return metricValue(get(t, r.addr+"/metrics"), "upwatch_target_up", `target="default/cron"`) == 1
	}, 30*time.Second, 20*time.Millisecond)
	r.shutdown(t)
	assert.NotContains(t, logs.String(), token)
}
