// Package webhook posts notifications as signed JSON.
//
// Each request is a POST of a Payload with these headers:
//
//	Content-Type: application/json
//	X-Upwatch-Timestamp: <unix seconds>
//	X-Upwatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//	X-Upwatch-Key: <idempotency key: the same for every retry of one notification>
//
// A receiver checks the signature over the raw body with Verify, rejects
// timestamps outside a tolerance (replays), and drops keys it has seen
// (retries of something it already handled).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/secret"
)

// Header names.
const (
	HeaderTimestamp = "X-Upwatch-Timestamp"
	HeaderSignature = "X-Upwatch-Signature"
	HeaderKey       = "X-Upwatch-Key"
)

// PayloadVersion is the Payload's version; fields are only ever added
// within a version.
const PayloadVersion = 1

// Payload is the JSON body of a webhook request.
type Payload struct {
	Version    int    `json:"version"`     // PayloadVersion
	Key        string `json:"key"`         // idempotency key, as in X-Upwatch-Key
	Kind       string `json:"kind"`        // down, up, reminder, degraded, tls_expiry, escalation
	IncidentID string `json:"incident_id"` // the incident this is about
	Target     Target `json:"target"`
	Cause      string `json:"cause,omitempty"` // error of the first failing check
	// StartedAt is when the incident started (RFC 3339, UTC).
	StartedAt time.Time `json:"started_at,omitzero"`
	// DurationSeconds is the outage length (up) or how long down so far.
	DurationSeconds int64  `json:"duration_seconds"`
	Duration        string `json:"duration"`       // the same, for humans: "12m 30s"
	Link            string `json:"link,omitempty"` // where to see the incident
	// Locations are the probe locations that saw the failure, when there
	// are several.
	Locations []string `json:"locations,omitempty"`
	Subject   string   `json:"subject"` // rendered one-line summary
	Text      string   `json:"text"`    // rendered plain-text body
	Recipient string   `json:"recipient,omitempty"`
}

// Target identifies the monitored target.
type Target struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url,omitempty"`
}

// NewPayload returns the payload for m.
func NewPayload(m notify.Message) Payload {
	p := Payload{
		Version: PayloadVersion, Key: m.Key, Kind: m.Kind, IncidentID: m.IncidentID,
		Target: Target{ID: m.TargetID, Name: m.TargetName, URL: m.TargetURL},
		Cause:  m.Cause, DurationSeconds: int64(m.Duration / time.Second),
		Duration: notify.HumanDuration(m.Duration), Link: m.Link,
		Subject: m.Subject, Text: m.Text, Recipient: m.To.Name, Locations: m.Locations,
	}
	if !m.StartedAt.IsZero() {
		p.StartedAt = m.StartedAt.UTC()
	}
	return p
}

// Config is a webhook channel.
type Config struct {
	// URL receives every message whose recipient has no WebhookURL.
	URL string `yaml:"url" json:"url"`
	// Secret signs every request (X-Upwatch-Signature).
	Secret secret.Secret `yaml:"secret" json:"secret"`
}

// Validate reports every problem, each naming its field. The URL is not
// repeated in errors: it may hold a token.
func (c Config) Validate() error {
	var errs []error
	if c.URL != "" {
		if err := validURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("url: %w", err))
		}
	}
	if c.Secret.Reveal() == "" {
		errs = append(errs, errors.New("secret: required (requests are signed)"))
	}
	return errors.Join(errs...)
}

func validURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}

// Notifier posts one signed request per message.
type Notifier struct {
	cfg    Config
	client *http.Client
	now    func() time.Time
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns a notifier for cfg (which should have passed Validate).
// client may be nil for notify.DefaultClient(); pass one with an
// SSRF-guarded dialer when users may set webhook URLs. Redirects are never
// followed (the signature would travel elsewhere): a 3xx is a permanent
// error.
func New(cfg Config, client *http.Client) *Notifier {
	if client == nil {
		client = notify.DefaultClient()
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Notifier{cfg: cfg, client: &c, now: time.Now}
}

// Notify posts NewPayload(m) to m.To.WebhookURL, or to the configured URL
// when the recipient has none. Any 2xx means delivered.
func (n *Notifier) Notify(ctx context.Context, m notify.Message) (bool, error) {
	target := m.To.WebhookURL
	if target == "" {
		target = n.cfg.URL
	}
	if target == "" {
		return false, errors.New("webhook: no URL for recipient and none configured")
	}
	if err := validURL(target); err != nil {
		return false, fmt.Errorf("webhook: recipient URL: %w", err)
	}
	body, err := json.Marshal(NewPayload(m))
	if err != nil {
		return false, fmt.Errorf("webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("webhook: %w", notify.RedactURL(err))
	}
	ts := n.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "upwatch-webhook/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign([]byte(n.cfg.Secret.Reveal()), ts, body))
	if m.Key != "" {
		req.Header.Set(HeaderKey, headerSafe(m.Key))
	}
	_, retry, err := notify.Do(n.client, req, "webhook "+secret.RedactURL(target, secret.URLWhole), nil)
	return retry, err
}

// headerSafe drops characters a header value cannot hold.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// Sign returns the X-Upwatch-Signature value for body sent at ts:
// "sha256=" + hex(HMAC-SHA256(secret, "<ts>.<body>")).
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(strconv.AppendInt(nil, ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors from Verify.
var (
	ErrTimestamp = errors.New("webhook: timestamp missing, malformed or outside tolerance")
	ErrSignature = errors.New("webhook: signature mismatch")
)

// Verify checks a received request: ts is the X-Upwatch-Timestamp header,
// body the raw body, sig the X-Upwatch-Signature header. The timestamp
// must be within tolerance of now (either way; tolerance ≤ 0 disables the
// check, which lets replays through). The comparison is constant-time.
func Verify(secret []byte, ts string, body []byte, sig string, now time.Time, tolerance time.Duration) error {
	t, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return ErrTimestamp
	}
	if tolerance > 0 {
		skew := now.Sub(time.Unix(t, 0))
		if skew < -tolerance || skew > tolerance {
			return fmt.Errorf("%w: %s off", ErrTimestamp, skew.Round(time.Second))
		}
	}
	want := Sign(secret, t, body)
	if !hmac.Equal([]byte(strings.TrimSpace(sig)), []byte(want)) {
		return ErrSignature
	}
	return nil
}
