package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify/ntfy"
)

const validDestinations = `
contact_groups:
  - name: chat
    slack:
      - webhook_url: https://hooks.slack.com/services/T0/B0/XYZ
      - {token: xoxb-1-2-abc, channel: C0123456789}
    teams: [{webhook_url: "https://prod-01.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=abc"}]
    discord: [{webhook_url: https://discord.com/api/webhooks/1/tok}]
    telegram: [{bot_token: "123456:ABC-def", chat_id: "-1001234567890"}]
    ntfy: [{topic: upwatch-alerts, token: tk_abc, priority: 4}]
    alertmanager: [{url: https://bridge.example.com/alerts}]
  - name: pager
    pagerduty: [{routing_key: 0123456789abcdef0123456789abcdef, region: eu}]
    opsgenie: [{api_key: eb243592-faa2-4ba2-a551-1afdf565c889, region: eu, priority: P2}]
alert_policies:
  - {name: p, channels: [slack, teams, discord, telegram, pagerduty, opsgenie, ntfy, alertmanager], contact_groups: [chat, pager]}
`

func TestDestinationsConfig(t *testing.T) {
	cfg, err := Parse(strings.NewReader(validDestinations), "t.yaml", noEnv)
	require.NoError(t, err)
	g := cfg.ContactGroups[0]
	require.Len(t, g.Slack, 2)
	require.Equal(t, "C0123456789", g.Slack[1].Channel)
	rs := g.Destinations.Recipients(g.Name)
	require.Len(t, rs, 7)
	require.Equal(t, "slack", rs[0].Channel)
	require.JSONEq(t, `{"webhook_url":"https://hooks.slack.com/services/T0/B0/XYZ"}`, rs[0].Endpoint)
	require.Equal(t, "alertmanager", rs[6].Channel)
	require.Equal(t, "eu", cfg.ContactGroups[1].PagerDuty[0].Region)
}

// Every bad destination field is reported at once, each by its path; no
// error quotes a credential.
func TestInvalidDestinations(t *testing.T) {
	err := requireErrors(t, `
contact_groups:
  - name: g
    slack:
      - {token: xoxb-SECRET}
      - {}
    teams: [{webhook_url: "ftp://x/SECRET"}]
    discord: [{}]
    telegram: [{bot_token: SECRET, chat_id: general}]
    pagerduty: [{routing_key: SECRET, severity: fatal}]
    opsgenie: [{region: apac}]
    ntfy: [{server: ntfy.sh}]
    alertmanager: [{url: "<secret>"}]
alert_policies:
  - {name: p, channels: [slack, pager], contact_groups: [g]}`,
		[]string{
			"contact_groups[0].slack[0].channel: required with token",
			"contact_groups[0].slack[1].webhook_url: required unless token is set",
			"contact_groups[0].teams[0].webhook_url: not an absolute http(s) URL",
			"contact_groups[0].discord[0].webhook_url: required",
			"contact_groups[0].telegram[0].bot_token: not a bot token",
			`contact_groups[0].telegram[0].chat_id: "general" is not a chat id`,
			"contact_groups[0].pagerduty[0].routing_key: not an Events API v2 integration key",
			`contact_groups[0].pagerduty[0].severity: "fatal" is not one of`,
			"contact_groups[0].opsgenie[0].api_key: required",
			`contact_groups[0].opsgenie[0].region: "apac" is not us or eu`,
			"contact_groups[0].ntfy[0].server: not an absolute http(s) URL",
			"contact_groups[0].ntfy[0].topic: required",
			"contact_groups[0].alertmanager[0].url: not an absolute http(s) URL",
			`alert_policies[0].channels[1]: unknown channel "pager" (want one of email, sms, webhook, slack, teams, discord, telegram, pagerduty, opsgenie, ntfy, alertmanager)`,
		})
	require.NotContains(t, err.Error(), "SECRET")
}

func TestRedactedDestinationRefused(t *testing.T) {
	requireErrors(t, `
contact_groups:
  - name: g
    pagerduty: [{routing_key: "<secret>#0a1b2c3d"}]`,
		[]string{"contact_groups[0].pagerduty[0].routing_key: is a redacted value"})
}

// In the config file a destination's credential may be env:NAME or
// file:/path, resolved at load like the providers' secrets; a missing one
// is reported by its path.
func TestDestinationSecretReferences(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "pd.key")
	require.NoError(t, os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600))
	t.Setenv("UPWATCH_TEST_SLACK_HOOK", "https://hooks.slack.com/services/T0/B0/FROMENV")
	cfg, err := Parse(strings.NewReader(`
contact_groups:
  - name: g
    slack: [{webhook_url: "env:UPWATCH_TEST_SLACK_HOOK"}]
    pagerduty: [{routing_key: "file:`+keyFile+`"}]
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, "https://hooks.slack.com/services/T0/B0/FROMENV", cfg.ContactGroups[0].Slack[0].WebhookURL)
	require.Equal(t, "0123456789abcdef0123456789abcdef", cfg.ContactGroups[0].PagerDuty[0].RoutingKey)

	requireErrors(t, `
contact_groups:
  - name: g
    telegram: [{bot_token: "env:UPWATCH_TEST_NOT_SET", chat_id: "1"}]`,
		[]string{"contact_groups[0].telegram[0].bot_token: environment variable UPWATCH_TEST_NOT_SET is not set"})
}

// Outside the config file (the API) a reference is refused: it would read
// the server's environment or files.
func TestDestinationReferenceRefusedOutsideTheFile(t *testing.T) {
	errs := ValidateContactGroup("group", ContactGroup{Name: "g", Destinations: Destinations{
		Ntfy: []ntfy.Destination{{Topic: "t", Token: "file:/etc/shadow"}},
	}})
	require.Len(t, errs, 1)
	require.Equal(t, "group.ntfy[0].token", errs[0].Path)
	require.Contains(t, errs[0].Msg, "references are for the config file")
}
