package registry

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// withTx runs a transaction again while it loses to another one, on both
// engines, and stops at once on any other error or when ctx ends.
func TestRetry(t *testing.T) {
	errLost, errOther := errors.New("lost to another transaction"), errors.New("bad input")
	s := &Registry{d: dialect{retryable: func(err error) bool { return errors.Is(err, errLost) }}}
	failing := func(n int, err error) (func() error, *int) {
		calls := 0
		return func() error {
			calls++
			if calls <= n {
				return err
			}
			return nil
		}, &calls
	}

	f, calls := failing(2, errLost)
	require.NoError(t, s.retry(t.Context(), txAttempts, f))
	require.Equal(t, 3, *calls, "two lost runs, then success")

	f, calls = failing(100, errLost)
	require.ErrorIs(t, s.retry(t.Context(), txAttempts, f), errLost)
	require.Equal(t, txAttempts, *calls)

	f, calls = failing(100, errOther)
	require.ErrorIs(t, s.retry(t.Context(), txAttempts, f), errOther)
	require.Equal(t, 1, *calls, "not retryable")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	f, calls = failing(100, errLost)
	require.ErrorIs(t, s.retry(ctx, txAttempts, f), errLost)
	require.Equal(t, 1, *calls, "ctx ended")

	require.True(t, sqliteDialect.retryable(codeErr(5)), "SQLITE_BUSY")
	require.True(t, sqliteDialect.retryable(codeErr(5|2<<8)), "SQLITE_BUSY_SNAPSHOT")
	require.False(t, sqliteDialect.retryable(codeErr(19)), "SQLITE_CONSTRAINT")
}

// A constraint violation is ErrConflict on both engines.
func TestWrapConflict(t *testing.T) {
	s := &Registry{d: sqliteDialect}
	require.ErrorIs(t, s.wrap("create tenant x", codeErr(19|8<<8)), ErrConflict) // SQLITE_CONSTRAINT_PRIMARYKEY
	require.NotErrorIs(t, s.wrap("create tenant x", codeErr(5)), ErrConflict)
	require.ErrorIs(t, s.wrap("tenant x", ErrNotFound), ErrNotFound)
	require.NoError(t, s.wrap("tenant x", nil))
	require.Equal(t, "registry store: tenant x: not found", s.wrap("tenant x", ErrNotFound).Error())

	pg := &Registry{d: postgresDialect}
	require.ErrorIs(t, pg.wrap("create tenant x", &pgconn.PgError{Code: "23505"}), ErrConflict) // unique_violation
	require.NotErrorIs(t, pg.wrap("create tenant x", &pgconn.PgError{Code: "40001"}), ErrConflict)
	require.True(t, pg.d.retryable(&pgconn.PgError{Code: "40P01"}), "deadlock")
	require.True(t, pg.d.retryable(&pgconn.PgError{Code: "40001"}), "serialization failure")
	require.False(t, pg.d.retryable(&pgconn.PgError{Code: "23505"}))
}

// codeErr is an error with a SQLite result code, as the driver's errors have.
type codeErr int

func (e codeErr) Error() string { return "sqlite error" }
func (e codeErr) Code() int     { return int(e) }
