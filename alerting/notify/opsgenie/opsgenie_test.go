package opsgenie_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/opsgenie"
)

const apiKey = "eb243592-faa2-4ba2-a551-1afdf565c889"

// DOWN creates the alert with the incident's alias; UP closes it by that
// alias.
func TestCreateThenCloseByAlias(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusAccepted, `{"result":"Request will be processed","took":0.302,"requestId":"43a29c5c"}`)
	n := opsgenie.New(nil, srv.URL)
	down, up := notifytest.Incident(t, opsgenie.Channel, opsgenie.Destination{APIKey: apiKey, Priority: "P1"})
	reqs := srv.Deliver(t, n, down, up)
	for _, r := range reqs {
		assert.Equal(t, "GenieKey "+apiKey, r.Header.Get("Authorization"))
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	}
	create, close := reqs[0], reqs[1]
	assert.Equal(t, "/v2/alerts", create.Path)
	body := create.JSON(t)
	alias := body["alias"].(string)
	assert.Equal(t, "upwatch-a1b2c3d4e5f60708", alias)
	assert.Equal(t, "[upwatch] DOWN: API", body["message"])
	assert.Equal(t, "API is down: HTTP 503", body["description"])
	assert.Equal(t, "P1", body["priority"])
	assert.Equal(t, "upwatch", body["source"])

	assert.Equal(t, "/v2/alerts/"+alias+"/close", close.Path)
	assert.Equal(t, "identifierType=alias", close.RawQuery)
	assert.Equal(t, "upwatch", close.JSON(t)["source"])
}

func TestMessageLimit(t *testing.T) {
	down, _ := notifytest.Incident(t, opsgenie.Channel, nil)
	down.Subject = string(make([]rune, 300))
	body := opsgenie.CreateRequest(down, opsgenie.Destination{}, "a")
	assert.Len(t, []rune(body["message"].(string)), 130)
}

func TestRetryTable(t *testing.T) {
	down, up := notifytest.Incident(t, opsgenie.Channel, nil)
	for _, m := range []notify.Message{down, up} {
		t.Run(m.Kind, func(t *testing.T) {
			notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
				return notifytest.To(t, opsgenie.New(nil, base), opsgenie.Channel, opsgenie.Destination{APIKey: apiKey})
			}, m, apiKey)
		})
	}
}

func TestValidate(t *testing.T) {
	assert.EqualError(t, opsgenie.Destination{}.Validate(), "api_key: required")
	err := opsgenie.Destination{APIKey: "not a key!", Region: "apac", Priority: "P9"}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "api_key: not an Opsgenie API key")
	assert.Contains(t, err.Error(), `region: "apac" is not us or eu`)
	assert.Contains(t, err.Error(), `priority: "P9" is not P1 to P5`)
	assert.NoError(t, opsgenie.Destination{APIKey: apiKey, Region: "eu"}.Validate())
}
