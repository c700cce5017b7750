package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/upwatch/upwatch/alerting"
)

// LoadStates returns every target's last committed state, keyed by target ID.
func (s *Registry) LoadStates(ctx context.Context) (map[string]alerting.State, error) {
	rows, err := s.query(ctx, `SELECT target_id, state FROM alert_state`)
	type row struct {
		id string
		st alerting.State
	}
	states, err := scanAll(rows, err, func(sc scanner) (r row, err error) {
		var raw string
		if err := sc.Scan(&r.id, &raw); err != nil {
			return r, err
		}
		if err := json.Unmarshal([]byte(raw), &r.st); err != nil {
			return r, fmt.Errorf("state of target %q: %w", r.id, err)
		}
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry store: load states: %w", err)
	}
	out := make(map[string]alerting.State, len(states))
	for _, r := range states {
		out[r.id] = r.st
	}
	return out, nil
}

// Commit stores st, upserts the incidents by ID and queues the
// notifications, in one write transaction: CommitBatch of one commit.
func (s *Registry) Commit(ctx context.Context, st alerting.State, incidents []alerting.Incident, queue []alerting.Notification) error {
	return s.CommitBatch(ctx, []alerting.Commit{{State: st, Incidents: incidents, Queue: queue}})
}

// stateChunks are the row counts of the prepared upserts a batch of
// states is cut into, largest first: a batch of n states runs n/100 of the
// first and at most 9 of each other, each parsed once per connection
// rather than once per batch.
var stateChunks = []int{100, 10, 1}

// upsertStates stores the states of ids (raw holds their JSON) in tx.
func (s *Registry) upsertStates(ctx context.Context, tx txn, ids []string, raw map[string]string, now int64) error {
	args := make([]any, 0, 3*stateChunks[0])
	for _, rows := range stateChunks {
		if len(ids) < rows {
			continue
		}
		st := tx.tx.StmtContext(ctx, s.stateUpserts[rows])
		for ; len(ids) >= rows; ids = ids[rows:] {
			args = args[:0]
			for _, id := range ids[:rows] {
				args = append(args, id, raw[id], now)
			}
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// prepareStates prepares the upserts of stateChunks. It runs at open,
// while no transaction holds SQLite's single writer connection.
func (s *Registry) prepareStates(ctx context.Context) error {
	s.stateUpserts = make(map[int]*sql.Stmt, len(stateChunks))
	for _, rows := range stateChunks {
		st, err := s.w.PrepareContext(ctx, s.d.bind(`INSERT INTO alert_state (target_id, state, updated_at) VALUES `+
			strings.Repeat(`(?, ?, ?), `, rows-1)+`(?, ?, ?)
			ON CONFLICT (target_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`))
		if err != nil {
			return fmt.Errorf("preparing the state upsert: %w", err)
		}
		s.stateUpserts[rows] = st
	}
	return nil
}

// CommitBatch stores the commits in one write transaction: every state,
// incident and notification, or none. Of two commits of one target the
// later's state wins, as does the later version of an incident. A
// notification whose Key is already in the outbox (or earlier in the batch)
// is skipped, whatever its status. Queued notifications get status pending
// unless they name another, and CreatedAt = now if it is zero. The batch is
// rejected as a whole if any commit is malformed; the error names it.
func (s *Registry) CommitBatch(ctx context.Context, commits []alerting.Commit) error {
	return s.commitBatch(ctx, nil, commits)
}

// commitBatch is CommitBatch, refused as a whole unless f (if not nil)
// passes its check in the transaction.
func (s *Registry) commitBatch(ctx context.Context, f *fence, commits []alerting.Commit) error {
	if len(commits) == 0 {
		return nil
	}
	// The newest state of each target (one statement may not update a row
	// twice on PostgreSQL), written in target order so that concurrent
	// batches lock rows in the same order.
	var order []string
	rawStates := make(map[string]string, len(commits))
	var incidents []alerting.Incident
	var queue []alerting.Notification
	for i, c := range commits {
		if err := checkCommit(c.State, c.Incidents, c.Queue); err != nil {
			return fmt.Errorf("registry store: commit %d (target %q): %w", i, c.State.TargetID, err)
		}
		raw, err := json.Marshal(c.State)
		if err != nil {
			return fmt.Errorf("registry store: commit target %q: %w", c.State.TargetID, err)
		}
		if _, seen := rawStates[c.State.TargetID]; !seen {
			order = append(order, c.State.TargetID)
		}
		rawStates[c.State.TargetID] = string(raw)
		incidents = append(incidents, c.Incidents...)
		queue = append(queue, c.Queue...)
	}
	slices.Sort(order)
	msgs := make([][]byte, len(queue))
	for i, n := range queue {
		var err error
		if msgs[i], err = encodeMessage(n, s.masterKey); err != nil {
			return fmt.Errorf("registry store: commit notification %q: %w", n.Key, err)
		}
	}
	now := s.now()
	err := s.withTx(ctx, func(tx txn) error {
		if _, err := f.check(ctx, tx, s.d.lockShare); err != nil {
			return err
		}
		if err := s.upsertStates(ctx, tx, order, rawStates, now.UnixNano()); err != nil {
			return fmt.Errorf("states: %w", err)
		}
		for _, inc := range incidents {
			locs, err := incidentLocations(inc.Locations)
			if err != nil {
				return fmt.Errorf("incident %q: %w", inc.ID, err)
			}
			if _, err := tx.exec(ctx, `INSERT INTO incidents
				(id, target_id, start, "end", cause, suppressed, suppressed_reason, in_maintenance, locations)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET target_id = excluded.target_id, start = excluded.start,
					"end" = excluded."end", cause = excluded.cause, suppressed = excluded.suppressed,
					suppressed_reason = excluded.suppressed_reason, in_maintenance = excluded.in_maintenance,
					locations = excluded.locations`,
				inc.ID, inc.TargetID, nanos(inc.Start), nullNanos(inc.End),
				inc.Cause, inc.Suppressed, inc.SuppressedReason, inc.InMaintenance, locs); err != nil {
				return fmt.Errorf("incident %q: %w", inc.ID, err)
			}
		}
		return queueNotifications(ctx, tx, queue, msgs, now)
	})
	if err != nil {
		if len(commits) == 1 {
			return fmt.Errorf("registry store: commit target %q: %w", commits[0].State.TargetID, err)
		}
		return fmt.Errorf("registry store: commit %d targets: %w", len(order), err)
	}
	return nil
}

// checkCommit rejects what the tables cannot hold.
func checkCommit(st alerting.State, incidents []alerting.Incident, queue []alerting.Notification) error {
	var errs []error
	if st.TargetID == "" {
		errs = append(errs, errors.New("state has no target ID"))
	}
	for i, inc := range incidents {
		if inc.ID == "" || inc.TargetID == "" {
			errs = append(errs, fmt.Errorf("incidents[%d]: ID and target ID are required", i))
		}
	}
	for i, n := range queue {
		if n.Key == "" || n.Channel == "" {
			errs = append(errs, fmt.Errorf("queue[%d]: key and channel are required", i))
		}
		if n.Status != "" && !validStatus(n.Status) {
			errs = append(errs, fmt.Errorf("queue[%d]: unknown status %q", i, n.Status))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Incidents lists the incidents matching q, newest start first.
func (s *Registry) Incidents(ctx context.Context, q IncidentQuery) ([]alerting.Incident, error) {
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, fmt.Errorf("registry store: incidents: from (%s) must be before to (%s)", q.From, q.To)
	}
	var w where
	if q.TargetID != "" {
		w.add(`target_id = ?`, q.TargetID)
	}
	if !q.To.IsZero() {
		w.add(`start < ?`, q.To.UnixNano())
	}
	if q.OpenOnly {
		w.add(`"end" IS NULL`)
	} else if !q.From.IsZero() {
		w.add(`("end" IS NULL OR "end" > ?)`, q.From.UnixNano())
	}
	rows, err := s.query(ctx, `SELECT `+incidentColumns+` FROM incidents`+
		w.String()+` ORDER BY start DESC, id DESC LIMIT ?`, append(w.args, clampLimit(q.Limit))...)
	out, err := scanAll(rows, err, scanIncident)
	if err != nil {
		return nil, fmt.Errorf("registry store: incidents: %w", err)
	}
	return out, nil
}

// incidentColumns are what scanIncident reads, in its order.
const incidentColumns = `id, target_id, start, "end", cause, suppressed, suppressed_reason, in_maintenance, locations, acked_by, acked_at`

func scanIncident(sc scanner) (inc alerting.Incident, err error) {
	var start, end, ackedAt sql.NullInt64
	var locs string
	err = sc.Scan(&inc.ID, &inc.TargetID, &start, &end, &inc.Cause, &inc.Suppressed, &inc.SuppressedReason, &inc.InMaintenance, &locs, &inc.AckedBy, &ackedAt)
	inc.Start, inc.End, inc.AckedAt = fromNanos(start), fromNanos(end), fromNanos(ackedAt)
	if err == nil && locs != "" {
		if err = json.Unmarshal([]byte(locs), &inc.Locations); err != nil {
			err = fmt.Errorf("incident %q: locations: %w", inc.ID, err)
		}
	}
	return inc, err
}

// where builds a WHERE clause of conditions joined by AND.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds, w.args = append(w.conds, cond), append(w.args, args...)
}

// String is the clause with a leading space, or "" without conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(w.conds, ` AND `)
}

// incidentLocations is an incident's locations as stored: JSON, or empty
// when it has none (one location).
func incidentLocations(ls []alerting.IncidentLocation) (string, error) {
	if len(ls) == 0 {
		return "", nil
	}
	b, err := json.Marshal(ls)
	return string(b), err
}
