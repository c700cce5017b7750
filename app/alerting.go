package app

import (
	"net/http"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/alertmanager"
	"github.com/upwatch/upwatch/alerting/notify/discord"
	"github.com/upwatch/upwatch/alerting/notify/ntfy"
	"github.com/upwatch/upwatch/alerting/notify/opsgenie"
	"github.com/upwatch/upwatch/alerting/notify/pagerduty"
	"github.com/upwatch/upwatch/alerting/notify/sendgrid"
	"github.com/upwatch/upwatch/alerting/notify/slack"
	"github.com/upwatch/upwatch/alerting/notify/smtp"
	"github.com/upwatch/upwatch/alerting/notify/teams"
	"github.com/upwatch/upwatch/alerting/notify/telegram"
	"github.com/upwatch/upwatch/alerting/notify/twilio"
	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
)

// buildNotifiers is the one place that knows every provider: it makes the
// notifier of each configured channel. Email goes through SendGrid when it
// is configured, else SMTP. Outbound calls use the SSRF guard unless private
// targets are allowed, so a webhook URL (or a Slack, Teams, Discord,
// Alertmanager or ntfy URL a contact group gives) cannot be aimed at the
// metadata service. The chat and paging channels need no global settings
// (a contact group's destination holds them), so they are always there.
func buildNotifiers(cfg *config.Config, p *prober.Prober) map[string]notify.Notifier {
	a := cfg.Alerting
	client := &http.Client{
		Timeout: notify.DefaultTimeout,
		Transport: &http.Transport{
			DialContext:         p.Dialer(10 * time.Second).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	out := map[string]notify.Notifier{}
	switch {
	case a.SendGrid != nil:
		out[alerting.ChannelEmail] = sendgrid.New(*a.SendGrid, client)
	case a.SMTP != nil:
		out[alerting.ChannelEmail] = smtp.New(*a.SMTP, nil)
	}
	if a.Twilio != nil {
		out[alerting.ChannelSMS] = twilio.New(*a.Twilio, client)
	}
	if a.Webhook != nil {
		out[alerting.ChannelWebhook] = webhook.New(*a.Webhook, client)
	}
	out[slack.Channel] = slack.New(client, "")
	out[teams.Channel] = teams.New(client)
	out[discord.Channel] = discord.New(client)
	out[telegram.Channel] = telegram.New(client, "")
	out[pagerduty.Channel] = pagerduty.New(client, "")
	out[opsgenie.Channel] = opsgenie.New(client, "")
	out[ntfy.Channel] = ntfy.New(client)
	out[alertmanager.Channel] = alertmanager.New(client)
	return out
}
