package tsdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// WriterFunc adapts a function to Writer.
type WriterFunc func(ctx context.Context, samples []prober.Result) error

// WriteSamples calls f.
func (f WriterFunc) WriteSamples(ctx context.Context, samples []prober.Result) error {
	return f(ctx, samples)
}

// ErrClosed is returned by Record once Close has been called.
var ErrClosed = errors.New("tsdb buffer closed")

// BufferOptions configure NewBuffer. The zero value is usable.
type BufferOptions struct {
	// BatchSize is the most samples written at once (default 2000: the
	// embedded store writes about 45,000 samples/s in batches of 500 and
	// 65,000 in batches of 2000; under light load batches stay small).
	BatchSize int
	// FlushInterval is the longest a sample waits for its batch to fill
	// (default 1s).
	FlushInterval time.Duration
	// QueueSize is how many samples may wait to be written before Record
	// blocks (default DefaultQueueSize).
	QueueSize int
	// RetryMin and RetryMax bound the backoff between attempts at a failed
	// write (default 100ms and 10s).
	RetryMin, RetryMax time.Duration
	// Registerer receives the buffer's metrics; nil registers none.
	Registerer prometheus.Registerer
	// MetricPrefix names the metrics (default "upwatch_store", giving
	// upwatch_store_queue_depth and so on); a second Buffer on the same
	// Registerer needs its own.
	MetricPrefix string
	// Logger receives write failures (default: discard).
	Logger *slog.Logger
	// Log, if set, is the write-ahead log: Record appends every sample to
	// it before accepting it, and a batch is committed to it once written.
	Log Log
}

// Log is a write-ahead log in front of a Buffer (tsdb/wal implements it).
type Log interface {
	// Append makes r survive a crash and returns its sequence number.
	Append(ctx context.Context, r prober.Result) (uint64, error)
	// Commit says the Writer has stored the samples with these numbers.
	Commit(seqs []uint64) error
}

// DefaultQueueSize is BufferOptions.QueueSize's default: 16 s of checks at
// 250,000 targets every minute, about 24 MB when full (the queue grows only
// while the store lags). A full queue makes Record, and so the check that
// called it, wait: 10,000 (2.4 s at 250,000 targets) turned a slow moment
// of a shared disk into late checks.
const DefaultQueueSize = 1 << 16

// item is a queued sample and its sequence number in the Log.
type item struct {
	r   prober.Result
	seq uint64
}

func (o *BufferOptions) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 2000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(10*time.Second, o.RetryMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MetricPrefix == "" {
		o.MetricPrefix = "upwatch_store"
	}
}

// Buffer batches samples in front of a Writer. Record queues a sample
// (blocking while the queue is full); a background flusher writes batches of
// up to BatchSize when one is full or FlushInterval has passed, retrying a
// failed batch with backoff, in order, until it is written or Close gives
// up. A sample Record accepted is never dropped silently; with a Log it is
// on disk before Record returns and survives a crash of the process.
//
// The queue is a slice the flusher takes batches from, not a channel: a
// send on a channel woke the flusher for every sample (1,667 times a second
// at 100,000 targets), where it needs waking once per batch.
type Buffer struct {
	w Writer
	o BufferOptions

	mu       sync.Mutex
	queue    []item        // accepted, waiting for the flusher
	room     chan struct{} // closed (and replaced) when the flusher takes from queue
	closed   bool
	inflight sync.WaitGroup // Record calls between the closed check and their enqueue
	closing  chan struct{}  // closed by Close: Records still waiting give up
	full     chan struct{}  // a batch is ready (capacity 1)
	drain    chan struct{}  // closed once no Record can enqueue: write all and exit

	startOnce sync.Once
	done      chan struct{} // closed when the flusher has exited
	ctx       context.Context
	cancel    context.CancelFunc // stops retries when Close runs out of time

	pending atomic.Int64 // accepted and not yet written

	writeDur prometheus.Histogram
	written  prometheus.Counter
	errs     prometheus.Counter
}

// NewBuffer returns a Buffer writing to w. Call Start to begin flushing
// and Close to flush what is left. It registers its metrics on
// o.Registerer and panics if they are already registered there.
func NewBuffer(w Writer, o BufferOptions) *Buffer {
	o.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Buffer{
		w:       w,
		o:       o,
		room:    make(chan struct{}),
		closing: make(chan struct{}),
		full:    make(chan struct{}, 1),
		drain:   make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		writeDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    o.MetricPrefix + "_write_duration_seconds",
			Help:    "Time taken by one batch write to the time-series store, failed attempts included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: o.MetricPrefix + "_samples_written_total",
			Help: "Samples written to the time-series store.",
		}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: o.MetricPrefix + "_write_errors_total",
			Help: "Failed batch writes to the time-series store (each is retried).",
		}),
	}
	if o.Registerer != nil {
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: o.MetricPrefix + "_queue_depth",
			Help: "Samples accepted and not yet written to the time-series store.",
		}, func() float64 { return float64(b.pending.Load()) })
		o.Registerer.MustRegister(depth, b.writeDur, b.written, b.errs)
	}
	return b
}

// Start starts the background flusher. Calling it again does nothing.
func (b *Buffer) Start() {
	b.startOnce.Do(func() { go b.run() })
}

// Pending returns how many accepted samples are not yet written.
func (b *Buffer) Pending() int { return int(b.pending.Load()) }

// Record queues r for writing, after appending it to the Log if there is
// one (an error from the Log means r was not accepted). While the queue is
// full it waits for room until ctx ends (returning ctx's error) or the
// buffer is closed (returning ErrClosed); then r is not written by this
// Buffer, but a Log still holds it for the next start.
func (b *Buffer) Record(ctx context.Context, r prober.Result) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.inflight.Add(1)
	b.mu.Unlock()
	defer b.inflight.Done()

	it := item{r: r}
	if b.o.Log != nil {
		var err error
		if it.seq, err = b.o.Log.Append(ctx, r); err != nil {
			return err
		}
	}
	// Count first so the gauge never goes negative when the flusher writes r
	// before this goroutine runs again.
	b.pending.Add(1)
	for {
		b.mu.Lock()
		if len(b.queue) < b.o.QueueSize {
			b.queue = append(b.queue, it)
			ready := len(b.queue) >= b.o.BatchSize
			b.mu.Unlock()
			if ready {
				select {
				case b.full <- struct{}{}:
				default: // the flusher is already told
				}
			}
			return nil
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			b.pending.Add(-1)
			return ctx.Err()
		case <-b.closing:
			b.pending.Add(-1)
			return ErrClosed
		}
	}
}

// take removes up to BatchSize samples from the head of the queue, into a
// new batch (the writer may keep the one it was given), and wakes the
// Records waiting for room. It takes nothing while fewer than least wait.
func (b *Buffer) take(least int, seqs []uint64) ([]prober.Result, []uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.queue), b.o.BatchSize)
	if n == 0 || len(b.queue) < least {
		return nil, seqs
	}
	batch := make([]prober.Result, n)
	for i := range n {
		batch[i] = b.queue[i].r
		if b.o.Log != nil {
			seqs = append(seqs, b.queue[i].seq)
		}
	}
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	close(b.room)
	b.room = make(chan struct{})
	return batch, seqs
}

// Close stops accepting samples and writes everything queued, retrying until
// ctx ends. If ctx ends first it returns an error saying how many samples
// were not written. Close starts the flusher if Start was not called. Later
// calls wait for the same flush.
func (b *Buffer) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.closing)
		b.mu.Unlock()
		b.inflight.Wait() // no Record can enqueue after this
		close(b.drain)
	} else {
		b.mu.Unlock()
	}
	b.Start()
	select {
	case <-b.done:
	case <-ctx.Done():
		b.cancel()
		<-b.done
	}
	if n := b.pending.Load(); n > 0 {
		cause := context.Cause(ctx)
		if cause == nil {
			cause = errors.New("an earlier Close gave up")
		}
		return fmt.Errorf("tsdb buffer: %d samples not written: %w", n, cause)
	}
	return nil
}

// run is the flusher: it writes batches until Close has drained the queue,
// or cancels b.ctx.
func (b *Buffer) run() {
	defer close(b.done)
	tick := time.NewTicker(b.o.FlushInterval)
	defer tick.Stop()
	var seqs []uint64
	for {
		// A partial batch is written on the interval (the first batch
		// taken) and when draining; otherwise only full ones.
		least, draining := 1, false
		select {
		case <-b.full:
			least = b.o.BatchSize
		case <-tick.C:
		case <-b.drain:
			draining = true
		}
		for {
			batch, s := b.take(least, seqs[:0])
			seqs = s
			if len(batch) == 0 {
				break
			}
			if !b.flush(batch, seqs) {
				return
			}
			if !draining {
				least = b.o.BatchSize
			}
		}
		if draining {
			return
		}
		tick.Reset(b.o.FlushInterval)
	}
}

// flush writes batch, retrying with capped exponential backoff and jitter
// until it succeeds (true) or b.ctx ends (false), and then commits seqs to
// the Log.
func (b *Buffer) flush(batch []prober.Result, seqs []uint64) bool {
	if len(batch) == 0 {
		return true
	}
	delay := b.o.RetryMin
	var lastErr string
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := b.w.WriteSamples(b.ctx, batch)
		b.writeDur.Observe(time.Since(start).Seconds())
		if err == nil {
			b.written.Add(float64(len(batch)))
			b.pending.Add(-int64(len(batch)))
			if attempt > 1 {
				b.o.Logger.Info("tsdb write recovered", "samples", len(batch), "attempts", attempt)
			}
			if b.o.Log != nil {
				if err := b.o.Log.Commit(seqs); err != nil { // they are written again after a restart
					b.o.Logger.Warn("write-ahead log commit failed", "err", err)
				}
			}
			return true
		}
		b.errs.Inc()
		if err.Error() != lastErr { // log only when the error changes
			b.o.Logger.Warn("tsdb write failed, retrying", "samples", len(batch), "attempt", attempt, "err", err)
			lastErr = err.Error()
		}
		// Sleep between delay/2 and delay, then double delay up to RetryMax.
		sleep := delay/2 + rand.N(delay/2+1)
		delay = min(2*delay, b.o.RetryMax)
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return false
		}
	}
}
