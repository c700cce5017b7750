package tsdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

func res(i int) prober.Result {
	return prober.Result{TargetID: fmt.Sprintf("t%d", i%3), Start: time.Unix(int64(i), 0), Success: true}
}

// recorder is a fake store that keeps every batch it is given and can be
// told to fail.
type recorder struct {
	mu      sync.Mutex
	batches [][]prober.Result
	calls   int
	fail    func(call int) error // nil: succeed
	got     chan []prober.Result // each successful batch, if non-nil
}

func (r *recorder) writer() WriterFunc {
	return func(ctx context.Context, s []prober.Result) error {
		r.mu.Lock()
		r.calls++
		call := r.calls
		var err error
		if r.fail != nil {
			err = r.fail(call)
		}
		if err == nil {
			r.batches = append(r.batches, append([]prober.Result(nil), s...))
		}
		r.mu.Unlock()
		if err == nil && r.got != nil {
			r.got <- s
		}
		return err
	}
}

func (r *recorder) all() []prober.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []prober.Result
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		out = append(out, len(b))
	}
	return out
}

func record(t *testing.T, b *Buffer, from, to int) []prober.Result {
	t.Helper()
	var rs []prober.Result
	for i := from; i < to; i++ {
		require.NoError(t, b.Record(context.Background(), res(i)))
		rs = append(rs, res(i))
	}
	return rs
}

func TestBufferBatchesBySize(t *testing.T) {
	rec := &recorder{got: make(chan []prober.Result, 10)}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 3, FlushInterval: time.Hour})
	b.Start()
	want := record(t, b, 0, 7)
	require.Len(t, <-rec.got, 3)
	require.Len(t, <-rec.got, 3)
	require.NoError(t, b.Close(context.Background()))
	require.Equal(t, []int{3, 3, 1}, rec.sizes(), "the last, partial batch is written by Close")
	require.Equal(t, want, rec.all())
}

func TestBufferFlushesOnInterval(t *testing.T) {
	rec := &recorder{got: make(chan []prober.Result, 10)}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 100, FlushInterval: 5 * time.Millisecond})
	b.Start()
	defer b.Close(context.Background())
	// Far fewer results than a batch, and no Close: only the interval
	// writes them. A flush may fall between two Records, so the results
	// may come in one batch or in two.
	want := record(t, b, 0, 2)
	require.Equal(t, want, receive(t, rec, 2), "a partial batch is written once the interval passes")
	want = record(t, b, 2, 3)
	require.Equal(t, want, receive(t, rec, 1))
}

// receive takes batches from rec until they hold n results.
func receive(t *testing.T, rec *recorder, n int) []prober.Result {
	t.Helper()
	var got []prober.Result
	for len(got) < n {
		select {
		case batch := <-rec.got:
			got = append(got, batch...)
		case <-time.After(30 * time.Second):
			t.Fatalf("got %d of %d results", len(got), n)
		}
	}
	return got
}

func TestBufferRetriesInOrderLosingNothing(t *testing.T) {
	rec := &recorder{fail: func(call int) error {
		if call%3 != 0 { // two failures before every success
			return fmt.Errorf("disk full (call %d)", call)
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 4, FlushInterval: time.Millisecond,
		RetryMin: time.Microsecond, RetryMax: 50 * time.Microsecond, Registerer: reg})
	b.Start()
	want := record(t, b, 0, 50)
	require.NoError(t, b.Close(context.Background()))
	require.Equal(t, want, rec.all(), "every sample written once, in order")
	require.Equal(t, 50.0, testutil.ToFloat64(b.written))
	require.Equal(t, 2*float64(len(rec.sizes())), testutil.ToFloat64(b.errs))
	require.Zero(t, b.Pending())
}

func TestBufferCloseFlushesWithoutStart(t *testing.T) {
	rec := &recorder{}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 2})
	want := record(t, b, 0, 5)
	require.NoError(t, b.Close(context.Background()))
	require.Equal(t, want, rec.all())
	require.Equal(t, []int{2, 2, 1}, rec.sizes())
	require.NoError(t, b.Close(context.Background()), "Close is idempotent")
	require.ErrorIs(t, b.Record(context.Background(), res(9)), ErrClosed)
}

func TestBufferCloseGivesUpWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{fail: func(call int) error {
		if call == 3 {
			cancel() // Close's deadline passes while the store is down
		}
		return errors.New("store down")
	}}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 2, RetryMin: time.Microsecond, RetryMax: time.Microsecond})
	record(t, b, 0, 5)
	err := b.Close(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "5 samples not written")
	require.Empty(t, rec.all())
}

func TestBufferRecordBlocksWhenFull(t *testing.T) {
	rec := &recorder{}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 10, QueueSize: 2, FlushInterval: time.Millisecond})
	want := record(t, b, 0, 2) // fills the queue; nothing drains it yet

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, b.Record(ctx, res(99)), context.Canceled, "a full queue waits for the context")
	require.Equal(t, 2, b.Pending(), "the refused sample is not counted")

	done := make(chan error)
	go func() { done <- b.Record(context.Background(), res(2)) }()
	select {
	case err := <-done:
		t.Fatalf("Record returned %v on a full queue", err)
	default:
	}
	b.Start() // the flusher makes room
	require.NoError(t, <-done)
	want = append(want, res(2))
	require.NoError(t, b.Close(context.Background()))
	require.Equal(t, want, rec.all())
}

func TestBufferCloseReleasesBlockedRecord(t *testing.T) {
	b := NewBuffer(WriterFunc(func(context.Context, []prober.Result) error { return nil }),
		BufferOptions{QueueSize: 1})
	require.NoError(t, b.Record(context.Background(), res(0)))
	done := make(chan error)
	go func() { done <- b.Record(context.Background(), res(1)) }()
	closed := make(chan error)
	go func() { closed <- b.Close(context.Background()) }()
	// Either the blocked Record got in before Close (and is written) or it
	// is refused; it never hangs and never vanishes.
	err := <-done
	if err != nil {
		require.ErrorIs(t, err, ErrClosed)
	}
	require.NoError(t, <-closed)
	require.Zero(t, b.Pending())
}

func TestBufferConcurrentRecordAndClose(t *testing.T) {
	rec := &recorder{}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 7, QueueSize: 16, FlushInterval: time.Millisecond})
	b.Start()
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[int64]bool{}
	halfway := make(chan struct{})
	var once sync.Once
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if i == 100 {
					once.Do(func() { close(halfway) })
				}
				r := res(g*1000 + i)
				if err := b.Record(context.Background(), r); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Record: %v", err)
					}
					return
				}
				mu.Lock()
				accepted[r.Start.Unix()] = true
				mu.Unlock()
			}
		})
	}
	<-halfway
	require.NoError(t, b.Close(context.Background()), "Close while Records are running")
	wg.Wait()
	written := map[int64]bool{}
	for _, r := range rec.all() {
		require.False(t, written[r.Start.Unix()], "written twice")
		written[r.Start.Unix()] = true
	}
	require.Equal(t, accepted, written, "every accepted sample written, no other")
	require.GreaterOrEqual(t, len(written), 100)
}

func TestBufferMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	failOnce := true
	rec := &recorder{fail: func(int) error {
		if failOnce {
			failOnce = false
			return errors.New("boom")
		}
		return nil
	}}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 2, Registerer: reg, RetryMin: time.Microsecond})
	record(t, b, 0, 3)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP upwatch_store_queue_depth Samples accepted and not yet written to the time-series store.
# TYPE upwatch_store_queue_depth gauge
upwatch_store_queue_depth 3
`), "upwatch_store_queue_depth"))

	require.NoError(t, b.Close(context.Background()))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP upwatch_store_queue_depth Samples accepted and not yet written to the time-series store.
# TYPE upwatch_store_queue_depth gauge
upwatch_store_queue_depth 0
# HELP upwatch_store_samples_written_total Samples written to the time-series store.
# TYPE upwatch_store_samples_written_total counter
upwatch_store_samples_written_total 3
# HELP upwatch_store_write_errors_total Failed batch writes to the time-series store (each is retried).
# TYPE upwatch_store_write_errors_total counter
upwatch_store_write_errors_total 1
`), "upwatch_store_queue_depth", "upwatch_store_samples_written_total", "upwatch_store_write_errors_total"))

	mfs, err := reg.Gather()
	require.NoError(t, err)
	var observed uint64
	for _, mf := range mfs {
		if mf.GetName() == "upwatch_store_write_duration_seconds" {
			observed = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	require.EqualValues(t, 3, observed, "two successful writes and one failed attempt")
}

func TestBufferDefaults(t *testing.T) {
	o := BufferOptions{}
	o.defaults()
	require.Equal(t, 2000, o.BatchSize)
	require.Equal(t, time.Second, o.FlushInterval)
	require.Equal(t, DefaultQueueSize, o.QueueSize)
	require.Equal(t, 100*time.Millisecond, o.RetryMin)
	require.Equal(t, 10*time.Second, o.RetryMax)
	require.NotNil(t, o.Logger)
}

// fakeLog is a Log in memory: what was appended and what committed.
type fakeLog struct {
	mu        sync.Mutex
	appended  []prober.Result
	committed []uint64
	fail      error
}

func (l *fakeLog) Append(_ context.Context, r prober.Result) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return 0, l.fail
	}
	l.appended = append(l.appended, r)
	return uint64(len(l.appended) + 100), nil
}

func (l *fakeLog) Commit(seqs []uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed = append(l.committed, seqs...)
	return nil
}

func TestBufferLogsBeforeAcceptingAndCommitsAfterWriting(t *testing.T) {
	rec := &recorder{fail: func(call int) error {
		if call == 1 {
			return errors.New("store down")
		}
		return nil
	}}
	log := &fakeLog{}
	b := NewBuffer(rec.writer(), BufferOptions{BatchSize: 2, FlushInterval: time.Hour, RetryMin: time.Millisecond, Log: log})
	b.Start()
	for i := range 4 {
		require.NoError(t, b.Record(context.Background(), res(i)))
		log.mu.Lock()
		require.Len(t, log.appended, i+1, "in the log when Record returns")
		log.mu.Unlock()
	}
	require.NoError(t, b.Close(context.Background()))
	log.mu.Lock()
	require.Equal(t, []uint64{101, 102, 103, 104}, log.committed, "committed once written, not when a write failed")
	log.fail = errors.New("disk full")
	log.mu.Unlock()
	b2 := NewBuffer(rec.writer(), BufferOptions{Log: log})
	defer b2.Close(context.Background())
	require.ErrorContains(t, b2.Record(context.Background(), res(9)), "disk full", "not accepted without the log")
	require.Zero(t, b2.Pending())
}
