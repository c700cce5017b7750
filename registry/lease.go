package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/upwatch/upwatch/lease"
)

var _ lease.Store = (*Registry)(nil)

// Acquire takes or renews the lease name for holder (see lease.Store), in
// one statement timed by the database's clock. On PostgreSQL two servers
// acquiring at once are serialised by the row's lock; the loser sees the
// winner's lease and is refused.
func (s *Registry) Acquire(ctx context.Context, name string, holder lease.Holder, ttl time.Duration) (int64, bool, error) {
	if name == "" || holder.ID == "" || ttl <= 0 {
		return 0, false, fmt.Errorf("registry store: acquire lease: name, holder and a positive TTL are required")
	}
	now := s.d.nowNanos
	var token int64
	err := s.queryRowW(ctx, `INSERT INTO leases (name, holder, holder_url, token, expires_at) VALUES (?, ?, ?, 1, `+now+` + ?)
		ON CONFLICT (name) DO UPDATE SET
			token = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > `+now+`
				THEN leases.token ELSE leases.token + 1 END,
			holder = excluded.holder,
			holder_url = excluded.holder_url,
			expires_at = excluded.expires_at
		WHERE leases.expires_at <= `+now+` OR leases.holder = excluded.holder
		RETURNING token`, name, holder.ID, holder.URL, ttl.Nanoseconds()).Scan(&token)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil // another holder's lease lasts
	case err != nil:
		return 0, false, fmt.Errorf("registry store: acquire lease %q: %w", name, err)
	}
	return token, true, nil
}

// LeaseHolder returns who holds the lease name now (by the database's
// clock); ok is false while nobody does.
func (s *Registry) LeaseHolder(ctx context.Context, name string) (h lease.Holder, ok bool, err error) {
	err = s.queryRow(ctx, `SELECT holder, holder_url FROM leases WHERE name = ? AND expires_at > `+s.d.nowNanos, name).Scan(&h.ID, &h.URL)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return lease.Holder{}, false, nil
	case err != nil:
		return lease.Holder{}, false, fmt.Errorf("registry store: lease %q holder: %w", name, err)
	}
	return h, true, nil
}

// Release ends holder's lease now if it still holds it with token.
func (s *Registry) Release(ctx context.Context, name, holder string, token int64) error {
	if _, err := s.exec(ctx, `UPDATE leases SET expires_at = `+s.d.nowNanos+`
		WHERE name = ? AND holder = ? AND token = ?`, name, holder, token); err != nil {
		return fmt.Errorf("registry store: release lease %q: %w", name, err)
	}
	return nil
}

// queryRowW runs a write that returns one row.
func (s *Registry) queryRowW(ctx context.Context, query string, args ...any) *sql.Row {
	return s.w.QueryRowContext(ctx, s.d.bind(query), args...)
}

// fence is what a fenced write checks in its transaction: the lease name
// must still carry the token its writer holds.
type fence struct {
	name  string
	token lease.Token
}

// check reads the lease's current token, locked against a change until
// the transaction ends (so a new holder, who loads the state after
// acquiring, sees this write), and refuses a writer whose token is not it.
// It returns the writer's token; a nil fence passes with 0.
func (f *fence) check(ctx context.Context, tx txn, lockShare string) (int64, error) {
	if f == nil {
		return 0, nil
	}
	mine, held := f.token()
	if !held {
		return 0, lease.ErrFenced
	}
	var cur int64
	switch err := tx.queryRow(ctx, `SELECT token FROM leases WHERE name = ?`+lockShare, f.name).Scan(&cur); {
	case errors.Is(err, sql.ErrNoRows):
		return 0, lease.ErrFenced
	case err != nil:
		return 0, err
	case cur != mine:
		return 0, fmt.Errorf("%w (token %d, the lease's is %d)", lease.ErrFenced, mine, cur)
	}
	return mine, nil
}
