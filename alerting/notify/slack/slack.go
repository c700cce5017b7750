// Package slack posts notifications to Slack, through an incoming webhook
// (POST of {"text": ...} to the webhook URL, answered 200 "ok") or through
// the Web API's chat.postMessage (POST {api}/chat.postMessage with
// "Authorization: Bearer <bot token>", JSON {"channel", "text"}, answered
// 200 with {"ok": true} or {"ok": false, "error": "..."}).
package slack

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Channel is the policy channel name.
const Channel = "slack"

// DefaultAPIURL is the Web API's base.
const DefaultAPIURL = "https://slack.com/api"

// maxText is how much text one message carries (Slack truncates
// messages over 40,000 characters; alerts stay far below).
const maxText = 3000

// Destination is one Slack destination of a contact group: an incoming
// webhook, or a bot token and a channel.
type Destination struct {
	WebhookURL string `yaml:"webhook_url,omitempty" json:"webhook_url,omitempty" secret:"url"`
	Token      string `yaml:"token,omitempty" json:"token,omitempty" secret:"token"`
	Channel    string `yaml:"channel,omitempty" json:"channel,omitempty"`
}

// Validate reports every problem, each as "field: message".
func (d Destination) Validate() error {
	var errs []error
	switch {
	case d.WebhookURL == "" && d.Token == "":
		errs = append(errs, errors.New("webhook_url: required unless token is set"))
	case d.WebhookURL != "" && d.Token != "":
		errs = append(errs, errors.New("token: set webhook_url or token, not both"))
	}
	if d.WebhookURL != "" {
		if err := notify.CheckHTTPURL(d.WebhookURL); err != nil {
			errs = append(errs, fmt.Errorf("webhook_url: %w", err))
		}
		if d.Channel != "" {
			errs = append(errs, errors.New("channel: only with token (an incoming webhook posts to its own channel)"))
		}
	}
	if d.Token != "" {
		if !strings.HasPrefix(d.Token, "xox") {
			errs = append(errs, errors.New("token: not a Slack token (xoxb-…)"))
		}
		if d.Channel == "" {
			errs = append(errs, errors.New("channel: required with token (a channel ID like C0123456789)"))
		}
	}
	return errors.Join(errs...)
}

// Notifier posts one Slack message per notification.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier; client may be nil (notify.DefaultClient), api
// empty for DefaultAPIURL.
func New(client *http.Client, api string) *Notifier {
	api = strings.TrimRight(cmp.Or(api, DefaultAPIURL), "/")
	return notify.NewJSONNotifier(client, Channel, func(m notify.Message, d Destination) notify.Post {
		return post(api, m, d)
	})
}

// post is m's subject and text, to the incoming webhook or through
// chat.postMessage.
func post(api string, m notify.Message, d Destination) notify.Post {
	msg := notify.Truncate(text(m), maxText)
	if d.WebhookURL != "" {
		return notify.Post{URL: d.WebhookURL, Provider: "slack webhook", Body: map[string]any{"text": msg}}
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+d.Token)
	h.Set("Content-Type", "application/json; charset=utf-8")
	return notify.Post{URL: api + "/chat.postMessage", Header: h, Body: map[string]any{"channel": d.Channel, "text": msg},
		Detail: notify.JSONDetail("error"), Answer: apiResult}
}

func text(m notify.Message) string {
	s := "*" + strings.TrimSpace(m.Subject) + "*"
	if t := strings.TrimSpace(m.Text); t != "" {
		s += "\n" + t
	}
	return s
}

// apiResult reads a Web API answer: HTTP 200 carries {"ok": false} on
// failure. A failure of Slack's own is retried; any other (a bad token, an
// unknown channel) is permanent.
func apiResult(body []byte, retry bool, err error) (bool, error) {
	if err != nil {
		return retry, err
	}
	var r struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return true, fmt.Errorf("slack: unreadable answer: %s", notify.Snippet(body))
	}
	if r.OK {
		return false, nil
	}
	switch r.Error {
	case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
		return true, fmt.Errorf("slack: %s", notify.Snippet([]byte(r.Error)))
	}
	return false, fmt.Errorf("slack: %s", notify.Snippet([]byte(r.Error)))
}
