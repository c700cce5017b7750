package registrytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// PostgresBaseURL is the test server's URL (.ci/services/postgres.sh start
// prints it). Without one the test is skipped, unless
// UPWATCH_REQUIRE_POSTGRES is set, when it fails.
func PostgresBaseURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("UPWATCH_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("UPWATCH_REQUIRE_POSTGRES") != "" {
			t.Fatal("UPWATCH_REQUIRE_POSTGRES is set but UPWATCH_TEST_POSTGRES_URL is not: start the server with " +
				`eval "$(.ci/services/postgres.sh start)"`)
		}
		t.Skip("PostgreSQL tests skipped: UPWATCH_TEST_POSTGRES_URL is not set " +
			`(run: .ci/services/postgres.sh install && eval "$(.ci/services/postgres.sh start)")`)
	}
	return u
}

// PostgresSchemaURL creates a new, empty schema in the test database and
// returns the server URL with search_path set to it, so tests run in
// parallel and leave nothing behind: the schema is dropped when the test
// ends.
func PostgresSchemaURL(t *testing.T) string {
	t.Helper()
	base := PostgresBaseURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "upwatch_test_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(t.Context(), base)
	require.NoError(t, err, "connecting to UPWATCH_TEST_POSTGRES_URL")
	defer func() { _ = conn.Close(t.Context()) }()
	_, err = conn.Exec(t.Context(), "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background() // t.Context() has ended by now
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
