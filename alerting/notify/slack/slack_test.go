package slack_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/slack"
)

const (
	hookPath = "/services/T000/B000/HOOKSECRET123"
	token    = "xoxb-1234-5678-BOTSECRET"
)

func TestIncomingWebhook(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, "")
	srv.Body = "ok"
	n := slack.New(nil, "")
	down, up := notifytest.Incident(t, slack.Channel, slack.Destination{WebhookURL: srv.URL + hookPath})
	reqs := srv.Deliver(t, n, down, up)
	for i, want := range []string{"*[upwatch] DOWN: API*\nAPI is down: HTTP 503", "*[upwatch] UP: API is back up after 12m 30s*\nAPI is up again after 12m 30s"} {
		r := reqs[i]
		assert.Equal(t, hookPath, r.Path)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		assert.Empty(t, r.Header.Get("Authorization"))
		assert.Equal(t, map[string]any{"text": want}, r.JSON(t))
	}
}

func TestPostMessage(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, `{"ok":true,"channel":"C0123456789","ts":"1503435956.000247"}`)
	n := slack.New(nil, srv.URL+"/api")
	down, up := notifytest.Incident(t, slack.Channel, slack.Destination{Token: token, Channel: "C0123456789"})
	reqs := srv.Deliver(t, n, down, up)
	for i, r := range reqs {
		assert.Equal(t, "/api/chat.postMessage", r.Path)
		assert.Equal(t, "Bearer "+token, r.Header.Get("Authorization"))
		assert.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
		body := r.JSON(t)
		assert.Equal(t, "C0123456789", body["channel"])
		assert.True(t, strings.HasPrefix(body["text"].(string), []string{"*[upwatch] DOWN", "*[upwatch] UP"}[i]), body["text"])
	}
}

// chat.postMessage answers 200 with ok:false; Slack's own trouble is
// retried, a caller's mistake is not.
func TestPostMessageNotOK(t *testing.T) {
	for body, wantRetry := range map[string]bool{
		`{"ok":false,"error":"channel_not_found"}`: false,
		`{"ok":false,"error":"invalid_auth"}`:      false,
		`{"ok":false,"error":"internal_error"}`:    true,
		`{"ok":false,"error":"ratelimited"}`:       true,
	} {
		srv := notifytest.NewStandIn(t, http.StatusOK, body)
		down, _ := notifytest.Incident(t, slack.Channel, slack.Destination{Token: token, Channel: "C0123456789"})
		retry, err := slack.New(nil, srv.URL).Notify(t.Context(), down)
		require.Error(t, err, body)
		assert.Equal(t, wantRetry, retry, body)
		notifytest.AssertNoSecret(t, err, token)
	}
}

func TestRetryTable(t *testing.T) {
	down, _ := notifytest.Incident(t, slack.Channel, nil)
	t.Run("webhook", func(t *testing.T) {
		notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
			return notifytest.To(t, slack.New(nil, ""), slack.Channel, slack.Destination{WebhookURL: base + hookPath})
		}, down, "HOOKSECRET123")
	})
	t.Run("api", func(t *testing.T) {
		notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
			return notifytest.To(t, slack.New(nil, base), slack.Channel, slack.Destination{Token: token, Channel: "C1"})
		}, down, token)
	})
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		d    slack.Destination
		want string
	}{
		{slack.Destination{}, "webhook_url: required unless token is set"},
		{slack.Destination{WebhookURL: "ftp://x/HOOKSECRET123"}, "webhook_url: not an absolute http(s) URL"},
		{slack.Destination{WebhookURL: "https://hooks.slack.com/x", Token: token, Channel: "C1"}, "token: set webhook_url or token, not both"},
		{slack.Destination{Token: token}, "channel: required with token"},
		{slack.Destination{Token: "BOTSECRET", Channel: "C1"}, "token: not a Slack token"},
		{slack.Destination{WebhookURL: "https://hooks.slack.com/x", Channel: "C1"}, "channel: only with token"},
	} {
		err := c.d.Validate()
		require.Error(t, err, c.want)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "SECRET")
	}
	assert.NoError(t, slack.Destination{WebhookURL: "https://hooks.slack.com/x"}.Validate())
	assert.NoError(t, slack.Destination{Token: token, Channel: "C1"}.Validate())
}
