package api

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/sla"
)

// MaxSLAWindow bounds an SLA or report window (rollups are kept five years
// by default).
const MaxSLAWindow = 10 * 366 * 24 * time.Hour

// slaQuery is the window and the caller's choices of an SLA or report
// request.
type slaQuery struct {
	From, To time.Time
	// Period and TimeZone are set for a calendar period.
	Period, TimeZone   string
	Accounting         sla.Accounting
	ExcludeMaintenance bool
	SLO                float64
}

func (q slaQuery) settings() slaSettings {
	m := "include"
	if q.ExcludeMaintenance {
		m = "exclude"
	}
	return slaSettings{Accounting: q.Accounting, Maintenance: m}
}

// parseSLAQuery reads the window — from and to (RFC 3339; to defaults to
// now), or period=day|month|year with day=YYYY-MM-DD, month=YYYY-MM or
// year=YYYY (each defaulting to the current one) read in tz (an IANA zone,
// default UTC) — and accounting=time|checks, maintenance=include|exclude
// and slo (a percentage above 0, at most 100).
func parseSLAQuery(v url.Values, now time.Time) (slaQuery, error) {
	var q slaQuery
	var iss queryIssues
	acc, err := sla.ParseAccounting(v.Get("accounting"))
	if err != nil {
		iss.add("accounting", "must be time or checks (got %q)", v.Get("accounting"))
	}
	q.Accounting = acc
	q.ExcludeMaintenance = iss.oneOf(v, "maintenance", "include", "include", "exclude") == "exclude"
	if s := v.Get("slo"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || f <= 0 || f > 100 {
			iss.add("slo", "must be a percentage above 0 and at most 100, e.g. 99.9 (got %q)", s)
		}
		q.SLO = f
	}

	period := v.Get("period")
	if period == "" {
		for _, p := range []string{"day", "month", "year"} {
			if v.Get(p) != "" {
				iss.add(p, "only with period=%s", p)
			}
		}
		if v.Get("tz") != "" {
			iss.add("tz", "only with a period (day, month or year)")
		}
		from, okFrom := iss.time(v, "from")
		to, okTo := iss.time(v, "to")
		if !okTo && v.Get("to") == "" {
			to, okTo = now, true
		}
		if !okFrom && v.Get("from") == "" {
			iss.add("from", "is required (or give period=day, month or year)")
		}
		if okFrom && okTo {
			switch {
			case !from.Before(to):
				iss.add("to", "must be after from")
			case to.Sub(from) > MaxSLAWindow:
				iss.add("from", "the window may be at most 10 years long")
			}
		}
		q.From, q.To = from, to
		return q, iss.problem()
	}

	for _, p := range []string{"from", "to"} {
		if v.Get(p) != "" {
			iss.add(p, "give either from and to, or a period")
		}
	}
	tz := v.Get("tz")
	loc, err := loadZone(tz)
	if err != nil {
		iss.add("tz", "%v", err)
		return q, iss.problem()
	}
	if tz == "" {
		tz = "UTC"
	}
	q.Period, q.TimeZone = period, tz
	local := now.In(loc)
	switch period {
	case "month":
		m := v.Get("month")
		if m == "" {
			m = local.Format("2006-01")
		}
		from, to, err := sla.MonthWindow(m, tz)
		if err != nil {
			iss.add("month", "must be YYYY-MM, e.g. 2026-10 (got %q)", m)
		}
		q.From, q.To = from, to
	case "day":
		d := v.Get("day")
		if d == "" {
			d = local.Format("2006-01-02")
		}
		t, err := time.ParseInLocation("2006-01-02", d, loc)
		if err != nil {
			iss.add("day", "must be YYYY-MM-DD, e.g. 2026-10-25 (got %q)", d)
		}
		q.From = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		q.To = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
	case "year":
		y := v.Get("year")
		if y == "" {
			y = local.Format("2006")
		}
		t, err := time.ParseInLocation("2006", y, loc)
		if err != nil {
			iss.add("year", "must be YYYY, e.g. 2026 (got %q)", y)
		}
		q.From = time.Date(t.Year(), 1, 1, 0, 0, 0, 0, loc)
		q.To = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, loc)
	default:
		iss.add("period", "must be day, month or year (got %q)", period)
	}
	return q, iss.problem()
}

// loadZone reads an IANA zone name; "" is UTC. "Local" is refused: the
// server's own zone is no calendar a caller can rely on.
func loadZone(tz string) (*time.Location, error) {
	switch tz {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, fmt.Errorf("name an IANA time zone such as Europe/Berlin (got %q)", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q; name an IANA zone such as Europe/Berlin", tz)
	}
	return loc, nil
}

// selector is a label selector: every term must hold. A term is
// name=value (the label is set to value) or name!=value (the label is not
// set to value: absent or different).
type selector struct {
	text  string
	terms []selectorTerm
}

type selectorTerm struct {
	name, value string
	not         bool
}

// parseSelector reads "team=web,env!=staging"; "" selects every target.
func parseSelector(s string) (selector, error) {
	sel := selector{text: s}
	if strings.TrimSpace(s) == "" {
		return sel, nil
	}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		t := selectorTerm{}
		name, value, ok := strings.Cut(part, "!=")
		if ok {
			t.not = true
		} else if name, value, ok = strings.Cut(part, "="); !ok {
			return sel, fmt.Errorf("term %d (%q) must be name=value or name!=value", i+1, part)
		}
		t.name, t.value = strings.TrimSpace(name), strings.TrimSpace(value)
		if t.name == "" {
			return sel, fmt.Errorf("term %d (%q) has no label name", i+1, part)
		}
		sel.terms = append(sel.terms, t)
	}
	sort.SliceStable(sel.terms, func(i, j int) bool { return sel.terms[i].name < sel.terms[j].name })
	return sel, nil
}

// matches reports whether labels satisfy every term.
func (s selector) matches(labels map[string]string) bool {
	for _, t := range s.terms {
		v, ok := labels[t.name]
		if t.not == (ok && v == t.value) {
			return false
		}
	}
	return true
}
