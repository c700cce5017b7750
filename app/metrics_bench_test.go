package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/metrics"
	"github.com/upwatch/upwatch/prober"
)

// memStates is an alerting.StateStore holding the states it was given.
type memStates map[string]alerting.State

func (m memStates) LoadStates(context.Context) (map[string]alerting.State, error) { return m, nil }
func (m memStates) CommitBatch(context.Context, []alerting.Commit) error          { return nil }

// BenchmarkMetrics100k renders /metrics as `serve` does with 100,000 HTTPS
// targets, each with a latest result and an alert state, with the core and
// the full per-target set. It reports bytes per scrape, plain and gzip.
// Run: go test -run '^$' -bench Metrics100k -benchtime 3x ./app/
func BenchmarkMetrics100k(b *testing.B) {
	for _, detail := range []string{config.PerTargetCore, config.PerTargetFull} {
		h := metrics100k(b, detail == config.PerTargetFull)
		for _, enc := range []string{"plain", "gzip"} {
			b.Run(detail+"/"+enc, func(b *testing.B) {
				var size int64
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
					if enc == "gzip" {
						req.Header.Set("Accept-Encoding", "gzip")
					}
					rec := &countingWriter{header: http.Header{}}
					h.ServeHTTP(rec, req)
					if rec.status != 0 && rec.status != http.StatusOK {
						b.Fatalf("status %d", rec.status)
					}
					size = rec.n
				}
				b.ReportMetric(float64(size)/1e6, "MB/scrape")
			})
		}
	}
}

// metrics100k is the /metrics handler of a process with 100,000 targets.
func metrics100k(b *testing.B, full bool) http.Handler {
	const n = 100_000
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	probe := metrics.NewProbe(metrics.ProbeOptions{Full: full, Registerer: reg})
	states := memStates{}
	routes := make(map[string]alerting.Route, n)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("shop-api-%06d", i)
		states[id] = alerting.State{TargetID: id, Status: alerting.StatusUp, Since: now}
		routes[id] = alerting.Route{Name: id}
		probe.Observe(prober.Result{TargetID: id, Kind: "http", Location: "local", Success: i%50 != 0, StatusCode: 200,
			Duration: time.Duration(i%997) * 137 * time.Microsecond, TLSExpiry: now.Add(time.Duration(i) * time.Minute),
			Phases: prober.Phases{DNS: 1234 * time.Microsecond, Connect: 2345 * time.Microsecond, TLS: 12 * time.Millisecond,
				TTFB: time.Duration(i%313) * time.Millisecond, Transfer: 321 * time.Microsecond},
			HTTPVersion: "HTTP/1.1", TLSVersion: "TLS 1.3", LastChainExpiry: now.Add(time.Duration(i) * time.Hour),
			ContentLength: int64(i % 5000), BodyBytes: int64(i % 5000), RemoteAddr: "192.0.2.10:443"})
	}
	engine, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: states, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	engine.Update(routes, nil)
	return metrics.Handler(reg, probe, engine)
}

// countingWriter is a ResponseWriter that counts the body and keeps none.
type countingWriter struct {
	header http.Header
	status int
	n      int64
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(s int)   { w.status = s }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)
