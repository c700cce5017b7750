package schedule

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lag      prometheus.Histogram
	targets  prometheus.Gauge
	skipped  prometheus.Counter
	inFlight prometheus.Gauge
}

// lagBuckets are fine-grained near zero, where a healthy scheduler lives.
var lagBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

func newMetrics(reg prometheus.Registerer) metrics {
	return metrics{
		lag: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "upwatch_scheduler_lag_seconds",
			Help:    "Time from a check's planned start to a worker starting it.",
			Buckets: lagBuckets,
		})),
		targets: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "upwatch_scheduler_targets",
			Help: "Targets currently scheduled (paused ones excluded).",
		})),
		skipped: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_scheduler_skipped_total",
			Help: "Check slots not run because the target's previous check was still running or the scheduler fell more than an interval behind.",
		})),
		inFlight: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "upwatch_checks_in_flight",
			Help: "Checks running now.",
		})),
	}
}

// register registers c on reg, or returns the collector already registered
// under the same name so two schedulers can share a registry. It panics on
// any other registration error, like MustRegister.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(err)
	}
	return c
}
