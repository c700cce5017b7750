package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T, o Options) *Spool {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := Open(o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rec(i, size int) Record {
	data := make([]byte, size)
	copy(data, fmt.Sprintf("record-%06d|", i))
	return Record{Samples: i%7 + 1, Data: data}
}

func appendN(t *testing.T, s *Spool, from, to, size int) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, s.Append(context.Background(), rec(i, size)))
	}
}

// drain peeks and commits everything, returning the record numbers in order.
func drain(t *testing.T, s *Spool) []int {
	t.Helper()
	var got []int
	for {
		e, ok, err := s.Peek()
		require.NoError(t, err)
		if !ok {
			return got
		}
		var i int
		_, err = fmt.Sscanf(string(e.Data), "record-%06d|", &i)
		require.NoError(t, err)
		require.Equal(t, rec(i, len(e.Data)), e.Record)
		got = append(got, i)
		require.NoError(t, s.Commit(e))
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func samplesOf(from, to int) int64 {
	var n int64
	for i := from; i < to; i++ {
		n += int64(i%7 + 1)
	}
	return n
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	require.NoError(t, err)
	slices.Sort(m)
	return m
}

func TestAppendPeekCommitInOrder(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 4096})
	appendN(t, s, 0, 100, 300)
	st := s.Stats()
	require.EqualValues(t, 100, st.Records)
	require.Equal(t, samplesOf(0, 100), st.Samples)
	require.Greater(t, len(segFiles(t, dir)), 5, "records spread over several segments")
	require.Equal(t, seq(0, 100), drain(t, s))
	require.Equal(t, Stats{}, s.Stats(), "an empty spool leaves no segment")
	require.Empty(t, segFiles(t, dir))
	require.True(t, s.Empty())
	require.Equal(t, samplesOf(0, 100), int64(testutil.ToFloat64(s.replayed)))

	appendN(t, s, 100, 103, 20) // usable again after emptying
	require.Equal(t, seq(100, 103), drain(t, s))
}

func TestReopenResumesAfterCommitted(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 2048}
	s, err := Open(o)
	require.NoError(t, err)
	appendN(t, s, 0, 30, 200)
	for range 12 {
		e, ok, err := s.Peek()
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, s.Commit(e))
	}
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, _, err = s.Peek()
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.Append(context.Background(), rec(1, 1)), ErrClosed)

	s = open(t, o)
	require.Equal(t, samplesOf(12, 30), s.Stats().Samples)
	appendN(t, s, 30, 35, 200) // appends after a restart follow the old records
	require.Equal(t, seq(12, 35), drain(t, s))
}

// TestCrashWithoutClose is "kill -9 with a full spool": the process ends
// without Close (no cursor sync, files left open); a new Open finds every
// record and the replay delivers them in order.
func TestCrashWithoutClose(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxBytes: 256 << 10, SegmentBytes: 16 << 10}
	s, err := Open(o)
	require.NoError(t, err)
	appendN(t, s, 0, 200, 1000) // ~200 KB: near full
	e, _, err := s.Peek()
	require.NoError(t, err)
	require.NoError(t, s.Commit(e))
	_ = s.closeFiles() // what the kernel does for a killed process; no Close

	s2 := open(t, o)
	require.Equal(t, samplesOf(1, 200), s2.Stats().Samples)
	var got [][]byte
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s2.Replay(ctx, func(_ context.Context, r Record) error {
			got = append(got, slices.Clone(r.Data))
			if len(got) == 199 {
				cancel()
			}
			return nil
		}, ReplayOptions{})
	}()
	<-done
	require.Len(t, got, 199)
	for i, d := range got {
		require.Equal(t, rec(i+1, 1000).Data, d)
	}
}

func TestTornTailDroppedAndCounted(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxBytes: 1 << 20}
	s, err := Open(o)
	require.NoError(t, err)
	appendN(t, s, 0, 5, 100)
	require.NoError(t, s.Close())
	files := segFiles(t, dir)
	require.Len(t, files, 1)
	fi, err := os.Stat(files[0])
	require.NoError(t, err)
	// A crash in the middle of the last append: part of its body is missing.
	require.NoError(t, os.Truncate(files[0], fi.Size()-30))

	s = open(t, o)
	require.EqualValues(t, 1, testutil.ToFloat64(s.corrupt))
	require.Equal(t, samplesOf(0, 4), s.Stats().Samples)
	appendN(t, s, 5, 7, 100) // the file was truncated: new records follow cleanly
	require.Equal(t, []int{0, 1, 2, 3, 5, 6}, drain(t, s))
}

func TestTornFrameHeader(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxBytes: 1 << 20}
	s, err := Open(o)
	require.NoError(t, err)
	appendN(t, s, 0, 3, 100)
	require.NoError(t, s.Close())
	f, err := os.OpenFile(segFiles(t, dir)[0], os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write([]byte{0, 0, 1}) // three bytes of a frame header
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s = open(t, o)
	require.EqualValues(t, 1, testutil.ToFloat64(s.corrupt))
	require.Equal(t, seq(0, 3), drain(t, s))
}

func TestCorruptMiddleEndsItsSegmentOnly(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 1000}
	s, err := Open(o)
	require.NoError(t, err)
	appendN(t, s, 0, 12, 200) // 4 records per segment
	require.NoError(t, s.Close())
	files := segFiles(t, dir)
	require.Len(t, files, 3)
	// Flip a byte in the second record of the first segment.
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	b[headerLen+(frameHead+countLen+200)+frameHead+countLen+50] ^= 0xff
	require.NoError(t, os.WriteFile(files[0], b, 0o600))

	s = open(t, o)
	require.EqualValues(t, 1, testutil.ToFloat64(s.corrupt))
	require.Equal(t, append([]int{0}, seq(4, 12)...), drain(t, s))
}

func TestCorruptionFoundWhileReading(t *testing.T) {
	dir := t.TempDir()
	s := open(t, Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 1000})
	appendN(t, s, 0, 8, 200)
	files := segFiles(t, dir)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	b[len(b)-10] ^= 0xff // last record of the first segment, after Open checked it
	require.NoError(t, os.WriteFile(files[0], b, 0o600))
	require.Equal(t, []int{0, 1, 2, 4, 5, 6, 7}, drain(t, s))
	require.EqualValues(t, 1, testutil.ToFloat64(s.corrupt))
	require.EqualValues(t, samplesOf(3, 4), testutil.ToFloat64(s.dropped))
}

func TestDropOldestKeepsBoundAndNewest(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s := open(t, Options{Dir: dir, MaxBytes: 64 << 10, SegmentBytes: 8 << 10, Registerer: reg})
	const n = 500
	for i := range n {
		require.NoError(t, s.Append(context.Background(), rec(i, 1000)))
		st := s.Stats()
		require.LessOrEqual(t, st.Bytes, int64(64<<10))
		var onDisk int64
		for _, f := range segFiles(t, dir) {
			fi, err := os.Stat(f)
			require.NoError(t, err)
			onDisk += fi.Size()
		}
		require.Equal(t, st.Bytes, onDisk)
	}
	got := drain(t, s)
	require.Equal(t, seq(n-len(got), n), got, "the newest records survive, in order")
	require.Greater(t, len(got), 40)
	dropped := testutil.ToFloat64(s.dropped)
	require.Equal(t, float64(samplesOf(0, n-len(got))), dropped)
	require.Equal(t, dropped, testutil.ToFloat64(mustFind(t, reg, "upwatch_spool_dropped_total")))
}

func mustFind(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := mf.GetMetric()[0]
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
			if v.Counter != nil {
				g.Set(v.Counter.GetValue())
			} else {
				g.Set(v.Gauge.GetValue())
			}
			return g
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := open(t, Options{MaxBytes: 1 << 20, Registerer: reg})
	appendN(t, s, 0, 10, 100)
	require.Equal(t, float64(samplesOf(0, 10)), testutil.ToFloat64(mustFind(t, reg, "upwatch_spool_samples")))
	require.Equal(t, float64(s.Stats().Bytes), testutil.ToFloat64(mustFind(t, reg, "upwatch_spool_bytes")))
	drain(t, s)
	require.Zero(t, testutil.ToFloat64(mustFind(t, reg, "upwatch_spool_samples")))
	require.Zero(t, testutil.ToFloat64(mustFind(t, reg, "upwatch_spool_bytes")))
	require.Equal(t, float64(samplesOf(0, 10)), testutil.ToFloat64(mustFind(t, reg, "upwatch_spool_replayed_total")))
	require.Zero(t, testutil.ToFloat64(mustFind(t, reg, "upwatch_spool_dropped_total")))
}

func TestBlockWaitsForRoom(t *testing.T) {
	s := open(t, Options{MaxBytes: 64 << 10, SegmentBytes: 8 << 10, Full: Block})
	i := 0
	for ; ; i++ { // fill up: an append with a cancelled context fails at once when full
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Append(ctx, rec(i, 1000)); err != nil {
			require.ErrorIs(t, err, context.Canceled)
			require.ErrorContains(t, err, "spool full")
			break
		}
	}
	full := i
	done := make(chan error, 1)
	go func() { done <- s.Append(context.Background(), rec(full, 1000)) }()
	// Commit the first segment's records: room for the waiting append.
	got := []int{}
	for range 8 {
		e, ok, err := s.Peek()
		require.NoError(t, err)
		require.True(t, ok)
		got = append(got, len(got))
		require.NoError(t, s.Commit(e))
	}
	require.NoError(t, <-done)
	require.Zero(t, testutil.ToFloat64(s.dropped), "block never drops")
	require.Equal(t, seq(8, full+1), drain(t, s))
}

func TestBlockedAppendEndsOnClose(t *testing.T) {
	s := open(t, Options{MaxBytes: 64 << 10, Full: Block})
	for i := 0; ; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if s.Append(ctx, rec(i, 1000)) != nil {
			break
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() { errs <- s.Append(context.Background(), rec(0, 1000)) })
	}
	require.NoError(t, s.Close())
	wg.Wait()
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, ErrClosed)
	}
}

func TestTooLarge(t *testing.T) {
	s := open(t, Options{MaxBytes: 64 << 10})
	require.ErrorIs(t, s.Append(context.Background(), Record{Samples: 1, Data: make([]byte, 64<<10)}), ErrTooLarge)
	big := Record{Samples: 1, Data: make([]byte, 40<<10)} // larger than a segment: gets its own
	require.NoError(t, s.Append(context.Background(), big))
	require.NoError(t, s.Append(context.Background(), big), "the older one is dropped to make room")
	require.EqualValues(t, 1, s.Stats().Records)
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{}, {Dir: t.TempDir(), MaxBytes: 100}, {Dir: t.TempDir(), Full: "maybe"}} {
		_, err := Open(o)
		require.Error(t, err, "%+v", o)
	}
	_, err := Open(Options{Dir: filepath.Join(writeFile(t), "sub")})
	require.Error(t, err, "dir under a regular file")
}

func writeFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	return p
}

func TestCommitOfDroppedEntryIsIgnored(t *testing.T) {
	s := open(t, Options{MaxBytes: 64 << 10, SegmentBytes: 8 << 10})
	appendN(t, s, 0, 3, 1000)
	e, ok, err := s.Peek()
	require.NoError(t, err)
	require.True(t, ok)
	appendN(t, s, 3, 200, 1000) // the first segment is dropped meanwhile
	require.NoError(t, s.Commit(e))
	got := drain(t, s)
	require.Equal(t, seq(200-len(got), 200), got)
}

func TestReplayRetriesAndRejects(t *testing.T) {
	s := open(t, Options{MaxBytes: 1 << 20})
	appendN(t, s, 0, 20, 50)
	var got []int
	attempts := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Replay(ctx, func(_ context.Context, r Record) error {
			attempts++
			var i int
			_, _ = fmt.Sscanf(string(r.Data), "record-%06d|", &i)
			switch {
			case attempts <= 3: // the store is down
				return errors.New("connection refused")
			case i == 5:
				return Permanent(errors.New("400 field type conflict"))
			}
			got = append(got, i)
			if i == 24 {
				cancel()
			}
			return nil
		}, ReplayOptions{RetryMin: 1, RetryMax: 2})
	}()
	appendN(t, s, 20, 25, 50) // appended while Replay runs or waits
	<-done
	require.Equal(t, append(seq(0, 5), seq(6, 25)...), got)
	require.EqualValues(t, samplesOf(5, 6), testutil.ToFloat64(s.rejected))
	require.True(t, s.Empty())
}

func TestNextReadsAheadAcrossSegments(t *testing.T) {
	s := open(t, Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10})
	appendN(t, s, 0, 30, 1000) // several segments
	e, ok, err := s.Peek()
	require.NoError(t, err)
	require.True(t, ok)
	ahead := []Entry{e}
	for {
		n, ok, err := s.Next(ahead[len(ahead)-1])
		require.NoError(t, err)
		if !ok {
			break
		}
		ahead = append(ahead, n)
	}
	require.Len(t, ahead, 30)
	for i, e := range ahead {
		require.Equal(t, rec(i, 1000), e.Record)
	}
	require.NoError(t, s.Commit(ahead[1]), "out of order: ignored")
	require.EqualValues(t, 30, s.Stats().Records)
	for _, e := range ahead[:20] {
		require.NoError(t, s.Commit(e))
	}
	require.Equal(t, seq(20, 30), drain(t, s))
}

func TestReplayInFlightRetriesAndRejects(t *testing.T) {
	s := open(t, Options{MaxBytes: 1 << 20, SegmentBytes: 8 << 10})
	appendN(t, s, 0, 40, 500)
	var mu sync.Mutex
	got := map[int]int{}
	tries := map[int]int{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Replay(ctx, func(_ context.Context, r Record) error {
			var i int
			_, _ = fmt.Sscanf(string(r.Data), "record-%06d|", &i)
			mu.Lock()
			defer mu.Unlock()
			tries[i]++
			switch {
			case i%5 == 3 && tries[i] <= 2: // transient
				return errors.New("503")
			case i == 7:
				return Permanent(errors.New("400"))
			}
			got[i]++
			if len(got) == 39 {
				cancel()
			}
			return nil
		}, ReplayOptions{RetryMin: 1, RetryMax: 2, InFlight: 3})
	}()
	<-done
	for i := range 40 {
		if i != 7 {
			require.Equal(t, 1, got[i], "record %d written once", i)
		}
	}
	require.EqualValues(t, samplesOf(7, 8), testutil.ToFloat64(s.rejected))
	require.True(t, s.Empty())
}
