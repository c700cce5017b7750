// Package notify holds what every notification channel shares: the rendered
// Message, the one-method Notifier interface, the status-code → retry policy
// used by every HTTP notifier, and the templates that render messages.
//
// Each channel lives in its own folder (sendgrid, twilio, webhook, smtp,
// slack, teams, discord, telegram, pagerduty, opsgenie, ntfy,
// alertmanager).
// Retries, backoff, deduplication and maintenance muting are not done here:
// a Notifier makes exactly one attempt and reports whether a failure is
// worth another; the dispatcher decides when.
package notify

import (
	"context"
	"strings"
	"time"
)

// Message kinds.
const (
	KindDown       = "down"
	KindUp         = "up"
	KindReminder   = "reminder"
	KindDegraded   = "degraded"
	KindTLSExpiry  = "tls_expiry"
	KindEscalation = "escalation"
)

// Kinds lists every message kind, in a stable order.
var Kinds = []string{KindDown, KindUp, KindReminder, KindDegraded, KindTLSExpiry, KindEscalation}

// Message is one notification to one recipient on one channel, already
// rendered.
type Message struct {
	// Key is the idempotency key (incident + kind + recipient + channel).
	// Providers that support one get it: SendGrid custom_args, the webhook
	// X-Upwatch-Key header, the SMTP Message-ID.
	Key        string
	Kind       string // one of Kinds
	IncidentID string

	TargetID, TargetName, TargetURL string

	Cause     string        // error of the first failing check
	StartedAt time.Time     // first failing check of the incident
	Duration  time.Duration // outage length (up messages), or how long down so far
	Link      string        // where to see the incident
	// Locations are the probe locations that saw the failure, when the
	// target is checked from more than one; empty otherwise.
	Locations []string

	Subject, Text, HTML string // rendered content (see Renderer)

	To Recipient
}

// Where lists the locations that saw the failure: "eu-west, us-east".
func (m *Message) Where() string { return strings.Join(m.Locations, ", ") }

// Recipient is who a message goes to; each channel uses the field it needs.
type Recipient struct {
	Name, Email, Phone, WebhookURL string
	// Channel and Endpoint are a chat or paging destination (Slack, Teams,
	// PagerDuty, ...): Endpoint is that channel's destination as JSON,
	// credentials included, so it is sealed in the outbox like WebhookURL
	// and never shown (see Endpoint).
	Channel, Endpoint string
}

// Notifier sends one message. retry reports whether a failure is worth
// retrying; it is meaningless when err is nil.
type Notifier interface {
	Notify(ctx context.Context, m Message) (retry bool, err error)
}
