package app

import (
	"net"
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
	"github.com/upwatch/upwatch/secret"
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

// alertRoutes resolves each target's policy and contact groups into the
// engine's routes. Every target is routed, so its incidents are recorded
// even when its policy tells nobody.
func alertRoutes(cfg *config.Config) (map[string]alerting.Route, []alerting.Window) {
	groups := map[string]config.ContactGroup{}
	for _, g := range cfg.ContactGroups {
		groups[g.Name] = g
	}
	policies := map[string]config.AlertPolicy{}
	for _, p := range cfg.Policies {
		policies[p.Name] = p
	}
	globalHook := ""
	if cfg.Alerting.Webhook != nil {
		globalHook = cfg.Alerting.Webhook.URL
	}
	routes := make(map[string]alerting.Route, len(cfg.Targets))
	for _, t := range cfg.Targets {
		r := alerting.Route{Name: t.Name, URL: targetURL(t.Target), Labels: t.Labels, DependsOn: t.DependsOn, Interval: t.Interval}
		if pol, ok := policies[t.AlertPolicy]; ok {
			r.Policy = pol.Policy
			r.Channels = pol.Channels
			r.Recipients = recipients(groups, pol.ContactGroups, globalHook)
			r.Escalation = recipients(groups, pol.EscalateTo, globalHook)
		}
		routes[t.ID] = r
	}
	return routes, cfg.Maintenance
}

// recipients flattens groups into distinct recipients: each member, each
// group webhook, and the global webhook once.
func recipients(groups map[string]config.ContactGroup, names []string, globalHook string) []notify.Recipient {
	var out []notify.Recipient
	seen := map[notify.Recipient]bool{}
	add := func(r notify.Recipient) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, name := range names {
		g := groups[name]
		for _, m := range g.Members {
			add(notify.Recipient{Name: m.Name, Email: m.Email, Phone: m.Phone})
		}
		for _, w := range g.Webhooks {
			add(notify.Recipient{Name: g.Name, WebhookURL: w})
		}
	}
	if globalHook != "" && len(names) > 0 {
		add(notify.Recipient{Name: "webhook", WebhookURL: globalHook})
	}
	return out
}

// targetURL is what a message shows as the target's address.
func targetURL(t prober.Target) string {
	switch {
	case t.HTTP != nil:
		return secret.RedactURL(t.HTTP.URL, secret.URLCredentials)
	case t.TCP != nil:
		return "tcp://" + t.TCP.Address
	case t.TLS != nil:
		return "tls://" + t.TLS.Address
	case t.DNS != nil:
		server := t.DNS.Server
		if server == "" {
			server = "system-resolver"
		} else if h, p, err := net.SplitHostPort(server); err == nil {
			server = net.JoinHostPort(h, p)
		}
		return "dns://" + server + "/" + t.DNS.Name + "?type=" + t.DNS.Type
	}
	return ""
}
