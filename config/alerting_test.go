package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
)

const validAlerting = `
alerting:
  link: https://status.example.com
  sendgrid: {api_key: SG.test, from: alerts@example.com}
  twilio: {account_sid: AC0123456789abcdef0123456789abcdef, auth_token: tok, from: "+15005550006"}
  webhook: {secret: whsec}
  locations: {suspect_share: 0.6, suspect_min_targets: 10}
contact_groups:
  - name: oncall
    members:
      - {name: Alice, email: alice@example.com, phone: "+4915112345678"}
      - {name: Bob, email: bob@example.com}
    webhooks: [https://hooks.example.com/upwatch]
  - name: managers
    members: [{name: Carol, email: carol@example.com}]
alert_policies:
  - name: default
    failure_threshold: 3
    success_threshold: 2
    repeat_interval: 30m
    channels: [email, sms, webhook]
    contact_groups: [oncall]
    escalate_after: 15m
    escalate_to: [managers]
    down_when: 2
    stale_after: 5m
maintenance:
  - {name: sunday, targets: [web], cron: "0 2 * * SUN", duration: 2h, time_zone: Europe/Berlin}
targets:
  - {name: gateway, kind: tcp, tcp: {address: "gw:22"}}
  - {name: web, kind: http, http: {url: "https://example.com/"}, alert_policy: default, depends_on: [gateway]}
`

func TestAlertingConfig(t *testing.T) {
	cfg, err := Parse(strings.NewReader(validAlerting), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, "default", cfg.Targets[1].AlertPolicy)
	require.Equal(t, []string{"gateway"}, cfg.Targets[1].DependsOn)
	pol := cfg.Policies[0]
	require.Equal(t, 30*time.Minute, pol.RepeatInterval)
	require.Equal(t, 3, pol.FailureThreshold)
	require.Equal(t, []string{"managers"}, pol.EscalateTo)
	require.Equal(t, alerting.Quorum("2"), pol.DownWhen, "a number reads as the quorum's text")
	require.Equal(t, 5*time.Minute, pol.StaleAfter)
	require.Equal(t, alerting.LocationOptions{SuspectShare: 0.6, SuspectMinTargets: 10}, cfg.Alerting.Locations.Options())
	require.Len(t, cfg.ProberTargets(), 2)
	require.Equal(t, "web", cfg.ProberTargets()[1].ID)
}

func TestInvalidAlertingConfig(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"bad contacts", `
contact_groups:
  - name: g
    members:
      - {email: "not an email"}
      - {phone: "0151 1234"}
      - {name: nobody}
    webhooks: ["ftp://x"]`,
			[]string{
				`contact_groups[0].members[0].email: "not an email" is not an email address`,
				`contact_groups[0].members[1].phone: "0151 1234" is not an E.164 number`,
				`contact_groups[0].members[2]: needs an email or a phone`,
				`contact_groups[0].webhooks[0]: must be an http or https URL`,
			}},
		{"policy references", `
contact_groups: [{name: g, members: [{email: a@example.com}]}]
alert_policies:
  - {name: p, channels: [email, pager, sms], contact_groups: [g, nope], escalate_to: [other]}`,
			[]string{
				"alert_policies[0].channels[0]: email needs alerting.sendgrid or alerting.smtp",
				`alert_policies[0].channels[1]: unknown channel "pager"`,
				"alert_policies[0].channels[2]: sms needs alerting.twilio",
				`alert_policies[0].contact_groups[1]: unknown contact group "nope"`,
				`alert_policies[0].escalate_to[0]: unknown contact group "other"`,
				"alert_policies[0].escalate_after: is required with escalate_to",
			}},
		{"target references", `
targets:
  - {name: a, kind: tcp, tcp: {address: "h:1"}, alert_policy: missing, depends_on: [a, ghost]}`,
			[]string{
				`targets[0].alert_policy: unknown alert policy "missing"`,
				"targets[0].depends_on[0]: a target cannot depend on itself",
				`targets[0].depends_on[1]: unknown target id "ghost"`,
			}},
		{"dependency cycles", `
targets:
  - {name: ok, kind: tcp, tcp: {address: "h:1"}}
  - {name: a, kind: tcp, tcp: {address: "h:1"}, depends_on: [ok, b]}
  - {name: b, kind: tcp, tcp: {address: "h:1"}, depends_on: [a]}
  - {name: c, kind: tcp, tcp: {address: "h:1"}, depends_on: [d]}
  - {name: d, kind: tcp, tcp: {address: "h:1"}, depends_on: [e]}
  - {name: e, kind: tcp, tcp: {address: "h:1"}, depends_on: [c, ok]}`,
			[]string{
				"targets[1].depends_on: cycle a → b → a",
				"targets[2].depends_on: cycle b → a → b",
				"targets[3].depends_on: cycle c → d → e → c",
				"targets[4].depends_on: cycle d → e → c → d",
				"targets[5].depends_on: cycle e → c → d → e",
			}},
		{"bad maintenance", `
maintenance:
  - {name: m, cron: "61 * * * *", duration: 1h, time_zone: Mars/Olympus}`,
			[]string{"maintenance[0].time_zone:", "maintenance[0].cron:"}},
		{"quorum", `
alerting:
  sendgrid: {api_key: SG.test, from: alerts@example.com}
  locations: {stale_after: 1ms, suspect_window: 48h, suspect_share: 1.5, suspect_min_targets: -2}
contact_groups: [{name: g, members: [{email: a@example.com}]}]
alert_policies:
  - {name: p, channels: [email], contact_groups: [g], down_when: most, stale_after: -1s}
  - {name: q, channels: [email], contact_groups: [g], down_when: 0}`,
			[]string{
				"alerting.locations.stale_after: must be from 1s to 24h0m0s (got 1ms)",
				"alerting.locations.suspect_window: must be from 1s to 24h0m0s (got 48h0m0s)",
				"alerting.locations.suspect_share: must be a share from 0",
				"alerting.locations.suspect_min_targets: must be from 0",
				`alert_policies[0].down_when: must be majority, all, any or a number from 1 to 100 (got "most")`,
				"alert_policies[0].stale_after: must be from 0 (3 intervals) to 24h0m0s (got -1s)",
				`alert_policies[1].down_when: must be majority, all, any or a number from 1 to 100 (got "0")`,
			}},
		{"provider config", `
alerting:
  twilio: {account_sid: nope, from: "123"}
  link: "not a url"`,
			[]string{"alerting.twilio.account_sid", "alerting.twilio.auth_token", "alerting.twilio.from", "alerting.link: must be an http or https URL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireErrors(t, tc.yaml, tc.want)
		})
	}
}

func TestBrokenTemplateIsAConfigError(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "down.subject.tmpl"), []byte("{{ .Nope "), 0o600))
	_, err := Parse(strings.NewReader("alerting: {templates_dir: "+dir+"}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, "alerting.templates_dir:")
	require.ErrorContains(t, err, "down.subject.tmpl")
}

func TestAlertingExampleIsValid(t *testing.T) {
	env := map[string]string{"SENDGRID_API_KEY": "SG.x", "TWILIO_AUTH_TOKEN": "t", "UPWATCH_WEBHOOK_SECRET": "w"}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := Load("../examples/alerting.yaml", noEnv)
	require.NoError(t, err)
	require.Len(t, cfg.Policies, 1)
	require.Equal(t, 2*time.Second, cfg.Policies[0].DegradedLatency)
}
