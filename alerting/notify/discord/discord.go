// Package discord posts notifications to a Discord channel through a
// webhook: POST {"content": ...} to the webhook URL
// (https://discord.com/api/webhooks/{id}/{token}), answered 204 No
// Content; a 429 carries Retry-After.
package discord

import (
	"net/http"
	"strings"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Channel is the policy channel name.
const Channel = "discord"

// maxContent is Discord's limit on a message's content.
const maxContent = 2000

// Destination is one Discord webhook of a contact group.
type Destination struct {
	WebhookURL string `yaml:"webhook_url" json:"webhook_url" secret:"url"`
}

// Validate reports every problem, each as "field: message".
func (d Destination) Validate() error { return notify.CheckURLField("webhook_url", d.WebhookURL) }

// Notifier posts one message per notification.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier; client may be nil (notify.DefaultClient).
func New(client *http.Client) *Notifier {
	return notify.NewJSONNotifier(client, Channel, func(m notify.Message, d Destination) notify.Post {
		return notify.Post{URL: d.WebhookURL, Body: body(m)}
	})
}

// body is the webhook body: m's subject (bold) and text, mentioning
// nobody.
func body(m notify.Message) map[string]any {
	content := "**" + strings.TrimSpace(m.Subject) + "**"
	if t := strings.TrimSpace(m.Text); t != "" {
		content += "\n" + t
	}
	return map[string]any{
		"content":          notify.Truncate(content, maxContent),
		"username":         "upwatch",
		"allowed_mentions": map[string]any{"parse": []string{}},
	}
}
