package schedule

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lag      prometheus.Histogram
	targets  prometheus.Gauge
	inFlight prometheus.Gauge
	late     prometheus.Counter
	// missedBusy and missedBehind count slots that passed without a
	// check: the target's previous check was still queued or running, or
	// the scheduler fell more than an interval behind (a stalled process,
	// a clock jump) and dropped them.
	missedBusy, missedBehind prometheus.Counter
}

// lagBuckets are fine-grained near zero, where a healthy scheduler lives,
// and reach the longest interval (24 h), so a scheduler that is minutes or
// hours behind still shows how far.
var lagBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

// lateAfter is how long after its planned start a check counts as late:
// 1 s, or a tenth of the interval when that is shorter (a 1 s target 200 ms
// late is as far off as a 60 s target 12 s late, but 1 s late is already
// worth knowing about at any interval).
func lateAfter(interval time.Duration) time.Duration {
	return min(time.Second, interval/10)
}

func newMetrics(reg prometheus.Registerer) metrics {
	missed := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "upwatch_scheduler_missed_checks_total",
		Help: "Check slots that passed without a check, by reason: busy (the target's previous check was still queued or running) or behind (the scheduler fell more than an interval behind and dropped them).",
	}, []string{"reason"}))
	return metrics{
		missedBusy:   missed.WithLabelValues("busy"),
		missedBehind: missed.WithLabelValues("behind"),
		late: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_scheduler_late_checks_total",
			Help: "Checks that started late: more than 1 s, or a tenth of the interval if shorter, after their planned start.",
		})),
		lag: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "upwatch_scheduler_lag_seconds",
			Help:    "Time from a check's planned start to a worker starting it.",
			Buckets: lagBuckets,
		})),
		targets: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "upwatch_scheduler_targets",
			Help: "Targets currently scheduled (paused ones excluded).",
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
