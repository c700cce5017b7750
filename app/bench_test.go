package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/metrics"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// BenchmarkPipeline measures checks per second end to end as `serve` runs
// them: an HTTP check over a new connection to a loopback target, the
// result into the Prometheus series and through the batching buffer into
// the embedded store. Every sample is verified to be persisted.
func BenchmarkPipeline(b *testing.B) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, `{"status":"ok"}`)
	}))
	defer target.Close()
	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(b.TempDir(), DBFile), PruneInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	buffer := tsdb.NewBuffer(store, tsdb.BufferOptions{Registerer: reg})
	buffer.Start()
	probe := metrics.NewProbe(metrics.ProbeOptions{Registerer: reg})
	p := prober.New(prober.Options{AllowPrivate: true})

	const targets = 100
	tgts := make([]prober.Target, targets)
	for i := range tgts {
		tgts[i] = prober.Target{Name: fmt.Sprintf("t%03d", i), Kind: "http", Interval: 30 * time.Second,
			HTTP: &prober.HTTPSpec{URL: target.URL + "/", BodyContains: []string{"ok"}}}
		tgts[i].Normalize()
		if errs := tgts[i].Validate("t"); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	b.SetParallelism(32) // 64 concurrent checks on 2 cores, as workers would run
	next := make(chan int, 1)
	next <- 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := <-next
			next <- i + 1
			r := p.Check(ctx, &tgts[i%targets])
			if !r.Success {
				b.Errorf("check failed: %s %s", r.ErrorClass, r.Error)
				return
			}
			probe.Observe(r)
			if err := buffer.Record(ctx, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if err := buffer.Close(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "checks/s")

	persisted := 0
	for i := range tgts {
		q := tsdb.SampleQuery{TargetID: tgts[i].ID, Limit: sqlite.MaxLimit}
		for {
			page, err := store.Samples(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			persisted += len(page.Samples)
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
	}
	if persisted != b.N {
		b.Fatalf("%d checks run, %d samples persisted", b.N, persisted)
	}
}
