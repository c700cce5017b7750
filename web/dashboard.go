package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb"
)

// Statuses a target shows on the dashboard.
const (
	StatusUp       = "up"
	StatusDown     = "down"
	StatusDegraded = "degraded" // up, but slow (the alert engine's degraded flag)
	StatusPaused   = "paused"
	StatusUnknown  = "unknown" // no verdict yet
)

var statuses = []string{StatusUp, StatusDown, StatusDegraded, StatusPaused, StatusUnknown}

// statusOf is what the dashboard shows for a target: paused wins, then
// the alert engine's verdict (degraded when up but slow).
func statusOf(ti tenancy.TargetInfo, st alerting.State, ok bool) string {
	switch {
	case ti.Target.Paused:
		return StatusPaused
	case !ok:
		return StatusUnknown
	case st.Status == alerting.StatusDown:
		return StatusDown
	case st.Status == alerting.StatusUp && st.Degraded:
		return StatusDegraded
	case st.Status == alerting.StatusUp:
		return StatusUp
	}
	return StatusUnknown
}

// row is one target on the dashboard.
type row struct {
	ID, Name, Kind, Status string
	Labels                 []string // "k=v", sorted
	Since                  time.Time
	Last                   *prober.Result
	LastMS                 float64
	Up24, Up30             *float64
	Spark                  template.HTML
}

type dashboardPage struct {
	Rows           []row
	Label, Status  string
	Statuses       []string
	Counts         map[string]int
	Total          int
	Query          string // the filter as a query string, for the fragment URL
	FilterProblems []string
}

type filter struct {
	labels map[string]string
	status string
	query  string
	issues []string
}

func readFilter(r *http.Request) filter {
	q := r.URL.Query()
	f := filter{labels: map[string]string{}, status: q.Get("status")}
	for _, l := range q["label"] {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			f.issues = append(f.issues, fmt.Sprintf("label filter %q must be name=value", l))
			continue
		}
		f.labels[k] = v
	}
	if f.status != "" && !slices.Contains(statuses, f.status) {
		f.issues = append(f.issues, fmt.Sprintf("status %q is not one of %s", f.status, strings.Join(statuses, ", ")))
		f.status = ""
	}
	keep := r.URL.Query()
	keep.Del("status")
	keep.Del("label")
	for k, v := range f.labels {
		keep.Add("label", k+"="+v)
	}
	if f.status != "" {
		keep.Set("status", f.status)
	}
	f.query = keep.Encode()
	return f
}

func (f filter) labelText() string {
	var out []string
	for k, v := range f.labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (s *Server) getDashboard(w http.ResponseWriter, r *http.Request, sess *session) error {
	p, err := s.dashboard(r.Context(), sess, readFilter(r))
	if err != nil {
		return err
	}
	s.renderPage(w, r, sess, http.StatusOK, "dashboard", p)
	return nil
}

// getDashboardRows is the table body alone, which htmx polls.
func (s *Server) getDashboardRows(w http.ResponseWriter, r *http.Request, sess *session) error {
	p, err := s.dashboard(r.Context(), sess, readFilter(r))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "dashboard", "rows", view{Page: "dashboard", Session: sess, Now: s.o.Now(), Data: p})
	return nil
}

// dashboard reads every target of the tenant, its state and last check,
// and its hourly rollups: the 30-day total and 24 hourly buckets (the 24 h
// figures are their sum), each one pass over all the targets; closed hours
// come from the cache.
func (s *Server) dashboard(ctx context.Context, sess *session, f filter) (dashboardPage, error) {
	p := dashboardPage{Label: f.labelText(), Status: f.status, Statuses: statuses, Counts: map[string]int{}, Query: f.query, FilterProblems: f.issues}
	all, err := s.o.API.TargetsOf(ctx, sess.TenantID)
	if err != nil {
		return p, err
	}
	latest, err := s.o.Samples.Latest(ctx)
	if err != nil {
		return p, err
	}
	var keys []string
	for _, ti := range all {
		t := ti.Target
		st, ok := s.o.States(ti.Key)
		status := statusOf(ti, st, ok)
		if !matchLabels(t.Labels, f.labels) {
			continue
		}
		p.Counts[status]++
		p.Total++
		if f.status != "" && status != f.status {
			continue
		}
		rw := row{ID: t.ID, Name: t.Name, Kind: t.Kind, Status: status}
		if ok && status != StatusUnknown && status != StatusPaused {
			rw.Since = st.Since
		}
		for k, v := range t.Labels {
			rw.Labels = append(rw.Labels, k+"="+v)
		}
		sort.Strings(rw.Labels)
		if res, ok := latest[ti.Key]; ok {
			rw.Last, rw.LastMS = &res, float64(res.Duration)/float64(time.Millisecond)
		}
		p.Rows = append(p.Rows, rw)
		keys = append(keys, ti.Key)
	}
	if len(keys) == 0 {
		return p, nil
	}
	now := s.o.Now().UTC()
	hour := now.Truncate(time.Hour)
	next := hour.Add(time.Hour)
	month, err := s.o.Samples.RollupTotals(ctx, keys, next.Add(-30*24*time.Hour), next)
	if err != nil {
		return p, err
	}
	hours := make([]map[string]tsdb.Rollup, 24)
	for i := range hours {
		if hours[i], err = s.hours.hourly(ctx, s.o.Samples, keys, next.Add(time.Duration(i-24)*time.Hour), now); err != nil {
			return p, err
		}
	}
	pts := make([]sparkPoint, 24)
	for i, k := range keys {
		var day tsdb.Rollup
		for h := range hours {
			t := hours[h][k]
			day.Merge(t)
			pts[h] = sparkPoint{}
			if t.Checks > 0 {
				pts[h] = sparkPoint{ok: true, ms: float64(t.LatencySum) / float64(t.Checks) / float64(time.Millisecond), failed: t.Failures > 0}
			}
		}
		p.Rows[i].Up24, p.Rows[i].Up30 = uptime(day), uptime(month[k].Sum)
		p.Rows[i].Spark = sparkline(pts)
	}
	return p, nil
}

func matchLabels(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// uptime is the share of successful checks in percent, nil without checks.
func uptime(t tsdb.Rollup) *float64 {
	if t.Checks <= 0 {
		return nil
	}
	v := 100 * float64(t.Checks-t.Failures) / float64(t.Checks)
	return &v
}

type sparkPoint struct {
	ok     bool // the hour has checks
	ms     float64
	failed bool
}

// sparkline draws the hourly mean response time as an inline SVG; hours
// with a failed check get a marker, and the label says it in words.
func sparkline(pts []sparkPoint) template.HTML {
	const w, h = 96.0, 20.0
	var hi float64
	var n, failed int
	for _, p := range pts {
		if p.ok {
			hi = max(hi, p.ms)
			n++
			if p.failed {
				failed++
			}
		}
	}
	if n == 0 {
		return `<span class="muted">no data</span>`
	}
	step := w / float64(len(pts)-1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" width="96" height="20" viewBox="0 0 96 20" role="img" aria-label="mean response time per hour, last 24 h: up to %.0f ms; %d hours with failures"><polyline points="`, hi, failed)
	var marks strings.Builder
	for i, p := range pts {
		if !p.ok {
			continue
		}
		x, y := float64(i)*step, h-1
		if hi > 0 {
			y = h - 1 - (p.ms/hi)*(h-3)
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		if p.failed {
			fmt.Fprintf(&marks, `<rect class="fail" x="%.1f" y="0" width="3" height="3"/>`, max(0, x-1.5))
		}
	}
	b.WriteString(`"/>`)
	b.WriteString(marks.String())
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers only
}
