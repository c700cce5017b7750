package influx

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/spool"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

func benchBatch(rs []prober.Result, ids []string, n *int) {
	for i := range rs {
		r := tsdbtest.Sample(ids[*n%len(ids)], time.Duration(*n/len(ids))*30*time.Second, time.Duration(*n%997)*time.Millisecond)
		if *n%17 == 0 {
			r = tsdbtest.Failed(r)
		}
		rs[i] = r
		*n++
	}
}

func benchIDs() []string {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("target-%04d", i)
	}
	return ids
}

// BenchmarkWriteSamples writes batches of 5000 samples over 1000 targets
// into the InfluxDB at UPWATCH_TEST_INFLUX_URL, synchronously.
func BenchmarkWriteSamples(b *testing.B) {
	base := serverURL(b)
	s := openStore(b, Options{URL: base, Bucket: freshBucket(b, base), Timeout: time.Minute})
	ids := benchIDs()
	rs := make([]prober.Result, 5000)
	n := 0
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		benchBatch(rs, ids, &n)
		if err := s.WriteSamples(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkReplay spools 100,000 samples while InfluxDB is unreachable and
// measures how fast a restarted store replays them into InfluxDB.
func BenchmarkReplay(b *testing.B) {
	base := serverURL(b)
	ids := benchIDs()
	total := 0
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		bucket := freshBucket(b, base)
		dir := b.TempDir()
		a, err := Open(Options{URL: closedURL(b), Bucket: bucket, Spool: spool.Options{Dir: dir},
			Replay: spool.ReplayOptions{RetryMin: time.Hour}})
		if err != nil {
			b.Fatal(err)
		}
		rs := make([]prober.Result, 5000)
		n := 0
		for range 20 {
			benchBatch(rs, ids, &n)
			if err := a.WriteSamples(context.Background(), rs); err != nil {
				b.Fatal(err)
			}
		}
		_ = a.Close()
		b.StartTimer()
		start := time.Now()
		s, err := Open(Options{URL: base, Bucket: bucket, Spool: spool.Options{Dir: dir}, Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		for {
			st, _ := s.SpoolStats()
			if st.Records == 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		elapsed += time.Since(start)
		total += n
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "samples/s")
}
