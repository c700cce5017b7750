package sla

import (
	"testing"
	"time"

	"github.com/upwatch/upwatch/tsdb"
)

// benchInput is one target over 90 days: 2 160 hourly rollups of 120
// checks each, 200 incidents of 5–25 minutes, a weekly 2-hour maintenance
// window (13), maintenance excluded, an SLO, the window's last day still
// open (Now one day before To).
func benchInput() Input {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(90 * 24 * time.Hour)
	rs := hours(from, span(2160)...)
	for i := range rs {
		rs[i].Failures = int64(i % 7)
	}
	var incs []Interval
	for i := range 200 {
		s := from.Add(time.Duration(i) * 10 * time.Hour)
		incs = append(incs, Interval{s, s.Add(time.Duration(5+i%21) * time.Minute)})
	}
	var maint []Interval
	for w := range 13 {
		s := from.Add(time.Duration(w)*7*24*time.Hour + 2*time.Hour)
		maint = append(maint, Interval{s, s.Add(2 * time.Hour)})
	}
	return Input{From: from, To: to, Now: to.Add(-24 * time.Hour), Rollups: rs,
		Incidents: incs, Maintenance: maint, ExcludeMaintenance: true, SLO: 99.9}
}

func BenchmarkCompute90Days(b *testing.B) {
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		r := Compute(in)
		if r.Incidents == 0 || r.Checks == 0 {
			b.Fatal("bad input")
		}
	}
}

// Label selector: merge 10 targets' 90 days of rollups, then compute.
func BenchmarkMergeAndCompute10Targets(b *testing.B) {
	in := benchInput()
	lists := make([][]tsdb.Rollup, 10)
	for i := range lists {
		lists[i] = in.Rollups
	}
	b.ReportAllocs()
	for b.Loop() {
		in.Rollups = Merge(lists...)
		_ = Compute(in)
	}
}
