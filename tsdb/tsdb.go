// Package tsdb declares how check results are stored and read back as time
// series: raw samples, hourly rollups and the latest result per target.
// Implementations live below it (tsdb/sqlite, later tsdb/influx) and all
// pass the contract suite in tsdb/tsdbtest.
package tsdb

import (
	"context"
	"errors"
	"slices"
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
	// RollupTotals sums, for each of the given targets, the hourly buckets
	// whose hour starts in [from, to): the answer is exactly Total of what
	// Rollups returns for that target and range, read in one pass for many
	// targets. Every target given has an entry, zero when it has no data.
	RollupTotals(ctx context.Context, targetIDs []string, from, to time.Time) (map[string]RollupTotal, error)
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

// Merge folds o into r as if their checks had been added one by one:
// counts, latency sum and buckets add; min and max are taken over the
// rollups with checks. A rollup without checks changes nothing. Hour and
// TargetID are left alone.
func (r *Rollup) Merge(o Rollup) {
	if o.Checks <= 0 {
		return
	}
	if r.Checks <= 0 {
		r.LatencyMin, r.LatencyMax = o.LatencyMin, o.LatencyMax
	} else {
		r.LatencyMin = min(r.LatencyMin, o.LatencyMin)
		r.LatencyMax = max(r.LatencyMax, o.LatencyMax)
	}
	r.Checks += o.Checks
	r.Failures += o.Failures
	r.LatencySum += o.LatencySum
	for i, n := range o.Buckets {
		r.Buckets[i] += n
	}
}

// HourRange is a run of whole hours [From, To).
type HourRange struct {
	From, To time.Time
}

// RollupTotal is a target's hourly rollups over a range, summed: what an
// SLA needs of them without reading every hour.
type RollupTotal struct {
	// Sum merges (Rollup.Merge) every rollup of the range; its TargetID is
	// the target's and its Hour is zero.
	Sum Rollup
	// Covered are the hours with at least one check, consecutive hours
	// joined into one range, oldest first; nil when there are none.
	Covered []HourRange
}

// Total sums one target's rollups (any order) the way RollupTotals does.
func Total(targetID string, rollups []Rollup) RollupTotal {
	t := RollupTotal{Sum: Rollup{TargetID: targetID}}
	hours := make([]time.Time, 0, len(rollups))
	for _, r := range rollups {
		if r.Checks <= 0 {
			continue
		}
		t.Sum.Merge(r)
		hours = append(hours, r.Hour.UTC())
	}
	slices.SortFunc(hours, time.Time.Compare)
	for _, h := range hours {
		t.Covered = AddHour(t.Covered, h)
	}
	return t
}

// AddHour appends the hour starting at h to ranges, sorted and added in
// order: it extends the last range when h is where it ends (or inside
// it), or starts a new one.
func AddHour(ranges []HourRange, h time.Time) []HourRange {
	if n := len(ranges); n > 0 && !h.After(ranges[n-1].To) && !h.Before(ranges[n-1].From) {
		if end := h.Add(time.Hour); end.After(ranges[n-1].To) {
			ranges[n-1].To = end
		}
		return ranges
	}
	return append(ranges, HourRange{From: h, To: h.Add(time.Hour)})
}

// ErrInvalidCursor is returned for a cursor that this store did not issue.
var ErrInvalidCursor = errors.New("invalid cursor")

// EvidenceRecord is one check's evidence, named by the sample it belongs
// to (target, location, start).
type EvidenceRecord struct {
	TargetID string
	Location string
	Start    time.Time
	Evidence prober.Evidence
}

// EvidenceReader reads the evidence a store keeps apart from its samples
// (prober.Result.Evidence as written). A store without it does not
// implement the interface.
type EvidenceReader interface {
	// Evidence returns up to limit (at most 1000) records of the target's
	// checks that started in [from, to), oldest first; none is not an
	// error.
	Evidence(ctx context.Context, targetID string, from, to time.Time, limit int) ([]EvidenceRecord, error)
}
