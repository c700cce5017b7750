package quota

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

func TestDefaultsAndOverrides(t *testing.T) {
	var c Config
	c.Normalize()
	assert.Equal(t, Limits{MaxTargets: 1000, MinInterval: 10 * time.Second, MaxChecksPerSecond: 20}, c.Limits)
	assert.Empty(t, c.Validate("quotas"))

	c.Tenants = map[string]Limits{"default": {MaxChecksPerSecond: 500}}
	assert.Equal(t, Limits{MaxTargets: 1000, MinInterval: 10 * time.Second, MaxChecksPerSecond: 500}, c.For("default"))
	assert.Equal(t, c.Limits, c.For("acme"))
}

func TestUsage(t *testing.T) {
	ts := []prober.Target{
		{Interval: time.Second},
		{Interval: 10 * time.Second},
		{Interval: time.Second, Paused: true}, // counted, not run
	}
	u := UsageOf(ts)
	assert.Equal(t, 3, u.Targets)
	assert.InDelta(t, 1.1, u.ChecksPerSecond, 1e-9)

	l := Limits{MaxTargets: 3, MinInterval: 10 * time.Second, MaxChecksPerSecond: 1}
	// Over both limits and rising: two violations naming them.
	vs := l.Usage(Usage{Targets: 3, ChecksPerSecond: 1}, Usage{Targets: 4, ChecksPerSecond: 1.1})
	require.Len(t, vs, 2)
	assert.Equal(t, LimitMaxTargets, vs[0].Limit)
	assert.Equal(t, 3, vs[0].Value)
	assert.Equal(t, 3, vs[0].Usage)
	assert.Equal(t, 4, vs[0].Requested)
	assert.Equal(t, LimitMaxChecksPerSecond, vs[1].Limit)
	assert.Equal(t, 1.1, vs[1].Requested)
	// Over a lowered limit but not rising: allowed.
	assert.Empty(t, l.Usage(Usage{Targets: 9, ChecksPerSecond: 5}, Usage{Targets: 8, ChecksPerSecond: 5}))
	// At the limit exactly: allowed.
	assert.Empty(t, l.Usage(Usage{}, Usage{Targets: 3, ChecksPerSecond: 1}))

	fast := prober.Target{Interval: time.Second}
	v := l.Interval("targets[2].interval", nil, fast)
	require.NotNil(t, v)
	assert.Equal(t, "10s", v.Value)
	assert.Equal(t, "targets[2].interval", v.Path)
	assert.Nil(t, l.Interval("interval", nil, prober.Target{Interval: 10 * time.Second}))
	// Kept as it was (the minimum was raised since): allowed; changed to
	// another short interval or resumed: refused.
	assert.Nil(t, l.Interval("interval", &fast, fast))
	assert.NotNil(t, l.Interval("interval", &fast, prober.Target{Interval: 2 * time.Second}))
	paused := prober.Target{Interval: time.Second, Paused: true}
	assert.NotNil(t, l.Interval("interval", &paused, fast))
	assert.Nil(t, l.Interval("interval", &fast, paused))
}

func TestValidate(t *testing.T) {
	c := Config{
		Limits:  Limits{MaxTargets: 1_000_000, MinInterval: 100 * time.Millisecond, MaxChecksPerSecond: -1},
		Tenants: map[string]Limits{"big": {MaxTargets: 5000}, "bad": {MinInterval: 48 * time.Hour}},
	}
	var paths []string
	for _, e := range c.Validate("quotas") {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"quotas.max_targets", "quotas.min_interval", "quotas.max_checks_per_second", "quotas.tenants.bad.min_interval"}, paths)
}
