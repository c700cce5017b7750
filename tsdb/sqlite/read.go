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
// first (ties in write order). A zero From or To leaves that end open.
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
	afterStart, afterRowid := int64(math.MinInt64), int64(math.MinInt64)
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor, q.TargetID)
		if err != nil {
			return tsdb.SamplePage{}, err
		}
		afterStart, afterRowid = c.start, c.rowid
	}
	var page tsdb.SamplePage
	if from >= to {
		return page, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT rowid, `+sampleColumns+` FROM samples
		WHERE target_id = ? AND start >= ? AND start < ? AND (start, rowid) > (?, ?)
		ORDER BY start, rowid LIMIT ?`, q.TargetID, from, to, afterStart, afterRowid, limit+1)
	if err != nil {
		return page, fmt.Errorf("sqlite store: samples: %w", err)
	}
	defer rows.Close()
	var last cursor
	for rows.Next() {
		if len(page.Samples) == limit {
			page.NextCursor = last.encode(q.TargetID)
			break
		}
		r, rowid, err := scanSample(rows)
		if err != nil {
			return tsdb.SamplePage{}, fmt.Errorf("sqlite store: samples: %w", err)
		}
		page.Samples = append(page.Samples, r)
		last = cursor{start: r.Start.UnixNano(), rowid: rowid}
	}
	if err := rows.Err(); err != nil {
		return tsdb.SamplePage{}, fmt.Errorf("sqlite store: samples: %w", err)
	}
	return page, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanSample(sc scanner) (prober.Result, int64, error) {
	var (
		r                                          prober.Result
		rowid, start, dur, dns, conn, tls, ttfb, x int64
		class                                      string
		tlsExpiry                                  sql.NullInt64
	)
	err := sc.Scan(&rowid, &r.TargetID, &r.Target, &r.Kind, &r.Location, &start, &dur, &dns, &conn, &tls,
		&ttfb, &x, &r.Success, &class, &r.Error, &r.StatusCode, &tlsExpiry, &r.BodyBytes, &r.RemoteAddr)
	if err != nil {
		return r, 0, err
	}
	r.Start = time.Unix(0, start).UTC()
	r.Duration = time.Duration(dur)
	r.Phases = prober.Phases{DNS: time.Duration(dns), Connect: time.Duration(conn), TLS: time.Duration(tls),
		TTFB: time.Duration(ttfb), Transfer: time.Duration(x)}
	r.ErrorClass = prober.ErrorClass(class)
	if tlsExpiry.Valid {
		r.TLSExpiry = time.Unix(0, tlsExpiry.Int64).UTC()
	}
	return r, rowid, nil
}

// cursor is the position after which the next page starts. It is sent as
// base64url of: version byte, start, rowid, CRC-32 of the target ID, so a
// cursor is only accepted for the target it was issued for.
type cursor struct{ start, rowid int64 }

const cursorVersion = 1

func (c cursor) encode(target string) string {
	b := make([]byte, 0, 21)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.start))
	b = binary.BigEndian.AppendUint64(b, uint64(c.rowid))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(target)))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, target string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 21 || b[0] != cursorVersion ||
		binary.BigEndian.Uint32(b[17:]) != crc32.ChecksumIEEE([]byte(target)) {
		return cursor{}, fmt.Errorf("sqlite store: cursor %.32q: %w", s, tsdb.ErrInvalidCursor)
	}
	return cursor{start: int64(binary.BigEndian.Uint64(b[1:])), rowid: int64(binary.BigEndian.Uint64(b[9:]))}, nil
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
// scan. Of samples sharing that start the last written wins. A target whose
// newest sample has been pruned is left out.
func (s *Store) Latest(ctx context.Context) (map[string]prober.Result, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT s.rowid, `+prefixed("s.", sampleColumns)+`
		FROM latest l JOIN samples s ON s.target_id = l.target_id AND s.start = l.last_start`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: latest: %w", err)
	}
	defer rows.Close()
	out := make(map[string]prober.Result)
	rowids := make(map[string]int64)
	for rows.Next() {
		r, rowid, err := scanSample(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: latest: %w", err)
		}
		if prev, ok := rowids[r.TargetID]; !ok || rowid > prev {
			out[r.TargetID], rowids[r.TargetID] = r, rowid
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: latest: %w", err)
	}
	return out, nil
}
