package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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

// preparedRows holds a multiRow prepared for 1, 2, 4, … rows.
type preparedRows struct {
	cols  int
	stmts [maxRowsLog2 + 1]*sql.Stmt
}

func prepareRows(ctx context.Context, db *sql.DB, m multiRow) (*preparedRows, error) {
	p := &preparedRows{cols: m.cols}
	for i := range p.stmts {
		st, err := db.PrepareContext(ctx, m.sql(1<<i))
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
// sizes that fit.
func (p *preparedRows) exec(ctx context.Context, tx *sql.Tx, args []any) error {
	for rows := len(args) / p.cols; rows > 0; {
		i := min(bits.Len(uint(rows))-1, maxRowsLog2)
		n := 1 << i
		if _, err := tx.StmtContext(ctx, p.stmts[i]).ExecContext(ctx, args[:n*p.cols]...); err != nil {
			return err
		}
		args, rows = args[n*p.cols:], rows-n
	}
	return nil
}

type rollupKey struct {
	target string
	hour   int64 // Unix s
}

// WriteSamples stores the batch in one transaction: the raw samples, their
// hourly rollups (aggregated per batch, then merged into what is stored) and
// each target's run state. On error nothing of the batch is stored.
func (s *Store) WriteSamples(ctx context.Context, samples []prober.Result) error {
	if len(samples) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()

	sampleArgs := make([]any, 0, len(samples)*insertSample.cols)
	rollups := make(map[rollupKey]*tsdb.Rollup)
	byTarget := make(map[string][]int) // indexes of each target's samples
	for i := range samples {
		r := &samples[i]
		var tlsExpiry any
		if !r.TLSExpiry.IsZero() {
			tlsExpiry = r.TLSExpiry.UnixNano()
		}
		sampleArgs = append(sampleArgs, r.TargetID, r.Target, r.Kind, r.Location, r.Start.UnixNano(),
			int64(r.Duration), int64(r.Phases.DNS), int64(r.Phases.Connect), int64(r.Phases.TLS),
			int64(r.Phases.TTFB), int64(r.Phases.Transfer), r.Success, string(r.ErrorClass), r.Error,
			int64(r.StatusCode), tlsExpiry, r.BodyBytes, r.RemoteAddr)
		k := rollupKey{r.TargetID, hourOf(r.Start)}
		ru := rollups[k]
		if ru == nil {
			ru = &tsdb.Rollup{}
			rollups[k] = ru
		}
		ru.Add(*r)
		byTarget[r.TargetID] = append(byTarget[r.TargetID], i)
	}

	rollupArgs := make([]any, 0, len(rollups)*upsertRollup.cols)
	for k, ru := range rollups {
		rollupArgs = append(rollupArgs, k.target, k.hour, ru.Checks, ru.Failures,
			int64(ru.LatencyMin), int64(ru.LatencyMax), int64(ru.LatencySum))
		for _, b := range ru.Buckets {
			rollupArgs = append(rollupArgs, b)
		}
	}

	// Run state comes from the in-memory copy of target_state (this Store is
	// its only writer); it is updated only once the transaction commits.
	states := make(map[string]state, len(byTarget))
	stateArgs := make([]any, 0, len(byTarget)*upsertState.cols)
	for target, idx := range byTarget {
		st := s.states[target]
		slices.SortStableFunc(idx, func(a, b int) int { return samples[a].Start.Compare(samples[b].Start) })
		changed := false
		for _, i := range idx {
			changed = st.apply(samples[i].Start.UnixNano(), samples[i].Success) || changed
		}
		if changed {
			states[target] = st
			stateArgs = append(stateArgs, target, st.lastStart, st.lastSuccess, st.failures, st.successes, st.since)
		}
	}

	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.insSamples.exec(ctx, tx, sampleArgs); err != nil {
			return err
		}
		if err := s.upRollups.exec(ctx, tx, rollupArgs); err != nil {
			return err
		}
		return s.upStates.exec(ctx, tx, stateArgs)
	})
	if err != nil {
		return fmt.Errorf("sqlite store: write %d samples: %w", len(samples), err)
	}
	for target, st := range states {
		s.states[target] = st
	}
	return nil
}

// inTx runs fn in a write transaction on the single writer connection.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// state is one target's run tracking as stored in target_state.
type state struct {
	known               bool
	lastStart, since    int64
	lastSuccess         bool
	failures, successes int64
}

// apply folds in a sample; samples older than the newest one seen are stored
// but do not change the run state (it follows start order, not arrival
// order). It reports whether the state changed.
func (st *state) apply(start int64, success bool) bool {
	if st.known && start < st.lastStart {
		return false
	}
	if !st.known || success != st.lastSuccess {
		st.failures, st.successes, st.since = 0, 0, start
	}
	if success {
		st.successes++
	} else {
		st.failures++
	}
	st.known, st.lastStart, st.lastSuccess = true, start, success
	return true
}

// loadStates reads target_state into memory.
func (s *Store) loadStates(ctx context.Context) error {
	rows, err := s.w.QueryContext(ctx, `SELECT target_id, last_start, last_success, consecutive_failures,
		consecutive_successes, status_since FROM target_state`)
	if err != nil {
		return err
	}
	defer rows.Close()
	s.states = make(map[string]state)
	for rows.Next() {
		var id string
		st := state{known: true}
		if err := rows.Scan(&id, &st.lastStart, &st.lastSuccess, &st.failures, &st.successes, &st.since); err != nil {
			return err
		}
		s.states[id] = st
	}
	return rows.Err()
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
