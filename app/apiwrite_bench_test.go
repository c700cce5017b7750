//go:build linux

package app

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/internal/cputime"
	"github.com/upwatch/upwatch/metrics"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/registry"
)

// BenchmarkAPIWrite100k is what one API write costs a process running
// 100,000 config targets: liveTargets.apply reads the API's objects and
// updates the routes, the alert engine and the scheduler. It reports CPU
// time per write (a shared machine keeps that steadier than wall time).
//
//	go test -run '^$' -bench APIWrite100k -benchtime=5x ./app/
func BenchmarkAPIWrite100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{9}, crypt.KeySize))
	require.NoError(b, err)
	reg, err := registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: filepath.Join(b.TempDir(), RegistryFile), MasterKey: mk})
	require.NoError(b, err)
	defer reg.Close()
	engine, err := alerting.NewEngine(ctx, alerting.EngineOptions{Store: memStates{}})
	require.NoError(b, err)
	sched := schedule.New(schedule.Options{Check: func(context.Context, *prober.Target) prober.Result { return prober.Result{} }})
	cfg := &config.Config{AllowPrivateTargets: true, DataDir: b.TempDir()}
	for i := range n {
		cfg.Targets = append(cfg.Targets, config.Target{Target: prober.Target{
			Name: fmt.Sprintf("scale-%06d", i), Kind: "http", Interval: time.Minute, Timeout: 5 * time.Second,
			HTTP: &prober.HTTPSpec{URL: "http://127.0.0.1:9/", ExpectStatus: []string{"200"}},
		}})
	}
	cfg.Normalize()
	require.Empty(b, cfg.Validate())
	l := &liveTargets{reg: reg, mk: mk, engine: engine, sched: sched, targets: newTargetSet(metrics.NewProbe(metrics.ProbeOptions{})),
		log: slog.New(slog.DiscardHandler)}
	require.NoError(b, l.reload(ctx, cfg))
	var cpu time.Duration
	for b.Loop() {
		c := cputime.Used()
		l.apply(ctx)
		cpu += cputime.Used() - c
	}
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
}
