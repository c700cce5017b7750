package app

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
)

// TestLoadTenThousandTargets is the load harness (`make load`): the whole
// service with 10,000 HTTP targets at a 30 s interval against its own demo
// endpoint, for UPWATCH_LOAD_SECONDS (default 90). It reports scheduler lag
// quantiles and resident memory; it asserts only that every check ran and
// was stored. Skipped unless UPWATCH_LOAD is set.
func TestLoadTenThousandTargets(t *testing.T) {
	if os.Getenv("UPWATCH_LOAD") == "" {
		t.Skip("load harness: run with `make load` (UPWATCH_LOAD=1)")
	}
	seconds := 90
	if v, err := strconv.Atoi(os.Getenv("UPWATCH_LOAD_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String() + "/demo/ok"
	cfg := &config.Config{Demo: true, AllowPrivateTargets: true, DataDir: t.TempDir()}
	for i := range 10000 {
		cfg.Targets = append(cfg.Targets, config.Target{Target: prober.Target{
			Name: fmt.Sprintf("load-%05d", i), Kind: "http", Interval: 30 * time.Second, Timeout: 5 * time.Second,
			HTTP: &prober.HTTPSpec{URL: url, ExpectStatus: []string{"200"}},
		}})
	}
	cfg.Normalize()
	require.Empty(t, cfg.Validate())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Config: cfg, Listener: ln, Registry: reg}) }()
	time.Sleep(time.Duration(seconds) * time.Second)
	rss := residentBytes(t)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if path := os.Getenv("UPWATCH_LOAD_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, pprof.WriteHeapProfile(f))
		require.NoError(t, f.Close())
	}
	lag := gatherHistogram(t, reg, "upwatch_scheduler_lag_seconds")
	checks := gatherCounterSum(t, reg, "upwatch_checks_total")
	cancel()
	require.NoError(t, <-done)

	t.Logf("10,000 targets @30s for %ds: %.0f checks (%.0f/s), scheduler lag p50 %.2f ms, p99 %.2f ms, max bucket ≤ %s; RSS %.1f MB, live heap %.1f MB, heap from OS %.1f MB",
		seconds, checks, checks/float64(seconds), 1000*quantile(lag, 0.5), 1000*quantile(lag, 0.99), maxBucket(lag), float64(rss)/(1<<20),
		float64(ms.HeapInuse)/(1<<20), float64(ms.HeapSys-ms.HeapReleased)/(1<<20))
	require.Greater(t, checks, float64(10000*(seconds/30)), "every target was checked at least once per interval")
}

func residentBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func gatherHistogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no %s", name)
	return nil
}

func gatherCounterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	// A renamed metric must not read as zero.
	t.Fatalf("no metric %s", name)
	return 0
}

// quantile interpolates within cumulative buckets as histogram_quantile does.
func quantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank, prevBound, prevCount := q*total, 0.0, 0.0
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if c >= rank {
			if c == prevCount {
				return b.GetUpperBound()
			}
			return prevBound + (b.GetUpperBound()-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b.GetUpperBound(), c
	}
	return math.Inf(1)
}

func maxBucket(h *dto.Histogram) string {
	for _, b := range h.GetBucket() {
		if b.GetCumulativeCount() == h.GetSampleCount() {
			return fmt.Sprintf("%gs", b.GetUpperBound())
		}
	}
	return "+Inf"
}
