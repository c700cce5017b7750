package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/tenancy"
)

// view is everything a page template (and its feed) shows. It holds no
// target id, URL or error: only what the page's editors wrote and figures.
type view struct {
	Title, LogoURL string
	URL, FeedURL   string
	Overall        state
	Components     []componentView
	Active, Past   []incidentView
	Maintenance    []maintenanceView
	Generated      time.Time
	Days           int
}

// state is a component's (or the page's) condition: a CSS class, a word
// and a symbol, so colour is never the only signal.
type state struct {
	Class, Label, Symbol string
	rank                 int // higher is worse
}

var (
	stateUp          = state{"up", "Operational", "✓", 0}
	stateUnknown     = state{"unknown", "No data", "?", 1}
	statePaused      = state{"paused", "Paused", "‖", 1}
	stateMaintenance = state{"maint", "Under maintenance", "⚒", 2}
	statePartial     = state{"partial", "Partial outage", "!", 3}
	stateDown        = state{"down", "Major outage", "✕", 4}
)

type componentView struct {
	Name, Description string
	State             state
	Uptime            string // over the days shown, "99.95%" or "no data"
	Bars              []bar
	// BarsHTML is Bars drawn (see barsHTML).
	BarsHTML template.HTML
}

// bar is a run of days with the same look: days without downtime and days
// without data are merged, so a page of many components stays small; a day
// with downtime is its own bar.
type bar struct {
	Class string // full, some, major, none
	Span  int    // days
	Label string
	from  string // the first day, for merging
}

type incidentView struct {
	ID, Title string
	Status    string
	Start     time.Time
	Updated   time.Time
	Updates   []updateView // newest first
}

type updateView struct {
	Status string
	Body   string
	At     time.Time
}

type maintenanceView struct {
	Start, End time.Time
	Active     bool
	Components []string
}

// build reads a page's stores and computes what it shows.
func (h *Handler) build(ctx context.Context, p registry.StatusPage, base string) (view, error) {
	var spec Spec
	if err := json.Unmarshal(p.Spec, &spec); err != nil {
		return view{}, fmt.Errorf("status page %s: stored spec: %w", p.ID, err)
	}
	now := h.o.Now().UTC()
	v := view{Title: spec.Title, LogoURL: spec.LogoURL, URL: base, FeedURL: base + "/feed.atom", Generated: now, Days: Days}
	all, err := h.o.Targets(ctx, p.TenantID)
	if err != nil {
		return view{}, err
	}
	windows, err := h.o.Windows(ctx, p.TenantID)
	if err != nil {
		return view{}, err
	}
	// The page's targets, each once, in the order the components name
	// them; ids the tenant no longer has are left out.
	byID := make(map[string]tenancy.TargetInfo, len(all))
	for _, t := range all {
		byID[t.Target.ID] = t
	}
	index := map[string]int{}
	var targets []tenancy.TargetInfo
	for _, c := range spec.Components {
		for _, id := range c.Targets {
			if t, ok := byID[id]; ok {
				if _, seen := index[id]; !seen {
					index[id] = len(targets)
					targets = append(targets, t)
				}
			}
		}
	}
	days, err := h.uptime.Days(ctx, targets, Days, windows)
	if err != nil {
		return view{}, err
	}
	v.Overall = stateUp
	for _, c := range spec.Components {
		var members []int
		for _, id := range c.Targets {
			if i, ok := index[id]; ok {
				members = append(members, i)
			}
		}
		cv := componentView{Name: c.Name, Description: c.Description}
		cv.State = h.componentState(now, targets, members, windows)
		cv.Uptime, cv.Bars = bars(days, members)
		cv.BarsHTML = barsHTML(cv.Bars)
		if cv.State.rank > v.Overall.rank && cv.State != statePaused && cv.State != stateUnknown {
			v.Overall = cv.State
		}
		v.Components = append(v.Components, cv)
	}
	if v.Overall == stateDown && len(v.Components) > 1 {
		v.Overall = statePartial
	}
	v.Active, v.Past, err = h.incidents(ctx, p, now)
	if err != nil {
		return view{}, err
	}
	v.Maintenance, err = maintenance(spec, byID, windows, now)
	return v, err
}

// componentState is the worst state of a component's targets: down when
// all are down, partial when some are, under maintenance when one is in a
// window, paused or no data when all are.
func (h *Handler) componentState(now time.Time, targets []tenancy.TargetInfo, members []int, windows []alerting.Window) state {
	if len(members) == 0 {
		return stateUnknown
	}
	var down, paused, unknown, maint int
	for _, i := range members {
		t := targets[i]
		for wi := range windows {
			if windows[wi].Active(now, t.Target.ID, t.Target.Labels) {
				maint++
				break
			}
		}
		if t.Target.Paused {
			paused++
			continue
		}
		st, ok := h.o.States(t.Key)
		switch {
		case !ok || st.Status == "" || st.Status == alerting.StatusUnknown:
			unknown++
		case st.Status == alerting.StatusDown:
			down++
		}
	}
	n := len(members)
	switch {
	case down == n:
		return stateDown
	case down > 0:
		return statePartial
	case maint > 0:
		return stateMaintenance
	case paused == n:
		return statePaused
	case unknown+paused == n:
		return stateUnknown
	}
	return stateUp
}

// bars pools the members' days (time up and down add) into one bar per
// day, merges runs of equal days without downtime, and gives the uptime
// over all the days.
func bars(days [][]sla.Report, members []int) (string, []bar) {
	var out []bar
	var upAll, downAll time.Duration
	if len(members) == 0 || len(days) == 0 {
		return "no data", []bar{{Class: "none", Span: Days, Label: fmt.Sprintf("%d days: no data", Days)}}
	}
	n := len(days[members[0]])
	for d := range n {
		var up, down time.Duration
		var from time.Time
		for _, i := range members {
			r := days[i][d]
			up += r.Up
			down += r.Downtime
			from = r.From
		}
		upAll += up
		downAll += down
		day := from.Format("Jan 2")
		b := bar{Class: "none", Span: 1}
		switch {
		case up+down == 0:
			b.Label = "no data"
		case down == 0:
			b.Class, b.Label = "full", "100% up"
		default:
			pct := 100 * float64(up) / float64(up+down)
			b.Class = "some"
			if pct < 99 {
				b.Class = "major"
			}
			b.Label = fmt.Sprintf("%s up, %s down", percent(pct), roundDur(down))
		}
		if k := len(out) - 1; k >= 0 && b.Class != "some" && b.Class != "major" && out[k].Class == b.Class {
			out[k].Span++
			out[k].Label = out[k].from + " – " + day + ": " + b.Label
			continue
		}
		b.from = day
		b.Label = day + ": " + b.Label
		out = append(out, b)
	}
	if upAll+downAll == 0 {
		return "no data", out
	}
	return percent(100*float64(upAll)/float64(upAll+downAll)) + " uptime", out
}

// barsHTML draws bars as the page's <i> elements, each with its label as
// text (hidden until hovered, read by screen readers), escaped: a page has
// thousands, and drawing them here costs a fraction of the template's
// reflective escaping of each one.
func barsHTML(bars []bar) template.HTML {
	var b strings.Builder
	for _, br := range bars {
		b.WriteString(`<i class="` + br.Class + `"`)
		if br.Span > 1 {
			b.WriteString(` style="flex:` + strconv.Itoa(br.Span) + `"`)
		}
		b.WriteString(`><b>` + html.EscapeString(br.Label) + `</b></i>`)
	}
	return template.HTML(b.String()) //nolint:gosec // every text in it is escaped above; classes are constants
}

// percent shows an uptime without rounding up to 100%.
func percent(p float64) string {
	if p >= 100 {
		return "100%"
	}
	s := strconv.FormatFloat(float64(int64(p*100))/100, 'f', 2, 64)
	return s + "%"
}

// roundDur shows a downtime briefly: "45s", "17m", "2h5m".
func roundDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute)/time.Minute))
	}
	d = d.Round(time.Minute)
	if m := int(d % time.Hour / time.Minute); m > 0 {
		return fmt.Sprintf("%dh%dm", int(d/time.Hour), m)
	}
	return fmt.Sprintf("%dh", int(d/time.Hour))
}

// incidents are the page's open incidents and those resolved in the last
// shownIncidentDays, newest first, at most maxIncidentsShown in all.
func (h *Handler) incidents(ctx context.Context, p registry.StatusPage, now time.Time) (active, past []incidentView, err error) {
	incs, err := h.o.Store.StatusIncidents(ctx, p.TenantID, p.ID, time.Time{})
	if err != nil {
		return nil, nil, err
	}
	cutoff := now.AddDate(0, 0, -shownIncidentDays)
	for _, inc := range incs {
		if len(inc.Updates) == 0 {
			continue
		}
		iv := incidentView{ID: inc.ID, Title: inc.Title, Start: inc.CreatedAt}
		for _, u := range slices.Backward(inc.Updates) {
			iv.Updates = append(iv.Updates, updateView{Status: u.Status, Body: u.Body, At: u.At})
		}
		iv.Status, iv.Updated = iv.Updates[0].Status, iv.Updates[0].At
		switch {
		case iv.Status != Resolved:
			active = append(active, iv)
		case iv.Updated.After(cutoff) && len(past) < maxIncidentsShown:
			past = append(past, iv)
		}
	}
	return active, past, nil
}

// maintenance lists the periods of the tenant's windows that cover a
// page's target, from those running now to maxMaintenanceAheadDays ahead,
// with the components they touch (never the window's name or targets).
func maintenance(spec Spec, byID map[string]tenancy.TargetInfo, windows []alerting.Window, now time.Time) ([]maintenanceView, error) {
	type key struct{ start, end time.Time }
	found := map[key]*maintenanceView{}
	var order []key
	to := now.AddDate(0, 0, maxMaintenanceAheadDays)
	for wi := range windows {
		w := &windows[wi]
		var comps []string
		for _, c := range spec.Components {
			for _, id := range c.Targets {
				if t, ok := byID[id]; ok && w.Applies(t.Target.ID, t.Target.Labels) {
					comps = append(comps, c.Name)
					break
				}
			}
		}
		if len(comps) == 0 {
			continue
		}
		ps, err := w.Periods(now.Add(-7*24*time.Hour), to)
		if err != nil {
			continue // a window too frequent to list is left off, not an error page
		}
		for _, p := range ps {
			if !p.End.After(now) {
				continue
			}
			k := key{p.Start.UTC(), p.End.UTC()}
			m, ok := found[k]
			if !ok {
				m = &maintenanceView{Start: k.start, End: k.end, Active: !p.Start.After(now)}
				found[k] = m
				order = append(order, k)
			}
			for _, c := range comps {
				if !slices.Contains(m.Components, c) {
					m.Components = append(m.Components, c)
				}
			}
		}
	}
	slices.SortFunc(order, func(a, b key) int { return a.start.Compare(b.start) })
	out := make([]maintenanceView, 0, len(order))
	for _, k := range order {
		out = append(out, *found[k])
	}
	if len(out) > maxIncidentsShown {
		out = out[:maxIncidentsShown]
	}
	return out, nil
}
