// Package wal is the write-ahead log in front of the sample store: every
// completed check is appended to it before anything else sees the result,
// and stays there until the store has committed it. After a crash Replay
// writes what the store may not have into it again, before new results.
//
// The log is a tsdb/spool directory of CRC-framed segments, one record per
// sample (the result as JSON). An append is one write(2): it survives the
// process being killed (kill -9, a panic, the OOM killer) without an
// fsync. A background group commit fsyncs the open segment every
// SyncInterval, so a power loss or kernel crash takes at most the samples
// of the last SyncInterval. Samples are committed (the spool's cursor moves
// past them, and used-up segments are deleted) in append order, once the
// store has them: a crash can replay a few samples the store already has,
// and the stores treat writing a sample again as a no-op.
package wal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/spool"
)

// Defaults and bounds of Options.
const (
	DefaultMaxBytes     = 64 << 20
	DefaultSyncInterval = 200 * time.Millisecond
	DefaultFull         = spool.Block
	DefaultReplayBatch  = 1000
)

// maxPooledBuf is the largest encoding buffer kept for the next Append.
const maxPooledBuf = 64 << 10

// ErrNotReplayed is returned by Append before Replay has emptied the log.
var ErrNotReplayed = errors.New("wal: samples from an earlier run are not replayed yet")

// Options configure Open. Only Dir is required.
type Options struct {
	// Dir holds the log's segments (created if missing).
	Dir string
	// MaxBytes bounds the log's size on disk (default 64 MiB; the spool's
	// minimum applies).
	MaxBytes int64
	// SyncInterval is the group-commit interval: how often appended
	// samples are fsynced (default 200ms).
	SyncInterval time.Duration
	// Full is the policy when the log is full because the store has not
	// committed its samples: Block (default) makes Append wait for room;
	// DropOldest drops the oldest samples from the log (they are still
	// written from memory, but no longer survive a crash).
	Full spool.FullPolicy
	// Registerer receives the log's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives recovery and sync failures (default: discard).
	Logger *slog.Logger
}

// WAL is safe for concurrent use.
type WAL struct {
	o  Options
	sp *spool.Spool

	appendMu sync.Mutex // orders appends, so sequence numbers follow the file
	bufs     sync.Pool  // *[]byte: encoding buffers, reused across appends
	mu       sync.Mutex // guards the fields below
	base     uint64     // sequence number of pend[0]
	pend     []slot     // appended and not yet committed, in append order
	replayed bool       // no record of an earlier run is left

	dirty     atomic.Bool // appended since the last sync
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	syncDur    prometheus.Histogram
	syncErrs   prometheus.Counter
	replayedCt prometheus.Counter
}

type slot struct {
	e    spool.Entry
	done bool
}

// Open opens (creating if needed) the log in o.Dir and starts the group
// commit, which Close stops. Call Replay before the first Append.
func Open(o Options) (*WAL, error) {
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Full == "" {
		o.Full = DefaultFull
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sp, err := spool.Open(spool.Options{Dir: o.Dir, MaxBytes: o.MaxBytes, Full: o.Full, DeferSync: true, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	w := &WAL{
		o: o, sp: sp, replayed: sp.Empty(),
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }},
		stop: make(chan struct{}), done: make(chan struct{}),
		syncDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "upwatch_wal_sync_duration_seconds",
			Help:    "Time taken by one group commit (fsync) of the write-ahead log.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 10),
		}),
		syncErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_wal_sync_errors_total",
			Help: "Failed fsyncs of the write-ahead log (retried at the next group commit).",
		}),
		replayedCt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_wal_replayed_samples_total",
			Help: "Samples written to the store again from the write-ahead log after a restart.",
		}),
	}
	if o.Registerer != nil {
		stat := func(f func(spool.Stats) int64) func() float64 {
			return func() float64 { return float64(f(w.sp.Stats())) }
		}
		o.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "upwatch_wal_bytes", Help: "Size of the write-ahead log's segment files.",
			}, stat(func(st spool.Stats) int64 { return st.Bytes })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "upwatch_wal_samples", Help: "Samples in the write-ahead log that the store has not committed yet.",
			}, stat(func(st spool.Stats) int64 { return st.Samples })),
			w.syncDur, w.syncErrs, w.replayedCt)
	}
	go w.groupCommit()
	return w, nil
}

// Append writes r to the log and returns its sequence number, for Commit.
// Once it returns, r survives the process being killed. While the log is
// full it waits for room (policy block) until ctx ends.
func (w *WAL) Append(ctx context.Context, r prober.Result) (uint64, error) {
	buf := w.bufs.Get().(*[]byte)
	data, err := appendResult((*buf)[:0], r)
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	if cap(data) <= maxPooledBuf { // one with large evidence is let go
		*buf = data
		defer w.bufs.Put(buf)
	}
	w.appendMu.Lock()
	defer w.appendMu.Unlock()
	w.mu.Lock()
	replayed := w.replayed
	w.mu.Unlock()
	if !replayed {
		return 0, ErrNotReplayed
	}
	e, err := w.sp.AppendEntry(ctx, spool.Record{Samples: 1, Data: data})
	if err != nil {
		return 0, fmt.Errorf("wal: %w", err)
	}
	e.Data = nil // committing needs only the position; buf is reused
	w.dirty.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pend = append(w.pend, slot{e: e})
	return w.base + uint64(len(w.pend)) - 1, nil
}

// Commit says the store has the samples with these sequence numbers. The
// log lets go of samples in append order: up to the oldest one not yet
// committed. Unknown numbers are ignored.
func (w *WAL) Commit(seqs []uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range seqs {
		if s >= w.base && s-w.base < uint64(len(w.pend)) {
			w.pend[s-w.base].done = true
		}
	}
	n := 0
	for n < len(w.pend) && w.pend[n].done {
		n++
	}
	if n == 0 {
		return nil
	}
	entries := make([]spool.Entry, n)
	for i := range entries {
		entries[i] = w.pend[i].e
	}
	w.pend = w.pend[n:]
	w.base += uint64(n)
	if err := w.sp.CommitAll(entries); err != nil {
		return fmt.Errorf("wal: commit: %w", err)
	}
	return nil
}

// Replay writes the samples an earlier run left in the log with write, in
// batches of up to batch samples (default DefaultReplayBatch), oldest first,
// and commits each batch once write succeeds. A failed write is retried
// with backoff until ctx ends. It returns how many samples were replayed.
func (w *WAL) Replay(ctx context.Context, batch int, write func(context.Context, []prober.Result) error) (int, error) {
	if batch <= 0 {
		batch = DefaultReplayBatch
	}
	total := 0
	for {
		e, ok, err := w.sp.Peek()
		if err != nil {
			return total, fmt.Errorf("wal: replay: %w", err)
		}
		if !ok {
			break
		}
		entries := []spool.Entry{e}
		for len(entries) < batch {
			if e, ok, _ = w.sp.Next(e); !ok {
				break
			}
			entries = append(entries, e)
		}
		samples := make([]prober.Result, 0, len(entries))
		for _, e := range entries {
			var r prober.Result
			if err := json.Unmarshal(e.Data, &r); err != nil {
				w.o.Logger.Error("wal: undecodable sample discarded", "err", err)
				continue
			}
			samples = append(samples, r)
		}
		if err := w.retry(ctx, func() error { return write(ctx, samples) }); err != nil {
			return total, err
		}
		if err := w.sp.CommitAll(entries); err != nil {
			return total, fmt.Errorf("wal: replay: %w", err)
		}
		total += len(samples)
		w.replayedCt.Add(float64(len(samples)))
	}
	w.mu.Lock()
	w.replayed = true
	w.mu.Unlock()
	return total, nil
}

// retry calls f until it succeeds or ctx ends, with capped exponential
// backoff and jitter, logging each new error once.
func (w *WAL) retry(ctx context.Context, f func() error) error {
	delay, last := 100*time.Millisecond, ""
	for {
		err := f()
		if err == nil {
			return nil
		}
		if err.Error() != last {
			w.o.Logger.Warn("wal: replay write failed, retrying", "err", err)
			last = err.Error()
		}
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		delay = min(2*delay, 10*time.Second)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wal: replay: %w (last error: %v)", context.Cause(ctx), err)
		}
	}
}

// Stats returns the log's content.
func (w *WAL) Stats() spool.Stats { return w.sp.Stats() }

// Sync fsyncs what was appended since the last sync.
func (w *WAL) Sync() error {
	if !w.dirty.Swap(false) {
		return nil
	}
	start := time.Now()
	err := w.sp.Sync()
	w.syncDur.Observe(time.Since(start).Seconds())
	if err != nil {
		w.dirty.Store(true)
		w.syncErrs.Inc()
	}
	return err
}

// groupCommit syncs every SyncInterval until Close.
func (w *WAL) groupCommit() {
	defer close(w.done)
	t := time.NewTicker(w.o.SyncInterval)
	defer t.Stop()
	var last string
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		if err := w.Sync(); err != nil && !errors.Is(err, spool.ErrClosed) && err.Error() != last {
			w.o.Logger.Error("wal: fsync failed; retrying at the next group commit", "err", err)
			last = err.Error()
		} else if err == nil {
			last = ""
		}
	}
}

// Close syncs and closes the log; what is not committed is replayed after
// the next Open. It is idempotent.
func (w *WAL) Close() error {
	w.closeOnce.Do(func() {
		close(w.stop)
		<-w.done
		w.closeErr = errors.Join(w.Sync(), w.sp.Close())
	})
	return w.closeErr
}
