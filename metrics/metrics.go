// Package metrics turns check results into Prometheus series. Per-target
// series use blackbox_exporter's names and phase labels where the meaning is
// the same, so dashboards and alert rules written for blackbox work
// unchanged; upwatch's own series are prefixed upwatch_.
//
// The per-target series are written as text by Probe itself, not through
// client_golang: at 100,000 targets a collector of const metrics took tens
// of seconds and a gigabyte of garbage per scrape, this takes well under a
// second. Handler serves them after the registry's own families.
package metrics

import (
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// Probe holds the latest result of every target and writes its series as
// Prometheus text. It keeps one small struct per target and location it is
// checked from, and its label set rendered once.
type Probe struct {
	full bool

	// checks (Core only) and failures are few series, kept in the
	// registry.
	checks   *prometheus.CounterVec
	failures *prometheus.CounterVec

	mu      sync.RWMutex
	index   map[string]int      // seriesKey(target id, location) → position in targets
	where   map[string][]string // target id → the locations it has series for
	targets []targetSeries
	// active, once Retain was called, is the set of targets that export
	// series; results of others (a check that ended after its target was
	// deleted or paused) are not recorded.
	active map[string]bool
}

// seriesKey names the series of one target checked from one location: a
// target checked from several places (probe agents) has a set of series
// for each.
func seriesKey(id, location string) string { return id + "\x00" + location }

// targetSeries is what the series of one target are made from. It holds no
// pointers besides the two strings, so a scrape copies them all cheaply.
type targetSeries struct {
	id     string
	labels string // target="…",kind="…",location="…", escaped
	// kind and location are what labels was made from.
	kind, location string
	success        bool
	dnsTimed       bool // a dns phase is meaningful for this result
	statusCode     int
	duration       time.Duration
	phases         prober.Phases
	tlsExpiry      int64 // Unix seconds, 0 if never seen
	ok, failed     uint64

	// What blackbox_exporter also exports (see the families below).
	httpVersion      float64 // 1.1, 2; 0 without a response
	redirects        int
	contentLength    int64
	bodyBytes        int64
	httpTLS          bool   // the last final response came over TLS
	tlsVersion       string // "TLS 1.3"; the last seen, "" if never seen
	lastChainExpiry  int64  // Unix seconds, 0 if never seen
	ipProtocol       uint8  // 4, 6; 0 when no address was reached
	failedDueToRegex bool
	icmpRTT          time.Duration
	grpcCode         int
	servingStatus    string // "" when the health RPC failed
}

// httpPhases are blackbox_exporter's phase names, in prober.Phases order.
var httpPhases = [...]string{"resolve", "connect", "tls", "processing", "transfer"}

// ProbeOptions choose the per-target series.
type ProbeOptions struct {
	// Full adds, per target, probe_http_duration_seconds{phase} (blackbox's
	// phases), probe_dns_lookup_time_seconds, the rest of blackbox's
	// series (probe_http_content_length, probe_http_uncompressed_body_length,
	// probe_http_redirects, probe_failed_due_to_regex,
	// probe_ssl_last_chain_expiry_timestamp_seconds, probe_ip_protocol,
	// probe_grpc_healthcheck_response{serving_status}) and the target label
	// on upwatch_checks_total. Without it a target exports the blackbox
	// core: probe_success, probe_duration_seconds, probe_http_status_code,
	// probe_http_ssl, probe_http_version, probe_tls_version_info{version},
	// probe_ssl_earliest_cert_expiry, probe_icmp_duration_seconds{phase}
	// and probe_grpc_status_code, and upwatch_checks_total counts by kind,
	// location and result.
	Full bool
	// Registerer receives the aggregate series (nil registers none).
	Registerer prometheus.Registerer
}

// NewProbe returns an empty Probe. Serve its per-target series with
// Handler.
func NewProbe(o ProbeOptions) *Probe {
	p := &Probe{
		full:  o.Full,
		index: map[string]int{},
		where: map[string][]string{},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upwatch_check_failures_total", Help: "Failed checks by failure class, over all targets.",
		}, []string{"class"}),
	}
	for _, c := range prober.FailureClasses {
		p.failures.WithLabelValues(string(c)) // at 0, so panels show 0, not "No data"
	}
	if !o.Full {
		p.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upwatch_checks_total", Help: "Checks run, by kind, location and result (success or failure).",
		}, []string{"kind", "location", "result"})
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(p.failures)
		if p.checks != nil {
			o.Registerer.MustRegister(p.checks)
		}
	}
	return p
}

// Observe records r.
func (p *Probe) Observe(r prober.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active != nil && !p.active[r.TargetID] {
		return
	}
	// The key is built in a buffer and looked up without a string
	// conversion's copy; only a new series stores it as a string.
	var buf [128]byte
	key := append(append(append(buf[:0], r.TargetID...), 0), r.Location...)
	i, ok := p.index[string(key)]
	if !ok {
		i = len(p.targets)
		p.index[string(key)] = i
		p.where[r.TargetID] = append(p.where[r.TargetID], r.Location)
		p.targets = append(p.targets, targetSeries{id: r.TargetID})
	}
	s := &p.targets[i]
	if !ok || s.kind != r.Kind {
		*s = targetSeries{id: r.TargetID, kind: r.Kind, location: r.Location, labels: targetLabels(r.TargetID, r.Kind, r.Location)}
	}
	s.success, s.duration, s.phases, s.statusCode = r.Success, r.Duration, r.Phases, r.StatusCode
	s.dnsTimed = r.Kind == "http" || r.Kind == "dns" || r.Phases.DNS > 0
	if !r.TLSExpiry.IsZero() {
		s.tlsExpiry = r.TLSExpiry.Unix()
	}
	s.observeBlackbox(&r)
	if r.Success {
		s.ok++
	} else {
		s.failed++
		p.failures.WithLabelValues(string(r.ErrorClass)).Inc()
	}
	if p.checks != nil {
		if !ok {
			// Both results exist from the first check on, so a panel of
			// failures shows 0 rather than "No data".
			p.checks.WithLabelValues(r.Kind, r.Location, resultText(!r.Success))
		}
		p.checks.WithLabelValues(r.Kind, r.Location, resultText(r.Success)).Inc()
	}
}

// observeBlackbox records the details of r that only blackbox-compatible
// series show. A TLS version and chain expiry, like the earliest
// certificate expiry, stay as last seen so a failed connection does not
// make their series vanish.
func (s *targetSeries) observeBlackbox(r *prober.Result) {
	s.httpVersion = 0
	if r.HTTPVersion != "" { // a failed parse allocates its error: not for every non-http result
		if v, err := strconv.ParseFloat(strings.TrimPrefix(r.HTTPVersion, "HTTP/"), 64); err == nil {
			s.httpVersion = v
		}
	}
	s.redirects, s.contentLength, s.bodyBytes = r.Redirects, r.ContentLength, r.BodyBytes
	s.httpTLS = r.TLSVersion != ""
	if r.TLSVersion != "" {
		s.tlsVersion = r.TLSVersion
	}
	if !r.LastChainExpiry.IsZero() {
		s.lastChainExpiry = r.LastChainExpiry.Unix()
	}
	s.ipProtocol = ipProtocol(r.RemoteAddr)
	s.failedDueToRegex = r.FailedDueToRegex
	s.icmpRTT = 0
	if r.ICMP != nil {
		s.icmpRTT = r.ICMP.RTTAvg
	}
	s.grpcCode, s.servingStatus = 0, ""
	if r.GRPC != nil {
		s.grpcCode, s.servingStatus = r.GRPC.Code, r.GRPC.ServingStatus
	}
}

// ipProtocol is 6 for an IPv6 address ("[::1]:443" or "::1"), 4 for an
// IPv4 one ("127.0.0.1:80" or "127.0.0.1"), 0 for none.
func ipProtocol(addr string) uint8 {
	switch {
	case addr == "":
		return 0
	case addr[0] == '[' || strings.Count(addr, ":") > 1:
		return 6
	}
	return 4
}

// Forget deletes every series of a target that is no longer checked, so a
// removed target does not look alive forever.
func (p *Probe) Forget(targetID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetLocked(targetID)
}

func (p *Probe) forgetLocked(id string) {
	for _, loc := range p.where[id] {
		p.targets = removeSwap(p.targets, p.index, seriesKey(id, loc), func(t targetSeries) string { return seriesKey(t.id, t.location) })
	}
	delete(p.where, id)
}

// removeSwap removes id's element from rows by moving the last one into its
// place (order does not matter, removal stays O(1)) and keeps index, id →
// position, in step.
func removeSwap[T any](rows []T, index map[string]int, id string, idOf func(T) string) []T {
	i, ok := index[id]
	if !ok {
		return rows
	}
	last := len(rows) - 1
	if i != last {
		rows[i] = rows[last]
		index[idOf(rows[i])] = i
	}
	var zero T
	rows[last] = zero
	delete(index, id)
	return rows[:last]
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
	var gone []string
	for id := range p.where {
		if !active[id] {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		p.forgetLocked(id)
	}
}

// family is one metric family of the exposition: its header, and the
// lines of one target (none if the family does not apply to it).
type family struct {
	name, help, typ string
	full            bool   // exported with Full only
	kind            string // only targets of this kind have a line; "" every target
	write           func(b []byte, name string, s *targetSeries) []byte
}

var families = []family{
	{name: "probe_success", help: "Whether the last check succeeded (1) or failed (0).", typ: "gauge",
		write: func(b []byte, name string, s *targetSeries) []byte {
			v := byte('0')
			if s.success {
				v = '1'
			}
			return append(openLine(b, name, s.labels, "", ""), v, '\n')
		}},
	{name: "probe_duration_seconds", help: "Total duration of the last check in seconds.", typ: "gauge",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendSeconds(openLine(b, name, s.labels, "", ""), s.duration)
		}},
	{name: "probe_http_duration_seconds", help: "Duration of each phase of the last HTTP check in seconds.", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			ph := s.phases
			for i, d := range [...]time.Duration{ph.DNS, ph.Connect, ph.TLS, ph.TTFB, ph.Transfer} {
				b = appendSeconds(openLine(b, name, s.labels, "phase", httpPhases[i]), d)
			}
			return b
		}},
	{name: "probe_http_status_code", help: "HTTP status code of the last check (0 if none).", typ: "gauge", kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return append(strconv.AppendInt(openLine(b, name, s.labels, "", ""), int64(s.statusCode), 10), '\n')
		}},
	{name: "probe_http_ssl", help: "Whether the final response of the last HTTP check came over TLS (1) or not (0).", typ: "gauge", kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendBool(openLine(b, name, s.labels, "", ""), s.httpTLS)
		}},
	{name: "probe_http_version", help: "HTTP version of the last response (1.1, 2; 0 if none).", typ: "gauge", kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendFloat(openLine(b, name, s.labels, "", ""), s.httpVersion)
		}},
	{name: "probe_http_content_length", help: "Content-Length of the last HTTP response (-1 if not sent).", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendInt(openLine(b, name, s.labels, "", ""), s.contentLength)
		}},
	{name: "probe_http_uncompressed_body_length", help: "Bytes of the last HTTP response body after decompression (up to max_body_bytes).", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendInt(openLine(b, name, s.labels, "", ""), s.bodyBytes)
		}},
	{name: "probe_http_redirects", help: "Redirects followed by the last HTTP check.", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendInt(openLine(b, name, s.labels, "", ""), int64(s.redirects))
		}},
	{name: "probe_failed_due_to_regex", help: "Whether the last HTTP check failed on a header regex or a body keyword or regex (1) or not (0).", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendBool(openLine(b, name, s.labels, "", ""), s.failedDueToRegex)
		}},
	{name: "probe_tls_version_info", help: "TLS version of the last TLS connection, in label version; always 1.", typ: "gauge",
		write: func(b []byte, name string, s *targetSeries) []byte {
			if s.tlsVersion == "" {
				return b
			}
			return append(openLine(b, name, s.labels, "version", s.tlsVersion), '1', '\n')
		}},
	{name: "probe_ssl_last_chain_expiry_timestamp_seconds", help: "When the verified certificate chain that lasts longest expires, as a Unix timestamp.", typ: "gauge", full: true,
		write: func(b []byte, name string, s *targetSeries) []byte {
			if s.lastChainExpiry == 0 {
				return b
			}
			return appendInt(openLine(b, name, s.labels, "", ""), s.lastChainExpiry)
		}},
	{name: "probe_ip_protocol", help: "IP version of the address the last check reached (4 or 6).", typ: "gauge", full: true,
		write: func(b []byte, name string, s *targetSeries) []byte {
			if s.ipProtocol == 0 {
				return b
			}
			return appendInt(openLine(b, name, s.labels, "", ""), int64(s.ipProtocol))
		}},
	{name: "probe_icmp_duration_seconds", help: "Duration of the phases of the last ICMP check in seconds (rtt: the average round trip).", typ: "gauge", kind: "icmp",
		write: func(b []byte, name string, s *targetSeries) []byte {
			b = appendSeconds(openLine(b, name, s.labels, "phase", "resolve"), s.phases.DNS)
			return appendSeconds(openLine(b, name, s.labels, "phase", "rtt"), s.icmpRTT)
		}},
	{name: "probe_grpc_status_code", help: "gRPC status code of the last health check RPC (0 OK).", typ: "gauge", kind: "grpc",
		write: func(b []byte, name string, s *targetSeries) []byte {
			return appendInt(openLine(b, name, s.labels, "", ""), int64(s.grpcCode))
		}},
	{name: "probe_grpc_healthcheck_response", help: "Serving status the last gRPC health check answered: 1 for it, 0 for the others.", typ: "gauge", full: true, kind: "grpc",
		write: func(b []byte, name string, s *targetSeries) []byte {
			for _, st := range grpcServingStatuses {
				b = appendBool(openLine(b, name, s.labels, "serving_status", st), st == s.servingStatus)
			}
			return b
		}},
	{name: "probe_ssl_earliest_cert_expiry", help: "Earliest expiry of the peer's certificates as a Unix timestamp.", typ: "gauge",
		write: func(b []byte, name string, s *targetSeries) []byte {
			if s.tlsExpiry == 0 {
				return b
			}
			return append(strconv.AppendInt(openLine(b, name, s.labels, "", ""), s.tlsExpiry, 10), '\n')
		}},
	{name: "probe_dns_lookup_time_seconds", help: "Name resolution time of the last check in seconds.", typ: "gauge", full: true,
		write: func(b []byte, name string, s *targetSeries) []byte {
			if !s.dnsTimed {
				return b
			}
			return appendSeconds(openLine(b, name, s.labels, "", ""), s.phases.DNS)
		}},
	{name: "upwatch_checks_total", help: "Checks run, by target and result (success or failure).", typ: "counter", full: true,
		write: func(b []byte, name string, s *targetSeries) []byte {
			// Both results, even at 0, so panels show 0 and not "No data".
			b = append(strconv.AppendUint(openLine(b, name, s.labels, "result", "success"), s.ok, 10), '\n')
			return append(strconv.AppendUint(openLine(b, name, s.labels, "result", "failure"), s.failed, 10), '\n')
		}},
}

// WriteTo writes the probe's series in the Prometheus text format
// (version 0.0.4). It copies the latest results under the lock and renders
// them after, so a slow reader never holds up Observe.
func (p *Probe) WriteTo(w io.Writer) (int64, error) {
	p.mu.RLock()
	snap := make([]targetSeries, len(p.targets))
	copy(snap, p.targets)
	p.mu.RUnlock()

	out := chunkWriter{w: w, b: make([]byte, 0, chunkSize+4096)}
	for _, f := range families {
		if f.full && !p.full {
			continue
		}
		// The header goes first and is taken back if no target has a
		// line: nothing is flushed before the first line.
		start, wrote := len(out.b), false
		out.b = appendHeader(out.b, f.name, f.help, f.typ)
		for i := range snap {
			if f.kind != "" && snap[i].kind != f.kind {
				continue
			}
			n := len(out.b)
			if out.b = f.write(out.b, f.name, &snap[i]); len(out.b) > n {
				wrote = true
				out.flushIfFull()
			}
		}
		if !wrote {
			out.b = out.b[:start]
		}
	}
	out.flush()
	return out.n, out.err
}

// chunkSize is how much text WriteTo gathers before writing it out.
const chunkSize = 64 << 10

// chunkWriter batches small appends into large writes and remembers the
// first error.
type chunkWriter struct {
	w   io.Writer
	b   []byte
	n   int64
	err error
}

func (c *chunkWriter) flushIfFull() {
	if len(c.b) >= chunkSize {
		c.flush()
	}
}

func (c *chunkWriter) flush() {
	if c.err == nil && len(c.b) > 0 {
		var n int
		n, c.err = c.w.Write(c.b)
		c.n += int64(n)
	}
	c.b = c.b[:0]
}

func appendHeader(b []byte, name, help, typ string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, help...)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// openLine appends a line up to its value: name{labels[,extra="value"]}
// and a space.
func openLine(b []byte, name, labels, extra, extraValue string) []byte {
	b = append(b, name...)
	b = append(b, '{')
	b = append(b, labels...)
	if extra != "" {
		b = append(b, ',')
		b = append(b, extra...)
		b = append(b, '=')
		b = appendLabelValue(b, extraValue)
	}
	return append(b, "} "...)
}

// grpcServingStatuses are the values of probe_grpc_healthcheck_response's
// serving_status label, all exported as blackbox_exporter does.
var grpcServingStatuses = [...]string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, '1', '\n')
	}
	return append(b, '0', '\n')
}

func appendInt(b []byte, v int64) []byte { return append(strconv.AppendInt(b, v, 10), '\n') }

func appendFloat(b []byte, v float64) []byte {
	return append(strconv.AppendFloat(b, v, 'g', -1, 64), '\n')
}

// appendSeconds ends a line with d in seconds.
func appendSeconds(b []byte, d time.Duration) []byte {
	return append(strconv.AppendFloat(b, d.Seconds(), 'g', -1, 64), '\n')
}

// targetLabels renders a target's label set once, when it is first seen.
func targetLabels(id, kind, location string) string {
	b := appendLabelValue([]byte("target="), id)
	b = append(b, ",kind="...)
	b = appendLabelValue(b, kind)
	b = append(b, ",location="...)
	b = appendLabelValue(b, location)
	return string(b)
}

// labelEscaper escapes a label value as the text format requires.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// appendLabelValue appends v quoted and escaped (invalid UTF-8 replaced).
func appendLabelValue(b []byte, v string) []byte {
	b = append(b, '"')
	if strings.ContainsAny(v, "\\\"\n") {
		v = labelEscaper.Replace(v)
	}
	b = append(b, strings.ToValidUTF8(v, "\uFFFD")...)
	return append(b, '"')
}

func resultText(success bool) string {
	if success {
		return "success"
	}
	return "failure"
}

// RegisterBuildInfo adds upwatch_build_info to reg.
func RegisterBuildInfo(reg prometheus.Registerer, version, revision string) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "upwatch_build_info",
		Help:        "Always 1; labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	}, func() float64 { return 1 }))
}
