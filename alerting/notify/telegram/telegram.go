// Package telegram sends notifications through the Telegram Bot API's
// sendMessage: POST {api}/bot<token>/sendMessage with JSON {"chat_id",
// "text"}, answered {"ok": true, ...}; a failure answers with the HTTP
// status in error_code, and a 429 with parameters.retry_after.
package telegram

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/secret"
)

// Channel is the policy channel name.
const Channel = "telegram"

// DefaultAPIURL is the Bot API's base.
const DefaultAPIURL = "https://api.telegram.org"

// maxText is sendMessage's limit on text.
const maxText = 4096

// Destination is one chat a bot posts to.
type Destination struct {
	BotToken string `yaml:"bot_token" json:"bot_token" secret:"token"`
	// ChatID is a chat's numeric id (negative for groups) or @channelname.
	ChatID string `yaml:"chat_id" json:"chat_id"`
}

var (
	botToken = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)
	chatID   = regexp.MustCompile(`^(-?[0-9]+|@[A-Za-z][A-Za-z0-9_]{4,31})$`)
)

// Validate reports every problem, each as "field: message". The token is
// never quoted.
func (d Destination) Validate() error {
	errs := []error{notify.CheckSecretField("bot_token", d.BotToken, botToken, "not a bot token (123456:ABC-…, from @BotFather)")}
	switch {
	case d.ChatID == "":
		errs = append(errs, errors.New("chat_id: required"))
	case !chatID.MatchString(d.ChatID):
		errs = append(errs, fmt.Errorf("chat_id: %q is not a chat id (-100123…) or @channelname", d.ChatID))
	}
	return errors.Join(errs...)
}

// Notifier sends one message per notification.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier; client may be nil (notify.DefaultClient), api
// empty for DefaultAPIURL.
func New(client *http.Client, api string) *Notifier {
	api = strings.TrimRight(cmp.Or(api, DefaultAPIURL), "/")
	return notify.NewJSONNotifier(client, Channel, func(m notify.Message, d Destination) notify.Post {
		return post(api, m, d)
	})
}

// post sends m's subject and text as plain text (no parse_mode: nothing in
// a cause can break the formatting).
func post(api string, m notify.Message, d Destination) notify.Post {
	text := strings.TrimSpace(m.Subject)
	if t := strings.TrimSpace(m.Text); t != "" {
		text += "\n\n" + t
	}
	var chat any = d.ChatID
	if !strings.HasPrefix(d.ChatID, "@") {
		chat = json.Number(d.ChatID)
	}
	body := map[string]any{"chat_id": chat, "text": notify.Truncate(text, maxText)}
	// The token is in the path: Do redacts URLs in errors to scheme and host.
	return notify.Post{URL: api + "/bot" + d.BotToken + "/sendMessage", Body: body,
		Detail: func(b []byte) string { return describe(b, d.BotToken) },
		Answer: func(b []byte, retry bool, err error) (bool, error) { return answer(b, retry, err, d.BotToken) }}
}

// answer reads sendMessage's answer: a 429's parameters.retry_after, or
// {"ok": false} in a 2xx.
func answer(b []byte, retry bool, err error, token string) (bool, error) {
	if err != nil {
		if after, ok := retryAfter(b); ok && retry {
			if _, has := notify.RetryAfter(err); !has {
				err = &notify.RetryAfterError{After: after, Err: err}
			}
		}
		return retry, err
	}
	var r struct {
		OK          bool   `json:"ok"`
		Description string `json:"description"`
	}
	if json.Unmarshal(b, &r) == nil && !r.OK {
		return false, fmt.Errorf("telegram: %s", describe(b, token))
	}
	return false, nil
}

// describe explains an error answer {"ok": false, "error_code": 400,
// "description": "Bad Request: chat not found"}, the token cut out.
func describe(body []byte, token string) string {
	var r struct {
		Description string `json:"description"`
	}
	s := ""
	if json.Unmarshal(body, &r) == nil && r.Description != "" {
		s = r.Description
	} else {
		s = string(body)
	}
	if token != "" {
		s = strings.ReplaceAll(s, token, secret.Redacted)
	}
	return notify.Snippet([]byte(s))
}

// retryAfter reads parameters.retry_after (seconds) of a 429 answer.
func retryAfter(body []byte) (time.Duration, bool) {
	var r struct {
		Parameters struct {
			RetryAfter int64 `json:"retry_after"`
		} `json:"parameters"`
	}
	if json.Unmarshal(body, &r) != nil || r.Parameters.RetryAfter <= 0 {
		return 0, false
	}
	secs := min(r.Parameters.RetryAfter, int64(notify.MaxRetryAfter/time.Second))
	return time.Duration(secs) * time.Second, true
}
