package app

import (
	"net/http"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/sendgrid"
	"github.com/upwatch/upwatch/alerting/notify/smtp"
	"github.com/upwatch/upwatch/alerting/notify/twilio"
	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
)

// buildNotifiers is the one place that knows every provider: it makes the
// notifier of each configured channel. Email goes through SendGrid when it
// is configured, else SMTP. Outbound calls use the SSRF guard unless private
// targets are allowed, so a webhook URL cannot be aimed at the metadata
// service.
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
	return out
}
