//go:build unix

package schedule

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/upwatch/upwatch/internal/cputime"
	"github.com/upwatch/upwatch/prober"
)

// BenchmarkUpdate100k is one API write's cost in the scheduler: Update with
// the same 100,000 targets, as liveTargets passes them after every write.
// "copies" keeps each check block (config targets: their blocks are
// shared), "one-changed" also replaces one target's block, "rebuilt" gives
// every target a new block of equal content (each one is hashed again).
//
//	go test -run '^$' -bench Update100k -benchtime=5x ./prober/schedule/
func BenchmarkUpdate100k(b *testing.B) {
	const n = 100_000
	base := manyTargets(n, time.Minute)
	for i := range base {
		base[i].HTTP.ExpectStatus = []string{"200"}
		base[i].Labels = map[string]string{"team": "ops"}
	}
	for _, tc := range []struct {
		name string
		edit func(ts []prober.Target, i int)
	}{
		{"copies", func([]prober.Target, int) {}},
		{"one-changed", func(ts []prober.Target, i int) {
			ts[i%n].HTTP = &prober.HTTPSpec{URL: fmt.Sprintf("http://moved-%d.example/", i)}
		}},
		{"rebuilt", func(ts []prober.Target, _ int) {
			for j := range ts {
				h := *ts[j].HTTP
				ts[j].HTTP = &h
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Options{Check: okCheck})
			s.Update(slices.Clone(base))
			var cpu time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				ts := slices.Clone(base)
				tc.edit(ts, i)
				b.StartTimer()
				c := cputime.Used()
				s.Update(ts)
				cpu += cputime.Used() - c
			}
			// CPU time, not wall time: it is what a shared machine keeps steady.
			b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
		})
	}
}
