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
// the block that covers the hour (created, or rewritten when late samples
// came after it) and deleted in the same transaction as the block is
// written, so a crash leaves either the rows or the block, never both or
// neither. Blocks are thus the whole of an hour once no rows of it
// remain; reads merge blocks with rows, so a sample is where it is,
// whether compaction ran or not.
//
// A block covers one hour while its UTC day is open. Once the day has
// closed (its last hour is closed), its hour blocks are merged into one
// block of the day, and rows of hours of a closed day go straight into
// the day's block: at 60 s a day block holds 1440 samples, so the fixed
// cost of a block (its dictionary, column headers, row and index entry)
// and the unused end of its pages spread over 24 times more samples.

// compactChunk bounds the target-hours compacted in one transaction, so
// writes wait for at most one chunk.
const compactChunk = 64

// maxDaySamples bounds the samples of a day block: a busier day (every
// 60 s from more than 11 locations, every 5 s from one) keeps its hour
// blocks, which hold enough samples each to make their fixed cost small,
// and a day block stays a few hundred kilobytes to decode.
const maxDaySamples = 1 << 14

const (
	hourSec = 3600
	daySec  = 24 * hourSec
	// maxBlockHours is the longest span of a block: the block that covers
	// an hour starts at most this many hours before it.
	maxBlockHours = 24
)

// dayOf returns the start (Unix s) of the UTC day holding sec, rounded
// down also before 1970.
func dayOf(sec int64) int64 {
	d := sec / daySec
	if sec%daySec < 0 {
		d--
	}
	return d * daySec
}

// hourJob is a target's span to compact: one hour (hours 1) into the
// block that covers it, or a closed day (hours 24, hour the day's start),
// with its rows and hour blocks, into one block of the day.
type hourJob struct {
	target      string
	hour, hours int64 // Unix s
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
	dayCut := dayOf(cut)                 // days before this one are closed
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
	// Days first: once the hour blocks of every closed day are merged, the
	// rows of a closed day's hours have their day block to go to.
	if merged := s.mergedDayCut.Load(); merged != dayCut {
		n, err := s.mergeDays(ctx, targets, merged, dayCut) // with the rows of those days
		moved += n
		if err != nil {
			return moved, err
		}
		s.mergedDayCut.Store(dayCut)
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
			j := hourJob{t, hourOf(time.Unix(0, start.Int64)), 1}
			if j.hour < dayCut { // the whole day at once, not its block rewritten hour by hour
				j = hourJob{t, dayOf(j.hour), maxBlockHours}
			}
			jobs = append(jobs, j)
			from = (j.hour + j.hours*hourSec) * 1e9
			if chunkFull(jobs) {
				if err := flush(); err != nil {
					return moved, err
				}
			}
		}
	}
	return moved, flush()
}

// chunkFull reports whether jobs hold compactChunk target-hours.
func chunkFull(jobs []hourJob) bool {
	var n int64
	for _, j := range jobs {
		n += j.hours
	}
	return n >= compactChunk
}

// compactJobs compacts the jobs in one transaction and returns how many
// rows it moved into blocks.
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
		compact := compactHour
		if j.hours > 1 {
			compact = compactDay
		}
		n, b, err := compact(ctx, tx, j)
		if err != nil {
			return 0, fmt.Errorf("sqlite store: compact %q hour %s: %w", j.target, time.Unix(j.hour, 0).UTC().Format(time.RFC3339), err)
		}
		if s.afterBlock != nil {
			if err := s.afterBlock(); err != nil {
				return 0, err
			}
		}
		moved += n
		if b.hours > 0 {
			maxHour = max(maxHour, b.end()-hourSec)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite store: compact: %w", err)
	}
	s.noteBlockHour(maxHour)
	return moved, nil
}

// compactHour merges one target-hour's rows into the block that covers
// the hour (or a new block of the hour) and deletes them, inside tx. It
// returns how many rows it moved and the block it wrote (none: a zero
// blockRef).
func compactHour(ctx context.Context, tx *sql.Tx, j hourJob) (int64, blockRef, error) {
	raw, err := rowsOf(ctx, tx, j)
	if err != nil || len(raw) == 0 {
		return 0, blockRef{}, err
	}
	all, b, err := blockSamples(ctx, tx, j.target, j.hour)
	if err != nil {
		return 0, blockRef{}, err
	}
	if b.hours == 0 { // no block yet
		b = blockRef{hour: j.hour, hours: 1}
	}
	all = mergeRows(all, raw)
	if err := putBlock(ctx, tx, j.target, b, all); err != nil {
		return 0, blockRef{}, err
	}
	n, err := deleteRows(ctx, tx, j)
	return n, b, err
}

// compactDay replaces the blocks and rows of a closed day (j.hour its
// start) with one block of the day, inside tx. It returns how many rows
// it moved and the block it wrote (none: a zero blockRef).
func compactDay(ctx context.Context, tx *sql.Tx, j hourJob) (int64, blockRef, error) {
	b := blockRef{hour: j.hour, hours: maxBlockHours}
	var inRows, inBlocks int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM samples WHERE target_id = ? AND start >= ? AND start < ?`,
		j.target, b.hour*1e9, b.end()*1e9).Scan(&inRows); err != nil {
		return 0, blockRef{}, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(sum(samples), 0) FROM blocks WHERE target_id = ? AND hour >= ? AND hour < ?`,
		j.target, b.hour, b.end()).Scan(&inBlocks); err != nil {
		return 0, blockRef{}, err
	}
	if inRows+inBlocks > maxDaySamples {
		return compactHours(ctx, tx, j)
	}
	raw, err := rowsOf(ctx, tx, j)
	if err != nil {
		return 0, blockRef{}, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT hour, hours, data FROM blocks WHERE target_id = ? AND hour >= ? AND hour < ?`,
		j.target, b.hour, b.end())
	if err != nil {
		return 0, blockRef{}, err
	}
	var all []prober.Result
	blocks, whole := 0, false
	for rows.Next() {
		var hour, hours int64
		var data []byte
		if err := rows.Scan(&hour, &hours, &data); err != nil {
			rows.Close()
			return 0, blockRef{}, err
		}
		rs, err := decodeBlock(j.target, hour, data)
		if err != nil {
			rows.Close()
			return 0, blockRef{}, err
		}
		all = append(all, rs...)
		blocks++
		whole = hours == maxBlockHours
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, blockRef{}, err
	}
	if len(raw) == 0 && (blocks == 0 || blocks == 1 && whole) {
		return 0, blockRef{}, nil // nothing to merge
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM blocks WHERE target_id = ? AND hour >= ? AND hour < ?`,
		j.target, b.hour, b.end()); err != nil {
		return 0, blockRef{}, err
	}
	if err := putBlock(ctx, tx, j.target, b, mergeRows(all, raw)); err != nil {
		return 0, blockRef{}, err
	}
	n, err := deleteRows(ctx, tx, j)
	return n, b, err
}

// compactHours compacts j's hours one by one, into the blocks that cover
// them or blocks of their own, and returns how many rows it moved and
// the last block it wrote.
func compactHours(ctx context.Context, tx *sql.Tx, j hourJob) (moved int64, last blockRef, err error) {
	for h := j.hour; h < j.hour+j.hours*hourSec; h += hourSec {
		n, b, err := compactHour(ctx, tx, hourJob{j.target, h, 1})
		if err != nil {
			return 0, blockRef{}, err
		}
		moved += n
		if b.hours > 0 {
			last = b
		}
	}
	return moved, last, nil
}

// rowsOf reads the target's rows of j's hours.
func rowsOf(ctx context.Context, tx *sql.Tx, j hourJob) ([]prober.Result, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+sampleColumns+` FROM samples WHERE target_id = ? AND start >= ? AND start < ?`,
		j.target, j.hour*1e9, (j.hour+j.hours*hourSec)*1e9)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var raw []prober.Result
	for rows.Next() {
		r, err := scanSample(rows)
		if err != nil {
			return nil, err
		}
		raw = append(raw, r)
	}
	return raw, rows.Err()
}

func deleteRows(ctx context.Context, tx *sql.Tx, j hourJob) (int64, error) {
	res, err := tx.ExecContext(ctx, `DELETE FROM samples WHERE target_id = ? AND start >= ? AND start < ?`,
		j.target, j.hour*1e9, (j.hour+j.hours*hourSec)*1e9)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// mergeRows adds to a block's samples the rows it does not hold yet.
func mergeRows(block, raw []prober.Result) []prober.Result {
	have := make(map[sampleKey]bool, len(block))
	for _, r := range block {
		have[keyOf(r)] = true
	}
	for _, r := range raw {
		if !have[keyOf(r)] {
			block = append(block, r)
		}
	}
	return block
}

// putBlock stores rs (target's samples of b's hours) as the block b.
func putBlock(ctx context.Context, tx *sql.Tx, target string, b blockRef, rs []prober.Result) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO blocks (target_id, hour, hours, samples, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (target_id, hour) DO UPDATE SET hours = excluded.hours, samples = excluded.samples, data = excluded.data`,
		target, b.hour, b.hours, len(rs), encodeBlock(b.hour, rs))
	return err
}

// mergeDays merges, for every target, the hour blocks of each day in
// [from, dayCut) into one block of the day, with the day's rows, and
// returns how many rows it moved.
func (s *Store) mergeDays(ctx context.Context, targets []string, from, dayCut int64) (moved int64, err error) {
	var jobs []hourJob
	flush := func() error {
		n, err := s.compactJobs(ctx, jobs)
		moved += n
		jobs = jobs[:0]
		return err
	}
	// One statement for every target, as in Compact: parsing it anew for
	// each of 100,000 targets cost more than running it.
	hoursOf, err := s.r.PrepareContext(ctx, `SELECT DISTINCT hour FROM blocks WHERE target_id = ? AND hour >= ? AND hour < ? AND hours < ? ORDER BY hour`)
	if err != nil {
		return 0, fmt.Errorf("sqlite store: compact: %w", err)
	}
	defer hoursOf.Close()
	for _, t := range targets {
		rows, err := hoursOf.QueryContext(ctx, t, from, dayCut, maxBlockHours)
		if err != nil {
			return moved, fmt.Errorf("sqlite store: compact %q: %w", t, err)
		}
		var days []int64
		for rows.Next() {
			var h int64
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return moved, fmt.Errorf("sqlite store: compact %q: %w", t, err)
			}
			if d := dayOf(h); len(days) == 0 || days[len(days)-1] != d {
				days = append(days, d)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return moved, fmt.Errorf("sqlite store: compact %q: %w", t, err)
		}
		for _, d := range days {
			jobs = append(jobs, hourJob{t, d, maxBlockHours})
			if chunkFull(jobs) {
				if err := flush(); err != nil {
					return moved, err
				}
			}
		}
	}
	err = flush()
	return moved, err
}

// querier is what reads need of a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// blockRef is where a stored block lies: its first hour (Unix s) and how
// many hours it spans (0: no block).
type blockRef struct {
	hour, hours int64
}

// end is the end (Unix s) of the block's last hour.
func (b blockRef) end() int64 { return b.hour + b.hours*hourSec }

// blockSamples decodes the target's block that covers hour, and says
// where it lies; none (and a zero blockRef) if there is none.
func blockSamples(ctx context.Context, q querier, target string, hour int64) ([]prober.Result, blockRef, error) {
	var b blockRef
	var data []byte
	err := q.QueryRowContext(ctx, `SELECT hour, hours, data FROM blocks WHERE target_id = ? AND hour <= ? AND hour > ?
		AND hour + hours * 3600 > ? ORDER BY hour DESC LIMIT 1`, target, hour, hour-maxBlockHours*hourSec, hour).Scan(&b.hour, &b.hours, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, blockRef{}, nil
	}
	if err != nil {
		return nil, blockRef{}, err
	}
	rs, err := decodeBlock(target, b.hour, data)
	return rs, b, err
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

// loadBlockHorizon reads the newest hour a block holds at open.
func (s *Store) loadBlockHorizon(ctx context.Context) error {
	var h sql.NullInt64
	if err := s.w.QueryRowContext(ctx, `SELECT max(hour + (hours - 1) * 3600) FROM blocks`).Scan(&h); err != nil {
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
		if j := (hourJob{r.TargetID, h, 1}); !checked[j] {
			checked[j] = true
			rs, _, err := blockSamples(ctx, s.w, j.target, j.hour)
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
