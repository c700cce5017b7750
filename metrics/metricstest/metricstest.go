// Package metricstest reads series written as Prometheus text back, so
// tests can compare them with testutil as if a registry had gathered them.
package metricstest

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Gatherer renders each of ws now and returns their families sorted as a
// registry gathers them (families by name, labels by name, series by
// labels). It fails t if the text does not parse.
func Gatherer(t testing.TB, ws ...io.WriterTo) prometheus.Gatherer {
	t.Helper()
	var buf bytes.Buffer
	for _, w := range ws {
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatalf("writing series: %v", err)
		}
	}
	return Parse(t, buf.String())
}

// Parse is Gatherer over an exposition already rendered.
func Parse(t testing.TB, text string) prometheus.Gatherer {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	out := make([]*dto.MetricFamily, 0, len(mfs))
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		}
		slices.SortFunc(mf.Metric, func(a, b *dto.Metric) int { return strings.Compare(labelKey(a), labelKey(b)) })
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return out, nil })
}

func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.GetLabel() {
		b.WriteString(l.GetName())
		b.WriteByte(0)
		b.WriteString(l.GetValue())
		b.WriteByte(0)
	}
	return b.String()
}
