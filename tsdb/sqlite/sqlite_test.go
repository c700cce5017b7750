package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

func open(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "tsdb.db")
	}
	if o.PruneInterval == 0 {
		o.PruneInterval = -1
	}
	if o.CompactInterval == 0 {
		o.CompactInterval = -1
	}
	s, err := Open(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestContract(t *testing.T) {
	tsdbtest.Run(t, func(t *testing.T) tsdb.Store { return open(t, Options{}) })
}

// compacting compacts after every write, so that the contract suite's
// reads see blocks, rows of hours that have blocks (late samples) and
// rewrites of compacted samples.
type compacting struct {
	*Store
	t *testing.T
}

func (c compacting) WriteSamples(ctx context.Context, rs []prober.Result) error {
	if err := c.Store.WriteSamples(ctx, rs); err != nil {
		return err
	}
	_, err := c.Compact(ctx)
	return err
}

// TestContractCompacted runs the contract suite with every hour closed
// (all in blocks after each write) and with only the hours before
// T0+2h closed (blocks and rows side by side, a range crossing both).
func TestContractCompacted(t *testing.T) {
	if raceDetector {
		t.Skip("the contract suite over compacted blocks runs in the plain pass (make test-future); the compaction tests here run with -race")
	}
	for name, now := range map[string]time.Time{
		"all":    tsdbtest.T0.Add(1000 * 24 * time.Hour),
		"before": tsdbtest.T0.Add(2*time.Hour + DefaultCompactGrace),
	} {
		t.Run(name, func(t *testing.T) {
			tsdbtest.Run(t, func(t *testing.T) tsdb.Store {
				return compacting{open(t, Options{Now: func() time.Time { return now }}), t}
			})
		})
	}
}

// clock is an injectable, settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func count(t *testing.T, s *Store, target string) int {
	t.Helper()
	p, err := s.Samples(context.Background(), tsdb.SampleQuery{TargetID: target, Limit: MaxLimit})
	require.NoError(t, err)
	return len(p.Samples)
}

func TestPruneRetention(t *testing.T) {
	t0 := tsdbtest.T0
	clk := &clock{now: t0}
	s := open(t, Options{Now: clk.Now, RawRetention: 24 * time.Hour, RollupRetention: 10 * 24 * time.Hour})
	ctx := context.Background()
	var rs []prober.Result
	for _, age := range []time.Duration{20 * 24 * time.Hour, 5 * 24 * time.Hour, 25 * time.Hour, time.Hour, 0} {
		for _, id := range []string{"a", "b"} {
			rs = append(rs, tsdbtest.Sample(id, -age, time.Millisecond))
		}
	}
	require.NoError(t, s.WriteSamples(ctx, rs))

	n, err := s.Prune(ctx)
	require.NoError(t, err)
	// Per target: 3 raw samples older than 1 day, 1 rollup older than 10 days.
	require.EqualValues(t, 2*(3+1), n)
	require.Equal(t, 2, count(t, s, "a"))
	ru, err := s.Rollups(ctx, "a", time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, ru, 4, "rollups outlive raw samples")

	n, err = s.Prune(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "pruning is idempotent")

	clk.Set(t0.Add(30 * 24 * time.Hour))
	n, err = s.Prune(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2*(2+4), n)
	require.Zero(t, count(t, s, "b"))
	latest, err := s.Latest(ctx)
	require.NoError(t, err)
	require.Empty(t, latest, "a pruned newest sample leaves Latest")
	ids, err := s.targetIDs(ctx)
	require.NoError(t, err)
	require.Len(t, ids, 2, "a target's newest start outlives its samples")
}

func TestRetentionLoop(t *testing.T) {
	clk := &clock{now: tsdbtest.T0}
	s := open(t, Options{Now: clk.Now, RawRetention: time.Hour, PruneInterval: 10 * time.Millisecond})
	require.NoError(t, s.WriteSamples(context.Background(), []prober.Result{
		tsdbtest.Sample("a", -2*time.Hour, time.Millisecond), tsdbtest.Sample("a", 0, time.Millisecond)}))
	require.Eventually(t, func() bool { return count(t, s, "a") == 1 }, 10*time.Second, 10*time.Millisecond)
}

// TestLatestFollowsStartOrder: the newest sample is the one with the
// newest start, whatever order samples arrive in.
func TestLatestFollowsStartOrder(t *testing.T) {
	s := open(t, Options{})
	ctx := context.Background()
	at := func(i int) time.Duration { return time.Duration(i) * time.Minute }
	ok := func(i int) prober.Result { return tsdbtest.Sample("a", at(i), time.Millisecond) }
	bad := func(i int) prober.Result { return tsdbtest.Failed(ok(i)) }
	latest := func() prober.Result {
		l, err := s.Latest(ctx)
		require.NoError(t, err)
		return l["a"]
	}
	T := func(i int) time.Time { return tsdbtest.T0.Add(at(i)) }

	require.NoError(t, s.WriteSamples(ctx, []prober.Result{ok(1), ok(0)})) // out of order within a batch
	require.True(t, latest().Start.Equal(T(1)))
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{bad(2), bad(3)}))
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{bad(4)}))
	require.True(t, latest().Start.Equal(T(4)))
	require.False(t, latest().Success)
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{ok(-5)})) // late: stored, not the newest
	require.True(t, latest().Start.Equal(T(4)))
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{ok(5), bad(6), ok(7), ok(8)}))
	require.True(t, latest().Start.Equal(T(8)))
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "tsdb.db") // directories are created
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: path})
	require.NoError(t, err)
	want := tsdbtest.Sample("a", 0, 42*time.Millisecond)
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{want}))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	s = open(t, Options{Path: path})
	p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a"})
	require.NoError(t, err)
	require.Equal(t, []prober.Result{tsdbtest.Normalize(want)}, p.Samples)
	ru, err := s.Rollups(ctx, "a", time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, ru, 1)
	latest, err := s.Latest(ctx)
	require.NoError(t, err)
	require.Len(t, latest, 1)
	require.NoError(t, s.Ping(ctx))
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	notDB := filepath.Join(dir, "not-a-db")
	require.NoError(t, os.WriteFile(notDB, []byte(strings.Repeat("this is not sqlite ", 100)), 0o600))

	for name, path := range map[string]string{
		"under a regular file": filepath.Join(file, "tsdb.db"),
		"a directory":          dir,
		"not a database":       notDB,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(context.Background(), Options{Path: path})
			require.Error(t, err)
			msg := err.Error()
			require.Contains(t, msg, path)
			require.NotContains(t, msg, "\n")
			require.Equal(t, 1, strings.Count(msg, path), "path named once: %s", msg)
			t.Log(msg)
		})
	}
	_, err := Open(context.Background(), Options{})
	require.ErrorContains(t, err, "no database path")
}

func TestOpenReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	path := filepath.Join(dir, "tsdb.db")
	_, err := Open(context.Background(), Options{Path: path})
	require.ErrorContains(t, err, path)
	require.ErrorContains(t, err, "permission denied")
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tsdb.db")
	s := open(t, Options{Path: path})
	_, err := s.w.Exec(`UPDATE schema_version SET version = 99`)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = Open(context.Background(), Options{Path: path})
	require.ErrorContains(t, err, "schema version 99 is newer")
}

func TestCursorIsBoundToTarget(t *testing.T) {
	s := open(t, Options{})
	ctx := context.Background()
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{
		tsdbtest.Sample("a", 0, 1), tsdbtest.Sample("a", 1, 1),
		tsdbtest.Sample("b", 0, 1), tsdbtest.Sample("b", 1, 1)}))
	p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, p.NextCursor)
	_, err = s.Samples(ctx, tsdb.SampleQuery{TargetID: "b", Limit: 1, Cursor: p.NextCursor})
	require.ErrorIs(t, err, tsdb.ErrInvalidCursor)
}

func TestOpenBounds(t *testing.T) {
	// A zero From or To leaves that end of the range open.
	s := open(t, Options{})
	ctx := context.Background()
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{
		tsdbtest.Sample("a", -100*24*time.Hour, 1), tsdbtest.Sample("a", 100*24*time.Hour, 1)}))
	p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a"})
	require.NoError(t, err)
	require.Len(t, p.Samples, 2)
	p, err = s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", To: tsdbtest.T0})
	require.NoError(t, err)
	require.Len(t, p.Samples, 1)
}

func TestHourOf(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want int64
	}{
		{time.Unix(7199, 999), 3600},
		{time.Unix(7200, 0), 7200},
		{time.Unix(-1, 0), -3600},
		{time.Unix(-3600, 0), -3600},
		{time.Unix(0, -1), -3600},
	} {
		require.Equal(t, tc.want, hourOf(tc.in), "%v", tc.in)
	}
}
