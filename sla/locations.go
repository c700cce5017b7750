package sla

import (
	"slices"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// LocationLatency is one probe location's checks and latency percentiles,
// computed exactly as a target's (Quantile over the rollups' histogram).
type LocationLatency struct {
	Location      string
	Checks        int64
	P50, P95, P99 time.Duration
}

// ByLocation sums checks into one histogram per probe location.
type ByLocation struct {
	m map[string]*tsdb.Rollup
}

// Add counts one check.
func (b *ByLocation) Add(r prober.Result) {
	if b.m == nil {
		b.m = map[string]*tsdb.Rollup{}
	}
	ro := b.m[r.Location]
	if ro == nil {
		ro = &tsdb.Rollup{}
		b.m[r.Location] = ro
	}
	ro.Add(r)
}

// Latencies returns each location's figures by name, or nil when fewer
// than two locations have checks: with one, the target's own figures say
// it all.
func (b *ByLocation) Latencies() []LocationLatency {
	if len(b.m) < 2 {
		return nil
	}
	out := make([]LocationLatency, 0, len(b.m))
	for loc, r := range b.m {
		out = append(out, LocationLatency{Location: loc, Checks: r.Checks,
			P50: Quantile(*r, 0.50), P95: Quantile(*r, 0.95), P99: Quantile(*r, 0.99)})
	}
	slices.SortFunc(out, func(a, b LocationLatency) int {
		switch {
		case a.Location < b.Location:
			return -1
		case a.Location > b.Location:
			return 1
		}
		return 0
	})
	return out
}
