package registry

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
	"github.com/upwatch/upwatch/lease"
)

// notificationColumns are scanned by scanNotification, in this order.
const notificationColumns = `key, channel, message, status, attempts, next_attempt, last_error, created_at, sent_at`

func (s *Registry) scanNotification(sc scanner) (alerting.Notification, error) {
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
			b, err = s.masterKey.Open(b, webhookAAD(n.Key))
		}
		if err != nil {
			return n, fmt.Errorf("notification %q: webhook address: %w", n.Key, err)
		}
		n.Message.To.WebhookURL = string(b)
	}
	if sealed, ok := strings.CutPrefix(n.Message.To.Endpoint, sealedPrefix); ok {
		b, err := base64.RawStdEncoding.DecodeString(sealed)
		if err == nil {
			b, err = s.masterKey.Open(b, endpointAAD(n.Key))
		}
		if err != nil {
			return n, fmt.Errorf("notification %q: destination: %w", n.Key, err)
		}
		n.Message.To.Endpoint = string(b)
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

// A chat or paging destination (Recipient.Endpoint) holds its credentials
// (a bot token, a routing key, a webhook URL): sealed the same way.
func endpointAAD(key string) []byte { return []byte("upwatch outbox endpoint\x00" + key) }

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
	if m.To.Endpoint != "" && len(mk.KeyIDs()) > 0 {
		sealed, err := mk.Seal([]byte(m.To.Endpoint), endpointAAD(n.Key))
		if err != nil {
			return nil, err
		}
		m.To.Endpoint = sealedPrefix + base64.RawStdEncoding.EncodeToString(sealed)
	}
	return json.Marshal(m)
}

// Claim leases up to limit pending notifications that are due at now and not
// leased (or whose lease has ended by now), oldest created first, until
// now+lease, and counts an attempt on each. The selection and the lease are
// one write transaction, and on PostgreSQL the selected rows are locked FOR
// UPDATE SKIP LOCKED, so concurrent claimers, in this process or another,
// never get the same notification while its lease lasts.
func (s *Registry) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]alerting.Notification, error) {
	out, _, err := s.claim(ctx, nil, now, lease, limit)
	return out, err
}

// claim is Claim, made only if f (if not nil) passes its check in the
// transaction; the rows claimed keep f's token (claim_token, NULL without
// a fence), which it returns.
func (s *Registry) claim(ctx context.Context, f *fence, now time.Time, lease time.Duration, limit int) ([]alerting.Notification, int64, error) {
	if lease <= 0 {
		return nil, 0, fmt.Errorf("registry store: claim: lease must be positive, got %s", lease)
	}
	if limit <= 0 {
		return nil, 0, nil
	}
	at, until := now.UnixNano(), now.Add(lease).UnixNano()
	var out []alerting.Notification
	var token int64
	err := s.withTx(ctx, func(tx txn) error {
		var err error
		if token, err = f.check(ctx, tx, s.d.lockShare); err != nil {
			return err
		}
		claimToken := sql.NullInt64{Int64: token, Valid: f != nil}
		rows, err := tx.query(ctx, `WITH due AS (
				SELECT key FROM outbox
				WHERE status = 'pending' AND next_attempt <= ? AND (lease_until IS NULL OR lease_until <= ?)
				ORDER BY created_at, key LIMIT ?`+s.d.skipLocked+`)
			UPDATE outbox SET lease_until = ?, attempts = attempts + 1, claim_token = ?
			WHERE key IN (SELECT key FROM due)
			RETURNING `+notificationColumns, at, at, limit, until, claimToken)
		out, err = scanAll(rows, err, s.scanNotification) // a retry starts over
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("registry store: claim: %w", err)
	}
	// RETURNING follows no ORDER BY: put the oldest first again.
	slices.SortFunc(out, func(a, b alerting.Notification) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, token, nil
}

// Settle records the outcome of an attempt and ends the lease: sent (sent_at
// = at), failed for good, or pending again from next on. lastError is kept,
// cut to MaxLastError bytes. An unknown key is ErrUnknownKey; a notification
// already sent or failed is left alone, and asking for another status than
// the one it has is ErrSettled.
func (s *Registry) Settle(ctx context.Context, key string, status alerting.NotificationStatus, next time.Time, lastError string, at time.Time) error {
	return s.settle(ctx, nil, key, status, next, lastError, at)
}

// claimGuard lets a fenced dispatcher settle only what it claimed: a row
// claimed since under a newer token than any it used is another's now.
type claimGuard struct{ newest int64 }

// refuses reports whether g (if not nil) refuses a write to a row claimed
// under claim.
func (g *claimGuard) refuses(claim sql.NullInt64) bool {
	return g != nil && claim.Valid && claim.Int64 > g.newest
}

func (s *Registry) settle(ctx context.Context, g *claimGuard, key string, status alerting.NotificationStatus, next time.Time, lastError string, at time.Time) error {
	if !validStatus(status) {
		return fmt.Errorf("registry store: settle %q: unknown status %q", key, status)
	}
	lastError = truncate(lastError, MaxLastError)
	err := s.withTx(ctx, func(tx txn) error {
		var cur string
		var claim sql.NullInt64
		switch err := tx.queryRow(ctx, `SELECT status, claim_token FROM outbox WHERE key = ?`+s.d.lockRow, key).Scan(&cur, &claim); {
		case errors.Is(err, sql.ErrNoRows):
			return ErrUnknownKey
		case err != nil:
			return err
		case g.refuses(claim):
			return fmt.Errorf("%w: claimed since under token %d", lease.ErrFenced, claim.Int64)
		}
		if cur := alerting.NotificationStatus(cur); cur != alerting.NotificationPending {
			if cur == status {
				return nil
			}
			return fmt.Errorf("%w as %s", ErrSettled, cur)
		}
		var err error
		switch status {
		case alerting.NotificationSent:
			_, err = tx.exec(ctx, `UPDATE outbox SET status = ?, sent_at = ?, last_error = ?, lease_until = NULL
				WHERE key = ?`, string(status), nanos(at), lastError, key)
		case alerting.NotificationFailed:
			_, err = tx.exec(ctx, `UPDATE outbox SET status = ?, last_error = ?, lease_until = NULL
				WHERE key = ?`, string(status), lastError, key)
		default:
			_, err = tx.exec(ctx, `UPDATE outbox SET next_attempt = ?, last_error = ?, lease_until = NULL
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
func (s *Registry) Defer(ctx context.Context, key string, next time.Time) error {
	return s.deferClaim(ctx, nil, key, next)
}

func (s *Registry) deferClaim(ctx context.Context, g *claimGuard, key string, next time.Time) error {
	cond, args := "", []any{nanos(next), key}
	if g != nil {
		cond, args = ` AND (claim_token IS NULL OR claim_token <= ?)`, append(args, g.newest)
	}
	err := s.withTx(ctx, func(tx txn) error {
		_, err := tx.exec(ctx, `UPDATE outbox SET next_attempt = ?, lease_until = NULL,
			attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
			WHERE key = ? AND status = 'pending'`+cond, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("registry store: defer %q: %w", key, err)
	}
	return nil
}

// Pending counts the pending notifications and returns the creation time of
// the oldest (zero if none).
func (s *Registry) Pending(ctx context.Context) (int, time.Time, error) {
	var count int
	var oldest sql.NullInt64
	if err := s.queryRow(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'`).
		Scan(&count, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("registry store: pending: %w", err)
	}
	return count, fromNanos(oldest), nil
}

// Status returns the status of the notification with key and, while
// pending, when it is next due; "" if there is none.
func (s *Registry) Status(ctx context.Context, key string) (alerting.NotificationStatus, time.Time, error) {
	var status string
	var next sql.NullInt64
	err := s.queryRow(ctx, `SELECT status, next_attempt FROM outbox WHERE key = ?`, key).Scan(&status, &next)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", time.Time{}, nil
	case err != nil:
		return "", time.Time{}, fmt.Errorf("registry store: status %q: %w", key, err)
	}
	return alerting.NotificationStatus(status), fromNanos(next), nil
}

// Notifications lists the outbox entries matching q, newest created first.
func (s *Registry) Notifications(ctx context.Context, q NotificationQuery) ([]alerting.Notification, error) {
	if q.Status != "" && !validStatus(q.Status) {
		return nil, fmt.Errorf("registry store: notifications: unknown status %q", q.Status)
	}
	var w where
	if q.IncidentID != "" {
		w.add(`incident_id = ?`, q.IncidentID)
	}
	if q.Status != "" {
		w.add(`status = ?`, string(q.Status))
	}
	rows, err := s.query(ctx, `SELECT `+notificationColumns+` FROM outbox`+w.String()+` ORDER BY created_at DESC, key DESC LIMIT ?`,
		append(w.args, clampLimit(q.Limit))...)
	out, err := scanAll(rows, err, s.scanNotification)
	if err != nil {
		return nil, fmt.Errorf("registry store: notifications: %w", err)
	}
	return out, nil
}

// ReleaseLeases ends every lease on pending notifications and returns how
// many it ended. A process that owns the registry alone (the embedded
// SQLite default) calls it at start: leases still held are its own, left by
// a crash, and waiting for them to run out would delay messages that matter
// most right after a failure. Processes that share a registry (PostgreSQL)
// must not: the leases may be another dispatcher's.
func (s *Registry) ReleaseLeases(ctx context.Context) (int64, error) {
	res, err := s.exec(ctx, `UPDATE outbox SET lease_until = NULL
		WHERE status = 'pending' AND lease_until IS NOT NULL`)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("registry store: release leases: %w", err)
}

// insertBatch is how many notifications one INSERT queues (each takes 10
// parameters, PostgreSQL allows 65535 a statement and SQLite 32766).
const insertBatch = 1000

// queueNotifications inserts queue (msgs are their encoded messages) in key
// order, so that concurrent commits of overlapping batches lock keys in the
// same order, skipping the keys already in the outbox; of two with one key
// the first wins.
func queueNotifications(ctx context.Context, tx txn, queue []alerting.Notification, msgs [][]byte, now time.Time) error {
	order := make([]int, len(queue))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(queue[a].Key, queue[b].Key) })
	for lo := 0; lo < len(order); lo += insertBatch {
		batch := order[lo:min(lo+insertBatch, len(order))]
		values := make([]string, len(batch))
		args := make([]any, 0, 10*len(batch))
		for j, i := range batch {
			n := queue[i]
			status := n.Status
			if status == "" {
				status = alerting.NotificationPending
			}
			created := n.CreatedAt
			if created.IsZero() {
				created = now
			}
			values[j] = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`
			args = append(args, n.Key, n.Channel, n.Message.IncidentID, string(msgs[i]),
				string(status), n.Attempts, nanos(n.NextAttempt), truncate(n.LastError, MaxLastError),
				created.UnixNano(), nullNanos(n.SentAt))
		}
		if _, err := tx.exec(ctx, `INSERT INTO outbox
			(key, channel, incident_id, message, status, attempts, next_attempt, last_error, created_at, sent_at, lease_until)
			VALUES `+strings.Join(values, ", ")+` ON CONFLICT (key) DO NOTHING`, args...); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	return nil
}
