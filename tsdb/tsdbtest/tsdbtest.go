// Package tsdbtest is the contract suite every tsdb.Store passes. A backend's
// test calls Run with a function that opens a fresh, empty store:
//
//	func TestContract(t *testing.T) {
//		tsdbtest.Run(t, func(t *testing.T) tsdb.Store { return openEmpty(t) })
//	}
//
// Stores may return times in any location: the suite compares instants.
//
// A store may treat a second sample with the same target, location, kind,
// name and start (to the nanosecond) as replacing the first — InfluxDB
// does, because a point is identified by its series and timestamp — so the
// suite never writes two such samples. A real prober cannot produce them.
package tsdbtest

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// T0 is the base time of the suite's samples: an hour boundary, in UTC.
var T0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// Run runs the contract suite. open must return a new, empty store; Run
// closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) tsdb.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tsdb.Store)
	}{
		{"RoundTripAllFields", testRoundTrip},
		{"EmptyStore", testEmpty},
		{"EmptyBatch", testEmptyBatch},
		{"HalfOpenRange", testHalfOpenRange},
		{"PaginationCoversEverySampleOnce", testPagination},
		{"PaginationWithEqualStarts", testPaginationTies},
		{"LimitDefaultAndMax", testLimits},
		{"InvalidCursor", testInvalidCursor},
		{"Rollups", testRollups},
		{"RollupHalfOpenHours", testRollupRange},
		{"RollupMergeAcrossBatchesOutOfOrder", testRollupMerge},
		{"RollupTotals", testRollupTotals},
		{"Latest", testLatest},
		{"ManyTargets", testManyTargets},
		{"ConcurrentWritesAndReads", testConcurrent},
		{"Ping", testPing},
		{"WritingAgainIsIdempotent", testRewrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

// Sample returns a successful sample of target at T0+offset with every field
// set, so round trips notice a dropped column. TLSExpiry is a whole second,
// as X.509 validity times are; stores may keep it at second precision.
func Sample(target string, offset time.Duration, latency time.Duration) prober.Result {
	return prober.Result{
		TargetID: target,
		Target:   "Target " + target,
		Kind:     "http",
		Location: "eu-west",
		Start:    T0.Add(offset),
		Duration: latency,
		Phases: prober.Phases{DNS: latency / 10, Connect: latency / 9, TLS: latency / 8,
			TTFB: latency / 7, Transfer: latency / 6},
		Success:    true,
		StatusCode: 200,
		TLSExpiry:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		BodyBytes:  1234,
		RemoteAddr: "192.0.2.10:443",
	}
}

// Failed returns r marked failed.
func Failed(r prober.Result) prober.Result {
	r = r.Fail(prober.ClassStatus, "unexpected status 503")
	r.StatusCode = 503
	return r
}

// Normalize puts the times of r in UTC without monotonic reading, so results
// compare with require.Equal.
func Normalize(r prober.Result) prober.Result {
	r.Start = r.Start.UTC().Round(0)
	if !r.TLSExpiry.IsZero() {
		r.TLSExpiry = r.TLSExpiry.UTC().Round(0)
	}
	return r
}

func normalizeAll(rs []prober.Result) []prober.Result {
	out := make([]prober.Result, len(rs))
	for i, r := range rs {
		out[i] = Normalize(r)
	}
	return out
}

func normalizeRollups(rs []tsdb.Rollup) []tsdb.Rollup {
	out := make([]tsdb.Rollup, len(rs))
	for i, r := range rs {
		r.Hour = r.Hour.UTC().Round(0)
		out[i] = r
	}
	return out
}

func write(t *testing.T, s tsdb.Store, rs ...prober.Result) {
	t.Helper()
	require.NoError(t, s.WriteSamples(context.Background(), rs))
}

// all reads every sample of q's target and range, page by page.
func all(t *testing.T, s tsdb.Store, q tsdb.SampleQuery) (samples []prober.Result, pages int) {
	t.Helper()
	for {
		p, err := s.Samples(context.Background(), q)
		require.NoError(t, err)
		pages++
		if q.Limit > 0 {
			require.LessOrEqual(t, len(p.Samples), q.Limit, "page %d larger than the limit", pages)
		}
		samples = append(samples, p.Samples...)
		if p.NextCursor == "" {
			return samples, pages
		}
		require.NotEmpty(t, p.Samples, "page %d is empty yet has a next cursor", pages)
		require.Less(t, pages, 100000, "pagination does not end")
		q.Cursor = p.NextCursor
	}
}

func testRoundTrip(t *testing.T, s tsdb.Store) {
	ok := Sample("a", 0, 123456789*time.Nanosecond)
	ok.Location = "us-east"
	bad := prober.Result{ // zero TLS expiry, non-UTC start, odd nanoseconds
		TargetID: "a", Target: "Target a", Kind: "tcp", Location: "ap-south",
		Start:    T0.Add(time.Minute + 7*time.Nanosecond).In(time.FixedZone("X", 5*3600+1800)),
		Duration: 10 * time.Second, Success: false, ErrorClass: prober.ClassTimeout,
		Error: "dial tcp 192.0.2.1:22: i/o timeout — ünïcode", Phases: prober.Phases{DNS: 1, Connect: 2},
		RemoteAddr: "[2001:db8::1]:22",
	}
	write(t, s, ok, bad)
	got, _ := all(t, s, tsdb.SampleQuery{TargetID: "a", From: T0, To: T0.Add(time.Hour)})
	require.Equal(t, normalizeAll([]prober.Result{ok, bad}), normalizeAll(got))
}

func testEmpty(t *testing.T, s tsdb.Store) {
	ctx := context.Background()
	p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "nobody", From: T0, To: T0.Add(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, p.Samples)
	require.Empty(t, p.NextCursor)

	ru, err := s.Rollups(ctx, "nobody", T0, T0.Add(24*time.Hour))
	require.NoError(t, err)
	require.Empty(t, ru)

	l, err := s.Latest(ctx)
	require.NoError(t, err)
	require.Empty(t, l)

	// A store with data still answers empty for an empty or reversed range.
	write(t, s, Sample("a", 0, time.Millisecond))
	for _, r := range [][2]time.Time{{T0, T0}, {T0.Add(time.Hour), T0}} {
		p, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", From: r[0], To: r[1]})
		require.NoError(t, err)
		require.Empty(t, p.Samples)
		require.Empty(t, p.NextCursor)
		ru, err := s.Rollups(ctx, "a", r[0], r[1])
		require.NoError(t, err)
		require.Empty(t, ru)
	}
}

func testEmptyBatch(t *testing.T, s tsdb.Store) {
	require.NoError(t, s.WriteSamples(context.Background(), nil))
	require.NoError(t, s.WriteSamples(context.Background(), []prober.Result{}))
	l, err := s.Latest(context.Background())
	require.NoError(t, err)
	require.Empty(t, l)
}

func testHalfOpenRange(t *testing.T, s tsdb.Store) {
	var rs []prober.Result
	for i := range 10 {
		rs = append(rs, Sample("a", time.Duration(i)*time.Minute, time.Millisecond))
	}
	write(t, s, rs...)
	got, _ := all(t, s, tsdb.SampleQuery{TargetID: "a", From: T0.Add(2 * time.Minute), To: T0.Add(5 * time.Minute)})
	require.Equal(t, normalizeAll(rs[2:5]), normalizeAll(got), "[from, to): from included, to excluded")

	got, _ = all(t, s, tsdb.SampleQuery{TargetID: "a",
		From: T0.Add(2*time.Minute + 1), To: T0.Add(5*time.Minute + 1)})
	require.Equal(t, normalizeAll(rs[3:6]), normalizeAll(got), "bounds are exact to the nanosecond")
}

func testPagination(t *testing.T, s tsdb.Store) {
	const n = 2345
	rs := make([]prober.Result, n)
	for i := range rs {
		rs[i] = Sample("a", time.Duration(i)*time.Second, time.Duration(i)*time.Microsecond)
	}
	// Written shuffled over several batches: order comes from the store.
	shuffled := append([]prober.Result(nil), rs...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < n; i += 500 {
		write(t, s, shuffled[i:min(i+500, n)]...)
	}
	for _, limit := range []int{7, 1000, 2345, 5000} {
		got, pages := all(t, s, tsdb.SampleQuery{TargetID: "a", From: T0, To: T0.Add(n * time.Second), Limit: limit})
		require.Equal(t, normalizeAll(rs), normalizeAll(got), "limit %d", limit)
		require.Equal(t, (n+limit-1)/limit, pages, "limit %d: pages", limit)
	}
	got, pages := all(t, s, tsdb.SampleQuery{TargetID: "a", From: T0.Add(10 * time.Second),
		To: T0.Add(20 * time.Second), Limit: 1})
	require.Equal(t, normalizeAll(rs[10:20]), normalizeAll(got))
	require.Equal(t, 10, pages)
}

func testPaginationTies(t *testing.T, s tsdb.Store) {
	// 60 samples sharing 6 start times (one per location), paged by 7:
	// pages split runs of equal starts, yet every sample comes once.
	var rs []prober.Result
	for i := range 60 {
		r := Sample("a", time.Duration(i/10)*time.Minute, time.Duration(i+1)*time.Millisecond)
		r.Location = fmt.Sprintf("loc-%02d", i%10)
		rs = append(rs, r)
	}
	write(t, s, rs[:25]...)
	write(t, s, rs[25:]...)
	got, pages := all(t, s, tsdb.SampleQuery{TargetID: "a", From: T0, To: T0.Add(time.Hour), Limit: 7})
	require.Equal(t, 9, pages)
	require.Len(t, got, len(rs))
	for i := 1; i < len(got); i++ {
		require.False(t, got[i].Start.Before(got[i-1].Start), "sample %d out of order", i)
	}
	key := func(r prober.Result) string { return r.Start.UTC().String() + r.Location }
	seen := map[string]bool{}
	for _, r := range got {
		require.False(t, seen[key(r)], "sample %s returned twice", key(r))
		seen[key(r)] = true
	}
	require.ElementsMatch(t, normalizeAll(rs), normalizeAll(got))
}

func testLimits(t *testing.T, s tsdb.Store) {
	const n = 10050
	rs := make([]prober.Result, n)
	for i := range rs {
		rs[i] = Sample("a", time.Duration(i)*time.Second, time.Millisecond)
	}
	for i := 0; i < n; i += 5000 {
		write(t, s, rs[i:min(i+5000, n)]...)
	}
	ctx := context.Background()
	q := tsdb.SampleQuery{TargetID: "a", From: T0, To: T0.Add(n * time.Second)}
	p, err := s.Samples(ctx, q)
	require.NoError(t, err)
	require.Len(t, p.Samples, 1000, "default limit")
	require.NotEmpty(t, p.NextCursor)

	q.Limit = 1_000_000
	p, err = s.Samples(ctx, q)
	require.NoError(t, err)
	require.Len(t, p.Samples, 10000, "limit is capped at 10000")
	require.NotEmpty(t, p.NextCursor)
	q.Cursor = p.NextCursor
	p, err = s.Samples(ctx, q)
	require.NoError(t, err)
	require.Len(t, p.Samples, n-10000)
	require.Empty(t, p.NextCursor)
	require.Equal(t, Normalize(rs[n-1]), Normalize(p.Samples[len(p.Samples)-1]))
}

func testInvalidCursor(t *testing.T, s tsdb.Store) {
	write(t, s, Sample("a", 0, time.Millisecond), Sample("a", time.Second, time.Millisecond))
	for _, c := range []string{
		"garbage!",
		"bm90IGEgY3Vyc29y", // base64 of "not a cursor"
		base64.RawURLEncoding.EncodeToString([]byte{0xff, 1, 2, 3}),
		"%%%",
	} {
		_, err := s.Samples(context.Background(), tsdb.SampleQuery{TargetID: "a", From: T0,
			To: T0.Add(time.Hour), Cursor: c})
		require.ErrorIs(t, err, tsdb.ErrInvalidCursor, "cursor %q", c)
	}
}

func expectRollups(rs []prober.Result) map[time.Time]*tsdb.Rollup {
	m := map[time.Time]*tsdb.Rollup{}
	for _, r := range rs {
		h := r.Start.UTC().Truncate(time.Hour)
		if m[h] == nil {
			m[h] = &tsdb.Rollup{TargetID: r.TargetID, Hour: h}
		}
		m[h].Add(r)
	}
	return m
}

func sortedRollups(m map[time.Time]*tsdb.Rollup) []tsdb.Rollup {
	var out []tsdb.Rollup
	for _, r := range m {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hour.Before(out[j].Hour) })
	return out
}

func testRollups(t *testing.T, s tsdb.Store) {
	// Hour 0: one sample in every histogram bucket, including exact bounds.
	var rs []prober.Result
	for i, ub := range tsdb.LatencyBuckets {
		rs = append(rs, Sample("a", time.Duration(i)*time.Minute, ub)) // exactly on the bound
	}
	rs = append(rs, Sample("a", 20*time.Minute, time.Minute)) // +Inf
	rs = append(rs, Failed(Sample("a", 30*time.Minute, 0)))   // zero latency, failed
	rs = append(rs, Sample("a", 59*time.Minute+59*time.Second, 5*time.Millisecond+1))
	// Hour 2 (hour 1 is empty): two failures.
	rs = append(rs, Failed(Sample("a", 2*time.Hour, 7*time.Second)), Failed(Sample("a", 2*time.Hour+time.Second, 3*time.Second)))
	// Another target in the same hours must not leak in.
	rs = append(rs, Sample("b", 0, time.Hour))
	write(t, s, rs...)

	got, err := s.Rollups(context.Background(), "a", T0, T0.Add(24*time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 2)
	h0 := got[0]
	require.True(t, h0.Hour.Equal(T0), "hour %v", h0.Hour)
	require.Equal(t, "a", h0.TargetID)
	require.EqualValues(t, 15, h0.Checks)
	require.EqualValues(t, 1, h0.Failures)
	require.Equal(t, time.Duration(0), h0.LatencyMin)
	require.Equal(t, time.Minute, h0.LatencyMax)
	var sum time.Duration
	for _, ub := range tsdb.LatencyBuckets {
		sum += ub
	}
	require.Equal(t, sum+time.Minute+5*time.Millisecond+1, h0.LatencySum)
	require.Equal(t, [tsdb.NumBuckets]int64{2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, h0.Buckets)

	h2 := got[1]
	require.True(t, h2.Hour.Equal(T0.Add(2*time.Hour)), "hour %v", h2.Hour)
	require.EqualValues(t, 2, h2.Checks)
	require.EqualValues(t, 2, h2.Failures)
	require.Equal(t, 3*time.Second, h2.LatencyMin)
	require.Equal(t, 7*time.Second, h2.LatencyMax)
	require.Equal(t, 10*time.Second, h2.LatencySum)
	require.Equal(t, [tsdb.NumBuckets]int64{9: 1, 10: 1}, h2.Buckets)

	var ab []prober.Result
	for _, r := range rs {
		if r.TargetID == "a" {
			ab = append(ab, r)
		}
	}
	require.Equal(t, sortedRollups(expectRollups(ab)), normalizeRollups(got))
}

func testRollupRange(t *testing.T, s tsdb.Store) {
	var rs []prober.Result
	for h := range 5 {
		rs = append(rs, Sample("a", time.Duration(h)*time.Hour+30*time.Minute, time.Millisecond))
	}
	write(t, s, rs...)
	hours := func(from, to time.Time) []time.Time {
		got, err := s.Rollups(context.Background(), "a", from, to)
		require.NoError(t, err)
		var hs []time.Time
		for _, r := range got {
			hs = append(hs, r.Hour.UTC())
		}
		return hs
	}
	h := func(i int) time.Time { return T0.Add(time.Duration(i) * time.Hour) }
	require.Equal(t, []time.Time{h(1), h(2)}, hours(h(1), h(3)), "[from, to) on hour starts")
	require.Equal(t, []time.Time{h(2), h(3)}, hours(h(1).Add(time.Nanosecond), h(3).Add(time.Nanosecond)),
		"an hour is in range when its start is")
	require.Equal(t, []time.Time{h(0), h(1), h(2), h(3), h(4)}, hours(h(-10), h(10)))
}

func testRollupMerge(t *testing.T, s tsdb.Store) {
	rng := rand.New(rand.NewPCG(3, 4))
	var rs []prober.Result
	for i := range 600 {
		// +i ns keeps starts distinct (see the package comment).
		r := Sample("a", time.Duration(rng.IntN(4*3600))*time.Second+time.Duration(i),
			time.Duration(rng.Int64N(int64(40*time.Second))))
		if i%7 == 0 {
			r = Failed(r)
		}
		rs = append(rs, r)
	}
	// Batches of varied size, out of time order, each touching several hours.
	for i := 0; i < len(rs); {
		n := 1 + rng.IntN(90)
		write(t, s, rs[i:min(i+n, len(rs))]...)
		i += n
	}
	got, err := s.Rollups(context.Background(), "a", T0, T0.Add(4*time.Hour))
	require.NoError(t, err)
	require.Equal(t, sortedRollups(expectRollups(rs)), normalizeRollups(got))
}

func normalizeTotal(t tsdb.RollupTotal) tsdb.RollupTotal {
	t.Sum.Hour = t.Sum.Hour.UTC().Round(0)
	for i := range t.Covered {
		t.Covered[i].From, t.Covered[i].To = t.Covered[i].From.UTC().Round(0), t.Covered[i].To.UTC().Round(0)
	}
	return t
}

// testRollupTotals: RollupTotals answers exactly tsdb.Total of Rollups,
// for many targets at once (more than a store may ask for in one query),
// over ranges of every shape.
func testRollupTotals(t *testing.T, s tsdb.Store) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	const targets = 260
	var ids []string
	var rs []prober.Result
	for j := range targets {
		id := fmt.Sprintf("t%03d", j)
		ids = append(ids, id)
		if j%13 == 0 {
			continue // no data at all
		}
		for h := range 8 {
			// Every third target has gaps: some hours without checks.
			if j%3 == 0 && (h+j)%4 == 1 {
				continue
			}
			for k := range 1 + (h+j)%3 {
				r := Sample(id, time.Duration(h)*time.Hour+time.Duration(k)*17*time.Minute+time.Duration(j),
					time.Duration(rng.Int64N(int64(40*time.Second))))
				if rng.IntN(6) == 0 {
					r = Failed(r)
				}
				rs = append(rs, r)
			}
		}
	}
	write(t, s, rs...)

	h := func(i int) time.Time { return T0.Add(time.Duration(i) * time.Hour) }
	asked := append([]string{"nobody", ids[1]}, ids...) // unknown and repeated IDs too
	for _, r := range [][2]time.Time{
		{h(0), h(8)}, {h(-5), h(20)}, {h(2), h(5)}, {h(1).Add(time.Nanosecond), h(6).Add(time.Minute)},
		{h(3), h(3)}, {h(5), h(2)}, {time.Time{}, time.Time{}}, {time.Time{}, h(4)}, {h(4), time.Time{}},
	} {
		got, err := s.RollupTotals(ctx, asked, r[0], r[1])
		require.NoError(t, err)
		require.Len(t, got, targets+1, "%v", r)
		for _, id := range asked {
			ru, err := s.Rollups(ctx, id, r[0], r[1])
			require.NoError(t, err)
			want := tsdb.Total(id, ru)
			require.Equal(t, normalizeTotal(want), normalizeTotal(got[id]), "%s %v", id, r)
		}
	}

	// Worked by hand: t003 skips the hours h with (h+3)%4 == 1, i.e. 2 and 6.
	got, err := s.RollupTotals(ctx, []string{"t003", "t013"}, h(0), h(8))
	require.NoError(t, err)
	require.Equal(t, []tsdb.HourRange{{From: h(0), To: h(2)}, {From: h(3), To: h(6)}, {From: h(7), To: h(8)}}, normalizeTotal(got["t003"]).Covered)
	require.EqualValues(t, 1+2+1+2+3+2, got["t003"].Sum.Checks) // hours 0,1,3,4,5,7: 1+(h+3)%3 checks each
	require.Equal(t, tsdb.RollupTotal{Sum: tsdb.Rollup{TargetID: "t013"}}, got["t013"])
	none, err := s.RollupTotals(ctx, nil, h(0), h(8))
	require.NoError(t, err)
	require.Empty(t, none)
}

func testLatest(t *testing.T, s tsdb.Store) {
	a1 := Sample("a", 1*time.Minute, time.Millisecond)
	a2 := Failed(Sample("a", 2*time.Minute, 2*time.Millisecond))
	a0 := Sample("a", 0, 3*time.Millisecond) // arrives last, but is oldest
	b1 := Sample("b", 5*time.Minute, 4*time.Millisecond)
	write(t, s, a1, b1)
	write(t, s, a2)
	write(t, s, a0)
	got, err := s.Latest(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, Normalize(a2), Normalize(got["a"]))
	require.Equal(t, Normalize(b1), Normalize(got["b"]))

	b2 := Sample("b", 6*time.Minute, 5*time.Millisecond)
	write(t, s, b2)
	got, err = s.Latest(context.Background())
	require.NoError(t, err)
	require.Equal(t, Normalize(b2), Normalize(got["b"]))
}

func testManyTargets(t *testing.T, s tsdb.Store) {
	const targets, per = 150, 12
	var batch []prober.Result
	for i := range per { // interleaved: every batch holds every target
		for j := range targets {
			r := Sample(fmt.Sprintf("t%03d", j), time.Duration(i)*10*time.Minute, time.Duration(j+1)*time.Millisecond)
			if (i+j)%5 == 0 {
				r = Failed(r)
			}
			batch = append(batch, r)
		}
		if i%3 == 2 {
			write(t, s, batch...)
			batch = batch[:0]
		}
	}
	latest, err := s.Latest(context.Background())
	require.NoError(t, err)
	require.Len(t, latest, targets)
	for j := range targets {
		id := fmt.Sprintf("t%03d", j)
		got, _ := all(t, s, tsdb.SampleQuery{TargetID: id, From: T0, To: T0.Add(24 * time.Hour)})
		require.Len(t, got, per, id)
		for _, r := range got {
			require.Equal(t, id, r.TargetID)
		}
		require.True(t, latest[id].Start.Equal(T0.Add((per-1)*10*time.Minute)), id)
		ru, err := s.Rollups(context.Background(), id, T0, T0.Add(24*time.Hour))
		require.NoError(t, err)
		require.Len(t, ru, 2, id)
		require.EqualValues(t, per, ru[0].Checks+ru[1].Checks, id)
	}
}

func testConcurrent(t *testing.T, s tsdb.Store) {
	const writers, batches, size = 4, 10, 50
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches*2)
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				rs := make([]prober.Result, size)
				for i := range rs {
					rs[i] = Sample(fmt.Sprintf("w%d", w), time.Duration(b*size+i)*time.Second, time.Millisecond)
				}
				errs <- s.WriteSamples(ctx, rs)
				_, err := s.Latest(ctx)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w := range writers {
		got, _ := all(t, s, tsdb.SampleQuery{TargetID: fmt.Sprintf("w%d", w), From: T0, To: T0.Add(24 * time.Hour)})
		require.Len(t, got, batches*size)
		ru, err := s.Rollups(ctx, fmt.Sprintf("w%d", w), T0, T0.Add(24*time.Hour))
		require.NoError(t, err)
		require.Len(t, ru, 1)
		require.EqualValues(t, batches*size, ru[0].Checks)
	}
}

func testPing(t *testing.T, s tsdb.Store) {
	require.NoError(t, s.Ping(context.Background()))
}

// testRewrite writes samples again, as a write-ahead log replayed after a
// crash does: alone, mixed with new ones and twice in one batch. Nothing is
// counted twice: not the samples, the rollups nor the latest sample.
func testRewrite(t *testing.T, s tsdb.Store) {
	var first, second []prober.Result
	for i := range 6 {
		first = append(first, Sample("a", time.Duration(i)*time.Minute, 10*time.Millisecond))
		second = append(second, Failed(Sample("a", time.Duration(i+6)*time.Minute, 20*time.Millisecond)))
	}
	other := Sample("a", 3*time.Minute, 30*time.Millisecond)
	other.Location = "us-east" // same start, another location: a sample of its own
	write(t, s, first...)
	write(t, s, first...)
	write(t, s, append(append([]prober.Result{other}, first[3:]...), second...)...)
	write(t, s, second[5], second[5], first[0])

	want := append(append(append([]prober.Result{}, first...), second...), other)
	got, _ := all(t, s, tsdb.SampleQuery{TargetID: "a", From: T0, To: T0.Add(time.Hour)})
	require.ElementsMatch(t, normalizeAll(want), normalizeAll(got))

	rollups, err := s.Rollups(context.Background(), "a", T0, T0.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, rollups, 1)
	require.Equal(t, int64(len(want)), rollups[0].Checks)
	require.Equal(t, int64(len(second)), rollups[0].Failures)
	require.Equal(t, 6*10*time.Millisecond+6*20*time.Millisecond+30*time.Millisecond, rollups[0].LatencySum)

	latest, err := s.Latest(context.Background())
	require.NoError(t, err)
	require.Equal(t, Normalize(second[5]), Normalize(latest["a"]))
}
