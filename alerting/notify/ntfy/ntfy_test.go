package ntfy_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/ntfy"
)

const (
	topic = "upwatch-TOPICSECRET"
	token = "tk_ACCESSTOKENSECRET"
)

func TestPublishJSON(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, `{"id":"sPs71M8A2T","event":"message","topic":"x"}`)
	n := ntfy.New(nil)
	down, up := notifytest.Incident(t, ntfy.Channel, ntfy.Destination{Server: srv.URL, Topic: topic, Token: token})
	reqs := srv.Deliver(t, n, down, up)
	for _, r := range reqs {
		assert.Equal(t, "/", r.Path, "JSON publishing posts to the server's root")
		assert.Equal(t, "Bearer "+token, r.Header.Get("Authorization"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	}
	assert.Equal(t, map[string]any{
		"topic": topic, "title": "[upwatch] DOWN: API", "message": "API is down: HTTP 503",
		"priority": float64(5), "tags": []any{"rotating_light"}, "click": down.Link,
	}, reqs[0].JSON(t))
	assert.Equal(t, map[string]any{
		"topic": topic, "title": "[upwatch] UP: API is back up after 12m 30s", "message": "API is up again after 12m 30s",
		"priority": float64(3), "tags": []any{"white_check_mark"}, "click": down.Link,
	}, reqs[1].JSON(t))
}

func TestNoTokenNoAuthorization(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, `{}`)
	down, _ := notifytest.Incident(t, ntfy.Channel, ntfy.Destination{Server: srv.URL + "/", Topic: topic, Priority: 4})
	_, err := ntfy.New(nil).Notify(t.Context(), down)
	require.NoError(t, err)
	r := srv.Requests()[0]
	assert.Empty(t, r.Header.Get("Authorization"))
	assert.Equal(t, float64(4), r.JSON(t)["priority"])
}

func TestRetryTable(t *testing.T) {
	down, _ := notifytest.Incident(t, ntfy.Channel, nil)
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return notifytest.To(t, ntfy.New(nil), ntfy.Channel, ntfy.Destination{Server: base, Topic: topic, Token: token})
	}, down, topic, token)
}

func TestValidate(t *testing.T) {
	assert.EqualError(t, ntfy.Destination{}.Validate(), "topic: required")
	err := ntfy.Destination{Server: "ntfy.sh", Topic: "has space SECRET", Priority: 9}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "server: not an absolute http(s) URL")
	assert.Contains(t, err.Error(), "topic: 1 to 64 letters")
	assert.Contains(t, err.Error(), "priority: 9 is not 1 to 5")
	assert.NotContains(t, err.Error(), "SECRET")
}
