package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// BenchmarkWriteSamples writes batches of 500 and of 2000 samples (the
// write buffer's default batch) spread over 1000 targets, as
// tsdb.Buffer hands them to the store, and reports samples/s.
func BenchmarkWriteSamples(b *testing.B) {
	for _, batch := range []int{500, 2000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkWrite(b, batch) })
	}
}

func benchmarkWrite(b *testing.B, batch int) {
	const targets = 1000
	// Compaction off: this measures the write path. (The samples lie in
	// the past, so the loop would compact them meanwhile.)
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "bench.db"), PruneInterval: -1, CompactInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ids := make([]string, targets)
	for i := range ids {
		ids[i] = fmt.Sprintf("target-%04d", i)
	}
	rs := make([]prober.Result, batch)
	n := 0
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for i := range rs {
			r := tsdbtest.Sample(ids[n%targets], time.Duration(n/targets)*30*time.Second, time.Duration(n%997)*time.Millisecond)
			if n%17 == 0 {
				r = tsdbtest.Failed(r)
			}
			rs[i] = r
			n++
		}
		if err := s.WriteSamples(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkRollups90Days reads 90 days of hourly rollups (2160 rows) of one
// target among 20.
func BenchmarkRollups90Days(b *testing.B) {
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "bench.db"), PruneInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const days = 90
	var rs []prober.Result
	for m := 0; m < days*24*60; m += 5 { // one check every 5 minutes
		for t := range 20 {
			rs = append(rs, tsdbtest.Sample(fmt.Sprintf("t%02d", t), time.Duration(m)*time.Minute, time.Duration(m%1000)*time.Millisecond))
		}
		if len(rs) >= 5000 {
			if err := s.WriteSamples(ctx, rs); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	if err := s.WriteSamples(ctx, rs); err != nil {
		b.Fatal(err)
	}
	from, to := tsdbtest.T0, tsdbtest.T0.Add(days*24*time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Rollups(ctx, "t07", from, to)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != days*24 {
			b.Fatalf("got %d rollups", len(got))
		}
	}
}
