package registry

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

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

// sqliteDialect: one SQLite file in WAL mode, opened with the pure Go
// driver modernc.org/sqlite. Write transactions take the write lock at
// BEGIN (BEGIN IMMEDIATE), so they run one at a time, in this process or
// another on the same file; that is what keeps two dispatchers from claiming
// the same notification and two processes from both migrating a new file.
var sqliteDialect = dialect{
	bind:       func(q string) string { return q },
	conflict:   sqliteConstraint,
	retryable:  sqlitedb.IsBusy,
	migrations: migrations,
	nowNanos:   "(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 1000000)",
}

// sqliteConstraint reports whether err is SQLITE_CONSTRAINT (any extended
// code).
func sqliteConstraint(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 19
}

// sqliteMigrateAttempts: migrating retries a busy database for a while.
// busy_timeout covers ordinary lock waits, but SQLite answers SQLITE_BUSY at
// once when waiting could deadlock, which happens while two processes open a
// new file together and one switches it to WAL.
const sqliteMigrateAttempts = 50

// OpenSQLite opens (creating if needed) the registry database at o.Path and
// brings its schema up to date.
func OpenSQLite(ctx context.Context, o SQLiteOptions) (*Registry, error) {
	if o.Path == "" {
		return nil, errors.New("registry store: no database path given")
	}
	o.Logger, o.Now = orDefaults(o.Logger, o.Now)
	if err := sqlitedb.CheckPath("registry store", o.Path); err != nil {
		return nil, err
	}
	s := &Registry{d: sqliteDialect, masterKey: o.MasterKey, now: o.Now, path: o.Path, where: strconv.Quote(o.Path)}
	var err error
	if s.w, err = sqlitedb.Open(o.Path, 1); err != nil {
		return nil, sqlitedb.PathError("registry store", o.Path, err)
	}
	if s.r, err = sqlitedb.Open(o.Path, 4); err != nil {
		_ = s.w.Close()
		return nil, sqlitedb.PathError("registry store", o.Path, err)
	}
	version, err := s.migrate(ctx, sqliteMigrateAttempts)
	if err == nil {
		err = s.prepareStates(ctx)
	}
	if err != nil {
		_ = s.Close()
		return nil, sqlitedb.PathError("registry store", o.Path, err)
	}
	o.Logger.Debug("registry store open", "path", o.Path, "schema_version", version)
	return s, nil
}
