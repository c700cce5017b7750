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
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// Probe holds the latest result of every target and writes its series as
// Prometheus text. Observe runs for every check, so it finds a target's
// series with one map lookup by id and writes fixed-size fields; label text
// is written at scrape time from the id and its (kind, location) group,
// rendered once per group.
type Probe struct {
	full bool

	// checks (Core only) and failures are few series, kept in the
	// registry; failures' counters of the known classes are looked up once.
	checks        *prometheus.CounterVec
	failures      *prometheus.CounterVec
	classFailures map[prober.ErrorClass]prometheus.Counter

	mu sync.RWMutex
	// first maps a target id to its first series in series; a target
	// checked from several locations (probe agents) has one series for
	// each, chained by targetSeries.next. -1: retained, no result yet.
	first  map[string]int32
	series seriesTable
	// groups are the (kind, location) pairs of series, never removed (a
	// few); groupIndex finds one when a series is made.
	groups     []seriesGroup
	groupIndex map[groupKey]uint32
	// retained is set once Retain was called: first then holds exactly the
	// targets that export series, and results of others (a check that
	// ended after its target was deleted or paused) are not recorded.
	retained bool
}

type groupKey struct{ kind, location string }

// seriesGroup is what the series of one kind checked from one location
// share: their labels after target, and their upwatch_checks_total
// counters (Core), nil until first used.
type seriesGroup struct {
	kind, location   string
	labels           string // ,kind="…",location="…", escaped
	success, failure prometheus.Counter
}

// targetSeries is what the series of one target at one location are made
// from: fixed-size values besides the id, so a scrape copies them all
// cheaply and the GC has one pointer to follow per series.
type targetSeries struct {
	id    string
	next  int32  // the target's next series (another location) in Probe.series; -1 none
	group uint32 // its kind and location, in Probe.groups

	duration   time.Duration
	phases     prober.Phases
	tlsExpiry  int64 // Unix seconds, 0 if never seen
	ok, failed uint64

	// What blackbox_exporter also exports (see the families below).
	httpVersion     float64 // 1.1, 2; 0 without a response
	contentLength   int64
	bodyBytes       int64
	lastChainExpiry int64  // Unix seconds, 0 if never seen
	tlsVersion      string // "TLS 1.3"; the last seen, "" if never seen
	icmpRTT         time.Duration
	statusCode      int
	redirects       int
	grpcCode        int

	success          bool
	dnsTimed         bool // a dns phase is meaningful for this result
	httpTLS          bool // the last final response came over TLS
	failedDueToRegex bool
	ipProtocol       uint8 // 4, 6; 0 when no address was reached
	servingStatus    uint8 // 1 + its index in grpcServingStatuses; 0 when the health RPC failed or answered another
	plainID          bool  // id needs no escaping in a label (plainLabelValue)
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
		full:          o.Full,
		first:         map[string]int32{},
		groupIndex:    map[groupKey]uint32{},
		classFailures: map[prober.ErrorClass]prometheus.Counter{},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upwatch_check_failures_total", Help: "Failed checks by failure class, over all targets.",
		}, []string{"class"}),
	}
	for _, c := range prober.FailureClasses {
		// At 0, so panels show 0, not "No data".
		p.classFailures[c] = p.failures.WithLabelValues(string(c))
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
	i, known := p.first[r.TargetID]
	if !known && p.retained {
		return
	}
	var s *targetSeries
	tail := int32(-1)
	for ; i >= 0 && known; i = p.series.at(i).next {
		if p.groups[p.series.at(i).group].location == r.Location {
			s = p.series.at(i)
			break
		}
		tail = i
	}
	fresh := s == nil
	switch {
	case fresh:
		s = p.addSeries(r.TargetID, tail, r.Kind, r.Location)
	case p.groups[s.group].kind != r.Kind:
		*s = targetSeries{id: s.id, next: s.next, group: p.group(r.Kind, r.Location), plainID: s.plainID}
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
		p.failure(r.ErrorClass).Inc()
	}
	if p.checks != nil {
		g := &p.groups[s.group]
		if fresh {
			// Both results exist from the first check on, so a panel of
			// failures shows 0 rather than "No data".
			p.checksCounter(g, !r.Success)
		}
		p.checksCounter(g, r.Success).Inc()
	}
}

// addSeries appends a series of target id (after tail, its last series,
// or as its first when tail is -1).
func (p *Probe) addSeries(id string, tail int32, kind, location string) *targetSeries {
	n := p.series.len()
	if tail >= 0 {
		p.series.at(tail).next = n
		id = p.series.at(tail).id // one copy of the id text per target
	} else {
		p.first[id] = n
	}
	p.series.add(targetSeries{id: id, next: -1, group: p.group(kind, location), plainID: plainLabelValue(id)})
	return p.series.at(n)
}

// group returns the index of kind and location's group, adding it.
func (p *Probe) group(kind, location string) uint32 {
	k := groupKey{kind, location}
	if g, ok := p.groupIndex[k]; ok {
		return g
	}
	b := appendLabelValue([]byte(",kind="), kind)
	b = appendLabelValue(append(b, ",location="...), location)
	g := uint32(len(p.groups))
	p.groups = append(p.groups, seriesGroup{kind: kind, location: location, labels: string(b)})
	p.groupIndex[k] = g
	return g
}

// checksCounter is g's upwatch_checks_total counter of one result.
func (p *Probe) checksCounter(g *seriesGroup, success bool) prometheus.Counter {
	c := &g.failure
	if success {
		c = &g.success
	}
	if *c == nil {
		*c = p.checks.WithLabelValues(g.kind, g.location, resultText(success))
	}
	return *c
}

// failure is upwatch_check_failures_total's counter of class.
func (p *Probe) failure(class prober.ErrorClass) prometheus.Counter {
	if c, ok := p.classFailures[class]; ok {
		return c
	}
	return p.failures.WithLabelValues(string(class))
}

// observeBlackbox records the details of r that only blackbox-compatible
// series show. A TLS version and chain expiry, like the earliest
// certificate expiry, stay as last seen so a failed connection does not
// make their series vanish.
func (s *targetSeries) observeBlackbox(r *prober.Result) {
	s.httpVersion = httpVersion(r.HTTPVersion)
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
	s.grpcCode, s.servingStatus = 0, 0
	if r.GRPC != nil {
		s.grpcCode = r.GRPC.Code
		for i, st := range grpcServingStatuses {
			if st == r.GRPC.ServingStatus {
				s.servingStatus = uint8(i + 1)
			}
		}
	}
}

// httpVersion is the number of an HTTP protocol ("HTTP/1.1" → 1.1), 0 for
// none or one that does not parse. The usual ones are not parsed.
func httpVersion(proto string) float64 {
	switch proto {
	case "":
		return 0 // a failed parse allocates its error: not for every non-http result
	case "HTTP/1.1":
		return 1.1
	case "HTTP/2.0", "HTTP/2":
		return 2
	case "HTTP/1.0":
		return 1
	}
	v, err := strconv.ParseFloat(strings.TrimPrefix(proto, "HTTP/"), 64)
	if err != nil {
		return 0
	}
	return v
}

// ipProtocol is 6 for an IPv6 address ("[::1]:443" or "::1"), 4 for an
// IPv4 one ("127.0.0.1:80" or "127.0.0.1"), 0 for none.
func ipProtocol(addr string) uint8 {
	switch {
	case addr == "":
		return 0
	case addr[0] == '[' || strings.IndexByte(addr, ':') != strings.LastIndexByte(addr, ':'):
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

// forgetLocked removes id's series, first location first.
func (p *Probe) forgetLocked(id string) {
	for i, ok := p.first[id]; ok && i >= 0; i = p.first[id] {
		p.first[id] = p.series.at(i).next
		p.removeSeries(i)
	}
	if p.retained {
		if _, ok := p.first[id]; ok {
			p.first[id] = -1 // still exported: its next result brings it back
		}
		return
	}
	delete(p.first, id)
}

// removeSeries removes series i, no longer in its target's chain, by moving
// the last one into its place (order does not matter, removal stays O(1))
// and repointing what pointed at that one.
func (p *Probe) removeSeries(i int32) {
	last := p.series.len() - 1
	if i != last {
		moved := *p.series.at(last)
		*p.series.at(i) = moved
		if j := p.first[moved.id]; j == last {
			p.first[moved.id] = i
		} else {
			for p.series.at(j).next != last {
				j = p.series.at(j).next
			}
			p.series.at(j).next = i
		}
	}
	p.series.pop()
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
	keep := make(map[string]int32, len(ids))
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if i, ok := p.first[id]; ok && i >= 0 {
			id = p.series.at(i).id // one copy of the id text
		}
		keep[id] = -1
	}
	// Removed in the order of their series, so the order left is the same
	// from run to run.
	var gone []string
	for i := range p.series.len() {
		if s := p.series.at(i); p.first[s.id] == i {
			if _, ok := keep[s.id]; !ok {
				gone = append(gone, s.id)
			}
		}
	}
	p.retained = false
	for _, id := range gone {
		p.forgetLocked(id)
	}
	for id := range keep {
		if i, ok := p.first[id]; ok {
			keep[id] = i
		}
	}
	p.first, p.retained = keep, true
}

// family is one metric family of the exposition: its header, and the
// lines of one target (none if the family does not apply to it).
type family struct {
	name, help, typ string
	full            bool   // exported with Full only
	kind            string // only targets of this kind have a line; "" every target
	write           func(b []byte, name string, s seriesLine) []byte
}

// seriesLine is what a family's lines of one series are written from.
type seriesLine struct {
	*targetSeries
	target string // its id as a label value, escaped
	labels string // its group's, after target
}

var families = []family{
	{name: "probe_success", help: "Whether the last check succeeded (1) or failed (0).", typ: "gauge",
		write: func(b []byte, name string, s seriesLine) []byte {
			v := byte('0')
			if s.success {
				v = '1'
			}
			return append(openLine(b, name, s.target, s.labels, "", ""), v, '\n')
		}},
	{name: "probe_duration_seconds", help: "Total duration of the last check in seconds.", typ: "gauge",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendSeconds(openLine(b, name, s.target, s.labels, "", ""), s.duration)
		}},
	{name: "probe_http_duration_seconds", help: "Duration of each phase of the last HTTP check in seconds.", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			ph := s.phases
			for i, d := range [...]time.Duration{ph.DNS, ph.Connect, ph.TLS, ph.TTFB, ph.Transfer} {
				b = appendSeconds(openLine(b, name, s.target, s.labels, "phase", httpPhases[i]), d)
			}
			return b
		}},
	{name: "probe_http_status_code", help: "HTTP status code of the last check (0 if none).", typ: "gauge", kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			return append(strconv.AppendInt(openLine(b, name, s.target, s.labels, "", ""), int64(s.statusCode), 10), '\n')
		}},
	{name: "probe_http_ssl", help: "Whether the final response of the last HTTP check came over TLS (1) or not (0).", typ: "gauge", kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendBool(openLine(b, name, s.target, s.labels, "", ""), s.httpTLS)
		}},
	{name: "probe_http_version", help: "HTTP version of the last response (1.1, 2; 0 if none).", typ: "gauge", kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendFloat(openLine(b, name, s.target, s.labels, "", ""), s.httpVersion)
		}},
	{name: "probe_http_content_length", help: "Content-Length of the last HTTP response (-1 if not sent).", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendInt(openLine(b, name, s.target, s.labels, "", ""), s.contentLength)
		}},
	{name: "probe_http_uncompressed_body_length", help: "Bytes of the last HTTP response body after decompression (up to max_body_bytes).", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendInt(openLine(b, name, s.target, s.labels, "", ""), s.bodyBytes)
		}},
	{name: "probe_http_redirects", help: "Redirects followed by the last HTTP check.", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendInt(openLine(b, name, s.target, s.labels, "", ""), int64(s.redirects))
		}},
	{name: "probe_failed_due_to_regex", help: "Whether the last HTTP check failed on a header regex or a body keyword or regex (1) or not (0).", typ: "gauge", full: true, kind: "http",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendBool(openLine(b, name, s.target, s.labels, "", ""), s.failedDueToRegex)
		}},
	{name: "probe_tls_version_info", help: "TLS version of the last TLS connection, in label version; always 1.", typ: "gauge",
		write: func(b []byte, name string, s seriesLine) []byte {
			if s.tlsVersion == "" {
				return b
			}
			return append(openLine(b, name, s.target, s.labels, "version", s.tlsVersion), '1', '\n')
		}},
	{name: "probe_ssl_last_chain_expiry_timestamp_seconds", help: "When the verified certificate chain that lasts longest expires, as a Unix timestamp.", typ: "gauge", full: true,
		write: func(b []byte, name string, s seriesLine) []byte {
			if s.lastChainExpiry == 0 {
				return b
			}
			return appendInt(openLine(b, name, s.target, s.labels, "", ""), s.lastChainExpiry)
		}},
	{name: "probe_ip_protocol", help: "IP version of the address the last check reached (4 or 6).", typ: "gauge", full: true,
		write: func(b []byte, name string, s seriesLine) []byte {
			if s.ipProtocol == 0 {
				return b
			}
			return appendInt(openLine(b, name, s.target, s.labels, "", ""), int64(s.ipProtocol))
		}},
	{name: "probe_icmp_duration_seconds", help: "Duration of the phases of the last ICMP check in seconds (rtt: the average round trip).", typ: "gauge", kind: "icmp",
		write: func(b []byte, name string, s seriesLine) []byte {
			b = appendSeconds(openLine(b, name, s.target, s.labels, "phase", "resolve"), s.phases.DNS)
			return appendSeconds(openLine(b, name, s.target, s.labels, "phase", "rtt"), s.icmpRTT)
		}},
	{name: "probe_grpc_status_code", help: "gRPC status code of the last health check RPC (0 OK).", typ: "gauge", kind: "grpc",
		write: func(b []byte, name string, s seriesLine) []byte {
			return appendInt(openLine(b, name, s.target, s.labels, "", ""), int64(s.grpcCode))
		}},
	{name: "probe_grpc_healthcheck_response", help: "Serving status the last gRPC health check answered: 1 for it, 0 for the others.", typ: "gauge", full: true, kind: "grpc",
		write: func(b []byte, name string, s seriesLine) []byte {
			for i, st := range grpcServingStatuses {
				b = appendBool(openLine(b, name, s.target, s.labels, "serving_status", st), i+1 == int(s.servingStatus))
			}
			return b
		}},
	{name: "probe_ssl_earliest_cert_expiry", help: "Earliest expiry of the peer's certificates as a Unix timestamp.", typ: "gauge",
		write: func(b []byte, name string, s seriesLine) []byte {
			if s.tlsExpiry == 0 {
				return b
			}
			return append(strconv.AppendInt(openLine(b, name, s.target, s.labels, "", ""), s.tlsExpiry, 10), '\n')
		}},
	{name: "probe_dns_lookup_time_seconds", help: "Name resolution time of the last check in seconds.", typ: "gauge", full: true,
		write: func(b []byte, name string, s seriesLine) []byte {
			if !s.dnsTimed {
				return b
			}
			return appendSeconds(openLine(b, name, s.target, s.labels, "", ""), s.phases.DNS)
		}},
	{name: "upwatch_checks_total", help: "Checks run, by target and result (success or failure).", typ: "counter", full: true,
		write: func(b []byte, name string, s seriesLine) []byte {
			// Both results, even at 0, so panels show 0 and not "No data".
			b = append(strconv.AppendUint(openLine(b, name, s.target, s.labels, "result", "success"), s.ok, 10), '\n')
			return append(strconv.AppendUint(openLine(b, name, s.target, s.labels, "result", "failure"), s.failed, 10), '\n')
		}},
}

// WriteTo writes the probe's series in the Prometheus text format
// (version 0.0.4). It copies the latest results under the lock and renders
// them after, so a slow reader never holds up Observe.
func (p *Probe) WriteTo(w io.Writer) (int64, error) {
	p.mu.RLock()
	snap := p.series.snapshot()
	groups := p.groups // only appended to; a group's labels never change
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
			g := &groups[snap[i].group]
			if f.kind != "" && g.kind != f.kind {
				continue
			}
			n := len(out.b)
			target := snap[i].id
			if !snap[i].plainID {
				target = labelText(target)
			}
			if out.b = f.write(out.b, f.name, seriesLine{&snap[i], target, g.labels}); len(out.b) > n {
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

// openLine appends a line up to its value:
// name{target="target"labels[,extra="value"]} and a space; target is
// escaped (labelText), labels, if any, too and start with a comma.
func openLine(b []byte, name, target, labels, extra, extraValue string) []byte {
	b = append(b, name...)
	b = append(b, `{target="`...)
	b = append(b, target...)
	b = append(b, '"')
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

// labelEscaper escapes a label value as the text format requires.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// appendLabelValue appends v quoted and escaped (invalid UTF-8 replaced).
func appendLabelValue(b []byte, v string) []byte {
	b = append(b, '"')
	b = append(b, labelText(v)...)
	return append(b, '"')
}

// labelText is v escaped as a label value, without the quotes.
func labelText(v string) string {
	if plainLabelValue(v) {
		return v
	}
	return strings.ToValidUTF8(labelEscaper.Replace(v), "\uFFFD")
}

// plainLabelValue reports whether v is written as it is: ASCII without a
// character to escape. Ids nearly always are, and this runs for every line.
func plainLabelValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\\' || c == '"' || c == '\n' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
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
