package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/metrics/metricstest"
)

func TestPerTargetFamilies(t *testing.T) {
	up := NewPerTargetGauge("x_up", "Up.")
	n := NewPerTargetCounter("x_total", "Things.")
	require.Empty(t, scrape(t, prometheus.NewRegistry(), NewProbe(ProbeOptions{}), up, n), "no series, no header")

	up.Set("a", 1)
	up.Set("b", -1)
	up.Set("c", 0)
	up.Set("a", 0)
	up.Delete("b")
	up.Delete("nope")
	n.Add("a", 0)
	n.Add("b", 1)
	n.Add("b", 2)
	n.Add(`q"\`, 1)
	v, ok := n.Value("b")
	require.True(t, ok)
	require.Equal(t, 3.0, v)
	_, ok = up.Value("b")
	require.False(t, ok)

	text := scrape(t, prometheus.NewRegistry(), NewProbe(ProbeOptions{}), up, n)
	want := `
# HELP x_up Up.
# TYPE x_up gauge
x_up{target="a"} 0
x_up{target="c"} 0
# HELP x_total Things.
# TYPE x_total counter
x_total{target="a"} 0
x_total{target="b"} 3
x_total{target="q\"\\"} 1
`
	require.NoError(t, testutil.GatherAndCompare(metricstest.Parse(t, text), strings.NewReader(want)))
}
