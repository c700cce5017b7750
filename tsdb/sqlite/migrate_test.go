package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/sqlitedb"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// TestMigrationDropsDuplicateSamples opens a version-1 file that holds the
// same sample twice (as a replay could write it then): the upgrade keeps
// one, and writing it again afterwards adds nothing.
func TestMigrationDropsDuplicateSamples(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sqlitedb.Open(path, 1)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, migrations[0]+`; CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1)`)
	require.NoError(t, err)
	for _, loc := range []string{"eu", "eu", "us"} {
		_, err = db.ExecContext(ctx, `INSERT INTO samples (`+sampleColumns+`)
			VALUES ('a', 'A', 'http', ?, ?, 1, 0, 0, 0, 0, 0, 1, '', '', 200, NULL, 0, '')`, loc, tsdbtest.T0.UnixNano())
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	s, err := Open(ctx, Options{Path: path, PruneInterval: -1})
	require.NoError(t, err)
	defer s.Close()
	count := func() int {
		p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", From: tsdbtest.T0, To: tsdbtest.T0.Add(time.Hour)})
		require.NoError(t, err)
		return len(p.Samples)
	}
	require.Equal(t, 2, count(), "one sample per target, start and location")
	p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", From: tsdbtest.T0, To: tsdbtest.T0.Add(time.Hour)})
	require.NoError(t, err)
	require.NoError(t, s.WriteSamples(ctx, p.Samples))
	require.Equal(t, 2, count())
}

// TestMigrationKeepsNewestStarts opens a version-2 file whose target_state
// holds run tracking: the upgrade keeps each target's newest start, so
// Latest and retention still find every target.
func TestMigrationKeepsNewestStarts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sqlitedb.Open(path, 1)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, migrations[0]+`;`+migrations[1]+`; CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2)`)
	require.NoError(t, err)
	for i, start := range []time.Time{tsdbtest.T0, tsdbtest.T0.Add(time.Minute)} {
		_, err = db.ExecContext(ctx, `INSERT INTO samples (`+sampleColumns+`)
			VALUES ('a', 'A', 'http', 'eu', ?, ?, 0, 0, 0, 0, 0, 1, '', '', 200, NULL, 0, '')`, start.UnixNano(), i+1)
		require.NoError(t, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO target_state VALUES ('a', ?, 1, 0, 2, ?), ('gone', ?, 0, 3, 0, ?)`,
		tsdbtest.T0.Add(time.Minute).UnixNano(), tsdbtest.T0.UnixNano(), tsdbtest.T0.UnixNano(), tsdbtest.T0.UnixNano())
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err := Open(ctx, Options{Path: path, PruneInterval: -1})
	require.NoError(t, err)
	defer s.Close()
	latest, err := s.Latest(ctx)
	require.NoError(t, err)
	require.Len(t, latest, 1)
	require.Equal(t, 2*time.Nanosecond, latest["a"].Duration, "the newest sample")
	ids, err := s.targetIDs(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a", "gone"}, ids)
	var tables int
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'target_state'`).Scan(&tables))
	require.Zero(t, tables, "target_state is dropped")
}
