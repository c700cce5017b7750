package store

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
	"github.com/upwatch/upwatch/internal/sqlitedb"
)

// SQLiteOptions configure OpenSQLite. Only Path is required.
type SQLiteOptions struct {
	// Path is the database file (normally <data_dir>/registry.db); its
	// directory is created if missing.
	Path string
	// Logger receives the open message (default: discard).
	Logger *slog.Logger
	// Now is the clock for updated_at and for notifications queued without
	// a CreatedAt (default time.Now).
	Now func() time.Time
	// MasterKey seals the report keys (CreateReportKey) and opens them;
	// without one those methods fail with crypt.ErrNoMasterKey.
	MasterKey crypt.MasterKey
}

// SQLite is the embedded registry store: one SQLite file in WAL mode, opened
// with the pure Go driver modernc.org/sqlite. It is safe for concurrent use,
// and several SQLite values (in one process or several) may share a file:
// writes take the write lock at BEGIN (BEGIN IMMEDIATE), so two dispatchers
// never claim the same notification.
//
// Times come back in UTC. They are stored as Unix nanoseconds, so they must
// lie between the years 1678 and 2262; the zero time is stored as 0 (or NULL
// where a column may be empty) and comes back as the zero time.
type SQLite struct {
	opts SQLiteOptions
	// w is the single writer connection (its transactions begin IMMEDIATE);
	// r serves concurrent readers beside it.
	w, r *sql.DB

	closeOnce sync.Once
	closeErr  error
}

var (
	_ Store               = (*SQLite)(nil)
	_ alerting.StateStore = (*SQLite)(nil)
	_ alerting.Outbox     = (*SQLite)(nil)
)

// OpenSQLite opens (creating if needed) the registry database at o.Path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, o SQLiteOptions) (*SQLite, error) {
	if o.Path == "" {
		return nil, errors.New("registry store: no database path given")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := sqlitedb.CheckPath("registry store", o.Path); err != nil {
		return nil, err
	}
	s := &SQLite{opts: o}
	var err error
	if s.w, err = sqlitedb.Open(o.Path, 1); err != nil {
		return nil, sqlitedb.PathError("registry store", o.Path, err)
	}
	if s.r, err = sqlitedb.Open(o.Path, 4); err != nil {
		_ = s.w.Close()
		return nil, sqlitedb.PathError("registry store", o.Path, err)
	}
	version, err := migrateRetry(ctx, s.w)
	if err != nil {
		_ = s.w.Close()
		_ = s.r.Close()
		return nil, sqlitedb.PathError("registry store", o.Path, err)
	}
	o.Logger.Debug("registry store open", "path", o.Path, "schema_version", version)
	return s, nil
}

// migrateRetry runs migrate, trying again for a while when the database is
// busy. busy_timeout covers ordinary lock waits, but SQLite answers
// SQLITE_BUSY at once when waiting could deadlock, which happens while two
// processes open a new file together and one switches it to WAL.
func migrateRetry(ctx context.Context, db *sql.DB) (int, error) {
	const attempts = 50
	for i := 1; ; i++ {
		version, err := migrate(ctx, db)
		if err == nil || !sqlitedb.IsBusy(err) || i == attempts {
			return version, err
		}
		t := time.NewTimer(time.Duration(i) * 10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, err
		case <-t.C:
		}
	}
}

// Path returns the database file.
func (s *SQLite) Path() string { return s.opts.Path }

// Ping reports whether the database answers.
func (s *SQLite) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("registry store %q: %w", s.opts.Path, err)
	}
	return nil
}

// Close closes the database. It is idempotent.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
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

// withTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
func (s *SQLite) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
