package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

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

// postgresMaxConns bounds each store's connection pool.
const postgresMaxConns = 10

// postgresDialect: PostgreSQL 15 or newer, for several processes sharing
// one registry. Claim locks the rows it leases (FOR UPDATE SKIP LOCKED), so
// two dispatchers never claim the same notification, and migrations take an
// advisory lock, so two processes starting at once do not both migrate.
// Times are BIGINT Unix nanoseconds, so answers equal SQLite's. The tables
// live in the first schema of the connection's search_path.
var postgresDialect = dialect{
	bind:       postgresBind,
	conflict:   pgConstraint,
	retryable:  pgRetryable,
	migrations: postgresMigrations,
	lockSchema: postgresLockSchema,
	lockRow:    " FOR UPDATE",
	skipLocked: " FOR UPDATE SKIP LOCKED",
	lockShare:  " FOR SHARE",
	nowNanos:   "(EXTRACT(EPOCH FROM now()) * 1000000000)::BIGINT",
}

// OpenPostgres connects to the database at o.URL and brings the registry
// schema up to date.
func OpenPostgres(ctx context.Context, o PostgresOptions) (*Registry, error) {
	if o.URL == "" {
		return nil, errors.New("registry store: no PostgreSQL URL given")
	}
	o.Logger, o.Now = orDefaults(o.Logger, o.Now)
	cfg, err := pgx.ParseConfig(o.URL)
	if err != nil {
		// The parser's message quotes the URL (password masked, but
		// perhaps not everywhere): say only that it did not parse.
		return nil, errors.New("registry store: the PostgreSQL URL does not parse (not shown: it may hold a password)")
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresMaxConns)
	db.SetMaxIdleConns(postgresMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Registry{d: postgresDialect, w: db, r: db, masterKey: o.MasterKey, now: o.Now,
		where: fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)}
	version, err := s.migrate(ctx, txAttempts)
	if err == nil {
		err = s.prepareStates(ctx)
	}
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("registry store %s: %w", s.where, err)
	}
	o.Logger.Debug("registry store open", "backend", "postgres", "host", cfg.Host, "port", cfg.Port,
		"database", cfg.Database, "schema_version", version)
	return s, nil
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
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23") && len(pe.Code) == 5
}

// postgresBind numbers ?-placeholders as $1, $2, … (no query of the store
// holds a ? anywhere else).
func postgresBind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
