// Package sendgrid sends notifications as email through the SendGrid v3
// mail send API (POST {base}/v3/mail/send), using sendgrid-go's request and
// mail helpers and a size-limited read of the answer.
package sendgrid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"

	"github.com/sendgrid/rest"
	sg "github.com/sendgrid/sendgrid-go"
	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/secret"
)

// DefaultBaseURL is SendGrid's global API host.
const DefaultBaseURL = "https://api.sendgrid.com"

// Endpoint is the mail send path below the base URL.
const Endpoint = "/v3/mail/send"

// Config is a SendGrid channel.
type Config struct {
	APIKey   secret.Secret `yaml:"api_key" json:"api_key"`
	From     string        `yaml:"from" json:"from"`           // sender address, e.g. alerts@example.com
	FromName string        `yaml:"from_name" json:"from_name"` // optional display name
	// BaseURL defaults to DefaultBaseURL; set it for the EU host
	// (https://api.eu.sendgrid.com) or a local stand-in.
	BaseURL string `yaml:"base_url" json:"base_url"`
}

// Validate reports every problem, each naming its field.
func (c Config) Validate() error {
	var errs []error
	if c.APIKey.Reveal() == "" {
		errs = append(errs, errors.New("api_key: required"))
	}
	if c.From == "" {
		errs = append(errs, errors.New("from: required"))
	} else if err := validEmail(c.From); err != nil {
		errs = append(errs, fmt.Errorf("from: %w", err))
	}
	if strings.ContainsAny(c.FromName, "\r\n") {
		errs = append(errs, errors.New("from_name: must be one line"))
	}
	if c.BaseURL != "" {
		if err := validBaseURL(c.BaseURL); err != nil {
			errs = append(errs, fmt.Errorf("base_url: %w", err))
		}
	}
	return errors.Join(errs...)
}

func validEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return fmt.Errorf("%q is not a plain email address", s)
	}
	return nil
}

func validBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// Notifier sends one email per message.
type Notifier struct {
	cfg    Config
	client *http.Client
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns a notifier for cfg (which should have passed Validate).
// client may be nil for notify.DefaultClient().
func New(cfg Config, client *http.Client) *Notifier {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if client == nil {
		client = notify.DefaultClient()
	}
	return &Notifier{cfg: cfg, client: client}
}

// Notify sends m to m.To.Email: text/plain then text/html content, and
// custom_args incident_id and notification_key (m.Key) so events and
// duplicates can be traced. A 2xx (SendGrid answers 202) means accepted.
func (n *Notifier) Notify(ctx context.Context, m notify.Message) (bool, error) {
	if m.To.Email == "" {
		return false, errors.New("sendgrid: recipient has no email address")
	}
	if err := validEmail(m.To.Email); err != nil {
		return false, fmt.Errorf("sendgrid: recipient: %w", err)
	}
	if m.Text == "" && m.HTML == "" {
		return false, errors.New("sendgrid: message has no content (not rendered?)")
	}
	email := sgmail.NewV3Mail()
	email.SetFrom(sgmail.NewEmail(n.cfg.FromName, n.cfg.From))
	email.Subject = m.Subject
	p := sgmail.NewPersonalization()
	p.AddTos(sgmail.NewEmail(m.To.Name, m.To.Email))
	email.AddPersonalizations(p)
	// SendGrid requires text/plain before text/html.
	if m.Text != "" {
		email.AddContent(sgmail.NewContent("text/plain", m.Text))
	}
	if m.HTML != "" {
		email.AddContent(sgmail.NewContent("text/html", m.HTML))
	}
	if m.IncidentID != "" {
		email.SetCustomArg("incident_id", m.IncidentID)
	}
	if m.Key != "" {
		email.SetCustomArg("notification_key", m.Key)
	}

	r := sg.GetRequest(n.cfg.APIKey.Reveal(), Endpoint, n.cfg.BaseURL)
	r.Method = rest.Post
	r.Body = sgmail.GetRequestBody(email)
	req, err := rest.BuildRequestObject(r)
	if err != nil {
		return false, fmt.Errorf("sendgrid: %w", notify.RedactURL(err))
	}
	_, retry, err := notify.Do(n.client, req.WithContext(ctx), "sendgrid", n.detail)
	return retry, err
}

// detail explains a SendGrid error body:
// {"errors":[{"message":"…","field":"…","help":"…"}]}.
func (n *Notifier) detail(body []byte) string {
	var e struct {
		Errors []struct {
			Message string `json:"message"`
			Field   any    `json:"field"`
		} `json:"errors"`
	}
	if k := n.cfg.APIKey.Reveal(); k != "" {
		body = bytes.ReplaceAll(body, []byte(k), []byte(secret.Redacted))
	}
	var parts []string
	if json.Unmarshal(body, &e) == nil {
		for _, x := range e.Errors {
			s := x.Message
			if f, ok := x.Field.(string); ok && f != "" {
				s = f + ": " + s
			}
			if s != "" {
				parts = append(parts, s)
			}
		}
	}
	if len(parts) > 0 {
		return notify.Snippet([]byte(strings.Join(parts, "; ")))
	}
	return notify.Snippet(body)
}
