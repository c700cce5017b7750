package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/crypt"
)

// Registry is the registry store on a SQL database: SQLite (OpenSQLite, the
// embedded default) or PostgreSQL (OpenPostgres, for several processes
// sharing one registry). Both engines run the same queries; a dialect holds
// what differs between them. It is safe for concurrent use, and several
// Registry values, in one process or several, may share a database: two
// dispatchers never claim the same notification.
//
// Times are stored as Unix nanoseconds and come back in UTC, so they must
// lie between the years 1678 and 2262; the zero time is stored as 0 (or NULL
// where a column may be empty) and comes back as the zero time.
type Registry struct {
	d dialect
	// w runs the writes and r the reads. On SQLite w is the single writer
	// connection (its transactions begin IMMEDIATE) and r a pool of readers
	// beside it; on PostgreSQL both are the same pool.
	w, r *sql.DB

	masterKey crypt.MasterKey
	now       func() time.Time
	// path is the SQLite file ("" on PostgreSQL); where names the database
	// in errors, never with a password.
	path, where string

	// stateUpserts are the prepared alert state upserts by row count
	// (see upsertStates), prepared at open.
	stateUpserts map[int]*sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

// SQLite and Postgres are the names the two engines' stores had when they
// were separate types.
type (
	SQLite   = Registry
	Postgres = Registry
)

var (
	_ alerting.StateStore = (*Registry)(nil)
	_ alerting.Outbox     = (*Registry)(nil)
)

// dialect is what differs between the SQL engines. Queries are written once
// with ?-placeholders and bound to the engine by bind.
type dialect struct {
	bind func(query string) string
	// conflict reports an integrity constraint violation (unique, foreign
	// key, not null, check): ErrConflict to callers.
	conflict func(error) bool
	// retryable reports that a transaction failed only because of another
	// one (deadlock, serialization failure, busy database) and may run again.
	retryable func(error) bool
	// migrations bring the schema up to date, in order (see migrate).
	migrations []string
	// lockSchema, if set, serialises migrations between processes inside
	// the migration's transaction (SQLite's IMMEDIATE transaction already
	// does).
	lockSchema func(ctx context.Context, tx txn) error
	// lockRow locks the rows a transaction reads before it writes them
	// (" FOR UPDATE"); skipLocked also passes over rows another transaction
	// holds. SQLite has one writer at a time and needs neither.
	lockRow, skipLocked string
	// lockShare locks a row read so that no other transaction changes it
	// until this one ends (" FOR SHARE"): a commit's fencing check.
	lockShare string
	// nowNanos is the database's clock as Unix nanoseconds, in SQL: lease
	// expiry does not depend on the servers' clocks.
	nowNanos string
}

// orDefaults fills in an unset logger (discard) and clock (time.Now).
func orDefaults(l *slog.Logger, now func() time.Time) (*slog.Logger, func() time.Time) {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if now == nil {
		now = time.Now
	}
	return l, now
}

// Path returns the SQLite database file; it is empty on PostgreSQL.
func (s *Registry) Path() string { return s.path }

// Ping reports whether the database answers.
func (s *Registry) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("registry store %s: %w", s.where, err)
	}
	return nil
}

// Close closes the database. It is idempotent.
func (s *Registry) Close() error {
	s.closeOnce.Do(func() {
		for _, st := range s.stateUpserts {
			_ = st.Close()
		}
		s.closeErr = s.w.Close()
		if s.r != s.w {
			s.closeErr = errors.Join(s.r.Close(), s.closeErr)
		}
	})
	return s.closeErr
}

// exec runs a write outside a transaction.
func (s *Registry) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.w.ExecContext(ctx, s.d.bind(query), args...)
}

// query runs a read.
func (s *Registry) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.r.QueryContext(ctx, s.d.bind(query), args...)
}

// queryRow runs a read of one row.
func (s *Registry) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.r.QueryRowContext(ctx, s.d.bind(query), args...)
}

type scanner interface{ Scan(dest ...any) error }

// scanAll reads every row of a query (rows and err are its answer) with
// scan, and closes rows.
func scanAll[T any](rows *sql.Rows, err error, scan func(sc scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// txn is a write transaction whose queries are bound to the engine.
type txn struct {
	tx   *sql.Tx
	bind func(string) string
}

func (t txn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.bind(query), args...)
}

func (t txn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.bind(query), args...)
}

func (t txn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.bind(query), args...)
}

// txAttempts is how many times withTx runs a transaction that lost to
// another one.
const txAttempts = 5

// withTx runs fn in a write transaction and commits it, running it again
// (up to txAttempts times in all) while it fails only because of a
// concurrent transaction. fn must start from scratch on each run.
func (s *Registry) withTx(ctx context.Context, fn func(tx txn) error) error {
	return s.retry(ctx, txAttempts, func() error { return s.tryTx(ctx, fn) })
}

// retry calls f until it succeeds, fails for a reason a retry cannot cure,
// has been called attempts times, or ctx ends, waiting a little longer
// before each new call.
func (s *Registry) retry(ctx context.Context, attempts int, f func() error) error {
	for i := 1; ; i++ {
		err := f()
		if err == nil || !s.d.retryable(err) || i == attempts {
			return err
		}
		t := time.NewTimer(time.Duration(i) * 10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (s *Registry) tryTx(ctx context.Context, fn func(tx txn) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(txn{tx: tx, bind: s.d.bind}); err != nil {
		return err
	}
	return tx.Commit()
}

// wrap names the operation in err; a constraint violation becomes
// ErrConflict. It returns nil for a nil err.
func (s *Registry) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) && s.d.conflict(err) {
		err = ErrConflict
	}
	return fmt.Errorf("registry store: %s: %w", op, err)
}

// affected turns "no row changed" into ErrNotFound.
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// nanos is t as Unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// nullNanos is t as Unix nanoseconds, NULL for the zero time.
func nullNanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// fromNanos reverses nanos and nullNanos, in UTC.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid || n.Int64 == 0 {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}
