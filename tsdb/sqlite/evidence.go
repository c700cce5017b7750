package sqlite

import (
	"bytes"
	"compress/flate"
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// DefaultEvidencePerTarget bounds the evidence kept per target: past it
// the oldest goes first, whatever the raw retention says.
const DefaultEvidencePerTarget = 4 << 20

var _ tsdb.EvidenceReader = (*Store)(nil)

// evidenceRow is one sample's evidence as stored.
type evidenceRow struct {
	target, location string
	start            int64
	data             []byte
}

// evidenceRows encodes the evidence of the batch as deflated JSON (error
// pages compress well, and a row that stays under a page spills into no
// overflow page); nil when none has any (the common case, which then
// costs one pass over the batch). The caller holds s.wmu: the compressor
// is reused.
func (s *Store) evidenceRows(samples []prober.Result) ([]evidenceRow, error) {
	var rows []evidenceRow
	for i := range samples {
		r := &samples[i]
		if r.Evidence == nil {
			continue
		}
		b, err := s.deflate(r.Evidence)
		if err != nil {
			return nil, fmt.Errorf("evidence of %q: %w", r.TargetID, err)
		}
		rows = append(rows, evidenceRow{r.TargetID, r.Location, r.Start.UnixNano(), b})
	}
	return rows, nil
}

func (s *Store) deflate(e *prober.Evidence) ([]byte, error) {
	js, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if s.zw == nil {
		if s.zw, err = flate.NewWriter(&out, flate.DefaultCompression); err != nil {
			return nil, err
		}
	} else {
		s.zw.Reset(&out)
	}
	if _, err := s.zw.Write(js); err != nil {
		return nil, err
	}
	if err := s.zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func inflate(data []byte, e *prober.Evidence) error {
	js, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), 4<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(js, e)
}

// writeEvidence stores rows on the writer connection inside the batch's
// transaction, then trims each target they touch to the per-target bound.
// The caller holds s.wmu, in writeTx.
func (s *Store) writeEvidence(ctx context.Context, rows []evidenceRow) error {
	c, ok := s.wr.conn.(driver.ConnPrepareContext)
	if !ok {
		return fmt.Errorf("driver connection %T cannot prepare with a context", s.wr.conn)
	}
	prepare := func(query string) (func(args ...driver.Value) error, func(), error) {
		st, err := c.PrepareContext(ctx, query)
		if err != nil {
			return nil, nil, err
		}
		exec := func(args ...driver.Value) error {
			named := make([]driver.NamedValue, len(args))
			for i, a := range args {
				named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			}
			_, err := st.(driver.StmtExecContext).ExecContext(ctx, named)
			return err
		}
		return exec, func() { _ = st.Close() }, nil
	}
	insert, closeInsert, err := prepare(`INSERT INTO evidence (target_id, start, location, size, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (target_id, start, location) DO NOTHING`)
	if err != nil {
		return err
	}
	defer closeInsert()
	targets := map[string]bool{}
	for _, r := range rows {
		if err := insert(r.target, r.start, r.location, int64(len(r.data)), r.data); err != nil {
			return err
		}
		targets[r.target] = true
	}
	// Newest first, a running total: what lies past the bound goes.
	trim, closeTrim, err := prepare(`DELETE FROM evidence WHERE rowid IN (
		SELECT rowid FROM (
			SELECT rowid, sum(size) OVER (ORDER BY start DESC, location DESC) AS total
			FROM evidence WHERE target_id = ?)
		WHERE total > ?)`)
	if err != nil {
		return err
	}
	defer closeTrim()
	for t := range targets {
		if err := trim(t, s.opts.EvidencePerTarget); err != nil {
			return err
		}
	}
	return nil
}

// Evidence returns the target's evidence of checks that started in
// [from, to), oldest first.
func (s *Store) Evidence(ctx context.Context, targetID string, from, to time.Time, limit int) ([]tsdb.EvidenceRecord, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, `SELECT location, start, data FROM evidence
		WHERE target_id = ? AND start >= ? AND start < ? ORDER BY start, location LIMIT ?`,
		targetID, from.UnixNano(), to.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: evidence: %w", err)
	}
	defer rows.Close()
	var out []tsdb.EvidenceRecord
	for rows.Next() {
		rec := tsdb.EvidenceRecord{TargetID: targetID}
		var start int64
		var data []byte
		if err := rows.Scan(&rec.Location, &start, &data); err != nil {
			return nil, fmt.Errorf("sqlite store: evidence: %w", err)
		}
		if err := inflate(data, &rec.Evidence); err != nil {
			return nil, fmt.Errorf("sqlite store: evidence of %q: %w", targetID, err)
		}
		rec.Start = time.Unix(0, start).UTC()
		out = append(out, rec)
	}
	return out, rows.Err()
}

// WriteEvidence stores the evidence of samples and not the samples: for a
// deployment whose samples go to another store (InfluxDB) and whose
// evidence stays here. Retention and the per-target bound apply as
// always.
func (s *Store) WriteEvidence(ctx context.Context, samples []prober.Result) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	rows, err := s.evidenceRows(samples)
	if err != nil || rows == nil {
		return err
	}
	if err := s.writeTx(ctx, func() error { return s.writeEvidence(ctx, rows) }); err != nil {
		return fmt.Errorf("sqlite store: write evidence: %w", err)
	}
	return nil
}
