package telegram_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/telegram"
)

const token = "123456789:AAHBOTSECRETxyz_-"

func TestSendMessage(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, `{"ok":true,"result":{"message_id":7}}`)
	n := telegram.New(nil, srv.URL)
	down, up := notifytest.Incident(t, telegram.Channel, telegram.Destination{BotToken: token, ChatID: "-1001234567890"})
	reqs := srv.Deliver(t, n, down, up)
	for i, r := range reqs {
		assert.Equal(t, "/bot"+token+"/sendMessage", r.Path)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		var body struct {
			ChatID json.Number `json:"chat_id"`
			Text   string      `json:"text"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &body))
		assert.Equal(t, json.Number("-1001234567890"), body.ChatID, "chat_id is sent as a number")
		assert.Equal(t, []string{"[upwatch] DOWN: API\n\nAPI is down: HTTP 503", "[upwatch] UP: API is back up after 12m 30s\n\nAPI is up again after 12m 30s"}[i], body.Text)
	}
}

func TestChannelUsername(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, `{"ok":true}`)
	down, _ := notifytest.Incident(t, telegram.Channel, telegram.Destination{BotToken: token, ChatID: "@upwatch_alerts"})
	_, err := telegram.New(nil, srv.URL).Notify(t.Context(), down)
	require.NoError(t, err)
	assert.Equal(t, "@upwatch_alerts", srv.Requests()[0].JSON(t)["chat_id"])
}

// A 429 says how long to wait in parameters.retry_after; the token (in
// the URL path) is in no error.
func TestErrorsFromTheBody(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusTooManyRequests, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}`)
	down, _ := notifytest.Incident(t, telegram.Channel, telegram.Destination{BotToken: token, ChatID: "42"})
	n := telegram.New(nil, srv.URL)
	retry, err := n.Notify(t.Context(), down)
	require.Error(t, err)
	assert.True(t, retry)
	after, ok := notify.RetryAfter(err)
	assert.True(t, ok)
	assert.Equal(t, 35*time.Second, after)

	srv.Status, srv.Body = http.StatusBadRequest, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`
	retry, err = n.Notify(t.Context(), down)
	require.Error(t, err)
	assert.False(t, retry)
	assert.Contains(t, err.Error(), "chat not found")
	notifytest.AssertNoSecret(t, err, token, "AAHBOTSECRET")

	// Unreachable: the URL error is cut to scheme and host.
	srv.Close()
	_, err = n.Notify(t.Context(), down)
	require.Error(t, err)
	notifytest.AssertNoSecret(t, err, token, "AAHBOTSECRET")
}

func TestRetryTable(t *testing.T) {
	down, _ := notifytest.Incident(t, telegram.Channel, nil)
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return notifytest.To(t, telegram.New(nil, base), telegram.Channel, telegram.Destination{BotToken: token, ChatID: "42"})
	}, down, token, "AAHBOTSECRET")
}

func TestValidate(t *testing.T) {
	err := telegram.Destination{}.Validate()
	assert.EqualError(t, err, "bot_token: required\nchat_id: required")
	err = telegram.Destination{BotToken: "AAHBOTSECRET", ChatID: "general"}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bot_token: not a bot token")
	assert.Contains(t, err.Error(), `chat_id: "general" is not a chat id`)
	assert.False(t, strings.Contains(err.Error(), "AAHBOTSECRET"))
	assert.NoError(t, telegram.Destination{BotToken: token, ChatID: "-100123"}.Validate())
}
