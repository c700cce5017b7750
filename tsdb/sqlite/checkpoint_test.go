package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// writeTargets stores one sample, age before tsdbtest.T0, for each of n
// targets.
func writeTargets(t *testing.T, s *Store, n int, age time.Duration) {
	t.Helper()
	rs := make([]prober.Result, n)
	for i := range rs {
		rs[i] = tsdbtest.Sample(fmt.Sprintf("target-%05d", i), -age, time.Millisecond)
	}
	require.NoError(t, s.WriteSamples(context.Background(), rs))
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

// TestWritesLeaveCheckpointsToTheLoop: with the checkpoint loop the writer
// never copies the write-ahead file into the database file itself (that
// held every write for seconds at scale); the loop does, without a call.
func TestWritesLeaveCheckpointsToTheLoop(t *testing.T) {
	if raceDetector {
		t.Skip("40 MB of writes: left to the plain pass (test-future)")
	}
	path := filepath.Join(t.TempDir(), "tsdb.db")
	s := open(t, Options{Path: path, CheckpointInterval: time.Hour})
	base := fileSize(t, path)
	// Past the 10,000 pages at which the writer used to checkpoint.
	for i := range 8 {
		writeTargets(t, s, 20000, time.Duration(i)*time.Minute)
	}
	require.Greater(t, fileSize(t, path+"-wal"), int64(10000*4096), "the writes went to the write-ahead file")
	require.Equal(t, base, fileSize(t, path), "no write checkpointed")
	require.NoError(t, s.Close())

	// Closing checkpointed everything; the loop copies what comes next.
	s = open(t, Options{Path: path, CheckpointInterval: 10 * time.Millisecond})
	base = fileSize(t, path)
	for i := range 4 {
		writeTargets(t, s, 20000, time.Duration(10+i)*time.Minute)
	}
	require.Eventually(t, func() bool { return fileSize(t, path) > base }, 30*time.Second, 10*time.Millisecond,
		"the loop copies the write-ahead file into the database file")
	require.Len(t, mustLatest(t, s), 20000, "every target's samples are there")
}

// TestCheckpointIntervalNegativeLeavesItToSQLite: a short-lived tool that
// runs no loop still gets its write-ahead file checkpointed by SQLite.
func TestCheckpointIntervalNegativeLeavesItToSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tsdb.db")
	s := open(t, Options{Path: path, CheckpointInterval: -1})
	var pages int
	require.NoError(t, s.w.QueryRowContext(context.Background(), `PRAGMA wal_autocheckpoint`).Scan(&pages))
	require.Equal(t, 10000, pages)
	require.NoError(t, s.Close())

	s = open(t, Options{Path: path})
	require.NoError(t, s.w.QueryRowContext(context.Background(), `PRAGMA wal_autocheckpoint`).Scan(&pages))
	require.Zero(t, pages, "with the loop the writer does not checkpoint")
}

func mustLatest(t *testing.T, s *Store) map[string]prober.Result {
	t.Helper()
	l, err := s.Latest(context.Background())
	require.NoError(t, err)
	return l
}

// TestCheckpointBoundTruncates: a write-ahead file past the bound is
// truncated on the writer, whatever the PASSIVE checkpoints managed.
func TestCheckpointBoundTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tsdb.db")
	s := open(t, Options{Path: path, CheckpointInterval: time.Hour})
	s.walBound = 0
	writeTargets(t, s, 2000, 0)
	// A reader in the middle of a read keeps the PASSIVE checkpoints from
	// copying the frames written after it began.
	rows, err := s.r.QueryContext(context.Background(), `SELECT target_id FROM samples`)
	require.NoError(t, err)
	require.True(t, rows.Next())
	writeTargets(t, s, 2000, time.Minute)
	truncating := make(chan struct{})
	s.beforeTruncate = func() { close(truncating) }
	done := make(chan error, 1)
	go func() { done <- s.checkpointOnce(context.Background()) }()
	<-truncating // TRUNCATE waits for the reader (up to the busy timeout)
	require.NoError(t, rows.Close())
	require.NoError(t, <-done)
	require.Zero(t, fileSize(t, path+"-wal"), "the write-ahead file was truncated")
	require.Len(t, mustLatest(t, s), 2000)
}
