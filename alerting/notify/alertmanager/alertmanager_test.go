package alertmanager_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/alertmanager"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
)

const hookPath = "/hook/AMSECRET123"

// DOWN fires and UP resolves one alert: same labels, fingerprint and
// groupKey, in Alertmanager's version 4 webhook body.
func TestFiringThenResolved(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, "")
	n := alertmanager.New(nil)
	down, up := notifytest.Incident(t, alertmanager.Channel, alertmanager.Destination{URL: srv.URL + hookPath})
	reqs := srv.Deliver(t, n, down, up)
	for _, r := range reqs {
		assert.Equal(t, hookPath, r.Path)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	}
	firing, resolved := reqs[0].JSON(t), reqs[1].JSON(t)
	groupKey := `{}:{alertname="UpwatchTargetDown", target_id="t-3"}`
	for i, b := range []map[string]any{firing, resolved} {
		assert.Equal(t, "4", b["version"])
		assert.Equal(t, []string{"firing", "resolved"}[i], b["status"])
		assert.Equal(t, "ops", b["receiver"])
		assert.Equal(t, groupKey, b["groupKey"])
		assert.Equal(t, float64(0), b["truncatedAlerts"])
		assert.Equal(t, map[string]any{"alertname": "UpwatchTargetDown", "target_id": "t-3"}, b["groupLabels"])
		assert.Equal(t, down.Link, b["externalURL"])
		require.Len(t, b["alerts"], 1)
	}
	fa := firing["alerts"].([]any)[0].(map[string]any)
	ra := resolved["alerts"].([]any)[0].(map[string]any)
	wantLabels := map[string]any{
		"alertname": "UpwatchTargetDown", "target": "API", "target_id": "t-3", "severity": "critical",
		"instance": "https://api.example/health", "incident_id": "a1b2c3d4e5f60708",
	}
	assert.Equal(t, wantLabels, fa["labels"])
	assert.Equal(t, wantLabels, ra["labels"])
	assert.Equal(t, fa["fingerprint"], ra["fingerprint"])
	assert.Len(t, fa["fingerprint"], 16)
	assert.Equal(t, "firing", fa["status"])
	assert.Equal(t, "resolved", ra["status"])
	assert.Equal(t, "2026-03-04T05:06:07Z", fa["startsAt"])
	assert.Equal(t, "0001-01-01T00:00:00Z", fa["endsAt"])
	assert.Equal(t, "2026-03-04T05:06:07Z", ra["startsAt"])
	assert.Equal(t, "2026-03-04T05:18:37Z", ra["endsAt"])
	assert.Equal(t, "[upwatch] DOWN: API", fa["annotations"].(map[string]any)["summary"])
	assert.Equal(t, down.Link, fa["generatorURL"])
}

func TestRetryTable(t *testing.T) {
	down, _ := notifytest.Incident(t, alertmanager.Channel, nil)
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return notifytest.To(t, alertmanager.New(nil), alertmanager.Channel, alertmanager.Destination{URL: base + hookPath})
	}, down, "AMSECRET123")
}

func TestValidate(t *testing.T) {
	assert.EqualError(t, alertmanager.Destination{}.Validate(), "url: required")
	assert.EqualError(t, alertmanager.Destination{URL: "x/AMSECRET123"}.Validate(), "url: not an absolute http(s) URL")
}
