package schedule

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// BenchmarkSchedule10k runs 10,000 targets at a 2 s interval for three
// intervals on the real clock with a no-op check (15 times the check rate of
// 10,000 targets at 30 s) and reports the scheduler lag (planned start →
// worker start) and the heap the schedule holds. Each iteration takes about
// 6 s, so run it with -benchtime=1x:
//
//	go test -run '^$' -bench Schedule10k -benchtime=1x ./prober/schedule/
func BenchmarkSchedule10k(b *testing.B) {
	const (
		n        = 10_000
		interval = 2 * time.Second
		cycles   = 3
	)
	for range b.N {
		ts := make([]prober.Target, n)
		for i := range ts {
			ts[i] = target(fmt.Sprintf("target-%05d.example.com", i), interval)
		}
		lags := make([]time.Duration, n*(cycles+2))
		var nLags atomic.Int64
		reg := prometheus.NewRegistry()
		before := heapAlloc()

		s := New(Options{
			Check:      okCheck,
			Sink:       func(context.Context, prober.Result) {},
			Registerer: reg,
		})
		s.onStart = func(_ string, planned, started time.Time) {
			if i := nLags.Add(1) - 1; int(i) < len(lags) {
				lags[i] = started.Sub(planned)
			}
		}
		updateStart := time.Now()
		s.Update(ts)
		updateTook := time.Since(updateStart)
		held := heapAlloc() - before

		ctx, cancel := context.WithTimeout(context.Background(), cycles*interval)
		if err := s.Run(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		after := heapAlloc() - before
		runtime.KeepAlive(s)
		runtime.KeepAlive(ts)
		runtime.KeepAlive(lags)

		got := lags[:min(int(nLags.Load()), len(lags))]
		if len(got) < n*(cycles-1) {
			b.Fatalf("only %d checks ran, want about %d", len(got), n*cycles)
		}
		slices.Sort(got)
		q := func(p float64) float64 { return got[int(p*float64(len(got)-1))].Seconds() * 1e3 }
		b.ReportMetric(float64(len(got)), "checks")
		b.ReportMetric(q(0.50), "lag-p50-ms")
		b.ReportMetric(q(0.99), "lag-p99-ms")
		b.ReportMetric(q(1), "lag-max-ms")
		b.ReportMetric(float64(updateTook.Microseconds())/1e3, "update-ms")
		b.ReportMetric(float64(held)/(1<<20), "heap-after-update-MB")
		b.ReportMetric(float64(after)/(1<<20), "heap-after-run-MB")
	}
}

// heapAlloc is the live heap after a collection, in bytes.
func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
