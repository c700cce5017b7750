package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"

	vmetrics "github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/upwatch/upwatch/tsdb/spool"
)

type agentMetrics struct {
	targets                      prometheus.Gauge
	pushed, duplicates, rejected prometheus.Counter
	pushErrors                   prometheus.Counter
	heartbeats, heartbeatErrors  prometheus.Counter
}

func newAgentMetrics(reg prometheus.Registerer) *agentMetrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "upwatch_agent_" + name, Help: help})
	}
	m := &agentMetrics{
		targets:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "upwatch_agent_targets", Help: "Targets the server assigns this agent."}),
		pushed:          c("results_pushed_total", "Results the server took."),
		duplicates:      c("results_duplicate_total", "Results the server already had (a resent batch)."),
		rejected:        c("results_rejected_total", "Results the server refused (target gone or moved, or too old)."),
		pushErrors:      c("push_errors_total", "Pushes of a batch that failed and are retried."),
		heartbeats:      c("heartbeats_total", "Heartbeats the server took."),
		heartbeatErrors: c("heartbeat_errors_total", "Heartbeats that failed."),
	}
	reg.MustRegister(m.targets, m.pushed, m.duplicates, m.rejected, m.pushErrors, m.heartbeats, m.heartbeatErrors)
	return m
}

// watch exports what waits to be pushed: in the batcher and in the spool.
func (m *agentMetrics) watch(reg prometheus.Registerer, sp *spool.Spool, b *batcher) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "upwatch_agent_unsent_results", Help: "Results checked and not yet taken by the server (in memory or spooled).",
	}, func() float64 { return float64(sp.Stats().Samples + int64(b.pendingCount())) }))
}

// pushMetrics pushes o.Registry's metrics to o.PushMetrics every
// o.PushInterval until ctx ends, with VictoriaMetrics/metrics' push mode,
// each series labelled with the agent and its location.
func pushMetrics(ctx context.Context, o Options, id string) error {
	write := func(w io.Writer) {
		mfs, err := o.Registry.Gather()
		if err != nil {
			o.Logger.Warn("gathering metrics to push", "err", err)
		}
		var buf bytes.Buffer
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				o.Logger.Warn("encoding metrics to push", "err", err)
				return
			}
		}
		_, _ = w.Write(buf.Bytes())
	}
	labels := "agent=" + strconv.Quote(id) + ",location=" + strconv.Quote(o.Location)
	if err := vmetrics.InitPushExtWithOptions(ctx, o.PushMetrics, o.PushInterval, write, &vmetrics.PushOptions{ExtraLabels: labels}); err != nil {
		return fmt.Errorf("agent: -push-metrics: %w", err)
	}
	return nil
}
