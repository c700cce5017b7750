package discord_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/discord"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
)

const hookPath = "/api/webhooks/223704706495545344/HOOKTOKENSECRET"

func TestExecuteWebhook(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusNoContent, "")
	n := discord.New(nil)
	down, up := notifytest.Incident(t, discord.Channel, discord.Destination{WebhookURL: srv.URL + hookPath})
	up.Text = strings.Repeat("x", 3000) // cut to Discord's 2000
	reqs := srv.Deliver(t, n, down, up)
	for _, r := range reqs {
		assert.Equal(t, hookPath, r.Path)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	}
	body := reqs[0].JSON(t)
	assert.Equal(t, "**[upwatch] DOWN: API**\nAPI is down: HTTP 503", body["content"])
	assert.Equal(t, map[string]any{"parse": []any{}}, body["allowed_mentions"])
	content := reqs[1].JSON(t)["content"].(string)
	assert.True(t, strings.HasPrefix(content, "**[upwatch] UP"))
	assert.Equal(t, 2000, len([]rune(content)))
}

func TestRetryTable(t *testing.T) {
	down, _ := notifytest.Incident(t, discord.Channel, nil)
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return notifytest.To(t, discord.New(nil), discord.Channel, discord.Destination{WebhookURL: base + hookPath})
	}, down, "HOOKTOKENSECRET")
}

func TestValidate(t *testing.T) {
	assert.EqualError(t, discord.Destination{}.Validate(), "webhook_url: required")
	assert.EqualError(t, discord.Destination{WebhookURL: "discord.com/api/webhooks/1/HOOKTOKENSECRET"}.Validate(), "webhook_url: not an absolute http(s) URL")
}
