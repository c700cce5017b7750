package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting"
)

// LoadStates returns every target's last committed state, keyed by target ID.
func (s *Postgres) LoadStates(ctx context.Context) (map[string]alerting.State, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT target_id, state FROM alert_state`)
	if err != nil {
		return nil, fmt.Errorf("registry store: load states: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := make(map[string]alerting.State)
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("registry store: load states: %w", err)
		}
		var st alerting.State
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			return nil, fmt.Errorf("registry store: load state of target %q: %w", id, err)
		}
		out[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry store: load states: %w", err)
	}
	return out, nil
}

// Commit stores st, upserts the incidents by ID and queues the
// notifications, in one transaction. A notification whose Key is already in
// the outbox is skipped, whatever its status. Queued notifications get
// status pending unless they name another, and CreatedAt = now if it is
// zero.
func (s *Postgres) Commit(ctx context.Context, st alerting.State, incidents []alerting.Incident, queue []alerting.Notification) error {
	if err := checkCommit(st, incidents, queue); err != nil {
		return fmt.Errorf("registry store: commit: %w", err)
	}
	rawState, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("registry store: commit target %q: %w", st.TargetID, err)
	}
	msgs := make([][]byte, len(queue))
	for i, n := range queue {
		if msgs[i], err = encodeMessage(n, s.opts.MasterKey); err != nil {
			return fmt.Errorf("registry store: commit notification %q: %w", n.Key, err)
		}
	}
	now := s.opts.Now()
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_state (target_id, state, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (target_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
			st.TargetID, string(rawState), now.UnixNano()); err != nil {
			return err
		}
		for _, inc := range incidents {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incidents
				(id, target_id, start, "end", cause, suppressed, suppressed_reason, in_maintenance)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (id) DO UPDATE SET target_id = excluded.target_id, start = excluded.start,
					"end" = excluded."end", cause = excluded.cause, suppressed = excluded.suppressed,
					suppressed_reason = excluded.suppressed_reason, in_maintenance = excluded.in_maintenance`,
				inc.ID, inc.TargetID, nanos(inc.Start), nullNanos(inc.End),
				inc.Cause, inc.Suppressed, inc.SuppressedReason, inc.InMaintenance); err != nil {
				return fmt.Errorf("incident %q: %w", inc.ID, err)
			}
		}
		if len(queue) == 0 {
			return nil
		}
		// One statement for the whole queue, its rows in key order so that
		// concurrent commits of overlapping batches lock keys in the same
		// order.
		order := make([]int, len(queue))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(queue[a].Key, queue[b].Key) })
		for lo := 0; lo < len(order); lo += postgresInsertBatch {
			if err := s.insertNotes(ctx, tx, queue, msgs, order[lo:min(lo+postgresInsertBatch, len(order))], now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry store: commit target %q: %w", st.TargetID, err)
	}
	return nil
}

// Incidents lists the incidents matching q, newest start first.
func (s *Postgres) Incidents(ctx context.Context, q IncidentQuery) ([]alerting.Incident, error) {
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, fmt.Errorf("registry store: incidents: from (%s) must be before to (%s)", q.From, q.To)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.TargetID != "" {
		where = append(where, `target_id = `+arg(q.TargetID))
	}
	if !q.To.IsZero() {
		where = append(where, `start < `+arg(q.To.UnixNano()))
	}
	if q.OpenOnly {
		where = append(where, `"end" IS NULL`)
	} else if !q.From.IsZero() {
		where = append(where, `("end" IS NULL OR "end" > `+arg(q.From.UnixNano())+`)`)
	}
	query := `SELECT id, target_id, start, "end", cause, suppressed, suppressed_reason, in_maintenance FROM incidents`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY start DESC, id DESC LIMIT ` + arg(clampLimit(q.Limit))
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("registry store: incidents: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []alerting.Incident
	for rows.Next() {
		var inc alerting.Incident
		var start, end sql.NullInt64
		if err := rows.Scan(&inc.ID, &inc.TargetID, &start, &end, &inc.Cause, &inc.Suppressed,
			&inc.SuppressedReason, &inc.InMaintenance); err != nil {
			return nil, fmt.Errorf("registry store: incidents: %w", err)
		}
		inc.Start, inc.End = fromNanos(start), fromNanos(end)
		out = append(out, inc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry store: incidents: %w", err)
	}
	return out, nil
}

// Claim leases up to limit pending notifications that are due at now and not
// leased (or whose lease has ended by now), oldest created first, until
// now+lease, and counts an attempt on each. The rows are selected FOR UPDATE
// SKIP LOCKED and leased in the same transaction, so concurrent claimers, in
// this process or another, never get the same notification while its lease
// lasts.
func (s *Postgres) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]alerting.Notification, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("registry store: claim: lease must be positive, got %s", lease)
	}
	if limit <= 0 {
		return nil, nil
	}
	at, until := now.UnixNano(), now.Add(lease).UnixNano()
	var out []alerting.Notification
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `WITH due AS (
				SELECT key FROM outbox
				WHERE status = 'pending' AND next_attempt <= $2 AND (lease_until IS NULL OR lease_until <= $2)
				ORDER BY created_at, key LIMIT $3
				FOR UPDATE SKIP LOCKED)
			UPDATE outbox o SET lease_until = $1, attempts = o.attempts + 1
			FROM due WHERE o.key = due.key
			RETURNING o.key, o.channel, o.message, o.status, o.attempts, o.next_attempt, o.last_error, o.created_at, o.sent_at`,
			until, at, limit)
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

// Defer hands a claimed notification back until next without spending an
// attempt on it (see SQLite.Defer).
func (s *Postgres) Defer(ctx context.Context, key string, next time.Time) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbox SET next_attempt = $1, lease_until = NULL,
			attempts = GREATEST(attempts - 1, 0)
			WHERE key = $2 AND status = 'pending'`, nanos(next), key)
		return err
	})
	if err != nil {
		return fmt.Errorf("registry store: defer %q: %w", key, err)
	}
	return nil
}

// Settle records the outcome of an attempt and ends the lease: sent (sent_at
// = at), failed for good, or pending again from next on. lastError is kept,
// cut to MaxLastError bytes. An unknown key is ErrUnknownKey; a notification
// already sent or failed is left alone, and asking for another status than
// the one it has is ErrSettled.
func (s *Postgres) Settle(ctx context.Context, key string, status alerting.NotificationStatus, next time.Time, lastError string, at time.Time) error {
	if !validStatus(status) {
		return fmt.Errorf("registry store: settle %q: unknown status %q", key, status)
	}
	lastError = truncate(lastError, MaxLastError)
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var cur string
		switch err := tx.QueryRowContext(ctx, `SELECT status FROM outbox WHERE key = $1 FOR UPDATE`, key).Scan(&cur); {
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
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET status = $1, sent_at = $2, last_error = $3, lease_until = NULL
				WHERE key = $4`, string(status), nanos(at), lastError, key)
		case alerting.StatusFailed:
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET status = $1, last_error = $2, lease_until = NULL
				WHERE key = $3`, string(status), lastError, key)
		default:
			_, err = tx.ExecContext(ctx, `UPDATE outbox SET next_attempt = $1, last_error = $2, lease_until = NULL
				WHERE key = $3`, nanos(next), lastError, key)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("registry store: settle %q: %w", key, err)
	}
	return nil
}

// Pending counts the pending notifications and returns the creation time of
// the oldest (zero if none).
func (s *Postgres) Pending(ctx context.Context) (int, time.Time, error) {
	var count int
	var oldest sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = 'pending'`).
		Scan(&count, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("registry store: pending: %w", err)
	}
	return count, fromNanos(oldest), nil
}

// Notifications lists the outbox entries matching q, newest created first.
func (s *Postgres) Notifications(ctx context.Context, q NotificationQuery) ([]alerting.Notification, error) {
	if q.Status != "" && !validStatus(q.Status) {
		return nil, fmt.Errorf("registry store: notifications: unknown status %q", q.Status)
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.IncidentID != "" {
		where = append(where, `incident_id = `+arg(q.IncidentID))
	}
	if q.Status != "" {
		where = append(where, `status = `+arg(string(q.Status)))
	}
	query := `SELECT ` + notificationColumns + ` FROM outbox`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	query += ` ORDER BY created_at DESC, key DESC LIMIT ` + arg(clampLimit(q.Limit))
	rows, err := s.db.QueryContext(ctx, query, args...)
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
// many it ended. Only a process that owns the registry alone may call it at
// start (see SQLite.ReleaseLeases); processes sharing a PostgreSQL registry
// must not, as the leases may be another dispatcher's.
func (s *Postgres) ReleaseLeases(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET lease_until = NULL
		WHERE status = 'pending' AND lease_until IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("registry store: release leases: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("registry store: release leases: %w", err)
	}
	return n, nil
}

// postgresInsertBatch is how many notifications one INSERT queues (each
// takes 10 of the 65535 parameters a statement may have).
const postgresInsertBatch = 1000

// insertNotes queues queue[i] for each i in order, in that order, skipping
// the keys already in the outbox.
func (s *Postgres) insertNotes(ctx context.Context, tx *sql.Tx, queue []alerting.Notification, msgs [][]byte, order []int, now time.Time) error {
	const cols = 10
	var b strings.Builder
	b.WriteString(`INSERT INTO outbox
		(key, channel, incident_id, message, status, attempts, next_attempt, last_error, created_at, sent_at, lease_until)
		VALUES `)
	args := make([]any, 0, cols*len(order))
	for j, i := range order {
		n := queue[i]
		status := n.Status
		if status == "" {
			status = alerting.StatusPending
		}
		created := n.CreatedAt
		if created.IsZero() {
			created = now
		}
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(len(args) + c + 1))
		}
		b.WriteString(", NULL)")
		args = append(args, n.Key, n.Channel, n.Message.IncidentID, string(msgs[i]),
			string(status), n.Attempts, nanos(n.NextAttempt), truncate(n.LastError, MaxLastError),
			created.UnixNano(), nullNanos(n.SentAt))
	}
	b.WriteString(` ON CONFLICT (key) DO NOTHING`)
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	return nil
}
