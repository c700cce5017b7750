package metrics

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/probertest"
)

// bbApp serves the pages the blackbox tests check: a plain page, a chain
// of two redirects to it, a page that fails a body regex and a gzipped
// page.
func bbApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hello, world")) })
	mux.HandleFunc("/r1", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/r2", http.StatusFound) })
	mux.HandleFunc("/r2", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/degraded", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("status: degraded")) })
	mux.HandleFunc("/gz", func(w http.ResponseWriter, _ *http.Request) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte(strings.Repeat("a", 1000)))
		_ = zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
		_, _ = w.Write(buf.Bytes())
	})
	return mux
}

// bbTLSServer serves bbApp over TLS with cert, at most TLS version max.
func bbTLSServer(t *testing.T, cert tls.Certificate, maxVersion uint16) *httptest.Server {
	srv := httptest.NewUnstartedServer(bbApp())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// bbCheck runs a real check of target id and records it in probe.
func bbCheck(t *testing.T, probe *Probe, p *prober.Prober, id string, tg prober.Target) prober.Result {
	t.Helper()
	tg.ID, tg.Name, tg.Timeout = id, id, 5*time.Second
	tg.Normalize()
	require.Empty(t, tg.Validate("t"))
	res := p.Check(t.Context(), &tg)
	probe.Observe(res)
	return res
}

// The blackbox_exporter series of http checks, from real checks of plain,
// redirected, regex-failing, gzipped and TLS 1.2 and 1.3 servers, with
// blackbox's names, types and labels, in an exposition that parses.
func TestBlackboxHTTPSeriesFromRealChecks(t *testing.T) {
	plain := httptest.NewServer(bbApp())
	t.Cleanup(plain.Close)
	ca := probertest.NewCA(t)
	cert := ca.Issue(t, probertest.CertOptions{})
	tls12, tls13 := bbTLSServer(t, cert, tls.VersionTLS12), bbTLSServer(t, cert, tls.VersionTLS13)
	caFile := ca.WriteFile(t)

	p := prober.New(prober.Options{AllowPrivate: true})
	reg := prometheus.NewPedanticRegistry()
	probe := NewProbe(ProbeOptions{Full: true, Registerer: reg})
	web := func(url string, mod func(*prober.HTTPSpec)) prober.Target {
		h := &prober.HTTPSpec{URL: url}
		if mod != nil {
			mod(h)
		}
		return prober.Target{Kind: "http", HTTP: h}
	}
	withCA := func(h *prober.HTTPSpec) { h.TLS.CAFile = caFile }
	for id, tg := range map[string]prober.Target{
		"plain":    web(plain.URL+"/ok", nil),
		"redirect": web(plain.URL+"/r1", nil),
		"regex":    web(plain.URL+"/degraded", func(h *prober.HTTPSpec) { h.BodyRegex = []string{`status: (ok|fine)`} }),
		"gzip":     web(plain.URL+"/gz", nil),
		"tls12":    web(tls12.URL+"/ok", withCA),
		"tls13":    web(tls13.URL+"/ok", withCA),
		"insecure": web(tls13.URL+"/ok", func(h *prober.HTTPSpec) { h.TLS.InsecureSkipVerify = true }),
	} {
		res := bbCheck(t, probe, p, id, tg)
		require.Equal(t, id != "regex", res.Success, "%s: %s %s", id, res.ErrorClass, res.Error)
	}
	text := scrape(t, reg, probe)

	line := func(name, id, extra, v string) string {
		return fmt.Sprintf("%s{kind=\"http\",location=\"local\",target=%q%s} %s\n", name, id, extra, v)
	}
	family := func(name, typ string, values map[string]string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "# HELP %s x\n# TYPE %s %s\n", name, name, typ)
		for id, v := range values {
			b.WriteString(line(name, id, "", v))
		}
		return b.String()
	}
	every := func(v string, except map[string]string) map[string]string {
		m := map[string]string{}
		for _, id := range []string{"plain", "redirect", "regex", "gzip", "tls12", "tls13", "insecure"} {
			m[id] = v
			if x, ok := except[id]; ok {
				m[id] = x
			}
		}
		return m
	}
	expiry := fmt.Sprint(cert.Leaf.NotAfter.Unix()) // the leaf expires before its CA
	want := family("probe_http_ssl", "gauge", every("0", map[string]string{"tls12": "1", "tls13": "1", "insecure": "1"})) +
		family("probe_http_version", "gauge", every("1.1", nil)) +
		family("probe_http_content_length", "gauge", every("12", map[string]string{"regex": "16", "gzip": "-1"})) +
		family("probe_http_uncompressed_body_length", "gauge", every("12", map[string]string{"regex": "16", "gzip": "1000"})) +
		family("probe_http_redirects", "gauge", every("0", map[string]string{"redirect": "2"})) +
		family("probe_failed_due_to_regex", "gauge", every("0", map[string]string{"regex": "1"})) +
		family("probe_ip_protocol", "gauge", every("4", nil)) +
		family("probe_ssl_last_chain_expiry_timestamp_seconds", "gauge", map[string]string{"tls12": expiry, "tls13": expiry}) +
		"# HELP probe_tls_version_info x\n# TYPE probe_tls_version_info gauge\n" +
		line("probe_tls_version_info", "tls12", `,version="TLS 1.2"`, "1") +
		line("probe_tls_version_info", "tls13", `,version="TLS 1.3"`, "1") +
		line("probe_tls_version_info", "insecure", `,version="TLS 1.3"`, "1")
	names := []string{"probe_http_ssl", "probe_http_version", "probe_http_content_length", "probe_http_uncompressed_body_length",
		"probe_http_redirects", "probe_failed_due_to_regex", "probe_ip_protocol", "probe_ssl_last_chain_expiry_timestamp_seconds",
		"probe_tls_version_info"}
	require.NoError(t, testutil.GatherAndCompare(withoutHelp(parsed(t, text)), strings.NewReader(want), names...))

	// The core keeps the few a dashboard shows for every target.
	core := NewProbe(ProbeOptions{})
	bbCheck(t, core, p, "tls13", web(tls13.URL+"/ok", withCA))
	coreText := scrape(t, prometheus.NewRegistry(), core)
	for _, name := range names {
		switch name {
		case "probe_http_ssl", "probe_http_version", "probe_tls_version_info":
			require.Equal(t, 1, count(t, coreText, name), name)
		default:
			require.Zero(t, count(t, coreText, name), name)
		}
	}
}

// The gRPC series, from real checks of a health server: the status code
// in the core, every serving status (1 for the one answered) in full.
func TestBlackboxGRPCSeriesFromRealChecks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("up", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	p := prober.New(prober.Options{AllowPrivate: true})
	probe := NewProbe(ProbeOptions{Full: true})
	for _, svc := range []string{"up", "down", "missing"} {
		bbCheck(t, probe, p, svc, prober.Target{Kind: "grpc", GRPC: &prober.GRPCSpec{Address: ln.Addr().String(), Service: svc}})
	}
	text := scrape(t, prometheus.NewRegistry(), probe)
	var want strings.Builder
	want.WriteString("# HELP probe_grpc_status_code x\n# TYPE probe_grpc_status_code gauge\n")
	for id, code := range map[string]int{"up": 0, "down": 0, "missing": 5} { // 5: NotFound
		fmt.Fprintf(&want, "probe_grpc_status_code{kind=\"grpc\",location=\"local\",target=%q} %d\n", id, code)
	}
	want.WriteString("# HELP probe_grpc_healthcheck_response x\n# TYPE probe_grpc_healthcheck_response gauge\n")
	for id, answered := range map[string]string{"up": "SERVING", "down": "NOT_SERVING", "missing": ""} {
		for _, st := range []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"} {
			v := 0
			if st == answered {
				v = 1
			}
			fmt.Fprintf(&want, "probe_grpc_healthcheck_response{kind=\"grpc\",location=\"local\",serving_status=%q,target=%q} %d\n", st, id, v)
		}
	}
	require.NoError(t, testutil.GatherAndCompare(withoutHelp(parsed(t, text)), strings.NewReader(want.String()),
		"probe_grpc_status_code", "probe_grpc_healthcheck_response"))
	require.Equal(t, 3, count(t, text, "probe_ip_protocol"))
}

// An icmp check exports blackbox's probe_icmp_duration_seconds phases
// resolve and rtt (the average round trip), in the core too.
func TestBlackboxICMPSeries(t *testing.T) {
	probe := NewProbe(ProbeOptions{})
	probe.Observe(prober.Result{TargetID: "gw", Kind: "icmp", Location: "local", Success: true, RemoteAddr: "::1",
		Phases: prober.Phases{DNS: 2 * time.Millisecond}, ICMP: &prober.ICMPStats{Sent: 3, Received: 3, RTTAvg: 1500 * time.Microsecond}})
	text := scrape(t, prometheus.NewRegistry(), probe)
	want := `
# HELP probe_icmp_duration_seconds x
# TYPE probe_icmp_duration_seconds gauge
probe_icmp_duration_seconds{kind="icmp",location="local",phase="resolve",target="gw"} 0.002
probe_icmp_duration_seconds{kind="icmp",location="local",phase="rtt",target="gw"} 0.0015
`
	require.NoError(t, testutil.GatherAndCompare(withoutHelp(parsed(t, text)), strings.NewReader(want), "probe_icmp_duration_seconds"))

	full := NewProbe(ProbeOptions{Full: true})
	full.Observe(prober.Result{TargetID: "gw", Kind: "icmp", Location: "local", RemoteAddr: "::1"})
	full.Observe(prober.Result{TargetID: "v4", Kind: "tcp", Location: "local", RemoteAddr: "127.0.0.1:22"})
	full.Observe(prober.Result{TargetID: "v6", Kind: "tcp", Location: "local", RemoteAddr: "[::1]:22"})
	want = `
# HELP probe_ip_protocol x
# TYPE probe_ip_protocol gauge
probe_ip_protocol{kind="icmp",location="local",target="gw"} 6
probe_ip_protocol{kind="tcp",location="local",target="v4"} 4
probe_ip_protocol{kind="tcp",location="local",target="v6"} 6
`
	require.NoError(t, testutil.GatherAndCompare(withoutHelp(parsed(t, scrape(t, prometheus.NewRegistry(), full))), strings.NewReader(want), "probe_ip_protocol"))
}

// A new target's counters exist at 0 from its first check, and every
// failure class from the start, so panels show 0 and not "No data".
func TestCountersStartAtZero(t *testing.T) {
	for _, full := range []bool{false, true} {
		reg := prometheus.NewPedanticRegistry()
		probe := NewProbe(ProbeOptions{Full: full, Registerer: reg})
		text := scrape(t, reg, probe)
		require.Equal(t, len(prober.FailureClasses), count(t, text, "upwatch_check_failures_total"))
		require.NotContains(t, text, "upwatch_check_failures_total{class=\"connect\"} 1")

		probe.Observe(prober.Result{TargetID: "new", Kind: "http", Location: "local", Success: true})
		text = scrape(t, reg, probe)
		mfs, err := parsed(t, text).Gather()
		require.NoError(t, err)
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "upwatch_checks_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" {
						got[l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
		}
		require.Equal(t, map[string]float64{"success": 1, "failure": 0}, got, "full=%v", full)
	}
}

// withoutHelp blanks HELP texts, so comparisons are about names, types,
// labels and values.
func withoutHelp(g prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		for _, mf := range mfs {
			mf.Help = new("x")
		}
		return mfs, err
	})
}

// Observing a known target's result allocates nothing, blackbox details
// included: it runs for every check.
func TestObserveDoesNotAllocate(t *testing.T) {
	for _, full := range []bool{false, true} {
		probe := NewProbe(ProbeOptions{Full: full, Registerer: prometheus.NewRegistry()})
		res := prober.Result{TargetID: "web", Kind: "http", Location: "local", Success: true, StatusCode: 200,
			HTTPVersion: "HTTP/1.1", TLSVersion: "TLS 1.3", Redirects: 1, ContentLength: 12, BodyBytes: 12,
			LastChainExpiry: time.Unix(1<<31, 0), RemoteAddr: "[2001:db8::1]:443"}
		tcp := prober.Result{TargetID: "db", Kind: "tcp", Location: "local", RemoteAddr: "192.0.2.1:5432", ErrorClass: prober.ClassConnect}
		agent := prober.Result{TargetID: "web", Kind: "http", Location: "eu-west", Success: true, HTTPVersion: "HTTP/2.0"}
		probe.Observe(res)
		probe.Observe(tcp)
		probe.Observe(agent)
		require.Zero(t, testing.AllocsPerRun(100, func() { probe.Observe(res); probe.Observe(tcp); probe.Observe(agent) }), "full=%v", full)
	}
}

// The per-target state is small: at 250,000 targets the process's memory
// is what limits it. Before, a target with one location held 556 bytes.
func TestProbeHoldsLittlePerTarget(t *testing.T) {
	const n = 20_000
	rs := benchResults(n, "local")
	before := heapInUse()
	p := NewProbe(ProbeOptions{})
	for i := range rs {
		p.Observe(rs[i])
	}
	per := float64(heapInUse()-before) / n
	runtime.KeepAlive(p)
	runtime.KeepAlive(rs) // not counted
	t.Logf("%.0f bytes per target", per)
	require.Less(t, per, 300.0)
}
