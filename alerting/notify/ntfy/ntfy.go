// Package ntfy publishes notifications to an ntfy topic (ntfy.sh or a
// server of your own) as JSON: POST {server}/ with {"topic", "title",
// "message", "priority", "tags", "click"}, "Authorization: Bearer <token>"
// for protected topics; answered 200 with the published message.
package ntfy

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Channel is the policy channel name.
const Channel = "ntfy"

// DefaultServer is the public ntfy server.
const DefaultServer = "https://ntfy.sh"

// Destination is one ntfy topic.
type Destination struct {
	// Server defaults to DefaultServer.
	Server string `yaml:"server,omitempty" json:"server,omitempty"`
	// Topic is secret: on a public server whoever knows it reads it.
	Topic string `yaml:"topic" json:"topic" secret:"token"`
	// Token is an access token (tk_…) for a protected topic.
	Token string `yaml:"token,omitempty" json:"token,omitempty" secret:"token"`
	// Priority of DOWN messages, 1 (min) to 5 (max); default 5. Others
	// go at 3 (default).
	Priority int `yaml:"priority,omitempty" json:"priority,omitempty"`
}

var topic = regexp.MustCompile(`^[-_A-Za-z0-9]{1,64}$`)

// Validate reports every problem, each as "field: message". The topic and
// token are never quoted.
func (d Destination) Validate() error {
	var errs []error
	if d.Server != "" {
		if err := notify.CheckHTTPURL(d.Server); err != nil {
			errs = append(errs, fmt.Errorf("server: %w", err))
		}
	}
	errs = append(errs, notify.CheckSecretField("topic", d.Topic, topic, "1 to 64 letters, digits, - or _"))
	if d.Priority < 0 || d.Priority > 5 {
		errs = append(errs, fmt.Errorf("priority: %d is not 1 to 5", d.Priority))
	}
	return errors.Join(errs...)
}

// Notifier publishes one message per notification.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier; client may be nil (notify.DefaultClient).
func New(client *http.Client) *Notifier { return notify.NewJSONNotifier(client, Channel, post) }

// post publishes Publish(m) to the destination's server.
func post(m notify.Message, d Destination) notify.Post {
	server := d.Server
	if server == "" {
		server = DefaultServer
	}
	var h http.Header
	if d.Token != "" {
		h = http.Header{}
		h.Set("Authorization", "Bearer "+d.Token)
	}
	return notify.Post{URL: strings.TrimRight(server, "/") + "/", Header: h, Body: Publish(m, d)}
}

// Publish is the JSON publish body for m.
func Publish(m notify.Message, d Destination) map[string]any {
	prio, tags := 3, []string{"warning"}
	switch m.Kind {
	case notify.KindDown, notify.KindReminder, notify.KindEscalation:
		prio, tags = 5, []string{"rotating_light"}
		if d.Priority != 0 {
			prio = d.Priority
		}
	case notify.KindUp:
		tags = []string{"white_check_mark"}
	}
	body := map[string]any{
		"topic":    d.Topic,
		"title":    notify.Truncate(strings.TrimSpace(m.Subject), 250),
		"message":  notify.Truncate(strings.TrimSpace(m.Text), 4000),
		"priority": prio,
		"tags":     tags,
	}
	if m.Link != "" {
		body["click"] = m.Link
	}
	return body
}
