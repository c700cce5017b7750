package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

func TestObserveUsesBlackboxNames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := NewProbe(reg)
	expiry := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	p.Observe(prober.Result{
		TargetID: "web", Kind: "http", Location: "local", Success: true, StatusCode: 200,
		Duration: 150 * time.Millisecond, TLSExpiry: expiry,
		Phases: prober.Phases{DNS: 10 * time.Millisecond, Connect: 20 * time.Millisecond, TLS: 30 * time.Millisecond, TTFB: 40 * time.Millisecond, Transfer: 50 * time.Millisecond},
	})
	p.Observe(prober.Result{TargetID: "db", Kind: "tcp", Location: "local", ErrorClass: prober.ClassConnect, Duration: time.Millisecond})

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
# HELP upwatch_checks_total Checks run, by target and result (success or failure).
# TYPE upwatch_checks_total counter
upwatch_checks_total{kind="http",location="local",result="success",target="web"} 1
upwatch_checks_total{kind="tcp",location="local",result="failure",target="db"} 1
# HELP upwatch_check_failures_total Failed checks by failure class, over all targets.
# TYPE upwatch_check_failures_total counter
upwatch_check_failures_total{class="connect"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"probe_success", "probe_http_duration_seconds", "probe_http_status_code",
		"probe_ssl_earliest_cert_expiry", "upwatch_checks_total", "upwatch_check_failures_total"))
	n, err := testutil.GatherAndCount(reg, "probe_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestForgetDeletesEverySeriesOfTheTarget(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewProbe(reg)
	p.Observe(prober.Result{TargetID: "gone", Kind: "http", Location: "local", Success: true})
	p.Observe(prober.Result{TargetID: "kept", Kind: "http", Location: "local", Success: true})
	p.Forget("gone")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				require.False(t, l.GetName() == "target" && l.GetValue() == "gone", "%s still has target=gone", mf.GetName())
			}
		}
	}
	n, err := testutil.GatherAndCount(reg, "probe_success")
	require.NoError(t, err)
	require.Equal(t, 1, n)
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
	reg := prometheus.NewRegistry()
	p := NewProbe(reg)
	p.Observe(prober.Result{TargetID: "paused", Kind: "http", Location: "local"})
	p.Observe(prober.Result{TargetID: "kept", Kind: "http", Location: "local", Success: true})
	p.Retain([]string{"kept"})
	p.Observe(prober.Result{TargetID: "paused", Kind: "http", Location: "local"})
	want := `
# HELP probe_success Whether the last check succeeded (1) or failed (0).
# TYPE probe_success gauge
probe_success{kind="http",location="local",target="kept"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "probe_success"))
	p.Retain([]string{"kept", "paused"})
	p.Observe(prober.Result{TargetID: "paused", Kind: "http", Location: "local", Success: true})
	n, err := testutil.GatherAndCount(reg, "probe_success")
	require.NoError(t, err)
	require.Equal(t, 2, n, "resumed")
}
