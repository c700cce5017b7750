package schedule

import (
	"fmt"
	"testing"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// BenchmarkCollect100k is the dispatcher's own cost per due check with
// 100,000 targets at 60 s: each op moves the clock on by 10 ms and queues
// what fell due (about 17 checks), as the timer loop of Run does.
//
//	go test -run '^$' -bench Collect100k ./prober/schedule/
func BenchmarkCollect100k(b *testing.B) {
	ts := manyTargets(100_000, time.Minute)
	now := time.Unix(1_700_000_000, 0)
	s := New(Options{Check: okCheck, Now: func() time.Time { return now }})
	s.Update(ts)
	var queue []job
	collected := 0
	b.ResetTimer()
	for range b.N {
		now = now.Add(10 * time.Millisecond)
		s.mu.Lock()
		queue = s.collectLocked(now, queue[:0])
		for _, j := range queue {
			delete(s.busy, j.target.ID) // the check ran
		}
		s.mu.Unlock()
		collected += len(queue)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(collected, 1)), "ns/check")
}

// manyTargets returns n targets named target-000000 onwards, checked every
// interval, for benchmarks at scale.
func manyTargets(n int, interval time.Duration) []prober.Target {
	ts := make([]prober.Target, n)
	for i := range ts {
		ts[i] = target(fmt.Sprintf("target-%06d", i), interval)
	}
	return ts
}
