// Package teams posts notifications to Microsoft Teams through a Workflows
// ("When a Teams webhook request is received") webhook: a POST of a
// message whose one attachment is an Adaptive Card
// (contentType application/vnd.microsoft.card.adaptive), answered 202
// Accepted (any 2xx is taken as delivered).
package teams

import (
	"net/http"
	"strings"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Channel is the policy channel name.
const Channel = "teams"

// Destination is one Teams workflow webhook of a contact group.
type Destination struct {
	WebhookURL string `yaml:"webhook_url" json:"webhook_url" secret:"url"`
}

// Validate reports every problem, each as "field: message".
func (d Destination) Validate() error { return notify.CheckURLField("webhook_url", d.WebhookURL) }

// Notifier posts one card per notification.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier posting Card(m); client may be nil
// (notify.DefaultClient).
func New(client *http.Client) *Notifier {
	return notify.NewJSONNotifier(client, Channel, func(m notify.Message, d Destination) notify.Post {
		return notify.Post{URL: d.WebhookURL, Body: Card(m)}
	})
}

// Card is the webhook body: a message with m as an Adaptive Card (schema
// 1.4): the subject as a heading coloured by kind, the text, facts and a
// link to the incident.
func Card(m notify.Message) map[string]any {
	color := "Attention"
	switch m.Kind {
	case notify.KindUp:
		color = "Good"
	case notify.KindDegraded, notify.KindTLSExpiry:
		color = "Warning"
	}
	facts := []map[string]string{{"title": "Target", "value": m.TargetName}}
	if m.TargetURL != "" {
		facts = append(facts, map[string]string{"title": "URL", "value": m.TargetURL})
	}
	if m.Cause != "" {
		facts = append(facts, map[string]string{"title": "Cause", "value": m.Cause})
	}
	if m.Duration > 0 {
		facts = append(facts, map[string]string{"title": "Duration", "value": notify.HumanDuration(m.Duration)})
	}
	body := []map[string]any{
		{"type": "TextBlock", "text": notify.Truncate(strings.TrimSpace(m.Subject), 500), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true},
		{"type": "TextBlock", "text": notify.Truncate(strings.TrimSpace(m.Text), 5000), "wrap": true},
		{"type": "FactSet", "facts": facts},
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    body,
	}
	if m.Link != "" {
		card["actions"] = []map[string]any{{"type": "Action.OpenUrl", "title": "Open", "url": m.Link}}
	}
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	}
}
