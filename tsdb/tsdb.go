// Package tsdb declares how check results are stored and read back as time
// series: raw samples, hourly rollups and the latest result per target.
// Implementations live below it (tsdb/sqlite, later tsdb/influx) and all
// pass the contract suite in tsdb/tsdbtest.
package tsdb

import (
	"context"
	"errors"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// Writer stores samples. A nil error means every sample is durable.
type Writer interface {
	WriteSamples(ctx context.Context, samples []prober.Result) error
}

// SampleQuery selects a target's raw samples in [From, To), oldest first.
type SampleQuery struct {
	TargetID string
	From, To time.Time
	// Limit caps the page size (default 1000, at most 10000).
	Limit int
	// Cursor continues after the last sample of the previous page; empty
	// starts at From.
	Cursor string
}

// SamplePage is one page of samples. NextCursor is empty on the last page.
type SamplePage struct {
	Samples    []prober.Result
	NextCursor string
}

// Reader answers queries over stored samples.
type Reader interface {
	Samples(ctx context.Context, q SampleQuery) (SamplePage, error)
	// Rollups returns the target's hourly buckets whose hour starts in
	// [from, to), oldest first.
	Rollups(ctx context.Context, targetID string, from, to time.Time) ([]Rollup, error)
	// Latest returns the newest sample of every target, keyed by target ID.
	Latest(ctx context.Context) (map[string]prober.Result, error)
}

// Store is a whole backend: it writes, reads, keeps itself within retention
// and can say whether it is reachable.
type Store interface {
	Writer
	Reader
	// Ping reports whether the backend can be reached (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the backend; pending writes must already be flushed.
	Close() error
}

// Rollup aggregates one target's checks over one hour. Latency is the
// total duration of each check.
type Rollup struct {
	TargetID   string
	Hour       time.Time // start of the hour, UTC
	Checks     int64
	Failures   int64
	LatencyMin time.Duration
	LatencyMax time.Duration
	LatencySum time.Duration
	// Buckets counts checks by latency: Buckets[i] counts latencies
	// <= LatencyBuckets[i] and > LatencyBuckets[i-1]; the last element counts
	// the rest (+Inf).
	Buckets [NumBuckets]int64
}

// LatencyBuckets are the fixed upper bounds of the rollup latency
// histogram. Fixed, so rollups of any age merge by adding.
var LatencyBuckets = [NumBuckets - 1]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// NumBuckets is the number of histogram buckets including +Inf.
const NumBuckets = 13

// BucketIndex returns the histogram bucket a latency falls in.
func BucketIndex(d time.Duration) int {
	for i, ub := range LatencyBuckets {
		if d <= ub {
			return i
		}
	}
	return NumBuckets - 1
}

// Add folds one check into r.
func (r *Rollup) Add(res prober.Result) {
	if r.Checks == 0 || res.Duration < r.LatencyMin {
		r.LatencyMin = res.Duration
	}
	r.LatencyMax = max(r.LatencyMax, res.Duration)
	r.Checks++
	if !res.Success {
		r.Failures++
	}
	r.LatencySum += res.Duration
	r.Buckets[BucketIndex(res.Duration)]++
}

// ErrInvalidCursor is returned for a cursor that this store did not issue.
var ErrInvalidCursor = errors.New("invalid cursor")
