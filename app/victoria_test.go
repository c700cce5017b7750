package app

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// TestVictoriaMetricsMirror runs upwatch with the embedded store and a
// VictoriaMetrics stand-in: samples reach both, and both buffers' metrics
// are exported side by side.
func TestVictoriaMetricsMirror(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	vm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/write" {
			http.NotFound(w, r)
			return
		}
		sc := bufio.NewScanner(r.Body)
		mu.Lock()
		for sc.Scan() {
			if l := sc.Text(); l != "" {
				lines = append(lines, l)
			}
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(vm.Close)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "fine") }))
	t.Cleanup(target.Close)

	cfg := testConfig(t, fmt.Sprintf(`
allow_private_targets: true
storage:
  victoriametrics: {url: %q, timeout: 2s}
targets:
  - {name: web, kind: http, interval: 1s, http: {url: %q}}
`, vm.URL, target.URL))
	r := start(t, cfg, Options{})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lines) >= 1
	}, 30*time.Second, 20*time.Millisecond)
	m := get(t, r.addr+"/metrics")
	for _, name := range []string{"upwatch_store_samples_written_total", "upwatch_victoriametrics_samples_written_total",
		"upwatch_victoriametrics_queue_depth", "upwatch_victoriametrics_dropped_samples_total"} {
		require.Contains(t, m, "\n"+name+" ", name)
	}
	r.shutdown(t)
	mu.Lock()
	defer mu.Unlock()
	require.True(t, strings.HasPrefix(lines[0], "upwatch_check,kind=http,location=local,target=web,target_id=web,tenant=default up=1i,"), lines[0])
}

// TestMirrorNeverBlocks: with the writer stuck and the queue full, record
// returns at once and counts the drop.
func TestMirrorNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	stuck := tsdb.WriterFunc(func(ctx context.Context, _ []prober.Result) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	m := &mirror{
		buf:     tsdb.NewBuffer(stuck, tsdb.BufferOptions{QueueSize: 2, BatchSize: 1, FlushInterval: time.Millisecond}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "d"}),
		timeout: time.Second,
	}
	m.buf.Start()
	start := time.Now()
	for range 100 {
		m.record(prober.Result{TargetID: "t"})
	}
	require.Less(t, time.Since(start), time.Second, "record waited")
	// At most the queue plus the batch in the writer were taken.
	require.GreaterOrEqual(t, testutil.ToFloat64(m.dropped), 97.0)
	close(release)
	m.close(context.Background(), discardLogger())
	require.Zero(t, m.buf.Pending())
	var nilMirror *mirror
	nilMirror.record(prober.Result{})
	nilMirror.close(context.Background(), discardLogger())
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
