// Package twilio sends notifications as SMS through Twilio's documented
// REST API (POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json,
// HTTP basic auth, form fields To, From or MessagingServiceSid, Body) with
// net/http, rather than twilio-go, to keep dependencies small.
package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/secret"
)

// DefaultBaseURL is Twilio's API host.
const DefaultBaseURL = "https://api.twilio.com"

// Config is a Twilio SMS channel.
type Config struct {
	AccountSID string        `yaml:"account_sid" json:"account_sid"` // AC…
	AuthToken  secret.Secret `yaml:"auth_token" json:"auth_token"`
	// From is the sending number in E.164; MessagingServiceSID (MG…) is
	// used instead when set. One of them is required.
	From                string `yaml:"from" json:"from"`
	MessagingServiceSID string `yaml:"messaging_service_sid" json:"messaging_service_sid"`
	// BaseURL defaults to DefaultBaseURL; set it for a local stand-in.
	BaseURL string `yaml:"base_url" json:"base_url"`
}

var (
	accountSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
)

// ValidE164 reports whether s is a phone number written in E.164 form ("+",
// country code, national number, nothing else) that exists in the
// numbering plan of its country, by libphonenumber's metadata: a digit too
// few or a number from a range never assigned (like the UK's drama range
// +44 7700 900xxx) is caught when the config is loaded, not when Twilio
// refuses the first alert.
func ValidE164(s string) bool {
	n, err := phonenumbers.Parse(s, "")
	return err == nil && phonenumbers.Format(n, phonenumbers.E164) == s && phonenumbers.IsValidNumber(n)
}

// Validate reports every problem, each naming its field.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.AccountSID == "":
		errs = append(errs, errors.New("account_sid: required"))
	case !accountSID.MatchString(c.AccountSID):
		errs = append(errs, fmt.Errorf("account_sid: %q is not a Twilio account SID (AC followed by 32 hex digits)", c.AccountSID))
	}
	if c.AuthToken.Reveal() == "" {
		errs = append(errs, errors.New("auth_token: required"))
	}
	if c.From == "" && c.MessagingServiceSID == "" {
		errs = append(errs, errors.New("from: required unless messaging_service_sid is set"))
	}
	if c.From != "" && !ValidE164(c.From) {
		errs = append(errs, fmt.Errorf("from: %q is not an E.164 phone number (like +14155550100)", c.From))
	}
	if c.MessagingServiceSID != "" && !serviceSID.MatchString(c.MessagingServiceSID) {
		errs = append(errs, fmt.Errorf("messaging_service_sid: %q is not a messaging service SID (MG followed by 32 hex digits)", c.MessagingServiceSID))
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("base_url: %q is not an absolute http(s) URL", c.BaseURL))
		}
	}
	return errors.Join(errs...)
}

// Notifier sends one SMS per message.
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

// Notify texts m.Text (or m.Subject when there is no text) to m.To.Phone,
// shortened by Shorten to at most two SMS segments.
func (n *Notifier) Notify(ctx context.Context, m notify.Message) (bool, error) {
	if !ValidE164(m.To.Phone) {
		return false, fmt.Errorf("twilio: recipient phone %q is not an E.164 number", m.To.Phone)
	}
	body := strings.TrimSpace(m.Text)
	if body == "" {
		body = strings.TrimSpace(m.Subject)
	}
	if body == "" {
		return false, errors.New("twilio: message has no text (not rendered?)")
	}
	form := url.Values{}
	form.Set("To", m.To.Phone)
	if n.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", n.cfg.MessagingServiceSID)
	} else {
		form.Set("From", n.cfg.From)
	}
	form.Set("Body", Shorten(body, MaxSegments))

	u := n.cfg.BaseURL + "/2010-04-01/Accounts/" + url.PathEscape(n.cfg.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return false, fmt.Errorf("twilio: %w", notify.RedactURL(err))
	}
	req.SetBasicAuth(n.cfg.AccountSID, n.cfg.AuthToken.Reveal())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	_, retry, err := notify.Do(n.client, req, "twilio", n.detail)
	return retry, err
}

// detail explains a Twilio error body:
// {"code":21211,"message":"…","more_info":"…","status":400}.
func (n *Notifier) detail(body []byte) string {
	if t := n.cfg.AuthToken.Reveal(); t != "" {
		body = bytes.ReplaceAll(body, []byte(t), []byte(secret.Redacted))
	}
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && (e.Code != 0 || e.Message != "") {
		return notify.Snippet(fmt.Appendf(nil, "twilio error %d: %s", e.Code, e.Message))
	}
	return notify.Snippet(body)
}
