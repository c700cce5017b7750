package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/crypt"
)

// notificationColumns are scanned by scanNotification, in this order.
const notificationColumns = `key, channel, message, status, attempts, next_attempt, last_error, created_at, sent_at`

type scanner interface{ Scan(dest ...any) error }

func scanNotification(sc scanner, mk crypt.MasterKey) (alerting.Notification, error) {
	var n alerting.Notification
	var msg, status string
	var next, created, sent sql.NullInt64
	if err := sc.Scan(&n.Key, &n.Channel, &msg, &status, &n.Attempts, &next, &n.LastError, &created, &sent); err != nil {
		return n, err
	}
	if err := json.Unmarshal([]byte(msg), &n.Message); err != nil {
		return n, fmt.Errorf("notification %q: message: %w", n.Key, err)
	}
	if sealed, ok := strings.CutPrefix(n.Message.To.WebhookURL, sealedPrefix); ok {
		b, err := base64.RawStdEncoding.DecodeString(sealed)
		if err == nil {
			b, err = mk.Open(b, webhookAAD(n.Key))
		}
		if err != nil {
			return n, fmt.Errorf("notification %q: webhook address: %w", n.Key, err)
		}
		n.Message.To.WebhookURL = string(b)
	}
	n.Status = alerting.NotificationStatus(status)
	n.NextAttempt, n.CreatedAt, n.SentAt = fromNanos(next), fromNanos(created), fromNanos(sent)
	return n, nil
}

// A webhook's URL is its credential (a secret path or ?token=): the outbox
// stores it sealed with the master key, as sealedPrefix + base64. A store
// without a master key (tests) keeps it as it is.
const sealedPrefix = "sealed:"

func webhookAAD(key string) []byte { return []byte("upwatch outbox webhook\x00" + key) }

// encodeMessage is n's message as the outbox stores it.
func encodeMessage(n alerting.Notification, mk crypt.MasterKey) ([]byte, error) {
	m := n.Message
	if m.To.WebhookURL != "" && len(mk.KeyIDs()) > 0 {
		sealed, err := mk.Seal([]byte(m.To.WebhookURL), webhookAAD(n.Key))
		if err != nil {
			return nil, err
		}
		m.To.WebhookURL = sealedPrefix + base64.RawStdEncoding.EncodeToString(sealed)
	}
	return json.Marshal(m)
}

// Claim leases up to limit pending notifications that are due at now and not
// leased (or whose lease has ended by now), oldest created first, until
// now+lease, and counts an attempt on each. The selection and the lease are
// one write transaction, so concurrent claimers, in this process or another
// on the same file, never get the same notification while its lease lasts.
func (s *SQLite) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]alerting.Notification, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("registry store: claim: lease must be positive, got %s", lease)
	}
	if limit <= 0 {
		return nil, nil
	}
	at, until := now.UnixNano(), now.Add(lease).UnixNano()
	var out []alerting.Notification
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE outbox SET lease_until = ?, attempts = attempts + 1
			WHERE key IN (
				SELECT key FROM outbox
				WHERE status = 'pending' AND next_attempt <= ? AND (lease_until IS NULL OR lease_until <= ?)
				ORDER BY created_at, key LIMIT ?)
			RETURNING `+notificationColumns, until, at, at, limit)
		if err != nil {
			return err
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			n, err := scanNotification(rows, s.opts.MasterKey)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("registry store: claim: %w", err)
	}
	// RETURNING follows no ORDER BY: put the oldest first again.
	slices.SortFunc(out, func(a, b alerting.Notification) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

// Settle records the outcome of an attempt and ends the lease: sent (sent_at
// = at), failed for good, or pending again from next on. lastError is kept,
// cut to MaxLastError bytes. An unknown key is ErrUnknownKey; a notification
// already sent or failed is left alone, and asking for another status than
// the one it has is ErrSettled.
func (s *SQLite) Settle(ctx context.Context, key string, status alerting.NotificationStatus, next time.Time, lastError string, at time.Time) error {
	if !validStatus(status) {
		return fmt.Errorf("registry store: settle %q: unknown status %q", key, status)
	}
	lastError = truncate(lastError, MaxLastError)
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var cur string
		switch err := tx.QueryRowContext(ctx, `SELECT status FROM outbox WHERE key = ?`, key).Scan(&cur); {
		case errors.Is(err, sql.ErrNoRows):
			return ErrUnknownKey
		case err != nil:
			return err
		}
		if cur := alerting.NotificationStatus(cur); cur != alerting.StatusPending {
			if cur == status {
				return nil
			}
			return fmt.Errorf("%w as %s", ErrSettled, cur)
		}
		var err error
		switch status {
		case alerting.StatusSent:
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET status = ?, sent_at = ?, last_error = ?, lease_until = NULL
				WHERE key = ?`, string(status), nanos(at), lastError, key)
		case alerting.StatusFailed:
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET status = ?, last_error = ?, lease_until = NULL
				WHERE key = ?`, string(status), lastError, key)
		default:
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET next_attempt = ?, last_error = ?, lease_until = NULL
				WHERE key = ?`, nanos(next), lastError, key)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("registry store: settle %q: %w", key, err)
	}
	return nil
}

// Defer hands a claimed notification back until next without spending an
// attempt on it: the dispatcher did not try the provider (its channel is
// paused), so the backoff must not grow.
func (s *SQLite) Defer(ctx context.Context, key string, next time.Time) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt = ?, lease_until = NULL,
			attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
			WHERE key = ? AND status = 'pending'`, nanos(next), key)
		return err
	})
	if err != nil {
		return fmt.Errorf("registry store: defer %q: %w", key, err)
	}
	return nil
}

// Pending counts the pending notifications and returns the creation time of
// the oldest (zero if none).
func (s *SQLite) Pending(ctx context.Context) (int, time.Time, error) {
	var count int
	var oldest sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'`).
		Scan(&count, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("registry store: pending: %w", err)
	}
	return count, fromNanos(oldest), nil
}

// Notifications lists the outbox entries matching q, newest created first.
func (s *SQLite) Notifications(ctx context.Context, q NotificationQuery) ([]alerting.Notification, error) {
	if q.Status != "" && !validStatus(q.Status) {
		return nil, fmt.Errorf("registry store: notifications: unknown status %q", q.Status)
	}
	var where []string
	var args []any
	if q.IncidentID != "" {
		where, args = append(where, `incident_id = ?`), append(args, q.IncidentID)
	}
	if q.Status != "" {
		where, args = append(where, `status = ?`), append(args, string(q.Status))
	}
	query := `SELECT ` + notificationColumns + ` FROM outbox`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY created_at DESC, key DESC LIMIT ?`
	args = append(args, clampLimit(q.Limit))
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("registry store: notifications: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []alerting.Notification
	for rows.Next() {
		n, err := scanNotification(rows, s.opts.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("registry store: notifications: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry store: notifications: %w", err)
	}
	return out, nil
}

// ReleaseLeases ends every lease on pending notifications and returns how
// many it ended. A process that owns the registry alone (the embedded
// SQLite default) calls it at start: leases still held are its own, left by
// a crash, and waiting for them to run out would delay messages that matter
// most right after a failure. Processes that share a registry must not.
func (s *SQLite) ReleaseLeases(ctx context.Context) (int64, error) {
	var n int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_until = NULL
			WHERE status = 'pending' AND lease_until IS NOT NULL`)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("registry store: release leases: %w", err)
	}
	return n, nil
}
