package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strconv"
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

// row is one target on the dashboard. Its figures and times are
// formatted here rather than by template functions: a thousand rows call
// none.
type row struct {
	ID, Name, Kind, Status string
	Labels                 []string // "k=v", sorted
	SinceAt, LastAt        *stamp   // nil: none
	Last                   *prober.Result
	LastMSText             string
	Up24Text, Up30Text     string
	Spark                  template.HTML
}

// stamp is a time as the "time" template shows it.
type stamp struct{ ISO, UTC string }

func newStamp(t time.Time) *stamp {
	t = t.UTC()
	return &stamp{ISO: t.Format(time.RFC3339), UTC: t.Format("2006-01-02 15:04 UTC")}
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
	s.render(w, r, http.StatusOK, "dashboard", "live", view{Page: "dashboard", Session: sess, Now: s.o.Now(), Data: p})
	return nil
}

// dashboard reads every target of the tenant, its state and last check,
// and its hourly rollups: 24 hourly buckets (the 24 h figures are their
// sum) and the 29 days before them (plus the 24 h, the 30-day figures),
// each one pass over all the targets; closed spans come from the cache.
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
		if ok && status != StatusUnknown && status != StatusPaused && !st.Since.IsZero() {
			rw.SinceAt = newStamp(st.Since)
		}
		for k, v := range t.Labels {
			rw.Labels = append(rw.Labels, k+"="+v)
		}
		sort.Strings(rw.Labels)
		if res, ok := latest[ti.Key]; ok {
			rw.Last, rw.LastAt = &res, newStamp(res.Start)
			rw.LastMSText = strconv.FormatFloat(float64(res.Duration)/float64(time.Millisecond), 'f', 0, 64) + " ms"
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
	// The 30 days are the 24 hours below and the 29 days before them,
	// closed long ago and so read once an hour.
	before, err := s.hours.span(ctx, s.o.Samples, keys, next.Add(-30*24*time.Hour), next.Add(-24*time.Hour), now)
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
		month := before[k]
		month.Merge(day)
		p.Rows[i].Up24Text, p.Rows[i].Up30Text = formatPercent(uptime(day)), formatPercent(uptime(month))
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
	b := make([]byte, 0, 512)
	b = append(b, `<svg class="spark" width="96" height="20" viewBox="0 0 96 20" role="img" aria-label="mean response time per hour, last 24 h: up to `...)
	b = strconv.AppendFloat(b, hi, 'f', 0, 64)
	b = append(b, " ms; "...)
	b = strconv.AppendInt(b, int64(failed), 10)
	b = append(b, ` hours with failures"><polyline points="`...)
	var marks []byte
	for i, p := range pts {
		if !p.ok {
			continue
		}
		x, y := float64(i)*step, h-1
		if hi > 0 {
			y = h - 1 - (p.ms/hi)*(h-3)
		}
		b = appendCoord(b, x)
		b = append(b, ',')
		b = appendCoord(b, y)
		b = append(b, ' ')
		if p.failed {
			marks = append(marks, `<rect class="fail" x="`...)
			marks = appendCoord(marks, max(0, x-1.5))
			marks = append(marks, `" y="0" width="3" height="3"/>`...)
		}
	}
	b = append(b, `"/>`...)
	b = append(b, marks...)
	b = append(b, `</svg>`...)
	return template.HTML(b) // numbers only
}

// appendCoord appends v as %.1f does.
func appendCoord(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'f', 1, 64) }
