package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

type rollupKey struct {
	target string
	hour   int64 // Unix s
}

// WriteSamples stores the batch in one transaction: the raw samples, their
// hourly rollups (merged into what is stored) and each target's run state.
// On error nothing of the batch is stored.
func (s *Store) WriteSamples(ctx context.Context, samples []prober.Result) error {
	if len(samples) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.writeTx(ctx, tx, samples); err != nil {
		return fmt.Errorf("sqlite store: write %d samples: %w", len(samples), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit %d samples: %w", len(samples), err)
	}
	return nil
}

func (s *Store) writeTx(ctx context.Context, tx *sql.Tx, samples []prober.Result) error {
	ins := tx.StmtContext(ctx, s.insSample)
	rowids := make([]int64, len(samples))
	rollups := make(map[rollupKey]*tsdb.Rollup)
	// order keeps, per target, the indexes of its samples in batch order.
	order := make(map[string][]int)
	for i := range samples {
		r := &samples[i]
		var tlsExpiry any
		if !r.TLSExpiry.IsZero() {
			tlsExpiry = r.TLSExpiry.UnixNano()
		}
		res, err := ins.ExecContext(ctx, r.TargetID, r.Target, r.Kind, r.Location, r.Start.UnixNano(),
			int64(r.Duration), int64(r.Phases.DNS), int64(r.Phases.Connect), int64(r.Phases.TLS),
			int64(r.Phases.TTFB), int64(r.Phases.Transfer), r.Success, string(r.ErrorClass), r.Error,
			r.StatusCode, tlsExpiry, r.BodyBytes, r.RemoteAddr)
		if err != nil {
			return err
		}
		if rowids[i], err = res.LastInsertId(); err != nil {
			return err
		}
		k := rollupKey{r.TargetID, hourOf(r.Start)}
		ru := rollups[k]
		if ru == nil {
			ru = &tsdb.Rollup{}
			rollups[k] = ru
		}
		ru.Add(*r)
		order[r.TargetID] = append(order[r.TargetID], i)
	}

	up := tx.StmtContext(ctx, s.upRollup)
	args := make([]any, 0, 7+tsdb.NumBuckets)
	for k, ru := range rollups {
		args = append(args[:0], k.target, k.hour, ru.Checks, ru.Failures,
			int64(ru.LatencyMin), int64(ru.LatencyMax), int64(ru.LatencySum))
		for _, b := range ru.Buckets {
			args = append(args, b)
		}
		if _, err := up.ExecContext(ctx, args...); err != nil {
			return err
		}
	}

	get, put := tx.StmtContext(ctx, s.getState), tx.StmtContext(ctx, s.putState)
	for target, idx := range order {
		var st state
		err := get.QueryRowContext(ctx, target).Scan(&st.lastStart, &st.lastSuccess,
			&st.failures, &st.successes, &st.since)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			st = state{}
		case err != nil:
			return err
		default:
			st.known = true
		}
		slices.SortStableFunc(idx, func(a, b int) int { return samples[a].Start.Compare(samples[b].Start) })
		changed := false
		for _, i := range idx {
			changed = st.apply(samples[i].Start.UnixNano(), rowids[i], samples[i].Success) || changed
		}
		if !changed {
			continue
		}
		if _, err := put.ExecContext(ctx, target, st.lastStart, st.lastRowid, st.lastSuccess,
			st.failures, st.successes, st.since); err != nil {
			return err
		}
	}
	return nil
}

// state is one target's run tracking as stored in target_state.
type state struct {
	known               bool
	lastStart, since    int64
	lastRowid           int64
	lastSuccess         bool
	failures, successes int64
}

// apply folds in a sample; samples older than the newest one seen are stored
// but do not change the run state (it follows start order, not arrival
// order). It reports whether the state changed.
func (st *state) apply(start, rowid int64, success bool) bool {
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
	st.known, st.lastStart, st.lastRowid, st.lastSuccess = true, start, rowid, success
	return true
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
