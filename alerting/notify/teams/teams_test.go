package teams_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/teams"
)

const hookPath = "/workflows/abc/triggers/manual/paths/invoke"
const hookQuery = "api-version=1&sig=SIGSECRET123"

func TestWorkflowWebhookAdaptiveCard(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusAccepted, "")
	n := teams.New(nil)
	down, up := notifytest.Incident(t, teams.Channel, teams.Destination{WebhookURL: srv.URL + hookPath + "?" + hookQuery})
	reqs := srv.Deliver(t, n, down, up)
	for i, r := range reqs {
		assert.Equal(t, hookPath, r.Path)
		assert.Equal(t, hookQuery, r.RawQuery)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		body := r.JSON(t)
		assert.Equal(t, "message", body["type"])
		atts := body["attachments"].([]any)
		require.Len(t, atts, 1)
		att := atts[0].(map[string]any)
		assert.Equal(t, "application/vnd.microsoft.card.adaptive", att["contentType"])
		assert.Contains(t, att, "contentUrl")
		card := att["content"].(map[string]any)
		assert.Equal(t, "AdaptiveCard", card["type"])
		assert.Equal(t, "http://adaptivecards.io/schemas/adaptive-card.json", card["$schema"])
		assert.Equal(t, "1.4", card["version"])
		blocks := card["body"].([]any)
		head := blocks[0].(map[string]any)
		assert.Equal(t, "TextBlock", head["type"])
		assert.Equal(t, []string{"[upwatch] DOWN: API", "[upwatch] UP: API is back up after 12m 30s"}[i], head["text"])
		assert.Equal(t, []string{"Attention", "Good"}[i], head["color"])
		action := card["actions"].([]any)[0].(map[string]any)
		assert.Equal(t, "Action.OpenUrl", action["type"])
		assert.Equal(t, down.Link, action["url"])
	}
}

func TestRetryTable(t *testing.T) {
	down, _ := notifytest.Incident(t, teams.Channel, nil)
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return notifytest.To(t, teams.New(nil), teams.Channel, teams.Destination{WebhookURL: base + hookPath + "?" + hookQuery})
	}, down, "SIGSECRET123")
}

func TestValidate(t *testing.T) {
	assert.EqualError(t, teams.Destination{}.Validate(), "webhook_url: required")
	assert.EqualError(t, teams.Destination{WebhookURL: "/x?sig=SIGSECRET123"}.Validate(), "webhook_url: not an absolute http(s) URL")
	assert.NoError(t, teams.Destination{WebhookURL: "https://prod.westeurope.logic.azure.com/workflows/x"}.Validate())
}
