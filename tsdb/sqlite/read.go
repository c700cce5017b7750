package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// Page size limits for Samples.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// Samples returns a page of the target's samples in [q.From, q.To), oldest
// first, samples with the same start by location. A zero From or To leaves
// that end open. It reads blocks and raw rows in one read transaction (one
// snapshot), so a compaction running meanwhile neither hides nor repeats a
// sample; and as the order and the cursor depend on the samples only, not
// on where they are stored, pages before and after a compaction fit.
func (s *Store) Samples(ctx context.Context, q tsdb.SampleQuery) (tsdb.SamplePage, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = q.From.UnixNano()
	}
	if !q.To.IsZero() {
		to = q.To.UnixNano()
	}
	var c *cursor
	if q.Cursor != "" {
		dc, err := decodeCursor(q.Cursor, q.TargetID)
		if err != nil {
			return tsdb.SamplePage{}, err
		}
		c = &dc
		from = max(from, c.start)
	}
	var page tsdb.SamplePage
	if from >= to {
		return page, nil
	}
	out, err := s.readSamples(ctx, q.TargetID, from, to, c, limit+1)
	if err != nil {
		return tsdb.SamplePage{}, fmt.Errorf("sqlite store: samples: %w", err)
	}
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		page.NextCursor = cursor{start: last.Start.UnixNano(), location: last.Location}.encode(q.TargetID)
	}
	page.Samples = out
	return page, nil
}

// readSamples returns up to n of target's samples with start in [from,
// to) after c (if not nil), in (start, location) order, merging raw rows
// and blocks.
func (s *Store) readSamples(ctx context.Context, target string, from, to int64, c *cursor, n int) ([]prober.Result, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()

	after := func(r prober.Result) bool { return true }
	cond, args := "", []any{target, from, to}
	if c != nil {
		after = c.before
		if c.afterStart {
			cond = ` AND start > ?`
			args = append(args, c.start)
		} else {
			cond = ` AND (start > ? OR (start = ? AND location > ?))`
			args = append(args, c.start, c.start, c.location)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+sampleColumns+` FROM samples
		WHERE target_id = ? AND start >= ? AND start < ?`+cond+` ORDER BY start, location LIMIT ?`, append(args, n)...)
	if err != nil {
		return nil, err
	}
	var raw []prober.Result
	for rows.Next() {
		r, err := scanSample(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		raw = append(raw, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// Blocks hold whole hours (one, or a day's): those that overlap [from,
	// to), which start at most maxBlockHours before from's hour.
	hiHour := hourOf(time.Unix(0, to-1)) // to > from, so to-1 does not wrap
	loHour := hourOf(time.Unix(0, from))
	rows, err = tx.QueryContext(ctx, `SELECT hour, data FROM blocks
		WHERE target_id = ? AND hour > ? AND hour <= ? AND hour + hours * 3600 > ? ORDER BY hour`,
		target, loHour-maxBlockHours*hourSec, hiHour, loHour)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]prober.Result, 0, min(n, len(raw)+64))
	ri := 0
	// add appends the raw samples before b and then b; it reports whether
	// n samples are out.
	add := func(b prober.Result) bool {
		for ri < len(raw) && len(out) < n {
			c := sampleLess(raw[ri], b)
			if c > 0 {
				break
			}
			if c < 0 {
				out = append(out, raw[ri])
			} // else in both: cannot happen (writes and compaction keep them apart), kept once
			ri++
		}
		if len(out) < n {
			out = append(out, b)
		}
		return len(out) >= n
	}
	full := false
	for !full && rows.Next() {
		var hour int64
		var data []byte
		if err := rows.Scan(&hour, &data); err != nil {
			return nil, err
		}
		bs, err := decodeBlock(target, hour, data)
		if err != nil {
			return nil, fmt.Errorf("block of %s: %w", time.Unix(hour, 0).UTC().Format(time.RFC3339), err)
		}
		for _, b := range bs {
			if st := b.Start.UnixNano(); st < from || st >= to || !after(b) {
				continue
			}
			if full = add(b); full {
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for ; ri < len(raw) && len(out) < n; ri++ {
		out = append(out, raw[ri])
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanSample(sc scanner) (prober.Result, error) {
	var (
		r                                   prober.Result
		start, dur, dns, conn, tls, ttfb, x int64
		class                               string
		tlsExpiry                           sql.NullInt64
	)
	err := sc.Scan(&r.TargetID, &r.Target, &r.Kind, &r.Location, &start, &dur, &dns, &conn, &tls,
		&ttfb, &x, &r.Success, &class, &r.Error, &r.StatusCode, &tlsExpiry, &r.BodyBytes, &r.RemoteAddr)
	if err != nil {
		return r, err
	}
	r.Start = time.Unix(0, start).UTC()
	r.Duration = time.Duration(dur)
	r.Phases = prober.Phases{DNS: time.Duration(dns), Connect: time.Duration(conn), TLS: time.Duration(tls),
		TTFB: time.Duration(ttfb), Transfer: time.Duration(x)}
	r.ErrorClass = prober.ErrorClass(class)
	if tlsExpiry.Valid {
		r.TLSExpiry = time.Unix(0, tlsExpiry.Int64).UTC()
	}
	return r, nil
}

// cursor is the position after which the next page starts: the last
// sample's start and location (a sample's identity within its target).
// It is sent as base64url of: version byte, start, CRC-32 of the target
// ID, location, so a cursor is only accepted for the target it was issued
// for. Version 1 cursors (start, rowid; before blocks) still decode, and
// continue after every sample of their start.
type cursor struct {
	start      int64
	location   string
	afterStart bool // a version 1 cursor: after every sample at start
}

const cursorVersion = 2

// before reports whether r comes after the cursor.
func (c cursor) before(r prober.Result) bool {
	st := r.Start.UnixNano()
	if c.afterStart {
		return st > c.start
	}
	return st > c.start || st == c.start && r.Location > c.location
}

func (c cursor) encode(target string) string {
	b := make([]byte, 0, 13+len(c.location))
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.start))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(target)))
	b = append(b, c.location...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, target string) (cursor, error) {
	bad := fmt.Errorf("sqlite store: cursor %.32q: %w", s, tsdb.ErrInvalidCursor)
	b, err := base64.RawURLEncoding.DecodeString(s)
	switch {
	case err != nil || len(b) == 0:
		return cursor{}, bad
	case b[0] == 1 && len(b) == 21 && binary.BigEndian.Uint32(b[17:]) == crc32.ChecksumIEEE([]byte(target)):
		return cursor{start: int64(binary.BigEndian.Uint64(b[1:])), afterStart: true}, nil
	case b[0] == cursorVersion && len(b) >= 13 && binary.BigEndian.Uint32(b[9:]) == crc32.ChecksumIEEE([]byte(target)):
		return cursor{start: int64(binary.BigEndian.Uint64(b[1:])), location: string(b[13:])}, nil
	}
	return cursor{}, bad
}

// Rollups returns the target's hourly buckets whose hour starts in
// [from, to), oldest first. A zero from or to leaves that end open.
func (s *Store) Rollups(ctx context.Context, targetID string, from, to time.Time) ([]tsdb.Rollup, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = ceilSecond(from)
	}
	if !to.IsZero() {
		hi = ceilSecond(to)
	}
	out := []tsdb.Rollup{}
	if lo >= hi {
		return out, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT hour, checks, failures, latency_min, latency_max, latency_sum, `+
		bucketColumns("%s", ", ")+` FROM rollups WHERE target_id = ? AND hour >= ? AND hour < ? ORDER BY hour`,
		targetID, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: rollups: %w", err)
	}
	defer rows.Close()
	dest := make([]any, 6+tsdb.NumBuckets)
	for rows.Next() {
		var hour, lmin, lmax, lsum int64
		ru := tsdb.Rollup{TargetID: targetID}
		dest[0], dest[1], dest[2], dest[3], dest[4], dest[5] = &hour, &ru.Checks, &ru.Failures, &lmin, &lmax, &lsum
		for i := range ru.Buckets {
			dest[6+i] = &ru.Buckets[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("sqlite store: rollups: %w", err)
		}
		ru.Hour = time.Unix(hour, 0).UTC()
		ru.LatencyMin, ru.LatencyMax, ru.LatencySum = time.Duration(lmin), time.Duration(lmax), time.Duration(lsum)
		out = append(out, ru)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: rollups: %w", err)
	}
	return out, nil
}

// ceilSecond returns the smallest Unix second s with s*1e9 >= t in ns, so that
// "hour*1e9 >= from" becomes "hour >= ceilSecond(from)".
func ceilSecond(t time.Time) int64 {
	sec, ns := t.Unix(), t.Nanosecond()
	if ns > 0 {
		sec++
	}
	return sec
}

// Latest returns the newest sample (by start) of every target. It reads
// the latest table, which holds each target's newest start, and fetches that
// sample through the (target_id, start) index: one lookup per target, no
// scan; a target whose newest sample has been compacted (it has not been
// checked since the hour closed) has it decoded from its block. Of samples
// sharing that start the one with the greatest location wins (the last in
// Samples' order). A target whose newest sample has been pruned is left out.
// Rows and blocks are read in one snapshot.
func (s *Store) Latest(ctx context.Context) (map[string]prober.Result, error) {
	out, err := s.latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: latest: %w", err)
	}
	return out, nil
}

func (s *Store) latest(ctx context.Context) (map[string]prober.Result, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	out := make(map[string]prober.Result)
	keep := func(r prober.Result) {
		if prev, ok := out[r.TargetID]; !ok || r.Location > prev.Location {
			out[r.TargetID] = r
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+prefixed("s.", sampleColumns)+`
		FROM latest l JOIN samples s ON s.target_id = l.target_id AND s.start = l.last_start`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanSample(rows)
		if err != nil {
			return nil, err
		}
		keep(r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()

	// The block that covers the hour (Unix s) of last_start (rounded down
	// also before 1970): the newest starting at or before it, if that
	// reaches it. CROSS JOIN keeps latest the outer loop: two index
	// lookups per target, never a scan of the blocks.
	const hourNs = 3600 * 1e9
	rows, err = tx.QueryContext(ctx, fmt.Sprintf(`SELECT l.target_id, l.last_start, b.hour, b.samples
		FROM (SELECT target_id, last_start,
			(CASE WHEN last_start >= 0 THEN last_start ELSE last_start - %[1]d + 1 END) / %[1]d * 3600 AS h FROM latest) l
		CROSS JOIN blocks b ON b.target_id = l.target_id
			AND b.hour = (SELECT max(hour) FROM blocks WHERE target_id = l.target_id AND hour <= l.h AND hour > l.h - %[2]d)
			AND b.hour + b.hours * 3600 > l.h`, int64(hourNs), maxBlockHours*hourSec))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var refs []latestInBlock
	for rows.Next() {
		var m latestInBlock
		if err := rows.Scan(&m.target, &m.start, &m.hour, &m.samples); err != nil {
			return nil, err
		}
		refs = append(refs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()

	// A block that holds a target's newest sample is of an hour (or day)
	// the target has not been checked since, so it rarely changes: its
	// newest samples are kept from call to call, until the block's
	// sample count (which every rewrite changes) or the newest start does.
	s.latestMu.Lock()
	memo := s.latestMemo
	s.latestMu.Unlock()
	next := make(map[string]latestInBlock, len(refs))
	for _, m := range refs {
		if old, ok := memo[m.target]; ok && old.start == m.start && old.hour == m.hour && old.samples == m.samples {
			m.newest = old.newest
		} else {
			var data []byte
			if err := tx.QueryRowContext(ctx, `SELECT data FROM blocks WHERE target_id = ? AND hour = ?`, m.target, m.hour).Scan(&data); err != nil {
				return nil, err
			}
			bs, err := decodeBlock(m.target, m.hour, data)
			if err != nil {
				return nil, fmt.Errorf("block of %q at %s: %w", m.target, time.Unix(m.hour, 0).UTC().Format(time.RFC3339), err)
			}
			for _, b := range bs {
				if b.Start.UnixNano() == m.start {
					m.newest = append(m.newest, b)
				}
			}
		}
		for _, b := range m.newest {
			keep(b)
		}
		next[m.target] = m
	}
	s.latestMu.Lock()
	s.latestMemo = next
	s.latestMu.Unlock()
	return out, nil
}

// latestInBlock is a target's newest start whose samples lie in a block,
// with those samples once decoded.
type latestInBlock struct {
	target               string
	start, hour, samples int64
	newest               []prober.Result
}
