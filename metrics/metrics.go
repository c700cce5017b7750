// Package metrics turns check results into Prometheus series. Per-target
// series use blackbox_exporter's names and phase labels where the meaning is
// the same, so dashboards and alert rules written for blackbox work
// unchanged; upwatch's own series are prefixed upwatch_.
package metrics

import (
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// Probe holds the latest result of every target and turns it into series
// when scraped. It keeps one small struct per target rather than a labelled
// child per series: with ten thousand targets the labelled children cost
// tens of megabytes, this a few.
type Probe struct {
	mu       sync.RWMutex
	targets  map[string]*targetSeries
	failures map[prober.ErrorClass]uint64
	// active, once Retain was called, is the set of targets that export
	// series; results of others (a check that ended after its target was
	// deleted or paused) are not recorded.
	active map[string]bool
}

// targetSeries is what the series of one target are made from.
type targetSeries struct {
	kind, location string
	success        bool
	duration       time.Duration
	phases         prober.Phases
	statusCode     int
	tlsExpiry      time.Time
	dnsTimed       bool // a dns phase is meaningful for this result
	ok, failed     uint64
}

// httpPhases are blackbox_exporter's phase names, in prober.Phases order.
var httpPhases = [...]string{"resolve", "connect", "tls", "processing", "transfer"}

var (
	targetLabels = []string{"target", "kind", "location"}
	descSuccess  = prometheus.NewDesc("probe_success", "Whether the last check succeeded (1) or failed (0).", targetLabels, nil)
	descDuration = prometheus.NewDesc("probe_duration_seconds", "Total duration of the last check in seconds.", targetLabels, nil)
	descPhase    = prometheus.NewDesc("probe_http_duration_seconds", "Duration of each phase of the last HTTP check in seconds.",
		append(append([]string{}, targetLabels...), "phase"), nil)
	descStatus = prometheus.NewDesc("probe_http_status_code", "HTTP status code of the last check (0 if none).", targetLabels, nil)
	descExpiry = prometheus.NewDesc("probe_ssl_earliest_cert_expiry", "Earliest expiry of the peer's certificates as a Unix timestamp.", targetLabels, nil)
	descDNS    = prometheus.NewDesc("probe_dns_lookup_time_seconds", "Name resolution time of the last check in seconds.", targetLabels, nil)
	descChecks = prometheus.NewDesc("upwatch_checks_total", "Checks run, by target and result (success or failure).",
		append(append([]string{}, targetLabels...), "result"), nil)
	descFailures = prometheus.NewDesc("upwatch_check_failures_total", "Failed checks by failure class, over all targets.", []string{"class"}, nil)
)

// NewProbe registers the probe series on reg.
func NewProbe(reg prometheus.Registerer) *Probe {
	p := &Probe{targets: map[string]*targetSeries{}, failures: map[prober.ErrorClass]uint64{}}
	reg.MustRegister(p)
	return p
}

// Observe records r.
func (p *Probe) Observe(r prober.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active != nil && !p.active[r.TargetID] {
		return
	}
	s, ok := p.targets[r.TargetID]
	if !ok || s.kind != r.Kind || s.location != r.Location {
		s = &targetSeries{kind: r.Kind, location: r.Location}
		p.targets[r.TargetID] = s
	}
	s.success, s.duration, s.phases, s.statusCode = r.Success, r.Duration, r.Phases, r.StatusCode
	s.dnsTimed = r.Kind == "http" || r.Kind == "dns" || r.Phases.DNS > 0
	if !r.TLSExpiry.IsZero() {
		s.tlsExpiry = r.TLSExpiry
	}
	if r.Success {
		s.ok++
	} else {
		s.failed++
		p.failures[r.ErrorClass]++
	}
}

// Forget deletes every series of a target that is no longer checked, so a
// removed target does not look alive forever.
func (p *Probe) Forget(targetID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.targets, targetID)
}

// Retain makes ids the targets that export series: every other target's
// series are deleted, and its results ignored from now on, so a paused or
// deleted target neither keeps its last probe_success (0 after a failure)
// nor gets it back from a check that was still running.
func (p *Probe) Retain(ids []string) {
	active := make(map[string]bool, len(ids))
	for _, id := range ids {
		active[id] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.active = active
	for id := range p.targets {
		if !active[id] {
			delete(p.targets, id)
		}
	}
}

// Describe implements prometheus.Collector.
func (p *Probe) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSuccess, descDuration, descPhase, descStatus, descExpiry, descDNS, descChecks, descFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *Probe) Collect(ch chan<- prometheus.Metric) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for id, s := range p.targets {
		gauge(descSuccess, boolFloat(s.success), id, s.kind, s.location)
		gauge(descDuration, s.duration.Seconds(), id, s.kind, s.location)
		if s.dnsTimed {
			gauge(descDNS, s.phases.DNS.Seconds(), id, s.kind, s.location)
		}
		if s.kind == "http" {
			ph := s.phases
			for i, d := range [...]time.Duration{ph.DNS, ph.Connect, ph.TLS, ph.TTFB, ph.Transfer} {
				gauge(descPhase, d.Seconds(), id, s.kind, s.location, httpPhases[i])
			}
			gauge(descStatus, float64(s.statusCode), id, s.kind, s.location)
		}
		if !s.tlsExpiry.IsZero() {
			gauge(descExpiry, float64(s.tlsExpiry.Unix()), id, s.kind, s.location)
		}
		if s.ok > 0 {
			ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(s.ok), id, s.kind, s.location, "success")
		}
		if s.failed > 0 {
			ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(s.failed), id, s.kind, s.location, "failure")
		}
	}
	for class, n := range p.failures {
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(n), string(class))
	}
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
