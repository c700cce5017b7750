package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Prune deletes raw samples (and their evidence) older than RawRetention and
// rollups older than RollupRetention, measured from Options.Now. Rows go one by one, blocks
// whole: a block once its hour (or day) has entirely passed the cut. It deletes
// target by target through the (target_id, start) and (target_id, hour)
// indexes, each delete in its own short transaction so writers are not held
// up. deleted counts samples (of rows and blocks) and rollups.
func (s *Store) Prune(ctx context.Context) (deleted int64, err error) {
	now := s.opts.Now()
	rawCut := now.Add(-s.opts.RawRetention).UnixNano()
	// Blocks that end at or before the hour of the cut.
	blockCut := hourOf(time.Unix(0, rawCut))
	rollupCut := hourOf(now.Add(-s.opts.RollupRetention))
	targets, err := s.targetIDs(ctx)
	if err != nil {
		return 0, err
	}
	for _, t := range targets {
		for _, q := range []struct {
			sql string
			cut int64
		}{
			{`DELETE FROM samples WHERE target_id = ? AND start < ?`, rawCut},
			{`DELETE FROM rollups WHERE target_id = ? AND hour < ?`, rollupCut},
		} {
			n, err := s.exec(ctx, q.sql, t, q.cut)
			deleted += n
			if err != nil {
				return deleted, fmt.Errorf("sqlite store: prune %q: %w", t, err)
			}
		}
		// Evidence goes with its samples; it is not counted as samples.
		if _, err := s.exec(ctx, `DELETE FROM evidence WHERE target_id = ? AND start < ?`, t, rawCut); err != nil {
			return deleted, fmt.Errorf("sqlite store: prune evidence %q: %w", t, err)
		}
		n, err := s.pruneBlocks(ctx, t, blockCut)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("sqlite store: prune %q: %w", t, err)
		}
	}
	return deleted, nil
}

// pruneBlocks deletes target's blocks that end at or before cut (Unix s)
// and returns how many samples they held.
func (s *Store) pruneBlocks(ctx context.Context, target string, cut int64) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	rows, err := s.w.QueryContext(ctx, `DELETE FROM blocks WHERE target_id = ? AND hour < ? AND hour + hours * 3600 <= ? RETURNING samples`,
		target, cut, cut)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var deleted int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return deleted, err
		}
		deleted += n
	}
	return deleted, rows.Err()
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// targetIDs lists every target that has ever been written: each write
// creates its row in latest (WriteEvidence alone creates none, hence the
// evidence's targets too).
func (s *Store) targetIDs(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT target_id FROM latest UNION SELECT DISTINCT target_id FROM evidence`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: prune: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite store: prune: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// prefixed qualifies each column of a comma-separated list with p.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
