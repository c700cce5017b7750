package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMetricsPerTarget: by default a target exports the blackbox core (no
// phase series, checks counted without the target label); with
// metrics.per_target: full it exports the phases and per-target counters
// too. Either way the exposition is valid and carries the alert series.
func TestMetricsPerTarget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	defer srv.Close()
	for _, tc := range []struct {
		section string
		full    bool
	}{{"", false}, {"metrics: {per_target: core}", false}, {"metrics: {per_target: full}", true}} {
		t.Run(tc.section, func(t *testing.T) {
			cfg := testConfig(t, tc.section+`
allow_private_targets: true
targets:
  - {name: web, kind: http, interval: 1s, timeout: 500ms, http: {url: "`+srv.URL+`/"}}
`)
			r := start(t, cfg, Options{})
			var text string
			require.Eventually(t, func() bool {
				text = get(t, r.addr+"/metrics")
				// (The registry is gathered before the per-target series are
				// written: a check may land in between, so wait for both.)
				return metricValue(text, "probe_success", `target="web"`) == 1 && metricValue(text, "upwatch_target_up", `target="web"`) >= -1 &&
					metricValue(text, "upwatch_checks_total", `result="success"`) >= 1
			}, 30*time.Second, 50*time.Millisecond)
			promtoolCheck(t, text)
			require.Equal(t, 200.0, metricValue(text, "probe_http_status_code", `target="web"`))
			require.GreaterOrEqual(t, metricValue(text, "probe_duration_seconds", `target="web"`), 0.0)
			require.GreaterOrEqual(t, metricValue(text, "upwatch_incidents_total", `target="web"`), 0.0)
			if tc.full {
				require.GreaterOrEqual(t, metricValue(text, "probe_http_duration_seconds", `target="web"`, `phase="connect"`), 0.0)
				require.GreaterOrEqual(t, metricValue(text, "probe_dns_lookup_time_seconds", `target="web"`), 0.0)
				require.GreaterOrEqual(t, metricValue(text, "upwatch_checks_total", `target="web"`, `result="success"`), 1.0)
			} else {
				require.NotContains(t, text, "probe_http_duration_seconds")
				require.NotContains(t, text, "probe_dns_lookup_time_seconds")
				require.Equal(t, -1.0, metricValue(text, "upwatch_checks_total", `target="web"`))
				require.GreaterOrEqual(t, metricValue(text, "upwatch_checks_total", `kind="http"`, `result="success"`), 1.0)
			}
			r.shutdown(t)
		})
	}
}
