package pagerduty_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/pagerduty"
)

const routingKey = "R0UT1NGKEYSECRETabcdef0123456789"

// DOWN triggers and UP resolves the same alert: one dedup_key per incident.
func TestTriggerThenResolve(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusAccepted, `{"status":"success","message":"Event processed","dedup_key":"x"}`)
	n := pagerduty.New(nil, srv.URL)
	down, up := notifytest.Incident(t, pagerduty.Channel, pagerduty.Destination{RoutingKey: routingKey})
	reminder := down
	reminder.Kind = notify.KindReminder
	reqs := srv.Deliver(t, n, down, reminder, up)
	for _, r := range reqs {
		assert.Equal(t, "/v2/enqueue", r.Path)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.Empty(t, r.Header.Get("Authorization"), "the routing key goes in the body")
	}
	trigger, again, resolve := reqs[0].JSON(t), reqs[1].JSON(t), reqs[2].JSON(t)
	assert.Equal(t, "trigger", trigger["event_action"])
	assert.Equal(t, routingKey, trigger["routing_key"])
	key := trigger["dedup_key"].(string)
	assert.Equal(t, "upwatch-a1b2c3d4e5f60708", key)
	payload := trigger["payload"].(map[string]any)
	assert.Equal(t, "[upwatch] DOWN: API", payload["summary"])
	assert.Equal(t, "https://api.example/health", payload["source"])
	assert.Equal(t, "critical", payload["severity"])
	assert.Equal(t, "2026-03-04T05:06:07Z", payload["timestamp"])
	assert.Equal(t, "HTTP 503", payload["custom_details"].(map[string]any)["cause"])
	assert.Equal(t, []any{map[string]any{"href": down.Link, "text": "upwatch incident"}}, trigger["links"])

	assert.Equal(t, "trigger", again["event_action"])
	assert.Equal(t, key, again["dedup_key"], "a reminder adds to the open alert")

	assert.Equal(t, map[string]any{"routing_key": routingKey, "event_action": "resolve", "dedup_key": key}, resolve)
}

func TestRegion(t *testing.T) {
	d := pagerduty.Destination{RoutingKey: routingKey, Region: "eu", Severity: "error"}
	require.NoError(t, d.Validate())
	down, _ := notifytest.Incident(t, pagerduty.Channel, d)
	e := pagerduty.NewEvent(down, d)
	assert.Equal(t, "error", e.Payload.Severity)
	assert.Equal(t, "https://events.eu.pagerduty.com", pagerduty.EUEventsURL)
}

func TestRetryTable(t *testing.T) {
	down, _ := notifytest.Incident(t, pagerduty.Channel, nil)
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return notifytest.To(t, pagerduty.New(nil, base), pagerduty.Channel, pagerduty.Destination{RoutingKey: routingKey})
	}, down, routingKey)
}

func TestValidate(t *testing.T) {
	assert.EqualError(t, pagerduty.Destination{}.Validate(), "routing_key: required")
	err := pagerduty.Destination{RoutingKey: "short-SECRET", Region: "ap", Severity: "fatal"}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "routing_key: not an Events API v2 integration key")
	assert.Contains(t, err.Error(), `region: "ap" is not us or eu`)
	assert.Contains(t, err.Error(), `severity: "fatal" is not one of critical, error, warning, info`)
	assert.NotContains(t, err.Error(), "SECRET")
}
