package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/crypt"
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
	if err := checkPath(o.Path); err != nil {
		return nil, err
	}
	s := &SQLite{opts: o}
	var err error
	if s.w, err = openDB(o.Path, 1); err != nil {
		return nil, pathErr(o.Path, err)
	}
	if s.r, err = openDB(o.Path, 4); err != nil {
		_ = s.w.Close()
		return nil, pathErr(o.Path, err)
	}
	version, err := migrateRetry(ctx, s.w)
	if err != nil {
		_ = s.w.Close()
		_ = s.r.Close()
		return nil, pathErr(o.Path, err)
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
		if err == nil || !isBusy(err) || i == attempts {
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

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// Path returns the database file.
func (s *SQLite) Path() string { return s.opts.Path }

// checkPath makes sure the directory exists and the file can be opened for
// reading and writing, so a bad path fails with the operating system's plain
// reason rather than SQLite's "out of memory (14)".
func checkPath(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return pathErr(path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return pathErr(path, err)
	}
	return f.Close()
}

// pathErr gives one line naming the path; an *os.PathError is unwrapped so
// the path is not said twice.
func pathErr(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == path {
		err = pe.Err
	} else if errors.As(err, &pe) {
		err = fmt.Errorf("%s %s: %w", pe.Op, pe.Path, pe.Err)
	}
	return fmt.Errorf("registry store %q: %w", path, err)
}

func openDB(path string, conns int) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	return db, nil
}

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
