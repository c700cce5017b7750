package web

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/upwatch/upwatch/tsdb"
)

// phaseNames are the check phases, in the order they happen (DESIGN §4).
var phaseNames = []string{"dns", "connect", "tls", "ttfb", "transfer"}

type phaseAvg struct {
	Name string
	MS   float64
}

// phaseChart draws the response time of [from, to) as stacked bars of
// the mean phase timings per 15 minutes (96 bars); each bar's title
// spells out its numbers, and failed periods are marked below the axis.
// It also returns each phase's mean over the whole range.
func phaseChart(samples []sampleDoc, from, to time.Time) (template.HTML, []phaseAvg) {
	const n = 96
	type bucket struct {
		count, failed int
		ph            [5]float64 // seconds, summed
	}
	var bs [n]bucket
	var tot [5]float64
	var all int
	span := to.Sub(from)
	for _, s := range samples {
		i := int(float64(n) * float64(s.Time.Sub(from)) / float64(span))
		if i < 0 || i >= n {
			continue
		}
		b := &bs[i]
		b.count++
		all++
		if !s.Success {
			b.failed++
		}
		ph := [5]float64{s.Phases.DNS, s.Phases.Connect, s.Phases.TLS, s.Phases.TTFB, s.Phases.Transfer}
		var sum float64
		for j, v := range ph {
			b.ph[j] += v
			tot[j] += v
			sum += v
		}
		if sum == 0 { // kinds without phases: show the total as ttfb
			b.ph[3] += s.DurationSeconds
			tot[3] += s.DurationSeconds
		}
	}
	var avgs []phaseAvg
	if all > 0 {
		for j, name := range phaseNames {
			avgs = append(avgs, phaseAvg{Name: name, MS: tot[j] / float64(all) * 1000})
		}
	}
	if all == 0 {
		return `<p class="muted" id="chart-empty">No checks in the last 24 hours.</p>`, nil
	}
	var hi float64
	for _, b := range bs {
		if b.count == 0 {
			continue
		}
		var sum float64
		for _, v := range b.ph {
			sum += v
		}
		hi = max(hi, sum/float64(b.count))
	}
	const w, h, bw = 960.0, 160.0, 10.0
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg id="response-chart" class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="chart-title"><title id="chart-title">Mean response time by phase per 15 minutes, last 24 hours (UTC); highest %.0f ms</title>`, w, h+12, hi*1000)
	for i, b := range bs {
		if b.count == 0 {
			continue
		}
		x := float64(i) * bw
		y := h
		var parts []string
		for j, v := range b.ph {
			mean := v / float64(b.count)
			bh := 0.0
			if hi > 0 {
				bh = mean / hi * (h - 4)
			}
			parts = append(parts, fmt.Sprintf("%s %.0f ms", phaseNames[j], mean*1000))
			if bh <= 0 {
				continue
			}
			y -= bh
			fmt.Fprintf(&sb, `<rect class="ph-%s" x="%.0f" y="%.1f" width="%.0f" height="%.1f"/>`, phaseNames[j], x, y, bw-1, bh)
		}
		at := from.Add(time.Duration(i) * span / n).UTC().Format("15:04")
		fail := ""
		if b.failed > 0 {
			fail = fmt.Sprintf("; %d of %d checks failed", b.failed, b.count)
			fmt.Fprintf(&sb, `<rect class="fail" x="%.0f" y="%.0f" width="%.0f" height="6"/>`, x, h+4, bw-1)
		}
		fmt.Fprintf(&sb, `<rect class="hit" x="%.0f" y="0" width="%.0f" height="%.0f"><title>%s UTC: %s%s</title></rect>`,
			x, bw, h, at, template.HTMLEscapeString(strings.Join(parts, ", ")), fail)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()), avgs
}

// locationStat is one probe location's checks of the last 24 hours.
type locationStat struct {
	Location       string
	Checks, Failed int
	MeanMS, P95MS  float64
	Spark          template.HTML // hourly mean response time
}

// byLocation sums the samples of [from, to) per probe location, sorted by
// name; nil unless more than one location has samples (with one, the
// chart above says it all). Samples without a location are the server's
// own ("local").
func byLocation(samples []sampleDoc, from, to time.Time) []locationStat {
	type acc struct {
		durs   []float64
		failed int
		hours  [24]struct {
			n, failed int
			sum       float64
		}
	}
	accs := map[string]*acc{}
	for _, s := range samples {
		if s.Time.Before(from) || !s.Time.Before(to) {
			continue
		}
		loc := s.Location
		if loc == "" {
			loc = "local"
		}
		a := accs[loc]
		if a == nil {
			a = &acc{}
			accs[loc] = a
		}
		a.durs = append(a.durs, s.DurationSeconds)
		h := &a.hours[min(23, int(24*float64(s.Time.Sub(from))/float64(to.Sub(from))))]
		h.n++
		h.sum += s.DurationSeconds
		if !s.Success {
			a.failed++
			h.failed++
		}
	}
	if len(accs) < 2 {
		return nil
	}
	out := make([]locationStat, 0, len(accs))
	for loc, a := range accs {
		slices.Sort(a.durs)
		var sum float64
		for _, d := range a.durs {
			sum += d
		}
		// Nearest rank: the smallest duration at or above 95% of them.
		p95 := a.durs[int(math.Ceil(0.95*float64(len(a.durs))))-1]
		pts := make([]sparkPoint, 24)
		for i, h := range a.hours {
			if h.n > 0 {
				pts[i] = sparkPoint{ok: true, ms: h.sum / float64(h.n) * 1000, failed: h.failed > 0}
			}
		}
		out = append(out, locationStat{Location: loc, Checks: len(a.durs), Failed: a.failed,
			MeanMS: sum / float64(len(a.durs)) * 1000, P95MS: p95 * 1000, Spark: sparkline(pts)})
	}
	slices.SortFunc(out, func(a, b locationStat) int { return strings.Compare(a.Location, b.Location) })
	return out
}

// uptimeBar draws one bar per UTC day for the days days up to today,
// each titled with its date and share of successful checks; the bar's
// height also shows it, so colour is not the only signal. It returns the
// uptime over all of them (nil without checks).
func uptimeBar(rollups []tsdb.Rollup, today time.Time, days int) (template.HTML, *float64) {
	type day struct{ checks, failures int64 }
	ds := make([]day, days)
	first := today.Add(-time.Duration(days-1) * 24 * time.Hour)
	var total tsdb.Rollup
	for _, r := range rollups {
		i := int(r.Hour.Sub(first) / (24 * time.Hour))
		if i < 0 || i >= days {
			continue
		}
		ds[i].checks += r.Checks
		ds[i].failures += r.Failures
		total.Merge(r)
	}
	const bw, h = 8.0, 30.0
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg id="uptime-bar" class="bar" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="bar-title"><title id="bar-title">Daily uptime, last %d days (UTC)</title>`, bw*float64(days), h, days)
	for i, d := range ds {
		date := first.Add(time.Duration(i) * 24 * time.Hour).Format("2006-01-02")
		x := float64(i) * bw
		if d.checks == 0 {
			fmt.Fprintf(&sb, `<rect class="nodata" x="%.0f" y="%.0f" width="%.0f" height="4"><title>%s: no data</title></rect>`, x, h-4, bw-2, date)
			continue
		}
		up := 100 * float64(d.checks-d.failures) / float64(d.checks)
		class := "up"
		switch {
		case up < 99:
			class = "down"
		case d.failures > 0:
			class = "degraded"
		}
		bh := max(6, h*up/100)
		fmt.Fprintf(&sb, `<rect class="%s" x="%.0f" y="%.1f" width="%.0f" height="%.1f"><title>%s: %s (%d checks, %d failed)</title></rect>`,
			class, x, h-bh, bw-2, bh, date, formatPercent(&up), d.checks, d.failures)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()), uptime(total)
}
