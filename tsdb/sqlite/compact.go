package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// Compaction moves the raw rows of closed hours into blocks: an hour is
// closed once CompactGrace has passed since its end (late samples of the
// last hour still go to rows). Each target-hour's rows are merged into
// its block (created, or rewritten when late samples came after it) and
// deleted in the same transaction as the block is written, so a crash
// leaves either the rows or the block, never both or neither. Blocks are
// thus the whole of an hour once no rows of it remain; reads merge
// blocks with rows, so a sample is where it is, whether compaction ran or
// not.

// compactChunk bounds the target-hours compacted in one transaction, so
// writes wait for at most one chunk.
const compactChunk = 64

type hourJob struct {
	target string
	hour   int64 // Unix s
}

// Compact moves every closed hour's raw rows into blocks and returns how
// many samples it moved. It works target by target, compactChunk
// target-hours per transaction, and can be stopped by ctx between
// chunks.
//
// A pass that can find nothing (no hour has closed since the last one and
// nothing has been written to a closed hour since) returns at once,
// without looking at every target.
func (s *Store) Compact(ctx context.Context) (moved int64, err error) {
	cut := hourOf(s.opts.Now().Add(-s.opts.CompactGrace)) // rows before this hour are closed
	if s.compactedCut.Load() == cut && s.oldestWritten.Load() >= cut {
		return 0, nil
	}
	s.oldestWritten.Store(math.MaxInt64) // writes from now on are seen by the next pass
	defer func() {
		if err != nil {
			s.compactedCut.Store(math.MinInt64) // try again next time
		} else {
			s.compactedCut.Store(cut)
		}
	}()
	targets, err := s.targetIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: compact: %w", err)
	}
	// One statement for every target: parsing it again for each of
	// 100,000 targets cost more than running it.
	first, err := s.r.PrepareContext(ctx, `SELECT min(start) FROM samples WHERE target_id = ? AND start >= ? AND start < ?`)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: compact: %w", err)
	}
	defer first.Close()
	var jobs []hourJob
	flush := func() error {
		n, err := s.compactJobs(ctx, jobs)
		moved += n
		jobs = jobs[:0]
		return err
	}
	for _, t := range targets {
		from := int64(math.MinInt64)
		for {
			var start sql.NullInt64
			if err := first.QueryRowContext(ctx, t, from, cut*1e9).Scan(&start); err != nil {
				return moved, fmt.Errorf("sqlite store: compact %q: %w", t, err)
			}
			if !start.Valid {
				break
			}
			h := hourOf(time.Unix(0, start.Int64))
			jobs = append(jobs, hourJob{t, h})
			from = (h + 3600) * 1e9
			if len(jobs) == compactChunk {
				if err := flush(); err != nil {
					return moved, err
				}
			}
		}
	}
	return moved, flush()
}

// compactJobs compacts the jobs' target-hours in one transaction.
func (s *Store) compactJobs(ctx context.Context, jobs []hourJob) (int64, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: compact: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var moved int64
	maxHour := int64(math.MinInt64)
	for _, j := range jobs {
		n, err := compactHour(ctx, tx, j)
		if err != nil {
			return 0, fmt.Errorf("sqlite store: compact %q hour %s: %w", j.target, time.Unix(j.hour, 0).UTC().Format(time.RFC3339), err)
		}
		if s.afterBlock != nil {
			if err := s.afterBlock(); err != nil {
				return 0, err
			}
		}
		moved += n
		maxHour = max(maxHour, j.hour)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite store: compact: %w", err)
	}
	s.noteBlockHour(maxHour)
	return moved, nil
}

// compactHour merges one target-hour's rows into its block and deletes
// them, inside tx, and returns how many rows it moved.
func compactHour(ctx context.Context, tx *sql.Tx, j hourJob) (int64, error) {
	lo, hi := j.hour*1e9, (j.hour+3600)*1e9
	rows, err := tx.QueryContext(ctx, `SELECT `+sampleColumns+` FROM samples WHERE target_id = ? AND start >= ? AND start < ?`,
		j.target, lo, hi)
	if err != nil {
		return 0, err
	}
	var raw []prober.Result
	for rows.Next() {
		r, err := scanSample(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		raw = append(raw, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(raw) == 0 {
		return 0, nil
	}
	all, err := blockSamples(ctx, tx, j.target, j.hour)
	if err != nil {
		return 0, err
	}
	have := make(map[sampleKey]bool, len(all))
	for _, r := range all {
		have[keyOf(r)] = true
	}
	for _, r := range raw {
		if !have[keyOf(r)] {
			all = append(all, r)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO blocks (target_id, hour, samples, data) VALUES (?, ?, ?, ?)
		ON CONFLICT (target_id, hour) DO UPDATE SET samples = excluded.samples, data = excluded.data`,
		j.target, j.hour, len(all), encodeBlock(j.hour, all)); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM samples WHERE target_id = ? AND start >= ? AND start < ?`, j.target, lo, hi)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// querier is what reads need of a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// blockSamples decodes the target's block of hour; none if there is none.
func blockSamples(ctx context.Context, q querier, target string, hour int64) ([]prober.Result, error) {
	var data []byte
	err := q.QueryRowContext(ctx, `SELECT data FROM blocks WHERE target_id = ? AND hour = ?`, target, hour).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeBlock(target, hour, data)
}

// sampleKey identifies a sample: a target's samples differ in start or
// location.
type sampleKey struct {
	target, location string
	start            int64
}

func keyOf(r prober.Result) sampleKey {
	return sampleKey{r.TargetID, r.Location, r.Start.UnixNano()}
}

// noteWritten records that samples of hour (Unix s) and later were
// written.
func (s *Store) noteWritten(hour int64) {
	for {
		cur := s.oldestWritten.Load()
		if hour >= cur || s.oldestWritten.CompareAndSwap(cur, hour) {
			return
		}
	}
}

// noteBlockHour records that a block of hour (Unix s) exists.
func (s *Store) noteBlockHour(hour int64) {
	for {
		cur := s.blockHorizon.Load()
		if hour <= cur || s.blockHorizon.CompareAndSwap(cur, hour) {
			return
		}
	}
}

// loadBlockHorizon reads the newest block hour at open.
func (s *Store) loadBlockHorizon(ctx context.Context) error {
	var h sql.NullInt64
	if err := s.w.QueryRowContext(ctx, `SELECT max(hour) FROM blocks`).Scan(&h); err != nil {
		return err
	}
	s.blockHorizon.Store(math.MinInt64)
	if h.Valid {
		s.blockHorizon.Store(h.Int64)
	}
	return nil
}

// notInBlocks drops the samples that blocks already hold: a write of a
// sample of a compacted hour again (a write-ahead log replayed) stores
// nothing. Only samples of hours up to the newest block can be in one, so
// the usual batch, of the open hour, costs no query. The caller holds
// s.wmu.
func (s *Store) notInBlocks(ctx context.Context, batch []prober.Result) ([]prober.Result, error) {
	horizon := s.blockHorizon.Load()
	var inBlocks map[sampleKey]bool
	var checked map[hourJob]bool
	var out []prober.Result // nil while every sample so far is kept
	for i, r := range batch {
		h := hourOf(r.Start)
		if h > horizon {
			if out != nil {
				out = append(out, r)
			}
			continue
		}
		if inBlocks == nil {
			inBlocks, checked = map[sampleKey]bool{}, map[hourJob]bool{}
		}
		if j := (hourJob{r.TargetID, h}); !checked[j] {
			checked[j] = true
			rs, err := blockSamples(ctx, s.w, j.target, j.hour)
			if err != nil {
				return nil, err
			}
			for _, b := range rs {
				inBlocks[keyOf(b)] = true
			}
		}
		if inBlocks[keyOf(r)] {
			if out == nil {
				out = append(make([]prober.Result, 0, len(batch)), batch[:i]...)
			}
			continue
		}
		if out != nil {
			out = append(out, r)
		}
	}
	if out == nil {
		return batch, nil
	}
	return out, nil
}

// compactLoop compacts at start (hours a crash or an older version left
// in rows) and then every interval until ctx ends.
func (s *Store) compactLoop(ctx context.Context, every time.Duration) {
	defer close(s.compactDone)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		n, err := s.Compact(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if err.Error() != lastErr { // log only when the error changes
				s.opts.Logger.Warn("tsdb compaction failed", "path", s.opts.Path, "err", err)
			}
			lastErr = err.Error()
		default:
			lastErr = ""
			if n > 0 {
				s.opts.Logger.Debug("tsdb compacted", "path", s.opts.Path, "samples", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
