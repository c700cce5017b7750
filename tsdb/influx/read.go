package influx

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/query"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// Page size limits for Samples (the same as the embedded store's).
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// The widest range Flux takes: every time an int64 of ns can hold.
var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

func fluxTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// tieColumns order samples that share a start (one per series): after
// _time, by the tags that tell a target's series apart.
var tieColumns = []string{"location", "kind", "target", "tenant"}

// Samples returns a page of the target's samples in [q.From, q.To), oldest
// first; samples sharing a start come in the order of their location, kind,
// name and tenant tags. A zero From or To leaves that end open.
//
// The cursor holds the start of the page's last sample and how many samples
// with that start have been returned, so the next page starts there and
// skips them.
func (s *Store) Samples(ctx context.Context, q tsdb.SampleQuery) (tsdb.SamplePage, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	from, to := minTime, maxTime
	if !q.From.IsZero() {
		from = q.From
	}
	if !q.To.IsZero() {
		to = q.To
	}
	var c cursor
	if q.Cursor != "" {
		var err error
		if c, err = decodeCursor(q.Cursor, q.TargetID); err != nil {
			return tsdb.SamplePage{}, err
		}
		if at := time.Unix(0, c.start); at.After(from) {
			from = at
		} else if at.Before(from) {
			c.skip = 0
		}
	}
	var page tsdb.SamplePage
	if !from.Before(to) {
		return page, nil
	}
	// range's stop is exclusive in Flux, but InfluxDB 1.8 returns points
	// at stop too; they sort last and are dropped here, so [from, to) holds
	// on both. Each series has at most one point per start, so the first n rows
	// overall are among the first n of every series.
	n := limit + 1 + int(c.skip)
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.target_id == %s)
  |> limit(n: %d)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time", %q, %q, %q, %q])
  |> limit(n: %d)`, s.bucket, fluxTime(from), fluxTime(to), Measurement, fluxString(q.TargetID), n,
		tieColumns[0], tieColumns[1], tieColumns[2], tieColumns[3], n)
	rows, err := s.rows(ctx, "samples", flux)
	if err != nil {
		return page, err
	}
	skipped := uint32(0)
	i := 0
	for ; i < len(rows) && skipped < c.skip && rows[i].Start.UnixNano() == c.start; i++ {
		skipped++
	}
	end := len(rows)
	for end > i && !rows[end-1].Start.Before(to) {
		end--
	}
	rest := rows[i:end]
	more := len(rest) > limit || (len(rows) == n && end == len(rows))
	if len(rest) > limit {
		rest = rest[:limit]
	}
	page.Samples = make([]prober.Result, len(rest))
	for j := range rest {
		page.Samples[j] = rest[j].Result
	}
	if more && len(rest) > 0 {
		last := rest[len(rest)-1].Start.UnixNano()
		nc := cursor{start: last}
		for j := len(rest) - 1; j >= 0 && rest[j].Start.UnixNano() == last; j-- {
			nc.skip++
		}
		if last == c.start {
			nc.skip += skipped
		}
		page.NextCursor = nc.encode(q.TargetID)
	}
	return page, nil
}

// cursor is sent as base64url of: version byte, start (ns), samples at
// that start already returned, CRC-32 of the target ID (so a cursor is only
// accepted for the target it was issued for).
type cursor struct {
	start int64
	skip  uint32
}

const cursorVersion = 0x49 // 'I', unlike the embedded store's

func (c cursor) encode(target string) string {
	b := make([]byte, 0, 17)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.start))
	b = binary.BigEndian.AppendUint32(b, c.skip)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(target)))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, target string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || b[0] != cursorVersion ||
		binary.BigEndian.Uint32(b[13:]) != crc32.ChecksumIEEE([]byte(target)) {
		return cursor{}, fmt.Errorf("influx store: cursor %.32q: %w", s, tsdb.ErrInvalidCursor)
	}
	return cursor{start: int64(binary.BigEndian.Uint64(b[1:])), skip: binary.BigEndian.Uint32(b[9:])}, nil
}

// Rollups returns the target's hourly buckets whose hour starts in
// [from, to), oldest first. It reads the raw duration and up of every
// sample in those hours and folds them with tsdb.Rollup.Add, so the figures
// are exactly the embedded store's. A zero from or to leaves that end open.
func (s *Store) Rollups(ctx context.Context, targetID string, from, to time.Time) ([]tsdb.Rollup, error) {
	lo, hi := minTime, maxTime
	if !from.IsZero() {
		lo = ceilHour(from)
	}
	if !to.IsZero() {
		hi = ceilHour(to)
	}
	out := []tsdb.Rollup{}
	if !lo.Before(hi) {
		return out, nil
	}
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.target_id == %s and
      (r._field == "up" or r._field == "duration_seconds"))
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> keep(columns: ["_time", "up", "duration_seconds"])`, s.bucket, fluxTime(lo), fluxTime(hi), Measurement, fluxString(targetID))
	res, err := s.queryAPI().Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("influx store: rollups: %w", err)
	}
	defer res.Close()
	hours := map[int64]*tsdb.Rollup{}
	for res.Next() {
		rec := res.Record()
		var r prober.Result
		r.Start = rec.Time()
		if !r.Start.Before(hi) { // InfluxDB 1.8 includes range's stop
			continue
		}
		r.Success = asInt(rec.ValueByKey("up")) == 1
		r.Duration = seconds(rec.ValueByKey("duration_seconds"))
		h := r.Start.Truncate(time.Hour).Unix()
		ru := hours[h]
		if ru == nil {
			ru = &tsdb.Rollup{TargetID: targetID, Hour: time.Unix(h, 0).UTC()}
			hours[h] = ru
		}
		ru.Add(r)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("influx store: rollups: %w", err)
	}
	for _, ru := range hours {
		out = append(out, *ru)
	}
	slices.SortFunc(out, func(a, b tsdb.Rollup) int { return a.Hour.Compare(b.Hour) })
	return out, nil
}

// ceilHour returns the first hour start at or after t.
func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// Latest returns the newest sample (by start) of every target; of samples
// sharing that start, the one last in tag order.
func (s *Store) Latest(ctx context.Context) (map[string]prober.Result, error) {
	flux := fmt.Sprintf(`from(bucket: %s)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q)
  |> last()
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> group()
  |> sort(columns: ["_time", %q, %q, %q, %q])`, s.bucket, fluxTime(minTime), fluxTime(maxTime), Measurement,
		tieColumns[0], tieColumns[1], tieColumns[2], tieColumns[3])
	rows, err := s.rows(ctx, "latest", flux)
	if err != nil {
		return nil, err
	}
	out := make(map[string]prober.Result)
	for _, r := range rows { // sorted: a later row is newer
		// A row holding only tls_expiry comes from an older point (last()
		// works per field); the newest point of the series has up.
		if r.TargetID == "" || !r.complete {
			continue
		}
		out[r.TargetID] = r.Result
	}
	return out, nil
}

type row struct {
	prober.Result
	complete bool // the row has the up field
}

// rows runs a query whose rows are pivoted samples.
func (s *Store) rows(ctx context.Context, what, flux string) ([]row, error) {
	res, err := s.queryAPI().Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("influx store: %s: %w", what, err)
	}
	defer res.Close()
	var out []row
	for res.Next() {
		out = append(out, decode(res.Record()))
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("influx store: %s: %w", what, err)
	}
	return out, nil
}

func decode(rec *query.FluxRecord) row {
	v := rec.Values()
	var r prober.Result
	r.TargetID = asString(v["target_id"])
	r.Target = asString(v["target"])
	r.Kind = asString(v["kind"])
	r.Location = asString(v["location"])
	r.Start = rec.Time().UTC()
	r.Duration = seconds(v["duration_seconds"])
	r.Phases = prober.Phases{
		DNS: seconds(v["dns_seconds"]), Connect: seconds(v["connect_seconds"]), TLS: seconds(v["tls_seconds"]),
		TTFB: seconds(v["ttfb_seconds"]), Transfer: seconds(v["transfer_seconds"]),
	}
	_, complete := v["up"].(int64)
	r.Success = asInt(v["up"]) == 1
	r.StatusCode = int(asInt(v["status_code"]))
	r.ErrorClass = prober.ErrorClass(asString(v["error_class"]))
	r.Error = asString(v["error"])
	if e, ok := v["tls_expiry"].(int64); ok {
		r.TLSExpiry = time.Unix(e, 0).UTC()
	}
	r.BodyBytes = asInt(v["body_bytes"])
	r.RemoteAddr = asString(v["remote_addr"])
	return row{Result: r, complete: complete}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case uint64:
		return int64(n)
	}
	return 0
}

// seconds turns a float of seconds back into the exact ns it was written
// from.
func seconds(v any) time.Duration {
	f, ok := v.(float64)
	if !ok {
		return 0
	}
	return time.Duration(math.Round(f * 1e9))
}

// RollupTotals sums each target's hourly buckets whose hour starts in
// [from, to). It folds the raw samples target by target, as Rollups does,
// so the figures are exactly the embedded store's.
func (s *Store) RollupTotals(ctx context.Context, targetIDs []string, from, to time.Time) (map[string]tsdb.RollupTotal, error) {
	out := make(map[string]tsdb.RollupTotal, len(targetIDs))
	for _, id := range targetIDs {
		if _, ok := out[id]; ok {
			continue
		}
		rs, err := s.Rollups(ctx, id, from, to)
		if err != nil {
			return nil, err
		}
		out[id] = tsdb.Total(id, rs)
	}
	return out, nil
}
