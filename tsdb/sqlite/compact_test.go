package sqlite

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/sqlitedb"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// where counts a target's raw rows and blocks.
func where(t *testing.T, s *Store, target string) (rows, blocks int) {
	t.Helper()
	require.NoError(t, s.r.QueryRow(`SELECT count(*) FROM samples WHERE target_id = ?`, target).Scan(&rows))
	require.NoError(t, s.r.QueryRow(`SELECT count(*) FROM blocks WHERE target_id = ?`, target).Scan(&blocks))
	return rows, blocks
}

// snapshot is everything the store answers about target a.
type snapshot struct {
	samples []prober.Result
	rollups []tsdb.Rollup
	latest  map[string]prober.Result
}

func read(t *testing.T, s *Store) snapshot {
	t.Helper()
	ctx := context.Background()
	var got snapshot
	q := tsdb.SampleQuery{TargetID: "a", Limit: 7}
	for {
		p, err := s.Samples(ctx, q)
		require.NoError(t, err)
		got.samples = append(got.samples, p.Samples...)
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	var err error
	got.rollups, err = s.Rollups(ctx, "a", time.Time{}, time.Time{})
	require.NoError(t, err)
	got.latest, err = s.Latest(ctx)
	require.NoError(t, err)
	return got
}

// fourHours writes checks of a every 10 minutes for 4 hours, failures
// among them, from two locations.
func fourHours(t *testing.T, s *Store) []prober.Result {
	t.Helper()
	var rs []prober.Result
	for i := range 24 {
		r := tsdbtest.Sample("a", time.Duration(i)*10*time.Minute+time.Duration(i)*time.Millisecond, time.Duration(i+1)*time.Millisecond)
		if i%5 == 0 {
			r = tsdbtest.Failed(r)
		}
		rs = append(rs, r, withLoc(r, "us-east"))
	}
	require.NoError(t, s.WriteSamples(context.Background(), rs))
	return rs
}

// TestCompactClosedHours: compaction moves the hours that closed more than
// the grace ago into blocks, leaves the others in rows, and changes no
// answer.
func TestCompactClosedHours(t *testing.T) {
	clk := &clock{now: tsdbtest.T0.Add(2*time.Hour + time.Minute)} // hour 1 closed, within the grace
	s := open(t, Options{Now: clk.Now})
	ctx := context.Background()
	rs := fourHours(t, s)
	before := read(t, s)
	require.Len(t, before.samples, len(rs))

	n, err := s.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 12, n, "hour 0: 6 checks from 2 locations")
	rows, blocks := where(t, s, "a")
	require.Equal(t, []int{len(rs) - 12, 1}, []int{rows, blocks})
	require.Equal(t, before, read(t, s))

	n, err = s.Compact(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "compaction is idempotent")

	clk.Set(tsdbtest.T0.Add(10 * time.Hour))
	n, err = s.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(rs)-12, n)
	rows, blocks = where(t, s, "a")
	require.Equal(t, []int{0, 4}, []int{rows, blocks})
	require.Equal(t, before, read(t, s), "the newest sample comes from a block")
}

// TestCompactLateSample: a sample of an hour already compacted is stored
// once as a row, read with the block, written again without effect, and
// merged into the block by the next compaction.
func TestCompactLateSample(t *testing.T) {
	s := open(t, Options{Now: func() time.Time { return tsdbtest.T0.Add(10 * time.Hour) }})
	ctx := context.Background()
	rs := fourHours(t, s)
	_, err := s.Compact(ctx)
	require.NoError(t, err)

	late := tsdbtest.Sample("a", 5*time.Minute, 3*time.Second)
	late.Location = "ap-south"
	for range 2 {
		require.NoError(t, s.WriteSamples(ctx, []prober.Result{late, rs[3], rs[40]})) // with two compacted ones
	}
	rows, blocks := where(t, s, "a")
	require.Equal(t, []int{1, 4}, []int{rows, blocks})
	withLate := read(t, s)
	require.Len(t, withLate.samples, len(rs)+1)
	require.Equal(t, tsdbtest.Normalize(late), withLate.samples[2], "in order between the block's samples")
	require.EqualValues(t, 13, withLate.rollups[0].Checks, "counted once")

	n, err := s.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	rows, blocks = where(t, s, "a")
	require.Equal(t, []int{0, 4}, []int{rows, blocks})
	require.Equal(t, withLate, read(t, s))
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{late}))
	require.Equal(t, withLate, read(t, s), "a rewrite of a sample merged into a block")
}

// TestCompactInterrupted: a compaction that fails after writing a block
// but before deleting its rows (as a crash there would) leaves no trace:
// the block and the deletion are one transaction.
func TestCompactInterrupted(t *testing.T) {
	s := open(t, Options{Now: func() time.Time { return tsdbtest.T0.Add(10 * time.Hour) }})
	ctx := context.Background()
	rs := fourHours(t, s)
	before := read(t, s)
	calls := 0
	s.afterBlock = func() error {
		if calls++; calls == 3 {
			return errors.New("crash")
		}
		return nil
	}
	_, err := s.Compact(ctx)
	require.ErrorContains(t, err, "crash")
	rows, blocks := where(t, s, "a")
	require.Equal(t, []int{len(rs), 0}, []int{rows, blocks}, "two blocks written before the failure are rolled back")
	require.Equal(t, before, read(t, s))

	s.afterBlock = nil
	_, err = s.Compact(ctx)
	require.NoError(t, err)
	rows, blocks = where(t, s, "a")
	require.Equal(t, []int{0, 4}, []int{rows, blocks})
	require.Equal(t, before, read(t, s))
}

// TestPruneBlocks: retention drops a block once its whole hour is older
// than the raw retention, counting its samples, and keeps rollups.
func TestPruneBlocks(t *testing.T) {
	clk := &clock{now: tsdbtest.T0.Add(10 * time.Hour)}
	s := open(t, Options{Now: clk.Now, RawRetention: 24 * time.Hour})
	ctx := context.Background()
	rs := fourHours(t, s)
	_, err := s.Compact(ctx)
	require.NoError(t, err)

	clk.Set(tsdbtest.T0.Add(25*time.Hour + 30*time.Minute)) // cut at T0+1h30m: hour 0 is past it, hour 1 straddles it
	n, err := s.Prune(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 12, n)
	got := read(t, s)
	require.Equal(t, tsdbtest.Normalize(rs[12]), got.samples[0], "hour 1 is whole")
	require.Len(t, got.samples, len(rs)-12)
	require.Len(t, got.rollups, 4, "rollups outlive raw samples")

	clk.Set(tsdbtest.T0.Add(30 * 24 * time.Hour))
	n, err = s.Prune(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(rs)-12, n)
	_, blocks := where(t, s, "a")
	require.Zero(t, blocks)
	require.Empty(t, read(t, s).latest)
}

// TestMigrationCompactsOldRows opens a file of the previous schema
// (version 3, every sample a row): everything reads as before at once,
// the background compaction moves closed hours into blocks at open, and
// a cursor the previous version issued still continues its page.
func TestMigrationCompactsOldRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old := open(t, Options{Path: path})
	rs := fourHours(t, old)
	want := read(t, old)
	require.NoError(t, old.Close())
	db, err := sqlitedb.Open(path, 1)
	require.NoError(t, err)
	_, err = db.Exec(`DROP TABLE blocks; DROP TABLE evidence; UPDATE schema_version SET version = 3`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s := open(t, Options{Path: path, CompactInterval: time.Hour, Now: func() time.Time { return tsdbtest.T0.Add(3 * time.Hour) }})
	require.Eventually(t, func() bool {
		rows, blocks := where(t, s, "a")
		return rows == len(rs)-24 && blocks == 2
	}, 30*time.Second, 10*time.Millisecond, "hours 0 and 1 compacted at open")
	require.Equal(t, want, read(t, s))

	v1 := cursor{start: rs[5].Start.UnixNano()}.encodeV1("a", 12345)
	p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", Cursor: v1, Limit: 3})
	require.NoError(t, err)
	require.Equal(t, want.samples[6:9], p.Samples, "after every sample at the cursor's start")
}

// encodeV1 is a cursor as the version before blocks issued it.
func (c cursor) encodeV1(target string, rowid int64) string {
	b := []byte{1}
	b = binary.BigEndian.AppendUint64(b, uint64(c.start))
	b = binary.BigEndian.AppendUint64(b, uint64(rowid))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(target)))
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestCompactDays: once a UTC day has closed, its hour blocks are merged
// into one block of the day, and hours of it compacted later go straight
// into that block; reads across the day's edge, the newest sample from a
// day block, late and replayed samples and retention behave as with hour
// blocks. T0 is 09:00, so its day ends at T0+15h.
func TestCompactDays(t *testing.T) {
	dayEnd := tsdbtest.T0.Add(15 * time.Hour)
	clk := &clock{now: dayEnd.Add(-time.Hour + DefaultCompactGrace)} // hour 23 of T0's day still open
	s := open(t, Options{Now: clk.Now, RawRetention: 48 * time.Hour})
	ctx := context.Background()
	var rs []prober.Result
	for i := range 36 { // every 10 minutes from 21:00 to 03:00
		r := tsdbtest.Sample("a", 12*time.Hour+time.Duration(i)*10*time.Minute+time.Duration(i)*time.Microsecond, time.Duration(i+1)*time.Millisecond)
		if i%7 == 0 {
			r = tsdbtest.Failed(r)
		}
		rs = append(rs, r, withLoc(r, "us-east"))
	}
	onlyDay := tsdbtest.Sample("b", 14*time.Hour, time.Second) // b's newest sample, in T0's day
	require.NoError(t, s.WriteSamples(ctx, append(slices.Clone(rs), onlyDay)))
	want := read(t, s)
	require.Len(t, want.samples, len(rs))

	_, err := s.Compact(ctx)
	require.NoError(t, err)
	rows, blocks := where(t, s, "a")
	require.Equal(t, []int{len(rs) - 24, 2}, []int{rows, blocks}, "hours 21 and 22 in hour blocks")

	clk.Set(dayEnd.Add(3*time.Hour + DefaultCompactGrace)) // T0's day and hours 0-2 of the next closed
	_, err = s.Compact(ctx)
	require.NoError(t, err)
	rows, blocks = where(t, s, "a")
	require.Equal(t, []int{0, 4}, []int{rows, blocks}, "one day block, three hour blocks")
	var hours []int64
	rws, err := s.r.Query(`SELECT hours FROM blocks WHERE target_id = 'a' ORDER BY hour`)
	require.NoError(t, err)
	for rws.Next() {
		var h int64
		require.NoError(t, rws.Scan(&h))
		hours = append(hours, h)
	}
	require.NoError(t, rws.Err())
	require.Equal(t, []int64{24, 1, 1, 1}, hours)
	require.Equal(t, want, read(t, s))
	require.Equal(t, tsdbtest.Normalize(onlyDay), want.latest["b"], "the newest sample of b, from its day block")

	p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", From: dayEnd.Add(-30 * time.Minute), To: dayEnd.Add(30 * time.Minute)})
	require.NoError(t, err)
	require.Equal(t, want.samples[30:42], p.Samples, "a range across the day's edge")

	// A late sample of the closed day is merged into its day block; a
	// replayed one stores nothing.
	late := withLoc(tsdbtest.Sample("a", 12*time.Hour+5*time.Minute, time.Second), "ap-south")
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{late, rs[5]}))
	_, err = s.Compact(ctx)
	require.NoError(t, err)
	rows, blocks = where(t, s, "a")
	require.Equal(t, []int{0, 4}, []int{rows, blocks})
	got := read(t, s)
	require.Len(t, got.samples, len(rs)+1)
	require.Equal(t, tsdbtest.Normalize(late), got.samples[2])

	// Retention drops the day block once the whole day is past the cut.
	clk.Set(dayEnd.Add(47 * time.Hour)) // cut one hour before the day's end
	n, err := s.Prune(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	clk.Set(dayEnd.Add(48 * time.Hour))
	n, err = s.Prune(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 36+1+1, n, "a's 36 samples and the late one in T0's day, and b's")
	rows, blocks = where(t, s, "a")
	require.Equal(t, []int{0, 3}, []int{rows, blocks})
}

// TestLatestFromDayBlockMemo: the newest sample of a target that has not
// been checked since an earlier day lies in a day block; Latest decodes
// that block once and keeps the sample, until the block changes.
func TestLatestFromDayBlockMemo(t *testing.T) {
	s := open(t, Options{Now: func() time.Time { return tsdbtest.T0.Add(72 * time.Hour) }})
	ctx := context.Background()
	var rs []prober.Result
	for i := range 900 { // every minute to the end of T0's day
		rs = append(rs, tsdbtest.Sample("p", time.Duration(i)*time.Minute+time.Duration(i), time.Duration(i+1)*time.Millisecond))
	}
	require.NoError(t, s.WriteSamples(ctx, rs))
	_, err := s.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, []int{0, 1}, func() []int { r, b := where(t, s, "p"); return []int{r, b} }())

	alloc := func() (uint64, map[string]prober.Result) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		got, err := s.Latest(ctx)
		runtime.ReadMemStats(&m1)
		require.NoError(t, err)
		return m1.TotalAlloc - m0.TotalAlloc, got
	}
	first, got := alloc()
	require.Equal(t, tsdbtest.Normalize(rs[899]), got["p"])
	again, got := alloc()
	require.Equal(t, tsdbtest.Normalize(rs[899]), got["p"])
	require.Less(t, again*10, first, "the second call decodes nothing (%d bytes allocated, first %d)", again, first)

	// A late sample at the same start from another location rewrites the
	// block: the memo no longer holds.
	late := withLoc(rs[899], "zz-last")
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{late}))
	_, err = s.Compact(ctx)
	require.NoError(t, err)
	_, got = alloc()
	require.Equal(t, tsdbtest.Normalize(late), got["p"])
}

// TestCompactClosedDayAtOnce: rows of a day that has already closed (a
// store that was down, or a file from before blocks) go into the day's
// block in one write, not hour by hour into a block rewritten each time.
func TestCompactClosedDayAtOnce(t *testing.T) {
	s := open(t, Options{Now: func() time.Time { return tsdbtest.T0.Add(72 * time.Hour) }})
	ctx := context.Background()
	rs := fourHours(t, s)
	want := read(t, s)
	writes := 0
	s.afterBlock = func() error { writes++; return nil }
	n, err := s.Compact(ctx)
	require.NoError(t, err)
	require.EqualValues(t, len(rs), n)
	require.Equal(t, 1, writes, "four hours of rows, one block written")
	rows, blocks := where(t, s, "a")
	require.Equal(t, []int{0, 1}, []int{rows, blocks})
	require.Equal(t, want, read(t, s))
}

// TestCompactBusyDayKeepsHours: a day with more than maxDaySamples
// samples keeps its hour blocks, so no block grows past what is cheap to
// decode: neither its hour blocks nor its rows become a day block.
func TestCompactBusyDayKeepsHours(t *testing.T) {
	clk := &clock{now: tsdbtest.T0.Add(time.Hour + DefaultCompactGrace)}
	s := open(t, Options{Now: clk.Now})
	ctx := context.Background()
	var rs []prober.Result
	for i := range maxDaySamples/2 + 1 { // every second from two locations, into hour 2
		r := tsdbtest.Sample("a", time.Duration(i)*time.Second, time.Millisecond)
		rs = append(rs, r, withLoc(r, "us-east"))
	}
	require.NoError(t, s.WriteSamples(ctx, rs))
	all := func() []prober.Result { // in pages as large as they come
		t.Helper()
		var got []prober.Result
		q := tsdb.SampleQuery{TargetID: "a", Limit: MaxLimit}
		for {
			p, err := s.Samples(ctx, q)
			require.NoError(t, err)
			got = append(got, p.Samples...)
			if q.Cursor = p.NextCursor; q.Cursor == "" {
				return got
			}
		}
	}
	want := all()
	require.Len(t, want, len(rs))
	n, err := s.Compact(ctx) // hour 0 into its block
	require.NoError(t, err)
	require.EqualValues(t, 2*3600, n)
	clk.Set(tsdbtest.T0.Add(72 * time.Hour))
	n, err = s.Compact(ctx) // the day has closed: too busy for one block
	require.NoError(t, err)
	require.EqualValues(t, len(rs)-2*3600, n)
	rows, blocks := where(t, s, "a")
	require.Equal(t, []int{0, 3}, []int{rows, blocks}, "hours 0-2, each its own block")
	require.Equal(t, want, all())
}

// BenchmarkCompactPassOpenHour is the pass every start makes (and each
// hour), here over 20,000 targets whose samples all lie in the open hour:
// one look-up per target finds nothing to compact.
//
//	go test -run '^$' -bench CompactPassOpenHour -benchtime=5x ./tsdb/sqlite/
func BenchmarkCompactPassOpenHour(b *testing.B) {
	const targets = 20000
	now := tsdbtest.T0.Add(30 * time.Minute)
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "bench.db"), PruneInterval: -1, CompactInterval: -1,
		Now: func() time.Time { return now }})
	require.NoError(b, err)
	defer s.Close()
	ctx := context.Background()
	rs := make([]prober.Result, 0, targets)
	for i := range targets {
		rs = append(rs, tsdbtest.Sample(fmt.Sprintf("target-%05d", i), time.Minute, time.Millisecond))
	}
	require.NoError(b, s.WriteSamples(ctx, rs))
	for b.Loop() {
		s.compactedCut.Store(math.MinInt64) // as at start: look at every target
		n, err := s.Compact(ctx)
		require.NoError(b, err)
		require.Zero(b, n)
	}
}
