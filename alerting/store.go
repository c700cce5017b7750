package alerting

import (
	"context"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Notification is one entry of the durable outbox: a rendered message for
// one recipient on one channel. It is written in the same transaction as the
// state change that caused it, before anything is sent, so a crash can
// neither lose it nor (through its Key) queue it twice.
type Notification struct {
	// Key is unique: incident (or target) + kind + slot + recipient + channel.
	Key     string         `json:"key"`
	Channel string         `json:"channel"` // one of the Channel* constants
	Message notify.Message `json:"message"`

	Status      NotificationStatus `json:"status"`
	Attempts    int                `json:"attempts"`
	NextAttempt time.Time          `json:"next_attempt"`
	LastError   string             `json:"last_error,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
	SentAt      time.Time          `json:"sent_at,omitempty"`
}

// The channels a policy can notify on.
const (
	ChannelEmail   = "email"   // SendGrid, or SMTP when SendGrid is not configured
	ChannelSMS     = "sms"     // Twilio
	ChannelWebhook = "webhook" // signed JSON POST
)

// NotificationStatus is where a notification is in its life.
type NotificationStatus string

// The statuses. Pending ones are sent (again) when due; sent and failed are
// final.
const (
	NotificationPending NotificationStatus = "pending"
	NotificationSent    NotificationStatus = "sent"
	NotificationFailed  NotificationStatus = "failed"
)

// StateStore persists what the engine knows, so a restart carries on where
// it stopped and never re-alerts an incident already notified.
type StateStore interface {
	// LoadStates returns every target's last committed state.
	LoadStates(ctx context.Context) (map[string]State, error)
	// CommitBatch stores every commit in one transaction: all of them or,
	// on error, none. Each stores its State, upserts its incidents (by ID)
	// and queues its notifications, in order, so of two commits of one
	// target the later wins. Notifications whose Key is already in the
	// outbox (or earlier in the batch) are skipped, so committing the same
	// transition twice queues nothing new.
	CommitBatch(ctx context.Context, commits []Commit) error
}

// AckReader tells the engine whether an open incident was acknowledged
// (registry.Registry does): the record lives with the incident, written by
// whichever server took the acknowledgement, so the engine asks only when
// a reminder or escalation falls due, and remembers the answer.
type AckReader interface {
	// IncidentAck returns who acknowledged the incident and when; a zero
	// time if no one did (or there is no such incident).
	IncidentAck(ctx context.Context, incidentID string) (by string, at time.Time, err error)
}

// Commit is one target's new state with the incidents and notifications its
// transitions call for: what must be stored together.
type Commit struct {
	State     State
	Incidents []Incident
	Queue     []Notification
}

// Outbox is the dispatcher's view of the queued notifications.
type Outbox interface {
	// Claim leases up to limit pending notifications due at now for lease,
	// oldest first, and counts an attempt on each. A leased notification is
	// not handed to another Claim (another dispatcher) until the lease ends
	// or it is settled.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Notification, error)
	// Settle records the outcome of an attempt and ends the lease: sent,
	// failed for good, or pending again from next on.
	Settle(ctx context.Context, key string, status NotificationStatus, next time.Time, lastError string, at time.Time) error
	// Defer ends the lease of a claimed, still pending notification and
	// makes it due at next, giving back the attempt Claim counted: nothing
	// was tried, so the backoff must not grow.
	Defer(ctx context.Context, key string, next time.Time) error
	// Pending counts pending notifications and returns the creation time of
	// the oldest (zero if none).
	Pending(ctx context.Context) (count int, oldest time.Time, err error)
	// Status returns a notification's status and, while pending, when it
	// is next due; status "" when the outbox has no such key.
	Status(ctx context.Context, key string) (status NotificationStatus, next time.Time, err error)
}
