package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/metrics/metricstest"
	"github.com/upwatch/upwatch/prober"
)

// scrape serves GET /metrics from Handler(reg, p, extra...) and returns the
// body, checked by promtool when it is installed.
func scrape(t *testing.T, reg prometheus.Gatherer, p *Probe, extra ...io.WriterTo) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(reg, append([]io.WriterTo{p}, extra...)...).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", rec.Header().Get("Content-Type"))
	promtoolCheck(t, rec.Body.String())
	return rec.Body.String()
}

func parsed(t *testing.T, text string) prometheus.Gatherer { return metricstest.Parse(t, text) }

func count(t *testing.T, text, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(parsed(t, text), name)
	require.NoError(t, err)
	return n
}

// promtoolCheck lints the exposition with the real promtool, if installed.
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed; exposition not linted")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	// promtool exits 3 for lint warnings that are style only (counters
	// without _total and the like); anything else is an error.
	if err != nil && !strings.Contains(string(out), "Lint") {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	require.NotContains(t, string(out), "error", "promtool: %s", out)
}

func observeWebAndDB(p *Probe) {
	p.Observe(prober.Result{
		TargetID: "web", Kind: "http", Location: "local", Success: true, StatusCode: 200,
		Duration: 150 * time.Millisecond, TLSExpiry: time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC),
		Phases: prober.Phases{DNS: 10 * time.Millisecond, Connect: 20 * time.Millisecond, TLS: 30 * time.Millisecond, TTFB: 40 * time.Millisecond, Transfer: 50 * time.Millisecond},
	})
	p.Observe(prober.Result{TargetID: "db", Kind: "tcp", Location: "local", ErrorClass: prober.ClassConnect, Duration: time.Millisecond})
}

func TestFullUsesBlackboxNames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewProbe(ProbeOptions{Full: true, Registerer: reg})
	observeWebAndDB(p)
	text := scrape(t, reg, p)

	want := `
# HELP probe_success Whether the last check succeeded (1) or failed (0).
# TYPE probe_success gauge
probe_success{kind="http",location="local",target="web"} 1
probe_success{kind="tcp",location="local",target="db"} 0
# HELP probe_http_duration_seconds Duration of each phase of the last HTTP check in seconds.
# TYPE probe_http_duration_seconds gauge
probe_http_duration_seconds{kind="http",location="local",phase="connect",target="web"} 0.02
probe_http_duration_seconds{kind="http",location="local",phase="processing",target="web"} 0.04
probe_http_duration_seconds{kind="http",location="local",phase="resolve",target="web"} 0.01
probe_http_duration_seconds{kind="http",location="local",phase="tls",target="web"} 0.03
probe_http_duration_seconds{kind="http",location="local",phase="transfer",target="web"} 0.05
# HELP probe_http_status_code HTTP status code of the last check (0 if none).
# TYPE probe_http_status_code gauge
probe_http_status_code{kind="http",location="local",target="web"} 200
# HELP probe_ssl_earliest_cert_expiry Earliest expiry of the peer's certificates as a Unix timestamp.
# TYPE probe_ssl_earliest_cert_expiry gauge
probe_ssl_earliest_cert_expiry{kind="http",location="local",target="web"} 1.798859045e+09
# HELP probe_dns_lookup_time_seconds Name resolution time of the last check in seconds.
# TYPE probe_dns_lookup_time_seconds gauge
probe_dns_lookup_time_seconds{kind="http",location="local",target="web"} 0.01
# HELP upwatch_checks_total Checks run, by target and result (success or failure).
# TYPE upwatch_checks_total counter
upwatch_checks_total{kind="http",location="local",result="failure",target="web"} 0
upwatch_checks_total{kind="http",location="local",result="success",target="web"} 1
upwatch_checks_total{kind="tcp",location="local",result="failure",target="db"} 1
upwatch_checks_total{kind="tcp",location="local",result="success",target="db"} 0
`
	require.NoError(t, testutil.GatherAndCompare(parsed(t, text), strings.NewReader(want),
		"probe_success", "probe_http_duration_seconds", "probe_http_status_code", "probe_ssl_earliest_cert_expiry",
		"probe_dns_lookup_time_seconds", "upwatch_checks_total"))
	require.Equal(t, 1.0, testutil.ToFloat64(p.failures.WithLabelValues("connect")))
	require.Equal(t, 2, count(t, text, "probe_duration_seconds"))
	problems, err := testutil.GatherAndLint(parsed(t, text))
	require.NoError(t, err)
	require.Empty(t, problems)
}

// By default a target exports the blackbox core only, and the checks are
// counted without the target label: 100,000 targets stay a few series each.
func TestCoreIsTheBlackboxCore(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewProbe(ProbeOptions{Registerer: reg})
	observeWebAndDB(p)
	p.Observe(prober.Result{TargetID: "web", Kind: "http", Location: "local", Success: true, StatusCode: 204})
	text := scrape(t, reg, p)

	want := `
# HELP probe_success Whether the last check succeeded (1) or failed (0).
# TYPE probe_success gauge
probe_success{kind="http",location="local",target="web"} 1
probe_success{kind="tcp",location="local",target="db"} 0
# HELP probe_http_status_code HTTP status code of the last check (0 if none).
# TYPE probe_http_status_code gauge
probe_http_status_code{kind="http",location="local",target="web"} 204
# HELP probe_ssl_earliest_cert_expiry Earliest expiry of the peer's certificates as a Unix timestamp.
# TYPE probe_ssl_earliest_cert_expiry gauge
probe_ssl_earliest_cert_expiry{kind="http",location="local",target="web"} 1.798859045e+09
# HELP upwatch_checks_total Checks run, by kind, location and result (success or failure).
# TYPE upwatch_checks_total counter
upwatch_checks_total{kind="http",location="local",result="failure"} 0
upwatch_checks_total{kind="http",location="local",result="success"} 2
upwatch_checks_total{kind="tcp",location="local",result="failure"} 1
upwatch_checks_total{kind="tcp",location="local",result="success"} 0
`
	require.NoError(t, testutil.GatherAndCompare(parsed(t, text), strings.NewReader(want),
		"probe_success", "probe_http_status_code", "probe_ssl_earliest_cert_expiry", "upwatch_checks_total"))
	require.Equal(t, 2, count(t, text, "probe_duration_seconds"))
	require.NotContains(t, text, "probe_http_duration_seconds")
	require.NotContains(t, text, "probe_dns_lookup_time_seconds")
	require.NotContains(t, text, `target="web",kind="http",location="local",result=`)
}

func TestForgetDeletesEverySeriesOfTheTarget(t *testing.T) {
	for _, full := range []bool{false, true} {
		p := NewProbe(ProbeOptions{Full: full})
		for _, id := range []string{"a", "gone", "b", "c"} {
			p.Observe(prober.Result{TargetID: id, Kind: "http", Location: "local", Success: true})
		}
		p.Forget("gone")
		p.Forget("c") // the last one
		p.Forget("never seen")
		p.Observe(prober.Result{TargetID: "d", Kind: "http", Location: "local"})
		text := scrape(t, prometheus.NewRegistry(), p)
		require.NotContains(t, text, `"gone"`)
		require.NotContains(t, text, `target="c"`)
		mfs, err := parsed(t, text).Gather()
		require.NoError(t, err)
		var targets []string
		for _, mf := range mfs {
			if mf.GetName() != "probe_success" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "target" {
						targets = append(targets, l.GetValue())
					}
				}
			}
		}
		slices.Sort(targets)
		require.Equal(t, []string{"a", "b", "d"}, targets)
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterBuildInfo(reg, "1.2.3", "abc")
	n, err := testutil.GatherAndCount(reg, "upwatch_build_info")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// Retain keeps the series of the checked targets only, and a check of a
// removed (or paused) target that ends afterwards does not bring them back.
func TestRetainDropsOtherTargetsAndTheirLateResults(t *testing.T) {
	p := NewProbe(ProbeOptions{})
	p.Observe(prober.Result{TargetID: "paused", Kind: "http", Location: "local"})
	p.Observe(prober.Result{TargetID: "kept", Kind: "http", Location: "local", Success: true})
	p.Retain([]string{"kept"})
	p.Observe(prober.Result{TargetID: "paused", Kind: "http", Location: "local"})
	want := `
# HELP probe_success Whether the last check succeeded (1) or failed (0).
# TYPE probe_success gauge
probe_success{kind="http",location="local",target="kept"} 1
`
	require.NoError(t, testutil.GatherAndCompare(parsed(t, scrape(t, prometheus.NewRegistry(), p)), strings.NewReader(want), "probe_success"))
	p.Retain([]string{"kept", "paused"})
	p.Observe(prober.Result{TargetID: "paused", Kind: "http", Location: "local", Success: true})
	require.Equal(t, 2, count(t, scrape(t, prometheus.NewRegistry(), p), "probe_success"), "resumed")
}

// Label values are escaped as the text format requires, so no target id
// can break the exposition (or inject a series).
func TestLabelValuesAreEscaped(t *testing.T) {
	p := NewProbe(ProbeOptions{Full: true})
	odd := "a\"b\\c\nprobe_success{target=\"x\"} 1 \xff"
	p.Observe(prober.Result{TargetID: odd, Kind: "http", Location: `eu "west"`, Success: true})
	text := scrape(t, prometheus.NewRegistry(), p)
	mfs, err := parsed(t, text).Gather()
	require.NoError(t, err)
	var got []string
	for _, mf := range mfs {
		if mf.GetName() == "probe_success" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					got = append(got, l.GetName()+"="+l.GetValue())
				}
			}
		}
	}
	require.ElementsMatch(t, []string{"target=" + strings.ToValidUTF8(odd, "\uFFFD"), "kind=http", `location=eu "west"`}, got)
}

// The registry's families come first, then the probe's, in one valid
// exposition; gzip is used when the client accepts it.
func TestHandlerServesRegistryAndProbeWithGzip(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	RegisterBuildInfo(reg, "1.2.3", "abc")
	p := NewProbe(ProbeOptions{Registerer: reg})
	observeWebAndDB(p)
	plain := scrape(t, reg, p)
	require.Equal(t, 1, count(t, plain, "upwatch_build_info"))
	require.Equal(t, 4, count(t, plain, "upwatch_checks_total"), "both results of each kind, one at 0")
	require.Equal(t, 2, count(t, plain, "probe_success"))

	for _, tc := range []struct {
		accept string
		gzip   bool
	}{
		{"gzip", true},
		{"deflate, GZIP;q=0.5", true},
		{"gzip;q=0", false},
		{"identity", false},
		{"", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", tc.accept)
		rec := httptest.NewRecorder()
		Handler(reg, p).ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		body := rec.Body.Bytes()
		if tc.gzip {
			require.Equal(t, "gzip", rec.Header().Get("Content-Encoding"), tc.accept)
			zr, err := gzip.NewReader(bytes.NewReader(body))
			require.NoError(t, err)
			body, err = io.ReadAll(zr)
			require.NoError(t, err)
		} else {
			require.Empty(t, rec.Header().Get("Content-Encoding"), tc.accept)
		}
		require.Equal(t, plain, string(body), tc.accept)
	}
}

// A registry that fails to gather fails the scrape rather than serving a
// partial exposition.
func TestHandlerFailsOnGatherError(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dup", Help: "x"}, func() float64 { return 1 }))
	broken := prometheus.Gatherers{reg, reg}
	rec := httptest.NewRecorder()
	Handler(broken, NewProbe(ProbeOptions{})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
}

// A target checked from several locations (probe agents) has series for
// each, labelled with it; forgetting the target drops them all.
func TestSeriesPerLocation(t *testing.T) {
	p := NewProbe(ProbeOptions{})
	p.Observe(prober.Result{TargetID: "web", Kind: "http", Location: "eu-west", Success: true})
	p.Observe(prober.Result{TargetID: "web", Kind: "http", Location: "us-east"})
	p.Observe(prober.Result{TargetID: "web", Kind: "http", Location: "eu-west", Success: true})
	want := `
# HELP probe_success Whether the last check succeeded (1) or failed (0).
# TYPE probe_success gauge
probe_success{kind="http",location="eu-west",target="web"} 1
probe_success{kind="http",location="us-east",target="web"} 0
`
	require.NoError(t, testutil.GatherAndCompare(parsed(t, scrape(t, prometheus.NewRegistry(), p)), strings.NewReader(want), "probe_success"))
	p.Observe(prober.Result{TargetID: "db", Kind: "tcp", Location: "eu-west", Success: true})
	p.Forget("web")
	require.Equal(t, 1, count(t, scrape(t, prometheus.NewRegistry(), p), "probe_success"))
	p.Retain(nil)
	require.Equal(t, 0, count(t, scrape(t, prometheus.NewRegistry(), p), "probe_success"))
}

// Many targets from two locations, spread over several pages of series:
// after Forget and Retain every series left is exported once, with its
// own values, and removed ones are gone.
func TestForgetAndRetainKeepTheRightSeries(t *testing.T) {
	p := NewProbe(ProbeOptions{})
	const n = 700
	want := map[string]bool{}
	for i := range n {
		for _, loc := range []string{"eu", "us"} {
			id := fmt.Sprintf("t%03d", i)
			p.Observe(prober.Result{TargetID: id, Kind: "http", Location: loc, Success: true, StatusCode: 200 + i%100, Duration: time.Duration(i) * time.Millisecond})
			want[fmt.Sprintf(`probe_duration_seconds{target="%s",kind="http",location="%s"} %g`, id, loc, float64(i)/1000)] = true
		}
	}
	var keep []string
	for i := range n {
		id := fmt.Sprintf("t%03d", i)
		switch {
		case i%3 == 0:
			p.Forget(id)
			fallthrough
		case i%5 == 0:
			delete(want, fmt.Sprintf(`probe_duration_seconds{target="%s",kind="http",location="eu"} %g`, id, float64(i)/1000))
			delete(want, fmt.Sprintf(`probe_duration_seconds{target="%s",kind="http",location="us"} %g`, id, float64(i)/1000))
		default:
			keep = append(keep, id)
		}
	}
	p.Retain(keep)
	var buf bytes.Buffer
	_, err := p.WriteTo(&buf)
	require.NoError(t, err)
	got := map[string]bool{}
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.HasPrefix(line, "probe_duration_seconds{") {
			require.False(t, got[line], "twice: %s", line)
			got[line] = true
		}
	}
	require.Equal(t, want, got)
}
