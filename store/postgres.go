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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/crypt"
)

// PostgresOptions configure OpenPostgres. Only URL is required.
type PostgresOptions struct {
	// URL is the connection string, a postgres:// URL or key=value pairs
	// (see pgx.ParseConfig). It may hold a password: it is never logged
	// nor put in an error.
	URL string
	// MasterKey seals the report keys (CreateReportKey) and opens them;
	// without one those methods fail with crypt.ErrNoMasterKey.
	MasterKey crypt.MasterKey
	// Logger receives the open message (default: discard).
	Logger *slog.Logger
	// Now is the clock for updated_at and for notifications queued without
	// a CreatedAt (default time.Now).
	Now func() time.Time
}

// postgresMaxConns bounds each Postgres value's connection pool.
const postgresMaxConns = 10

// Postgres is the registry store on PostgreSQL (15 or newer), for several
// processes sharing one registry. It is safe for concurrent use, and any
// number of Postgres values, in one process or several, may share a
// database: Claim locks the rows it leases (FOR UPDATE SKIP LOCKED), so two
// dispatchers never claim the same notification, and migrations take an
// advisory lock, so two processes starting at once do not both migrate.
//
// Its answers equal SQLite's: times are stored as Unix nanoseconds (BIGINT)
// and come back in UTC, the zero time is stored as 0 (or NULL where a column
// may be empty) and comes back as the zero time. The tables live in the
// first schema of the connection's search_path.
type Postgres struct {
	opts PostgresOptions
	db   *sql.DB
	// where names the server for errors and logs: host, port and database,
	// never the password.
	where string

	closeOnce sync.Once
	closeErr  error
}

var (
	_ Store               = (*Postgres)(nil)
	_ alerting.StateStore = (*Postgres)(nil)
	_ alerting.Outbox     = (*Postgres)(nil)
)

// OpenPostgres connects to the database at o.URL and brings the registry
// schema up to date.
func OpenPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	if o.URL == "" {
		return nil, errors.New("registry store: no PostgreSQL URL given")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg, err := pgx.ParseConfig(o.URL)
	if err != nil {
		// The parser's message quotes the URL (password masked, but
		// perhaps not everywhere): say only that it did not parse.
		return nil, errors.New("registry store: the PostgreSQL URL does not parse (not shown: it may hold a password)")
	}
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	s := &Postgres{opts: o, db: stdlib.OpenDB(*cfg), where: where}
	s.db.SetMaxOpenConns(postgresMaxConns)
	s.db.SetMaxIdleConns(postgresMaxConns)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	version, err := s.migrate(ctx)
	if err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("registry store %s: %w", where, err)
	}
	o.Logger.Debug("registry store open", "backend", "postgres", "host", cfg.Host, "port", cfg.Port,
		"database", cfg.Database, "schema_version", version)
	return s, nil
}

// Ping reports whether the database answers.
func (s *Postgres) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("registry store %s: %w", s.where, err)
	}
	return nil
}

// Close closes the connection pool. It is idempotent.
func (s *Postgres) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.Close() })
	return s.closeErr
}

// pgRetryable reports whether a transaction failed only because of another
// one (deadlock, serialization failure) and may simply run again.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// pgConstraint reports whether err is an integrity constraint violation
// (class 23: unique, foreign key, not null, check).
func pgConstraint(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && len(pe.Code) == 5 && pe.Code[:2] == "23"
}

// pgWrap is wrap for PostgreSQL errors: constraint violations are
// ErrConflict, as SQLite's are.
func pgWrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return fmt.Errorf("registry store: %s: %w", op, err)
	}
	if pgConstraint(err) {
		return fmt.Errorf("registry store: %s: %w", op, ErrConflict)
	}
	return fmt.Errorf("registry store: %s: %w", op, err)
}

// withTx runs fn in a transaction and commits it, running it again (a few
// times) when it lost a deadlock to a concurrent transaction.
func (s *Postgres) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	const attempts = 5
	for i := 1; ; i++ {
		err := s.tryTx(ctx, fn)
		if err == nil || !pgRetryable(err) || i == attempts || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Postgres) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
