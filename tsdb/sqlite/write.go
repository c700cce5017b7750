package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// maxRowsLog2 sets the largest multi-row statement: 1<<maxRowsLog2 rows.
const maxRowsLog2 = 6

// multiRow is an INSERT of up to 1<<maxRowsLog2 rows per statement. A
// statement is prepared for every power of two, so any count of rows is
// written with at most maxRowsLog2+1 statements per full chunk remainder.
type multiRow struct {
	prefix, suffix string
	cols           int
}

func (m multiRow) sql(rows int) string {
	group := "(?" + strings.Repeat(", ?", m.cols-1) + ")"
	return m.prefix + strings.Repeat(group+", ", rows-1) + group + m.suffix
}

// preparedRows holds a multiRow prepared for 1, 2, 4, … rows on the writer
// connection, at the driver level (see writeTx).
type preparedRows struct {
	m     multiRow
	stmts [maxRowsLog2 + 1]driver.Stmt
}

func prepareRows(ctx context.Context, c driver.ConnPrepareContext, m multiRow) (*preparedRows, error) {
	p := &preparedRows{m: m}
	for i := range p.stmts {
		st, err := c.PrepareContext(ctx, m.sql(1<<i))
		if err != nil {
			p.close()
			return nil, err
		}
		p.stmts[i] = st
	}
	return p, nil
}

func (p *preparedRows) close() {
	if p == nil {
		return
	}
	for _, st := range p.stmts {
		if st != nil {
			_ = st.Close()
		}
	}
}

// exec inserts args (cols values per row) in chunks of the largest prepared
// sizes that fit, and returns how many rows changed. It renumbers the
// ordinals of each chunk from 1, as the driver expects.
func (p *preparedRows) exec(ctx context.Context, args []driver.NamedValue) (int64, error) {
	cols := p.m.cols
	var changed int64
	for rows := len(args) / cols; rows > 0; {
		i := min(bits.Len(uint(rows))-1, maxRowsLog2)
		n := 1 << i
		chunk := args[:n*cols]
		for j := range chunk {
			chunk[j].Ordinal = j + 1
		}
		res, err := p.stmts[i].(driver.StmtExecContext).ExecContext(ctx, chunk)
		if err != nil {
			return changed, err
		}
		if c, err := res.RowsAffected(); err == nil {
			changed += c
		}
		args, rows = args[n*cols:], rows-n
	}
	return changed, nil
}

// errStored says a batch holds samples the store already has.
var errStored = errors.New("batch holds samples already stored")

// namedArgs collects statement arguments as the driver takes them: int64,
// bool, string or nil, no conversion by database/sql.
type namedArgs []driver.NamedValue

func (a namedArgs) add(vs ...driver.Value) namedArgs {
	for _, v := range vs {
		a = append(a, driver.NamedValue{Value: v})
	}
	return a
}

// reset empties a for reuse, dropping the values it held.
func (a namedArgs) reset() namedArgs {
	clear(a)
	return a[:0]
}

// writer is the driver-level side of the single writer connection: the
// write statements prepared on it and argument buffers reused across
// batches. It is used under Store.wmu only.
type writer struct {
	conn                                     any // the driver connection the statements belong to
	insSamples, upRollups, upCheck, upLatest *preparedRows
	sampleArgs, rollupArgs, checkArgs        namedArgs
	latestArgs                               namedArgs
	order                                    []int32 // indexes into the batch, in write order
	starts                                   []int64 // the batch's starts, Unix ns
}

// prepare prepares the write statements on dc unless they already are.
// Statements of an earlier connection (one database/sql has discarded) are
// dropped unclosed: that connection is closed and took them with it.
func (w *writer) prepare(ctx context.Context, dc any) error {
	if w.conn == dc {
		return nil
	}
	c, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return fmt.Errorf("driver connection %T cannot prepare with a context", dc)
	}
	w.conn, w.insSamples, w.upRollups, w.upCheck, w.upLatest = nil, nil, nil, nil, nil
	var p [4]*preparedRows
	for i, m := range []multiRow{insertSample, upsertRollup, upsertCheck, upsertLatest} {
		var err error
		if p[i], err = prepareRows(ctx, c, m); err != nil {
			for _, q := range p {
				q.close()
			}
			return err
		}
	}
	w.conn, w.insSamples, w.upRollups, w.upCheck, w.upLatest = dc, p[0], p[1], p[2], p[3]
	return nil
}

// close closes the statements if they belong to dc.
func (w *writer) close(dc any) {
	if w.conn != dc {
		return
	}
	for _, p := range []*preparedRows{w.insSamples, w.upRollups, w.upCheck, w.upLatest} {
		p.close()
	}
	w.conn, w.insSamples, w.upRollups, w.upCheck, w.upLatest = nil, nil, nil, nil, nil
}

// WriteSamples stores the batch in one transaction: the raw samples, their
// hourly rollups (aggregated per batch, then merged into what is stored) and
// each target's run state. On error nothing of the batch is stored. A
// sample with the target, start and location of one already stored (as a
// row or in a block, or earlier in the batch) is left out: writing a batch
// again changes nothing.
func (s *Store) WriteSamples(ctx context.Context, samples []prober.Result) error {
	if len(samples) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n := len(samples)
	samples, err := s.notInBlocks(ctx, samples)
	if err == nil {
		err = s.write(ctx, samples)
	}
	if errors.Is(err, errStored) {
		// Rare (a replay after a crash): find the new ones and write those.
		if samples, err = s.unstored(ctx, samples); err == nil {
			err = s.write(ctx, samples)
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite store: write %d samples: %w", n, err)
	}
	oldest := int64(math.MaxInt64)
	for i := range samples {
		oldest = min(oldest, samples[i].Start.UnixNano())
	}
	s.noteWritten(hourOf(time.Unix(0, oldest)))
	return nil
}

// unstored returns the samples of batch that are not stored yet, each key
// once. The caller holds s.wmu.
func (s *Store) unstored(ctx context.Context, batch []prober.Result) ([]prober.Result, error) {
	type key struct {
		target, location string
		start            int64
	}
	seen := make(map[key]bool, len(batch))
	out := make([]prober.Result, 0, len(batch))
	for _, r := range batch {
		k := key{r.TargetID, r.Location, r.Start.UnixNano()}
		if seen[k] {
			continue
		}
		seen[k] = true
		var one int
		err := s.w.QueryRowContext(ctx, `SELECT 1 FROM samples WHERE target_id = ? AND start = ? AND location = ?`,
			k.target, k.start, k.location).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			out = append(out, r)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}

// write is WriteSamples; it fails with errStored, storing nothing, if a
// sample was already stored. The caller holds s.wmu.
func (s *Store) write(ctx context.Context, samples []prober.Result) error {
	if len(samples) == 0 {
		return nil
	}

	w := &s.wr
	// Samples go in batch order; rollups and newest starts in (target,
	// hour) and target order, so neighbouring rows share B-tree pages. They
	// come from runs of neighbours in the batch sorted by (target, start),
	// with no map: a sort of indexes costs less than hashing every sample
	// into two maps and sorting their keys.
	starts := w.starts[:0]
	order := w.order[:0]
	for i := range samples {
		starts = append(starts, samples[i].Start.UnixNano())
		order = append(order, int32(i))
	}
	w.starts, w.order = starts, order
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(strings.Compare(samples[a].TargetID, samples[b].TargetID),
			cmp.Compare(starts[a], starts[b]), cmp.Compare(a, b))
	})
	w.sampleArgs = w.sampleArgs.reset()
	w.rollupArgs = w.rollupArgs.reset()
	w.checkArgs = w.checkArgs.reset()
	w.latestArgs = w.latestArgs.reset()
	for i := range samples {
		r := &samples[i]
		var tlsExpiry driver.Value
		if !r.TLSExpiry.IsZero() {
			tlsExpiry = r.TLSExpiry.UnixNano()
		}
		w.sampleArgs = w.sampleArgs.add(r.TargetID, r.Target, r.Kind, r.Location, starts[i],
			int64(r.Duration), int64(r.Phases.DNS), int64(r.Phases.Connect), int64(r.Phases.TLS),
			int64(r.Phases.TTFB), int64(r.Phases.Transfer), r.Success, string(r.ErrorClass), r.Error,
			int64(r.StatusCode), tlsExpiry, r.BodyBytes, r.RemoteAddr)
	}
	var ru tsdb.Rollup
	for j, i := range order {
		r := &samples[i]
		ru.Add(*r)
		hour := hourOf(r.Start)
		var next *prober.Result
		if j+1 < len(order) {
			next = &samples[order[j+1]]
		}
		sameTarget := next != nil && next.TargetID == r.TargetID
		if sameTarget && hourOf(next.Start) == hour {
			continue
		}
		if ru.Checks == 1 { // the common case: a target checked once in the batch's hour
			w.checkArgs = w.checkArgs.add(r.TargetID, hour, ru.Failures, int64(r.Duration),
				int64(tsdb.BucketIndex(r.Duration)))
		} else {
			w.rollupArgs = w.rollupArgs.add(r.TargetID, hour, ru.Checks, ru.Failures,
				int64(ru.LatencyMin), int64(ru.LatencyMax), int64(ru.LatencySum))
			for _, b := range ru.Buckets {
				w.rollupArgs = append(w.rollupArgs, driver.NamedValue{Value: b})
			}
		}
		ru = tsdb.Rollup{}
		if !sameTarget { // r is the target's newest in the batch
			w.latestArgs = w.latestArgs.add(r.TargetID, starts[i])
		}
	}

	evidence, err := s.evidenceRows(samples)
	if err != nil {
		return err
	}

	return s.writeTx(ctx, func() error {
		n, err := w.insSamples.exec(ctx, w.sampleArgs)
		if err != nil {
			return err
		}
		if n != int64(len(samples)) {
			return errStored
		}
		if _, err := w.upRollups.exec(ctx, w.rollupArgs); err != nil {
			return err
		}
		if _, err := w.upCheck.exec(ctx, w.checkArgs); err != nil {
			return err
		}
		if _, err = w.upLatest.exec(ctx, w.latestArgs); err != nil || evidence == nil {
			return err
		}
		return s.writeEvidence(ctx, evidence)
	})
}

// writeTx runs fn in a write transaction on the single writer connection,
// with the write statements prepared on it. It works at the driver level:
// database/sql would copy and convert every argument of every statement,
// which costs more than SQLite binding them. The caller holds s.wmu.
func (s *Store) writeTx(ctx context.Context, fn func() error) error {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		if err := s.wr.prepare(ctx, dc); err != nil {
			return err
		}
		b, ok := dc.(driver.ConnBeginTx)
		if !ok {
			return fmt.Errorf("driver connection %T cannot begin with a context", dc)
		}
		tx, err := b.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if err := fn(); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// hourOf returns the Unix second of the start of t's UTC hour.
func hourOf(t time.Time) int64 {
	sec := t.Unix()
	h := sec / 3600
	if sec%3600 < 0 {
		h--
	}
	return h * 3600
}
