package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/upwatch/upwatch/internal/cputime"
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

// BenchmarkWriteSamplesFleet writes what the write buffer flushes each
// second at 20,000 and 100,000 HTTP targets checked every 60 s: batches of
// 333 and 1667 samples, each of a different target, with phases, remote
// address and TLS expiry, one in 50 failed; one op is one batch. The store
// starts with an interval of every target already written, so rollups and
// newest starts are updates, as in steady state. cpu-ns/sample is the
// process's CPU time per sample (GC included), steadier than the wall
// time on a shared machine.
func BenchmarkWriteSamplesFleet(b *testing.B) {
	for _, targets := range []int{20_000, 100_000} {
		b.Run(fmt.Sprintf("targets=%d", targets), func(b *testing.B) { benchmarkFleet(b, targets, targets/60) })
	}
}

func benchmarkFleet(b *testing.B, targets, batch int) {
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "bench.db"), PruneInterval: -1, CompactInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	fleet := make([]prober.Result, targets)
	for i := range fleet {
		id := fmt.Sprintf("t%07d-%08x", i, uint32(i)*2654435761)
		lat := time.Duration(20+i%480) * time.Millisecond
		fleet[i] = prober.Result{
			TargetID: id, Target: "api-" + id + ".example.com", Kind: "http", Location: "local",
			Duration: lat,
			Phases: prober.Phases{DNS: lat / 20, Connect: lat / 10, TLS: lat / 5,
				TTFB: lat / 2, Transfer: lat / 20},
			Success: true, StatusCode: 200, BodyBytes: int64(512 + i%4096),
			TLSExpiry:  time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC),
			RemoteAddr: fmt.Sprintf("127.0.%d.%d:443", i/250%250, i%250), HTTPVersion: "HTTP/1.1",
		}
	}
	n := 0
	next := func(rs []prober.Result) {
		for i := range rs {
			r := fleet[n%targets]
			// Checks spread over the minute by a per-target phase.
			r.Start = tsdbtest.T0.Add(time.Duration(n/targets)*time.Minute + time.Duration(n%targets)*600*time.Microsecond)
			if n%50 == 0 {
				r = tsdbtest.Failed(r)
			}
			rs[i] = r
			n++
		}
	}
	for range targets / batch {
		rs := make([]prober.Result, batch)
		next(rs)
		if err := s.WriteSamples(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	rs := make([]prober.Result, batch)
	written := 0
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Used()
	for b.Loop() {
		next(rs)
		if err := s.WriteSamples(ctx, rs); err != nil {
			b.Fatal(err)
		}
		written += batch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(written), "ns/sample")
	b.ReportMetric(float64((cputime.Used()-cpu0).Nanoseconds())/float64(written), "cpu-ns/sample")
}
