// Package store is the registry store. For now it holds what the alert engine
// persists: each target's alert state, the incidents and the durable
// notification outbox (alerting.StateStore and alerting.Outbox), plus the
// reads the API needs, and the tenancy objects. One implementation, Registry,
// runs on SQLite (the embedded default, OpenSQLite) and on PostgreSQL
// (OpenPostgres); both pass the contract suite store/storetest.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/upwatch/upwatch/alerting"
)

// Store is everything a registry backend provides. Both backends pass the
// storetest contract suite.
type Store interface {
	alerting.StateStore
	alerting.Outbox
	// Commit is CommitBatch of one commit.
	Commit(ctx context.Context, st alerting.State, incidents []alerting.Incident, queue []alerting.Notification) error
	// Incidents lists the incidents matching q, newest first.
	Incidents(ctx context.Context, q IncidentQuery) ([]alerting.Incident, error)
	// Notifications lists the outbox entries matching q, newest first.
	Notifications(ctx context.Context, q NotificationQuery) ([]alerting.Notification, error)
	Ping(ctx context.Context) error
	Close() error
}

// Limits of the list queries.
const (
	DefaultLimit = 100  // used when a query's Limit is zero or negative
	MaxLimit     = 1000 // larger limits are lowered to this
)

// MaxLastError is how many bytes of an attempt's error the outbox keeps.
const MaxLastError = 1024

// IncidentQuery selects incidents. Every field is optional.
type IncidentQuery struct {
	// TargetID restricts the list to one target.
	TargetID string
	// From and To select the incidents that overlap [From, To): those that
	// started before To and were still open at From (open incidents
	// overlap everything from their start on). A zero From or To leaves
	// that side unbounded.
	From, To time.Time
	// OpenOnly keeps only the incidents that have not ended.
	OpenOnly bool
	// Limit caps the answer (default DefaultLimit, at most MaxLimit).
	Limit int
}

// NotificationQuery selects outbox entries. Every field is optional.
type NotificationQuery struct {
	// IncidentID keeps the notifications whose message names this incident.
	IncidentID string
	// Status keeps the notifications in this status.
	Status alerting.NotificationStatus
	// Limit caps the answer (default DefaultLimit, at most MaxLimit).
	Limit int
}

// Errors callers can test for with errors.Is.
var (
	// ErrUnknownKey: Settle was given a key that is not in the outbox.
	ErrUnknownKey = errors.New("no such notification")
	// ErrSettled: Settle was asked to change a notification that is already
	// sent or failed for good. Settling it again with the same final status
	// is not an error.
	ErrSettled = errors.New("notification already settled")
)

// clampLimit applies DefaultLimit and MaxLimit.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// validStatus reports whether st is one of the outbox statuses.
func validStatus(st alerting.NotificationStatus) bool {
	switch st {
	case alerting.StatusPending, alerting.StatusSent, alerting.StatusFailed:
		return true
	}
	return false
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xC0 == 0x80 { // continuation byte: back up to a rune start
		i--
	}
	return s[:i]
}
