// Package metrics turns check results into Prometheus series. Per-target
// series use blackbox_exporter's names and phase labels where the meaning is
// the same, so dashboards and alert rules written for blackbox work
// unchanged; upwatch's own series are prefixed upwatch_.
package metrics

import (
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// Probe holds the latest result of every target as gauges.
type Probe struct {
	mu    sync.Mutex
	kinds map[string]string // target ID → kind, to delete series on Forget

	success    *prometheus.GaugeVec
	duration   *prometheus.GaugeVec
	httpPhase  *prometheus.GaugeVec
	httpStatus *prometheus.GaugeVec
	sslExpiry  *prometheus.GaugeVec
	dnsLookup  *prometheus.GaugeVec
	checks     *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

// targetLabels are on every per-target series.
var targetLabels = []string{"target", "kind", "location"}

// httpPhases maps our phase names to blackbox_exporter's.
var httpPhases = []string{"resolve", "connect", "tls", "processing", "transfer"}

// NewProbe registers the probe series on reg.
func NewProbe(reg prometheus.Registerer) *Probe {
	gauge := func(name, help string, extra ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append(append([]string{}, targetLabels...), extra...))
	}
	p := &Probe{
		kinds:      make(map[string]string),
		success:    gauge("probe_success", "Whether the last check succeeded (1) or failed (0)."),
		duration:   gauge("probe_duration_seconds", "Total duration of the last check in seconds."),
		httpPhase:  gauge("probe_http_duration_seconds", "Duration of each phase of the last HTTP check in seconds.", "phase"),
		httpStatus: gauge("probe_http_status_code", "HTTP status code of the last check (0 if none)."),
		sslExpiry:  gauge("probe_ssl_earliest_cert_expiry", "Earliest expiry of the peer's certificates as a Unix timestamp."),
		dnsLookup:  gauge("probe_dns_lookup_time_seconds", "Name resolution time of the last check in seconds."),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upwatch_checks_total", Help: "Checks run, by target and result (success or failure).",
		}, append(append([]string{}, targetLabels...), "result")),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upwatch_check_failures_total", Help: "Failed checks by failure class, over all targets.",
		}, []string{"class"}),
	}
	reg.MustRegister(p.success, p.duration, p.httpPhase, p.httpStatus, p.sslExpiry, p.dnsLookup, p.checks, p.failures)
	return p
}

// Observe records r.
func (p *Probe) Observe(r prober.Result) {
	p.mu.Lock()
	p.kinds[r.TargetID] = r.Kind
	p.mu.Unlock()
	l := prometheus.Labels{"target": r.TargetID, "kind": r.Kind, "location": r.Location}
	p.success.With(l).Set(boolFloat(r.Success))
	p.duration.With(l).Set(r.Duration.Seconds())
	result := "success"
	if !r.Success {
		result = "failure"
		p.failures.WithLabelValues(string(r.ErrorClass)).Inc()
	}
	p.checks.WithLabelValues(r.TargetID, r.Kind, r.Location, result).Inc()
	if r.Kind == "http" || r.Kind == "dns" || r.Phases.DNS > 0 {
		p.dnsLookup.With(l).Set(r.Phases.DNS.Seconds())
	}
	if r.Kind == "http" {
		ph := r.Phases
		for i, d := range []float64{ph.DNS.Seconds(), ph.Connect.Seconds(), ph.TLS.Seconds(), ph.TTFB.Seconds(), ph.Transfer.Seconds()} {
			p.httpPhase.WithLabelValues(r.TargetID, r.Kind, r.Location, httpPhases[i]).Set(d)
		}
		p.httpStatus.With(l).Set(float64(r.StatusCode))
	}
	if !r.TLSExpiry.IsZero() {
		p.sslExpiry.With(l).Set(float64(r.TLSExpiry.Unix()))
	}
}

// Forget deletes every series of a target that is no longer checked, so a
// removed target does not look alive forever.
func (p *Probe) Forget(targetID string) {
	p.mu.Lock()
	delete(p.kinds, targetID)
	p.mu.Unlock()
	match := prometheus.Labels{"target": targetID}
	for _, v := range []*prometheus.GaugeVec{p.success, p.duration, p.httpPhase, p.httpStatus, p.sslExpiry, p.dnsLookup} {
		v.DeletePartialMatch(match)
	}
	p.checks.DeletePartialMatch(match)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// RegisterBuildInfo adds upwatch_build_info to reg.
func RegisterBuildInfo(reg prometheus.Registerer, version, revision string) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "upwatch_build_info",
		Help:        "Always 1; labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	}, func() float64 { return 1 }))
}
