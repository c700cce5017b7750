package wal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/spool"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

func open(t *testing.T, dir string, o Options) *WAL {
	t.Helper()
	o.Dir = dir
	w, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func sample(i int) prober.Result {
	return tsdbtest.Sample("a", time.Duration(i)*time.Second, time.Duration(i+1)*time.Millisecond)
}

// replayAll replays w and returns what it wrote.
func replayAll(t *testing.T, w *WAL) []prober.Result {
	t.Helper()
	var got []prober.Result
	n, err := w.Replay(context.Background(), 3, func(_ context.Context, rs []prober.Result) error {
		got = append(got, rs...)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, len(got), n)
	return got
}

func appendN(t *testing.T, w *WAL, from, to int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := from; i < to; i++ {
		seq, err := w.Append(context.Background(), sample(i))
		require.NoError(t, err)
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestAppendSurvivesAbandonAndReplaysOnce(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, Options{SyncInterval: time.Hour}) // no fsync: a kill keeps write(2)s
	require.Empty(t, replayAll(t, w))
	seqs := appendN(t, w, 0, 10)
	require.NoError(t, w.Commit(seqs[:4]))
	w.sp.Abandon() // what kill -9 leaves

	w2 := open(t, dir, Options{})
	_, err := w2.Append(context.Background(), sample(99))
	require.ErrorIs(t, err, ErrNotReplayed, "new samples wait for the replay")
	got := replayAll(t, w2)
	require.Len(t, got, 6)
	for i, r := range got {
		require.Equal(t, tsdbtest.Normalize(sample(i+4)), tsdbtest.Normalize(r))
	}
	require.Zero(t, w2.Stats().Samples)
	require.NoError(t, w2.Close())
	require.Empty(t, replayAll(t, open(t, dir, Options{})), "replayed samples are not replayed again")
}

func TestCommitOutOfOrderKeepsTheOldestUncommitted(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, Options{})
	replayAll(t, w)
	seqs := appendN(t, w, 0, 5)
	require.NoError(t, w.Commit([]uint64{seqs[1], seqs[3], seqs[4]}))
	require.Equal(t, int64(5), w.Stats().Samples, "sample 0 is not stored yet: nothing is let go")
	require.NoError(t, w.Commit([]uint64{seqs[0], 12345}))
	require.Equal(t, int64(3), w.Stats().Samples, "up to sample 2 is let go")
	require.NoError(t, w.Close())

	// 3 and 4 are written again: the stores take that as a no-op.
	got := replayAll(t, open(t, dir, Options{}))
	require.Equal(t, tsdbtest.Normalize(sample(2)), tsdbtest.Normalize(got[0]))
	require.Len(t, got, 3)
}

func TestTornTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, Options{})
	replayAll(t, w)
	appendN(t, w, 0, 3)
	require.NoError(t, w.Close())
	segs, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	require.Len(t, segs, 1)
	fi, err := os.Stat(segs[0])
	require.NoError(t, err)
	require.NoError(t, os.Truncate(segs[0], fi.Size()-5)) // the last append was cut short

	got := replayAll(t, open(t, dir, Options{}))
	require.Len(t, got, 2)
	require.Equal(t, tsdbtest.Normalize(sample(1)), tsdbtest.Normalize(got[1]))
}

func TestCommittedSegmentsAreDeleted(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, Options{MaxBytes: spool.MinMaxBytes}) // 16 KiB segments
	replayAll(t, w)
	seqs := appendN(t, w, 0, 100) // about 40 KiB
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Greater(t, len(segs), 2)
	require.NoError(t, w.Commit(seqs))
	appendN(t, w, 100, 101) // the next commit finds the used-up segments
	require.NoError(t, w.Commit([]uint64{seqs[len(seqs)-1] + 1}))
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	require.Len(t, segs, 1, "only the segment being appended to is kept")
	require.Zero(t, w.Stats().Samples)
	require.Less(t, w.Stats().Bytes, int64(spool.MinMaxBytes/4))
}

func TestFullBlocksUntilCommitOrContext(t *testing.T) {
	w := open(t, t.TempDir(), Options{MaxBytes: spool.MinMaxBytes})
	replayAll(t, w)
	var seqs []uint64
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for i := 0; ; i++ {
		seq, err := w.Append(ctx, sample(i))
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded, "a full log makes Append wait")
			require.Contains(t, err.Error(), "spool full")
			break
		}
		seqs = append(seqs, seq)
		require.Less(t, i, 10000, "the log never filled up")
	}
	require.NoError(t, w.Commit(seqs))
	_, err := w.Append(context.Background(), sample(len(seqs)))
	require.NoError(t, err, "committing made room")
}

func TestFullDropOldest(t *testing.T) {
	w := open(t, t.TempDir(), Options{MaxBytes: spool.MinMaxBytes, Full: spool.DropOldest})
	replayAll(t, w)
	seqs := appendN(t, w, 0, 500) // never blocks
	require.Less(t, w.Stats().Samples, int64(500), "the oldest samples were dropped")
	require.NoError(t, w.Commit(seqs))
	require.Zero(t, w.Stats().Samples)
}

func TestReplayRetriesUntilTheStoreTakesIt(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir, Options{})
	replayAll(t, w)
	appendN(t, w, 0, 4)
	require.NoError(t, w.Close())

	w = open(t, dir, Options{})
	calls := 0
	n, err := w.Replay(context.Background(), 0, func(_ context.Context, rs []prober.Result) error {
		if calls++; calls < 3 {
			return errors.New("store down")
		}
		require.Len(t, rs, 4)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, 3, calls)

	// A context that ends stops the replay and keeps the samples.
	appendN(t, w, 4, 5)
	require.NoError(t, w.Close())
	w = open(t, dir, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = w.Replay(ctx, 0, func(context.Context, []prober.Result) error { return errors.New("store down") })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, strings.Contains(err.Error(), "store down"), err.Error())
	require.Equal(t, int64(1), w.Stats().Samples)
}

func TestGroupCommitSyncs(t *testing.T) {
	w := open(t, t.TempDir(), Options{SyncInterval: 5 * time.Millisecond})
	replayAll(t, w)
	appendN(t, w, 0, 1)
	require.Eventually(t, func() bool { return !w.dirty.Load() }, 30*time.Second, time.Millisecond,
		"the group commit fsyncs what was appended")
}
