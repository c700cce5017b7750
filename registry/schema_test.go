package registry_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/sqlitedb"
)

var updateGolden = flag.Bool("update", false, "rewrite the schema golden files in testdata")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got, "the schema a new database gets changed; migrations are append-only")
}

var (
	sqlComment = regexp.MustCompile(`--[^\n]*`)
	sqlSpace   = regexp.MustCompile(`\s+`)
)

// A new SQLite registry gets exactly the schema the golden file holds (the
// one the migrations wrote when the two backends were separate copies), so
// both old and new files have the same tables at the same version.
func TestSQLiteSchemaUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	require.NoError(t, openSQLite(t, path).Close())
	db, err := sqlitedb.Open(path, 1)
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	rows, err := db.QueryContext(t.Context(), `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master ORDER BY tbl_name, type DESC, name`)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var b strings.Builder
	for rows.Next() {
		var typ, name, table, text string
		require.NoError(t, rows.Scan(&typ, &name, &table, &text))
		text = strings.TrimSpace(sqlSpace.ReplaceAllString(sqlComment.ReplaceAllString(text, ""), " "))
		text = strings.ReplaceAll(strings.ReplaceAll(text, "( ", "("), " )", ")")
		b.WriteString(typ + " " + name + " on " + table + ": " + text + "\n")
	}
	require.NoError(t, rows.Err())
	var version int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT version FROM schema_version`).Scan(&version))
	b.WriteString("version " + strconv.Itoa(version) + "\n")
	checkGolden(t, "schema_sqlite.golden", b.String())
}

// The same for PostgreSQL, read from its catalogs.
func TestPostgresSchemaUnchanged(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	u := postgresSchemaURL(t)
	require.NoError(t, openPostgres(t, u).Close())
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	var b strings.Builder
	dump := func(query string) {
		rows, err := conn.Query(ctx, query)
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			vals, err := rows.Values()
			require.NoError(t, err)
			parts := make([]string, len(vals))
			for i, v := range vals {
				parts[i] = strings.TrimSpace(sqlSpace.ReplaceAllString(anyString(v), " "))
			}
			b.WriteString(strings.Join(parts, " | ") + "\n")
		}
		require.NoError(t, rows.Err())
	}
	dump(`SELECT table_name, ordinal_position, column_name, data_type, is_nullable, COALESCE(column_default, ''), is_identity, COALESCE(identity_generation, '')
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	dump(`SELECT tablename, indexname, regexp_replace(indexdef, ' ON [a-z0-9_]+\.', ' ON ') FROM pg_indexes
		WHERE schemaname = current_schema() ORDER BY tablename, indexname`)
	dump(`SELECT c.conrelid::regclass::text, c.conname, c.contype, regexp_replace(pg_get_constraintdef(c.oid), '[a-z0-9_]+\.', '', 'g')
		FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
		WHERE n.nspname = current_schema() ORDER BY 1, 2`)
	dump(`SELECT 'version', version FROM schema_version`)
	checkGolden(t, "schema_postgres.golden", b.String())
}

func anyString(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprint(v)
}
