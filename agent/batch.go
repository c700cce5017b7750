package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/spool"
)

// batcher gathers results from the scheduler and appends them to the spool
// as batches: every flush interval, or as soon as a batch is full. A kill
// -9 loses what it holds (at most one flush interval of results); what is
// in the spool survives.
type batcher struct {
	sp  *spool.Spool
	max func() int
	log *slog.Logger

	mu      sync.Mutex
	pending []prober.Result
	full    chan struct{}

	flushMu sync.Mutex // one flush at a time, so batches stay in order
}

func newBatcher(sp *spool.Spool, max func() int, log *slog.Logger) *batcher {
	return &batcher{sp: sp, max: max, log: log, full: make(chan struct{}, 1)}
}

// add is the scheduler's sink.
func (b *batcher) add(_ context.Context, r prober.Result) {
	b.mu.Lock()
	b.pending = append(b.pending, r)
	n := len(b.pending)
	b.mu.Unlock()
	if n >= b.max() {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

// pendingCount is how many results wait for the next flush.
func (b *batcher) pendingCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// run flushes every interval and when a batch fills, until ctx ends.
func (b *batcher) run(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(interval)
		case <-b.full:
		}
		if err := b.flush(ctx); err != nil && ctx.Err() == nil {
			b.log.Error("results not spooled", "err", err)
		}
	}
}

// flush appends what is pending to the spool, in batches of at most max.
func (b *batcher) flush(ctx context.Context) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	rs := b.pending
	b.pending = nil
	b.mu.Unlock()
	for len(rs) > 0 {
		n := min(len(rs), max(b.max(), 1))
		data, err := json.Marshal(rs[:n])
		if err != nil {
			return err
		}
		if err := b.sp.Append(ctx, spool.Record{Samples: n, Data: data}); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

func decodeBatch(data []byte) ([]prober.Result, error) {
	var rs []prober.Result
	err := json.Unmarshal(data, &rs)
	return rs, err
}
