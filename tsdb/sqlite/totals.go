package sqlite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/upwatch/upwatch/tsdb"
)

// readConns is how many connections serve reads.
const readConns = 4

// totalsChunk is how many targets one RollupTotals statement asks for.
const totalsChunk = 125

// RollupTotals sums each target's hourly buckets whose hour starts in
// [from, to) inside SQLite, one statement per totalsChunk targets: the
// rows never cross into Go, only one row of sums per target does. The
// covered hours come from the same statement (count, first and last
// hour with checks) when they form one run, which is the usual case; a
// target with gaps has its covered hours read in a second statement. A
// zero from or to leaves that end open.
func (s *Store) RollupTotals(ctx context.Context, targetIDs []string, from, to time.Time) (map[string]tsdb.RollupTotal, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = ceilSecond(from)
	}
	if !to.IsZero() {
		hi = ceilSecond(to)
	}
	out := make(map[string]tsdb.RollupTotal, len(targetIDs))
	ids := make([]string, 0, len(targetIDs))
	for _, id := range targetIDs {
		if _, ok := out[id]; !ok {
			out[id] = tsdb.RollupTotal{Sum: tsdb.Rollup{TargetID: id}}
			ids = append(ids, id)
		}
	}
	if lo >= hi {
		return out, nil
	}
	// Chunks run on the reader connections side by side: the work is the
	// database engine's, in this goroutine or another.
	var chunks [][]string
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), totalsChunk)]
		ids = ids[len(chunk):]
		chunks = append(chunks, chunk)
	}
	sums := make([]map[string]tsdb.RollupTotal, len(chunks))
	gapsOf := make([][]string, len(chunks))
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, readConns)
	var wg sync.WaitGroup
	for i, chunk := range chunks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			sums[i] = make(map[string]tsdb.RollupTotal, len(chunk))
			gapsOf[i], errs[i] = s.sumChunk(ctx, chunk, lo, hi, sums[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sqlite store: rollup totals: %w", err)
	}
	var gaps []string
	for i := range chunks {
		maps.Copy(out, sums[i])
		gaps = append(gaps, gapsOf[i]...)
	}
	for len(gaps) > 0 {
		chunk := gaps[:min(len(gaps), totalsChunk)]
		gaps = gaps[len(chunk):]
		if err := s.coveredChunk(ctx, chunk, lo, hi, out); err != nil {
			return nil, fmt.Errorf("sqlite store: rollup totals: %w", err)
		}
	}
	return out, nil
}

// inList is "(?, ?, …)" for n values.
func inList(n int) string {
	return "(?" + strings.Repeat(", ?", n-1) + ")"
}

// sumChunk stores the sums of ids' rollups in out and returns the targets
// whose covered hours are not one run.
func (s *Store) sumChunk(ctx context.Context, ids []string, lo, hi int64, out map[string]tsdb.RollupTotal) ([]string, error) {
	args := make([]any, 0, len(ids)+2)
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, lo, hi)
	// Only rollups with checks count (as in tsdb.Rollup.Merge), so min and
	// max need no filter.
	rows, err := s.r.QueryContext(ctx, `SELECT target_id, COUNT(*), MIN(hour), MAX(hour), SUM(checks), SUM(failures),
		MIN(latency_min), MAX(latency_max), SUM(latency_sum), `+bucketColumns("SUM(%s)", ", ")+`
		FROM rollups WHERE target_id IN `+inList(len(ids))+` AND hour >= ? AND hour < ? AND checks > 0
		GROUP BY target_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var gaps []string
	dest := make([]any, 9+tsdb.NumBuckets)
	for rows.Next() {
		var (
			id                         string
			n, first, last, lmin, lmax int64
			lsum                       int64
			sum                        tsdb.Rollup
		)
		dest[0], dest[1], dest[2], dest[3], dest[4] = &id, &n, &first, &last, &sum.Checks
		dest[5], dest[6], dest[7], dest[8] = &sum.Failures, &lmin, &lmax, &lsum
		for i := range sum.Buckets {
			dest[9+i] = &sum.Buckets[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		sum.TargetID = id
		sum.LatencyMin, sum.LatencyMax, sum.LatencySum = time.Duration(lmin), time.Duration(lmax), time.Duration(lsum)
		t := tsdb.RollupTotal{Sum: sum}
		// Hours are whole (the primary key holds one row per hour): n rows
		// spanning n hours are one run.
		if (last-first)/3600+1 == n && (last-first)%3600 == 0 {
			t.Covered = []tsdb.HourRange{{From: time.Unix(first, 0).UTC(), To: time.Unix(last+3600, 0).UTC()}}
		} else {
			gaps = append(gaps, id)
		}
		out[id] = t
	}
	return gaps, rows.Err()
}

// coveredChunk reads the hours with checks of ids into out's Covered.
func (s *Store) coveredChunk(ctx context.Context, ids []string, lo, hi int64, out map[string]tsdb.RollupTotal) error {
	args := make([]any, 0, len(ids)+2)
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, lo, hi)
	rows, err := s.r.QueryContext(ctx, `SELECT target_id, hour FROM rollups
		WHERE target_id IN `+inList(len(ids))+` AND hour >= ? AND hour < ? AND checks > 0
		ORDER BY target_id, hour`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	covered := make(map[string][]tsdb.HourRange, len(ids))
	for rows.Next() {
		var id string
		var hour int64
		if err := rows.Scan(&id, &hour); err != nil {
			return err
		}
		covered[id] = tsdb.AddHour(covered[id], time.Unix(hour, 0).UTC())
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for id, c := range covered {
		t := out[id]
		t.Covered = c
		out[id] = t
	}
	return nil
}
