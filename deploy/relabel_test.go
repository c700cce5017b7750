package deploy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The shipped prometheus.yml copies target into instance for probe_*
// series (blackbox dashboards key on instance), keeps upwatch's address in
// upwatch_instance, and leaves upwatch_* series alone: the rules as
// Prometheus itself applies them (promtool check config validates the
// file in TestPromtoolCheckConfig).
func TestPrometheusRelabelsTargetToInstance(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("prometheus", "prometheus.yml"))
	require.NoError(t, err)
	var cfg struct {
		ScrapeConfigs []struct {
			JobName              string            `yaml:"job_name"`
			MetricRelabelConfigs []*relabel.Config `yaml:"metric_relabel_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	var rules []*relabel.Config
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == "upwatch" {
			rules = sc.MetricRelabelConfigs
		}
	}
	require.NotEmpty(t, rules, "job upwatch has metric_relabel_configs")
	for _, r := range rules {
		require.NoError(t, r.Validate(model.UTF8Validation))
	}

	scraped := func(kv ...string) labels.Labels {
		return labels.FromStrings(append([]string{"job", "upwatch", "instance", "upwatch:8080"}, kv...)...)
	}
	for _, tc := range []struct {
		in, want labels.Labels
	}{
		{scraped("__name__", "probe_success", "target", "shop", "kind", "http", "location", "local"),
			labels.FromStrings("__name__", "probe_success", "job", "upwatch", "instance", "shop", "upwatch_instance", "upwatch:8080",
				"target", "shop", "kind", "http", "location", "local")},
		{scraped("__name__", "probe_tls_version_info", "target", "a;b", "version", "TLS 1.3"),
			labels.FromStrings("__name__", "probe_tls_version_info", "job", "upwatch", "instance", "a;b", "upwatch_instance", "upwatch:8080",
				"target", "a;b", "version", "TLS 1.3")},
		// upwatch's own dashboards filter upwatch_* on upwatch's address.
		{scraped("__name__", "upwatch_incidents_total", "target", "shop"), scraped("__name__", "upwatch_incidents_total", "target", "shop")},
		{scraped("__name__", "upwatch_checks_total", "target", "shop", "result", "success"),
			scraped("__name__", "upwatch_checks_total", "target", "shop", "result", "success")},
		{scraped("__name__", "upwatch_scheduler_missed_checks_total"), scraped("__name__", "upwatch_scheduler_missed_checks_total")},
	} {
		lb := labels.NewBuilder(tc.in)
		require.True(t, relabel.ProcessBuilder(lb, rules...))
		require.Equal(t, tc.want.String(), lb.Labels().String())
	}
}
