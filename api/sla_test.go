package api

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
)

// slaDay is the window of the golden cases: 2026-03-10 in UTC, 86 400 s.
var slaDay = time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return slaDay.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// num reads a number at a dotted path of a decoded document; nil when the
// value is null.
func num(t *testing.T, doc map[string]any, path ...string) *float64 {
	t.Helper()
	var v any = doc
	for _, p := range path {
		m, ok := v.(map[string]any)
		require.True(t, ok, "%v: not an object at %s", path, p)
		v, ok = m[p]
		require.True(t, ok, "%v: no %s", path, p)
	}
	if v == nil {
		return nil
	}
	f, ok := v.(float64)
	require.True(t, ok, "%v: %v is not a number", path, v)
	return &f
}

// secs reads a duration document's seconds.
func secs(t *testing.T, doc map[string]any, path ...string) float64 {
	t.Helper()
	f := num(t, doc, append(path, "seconds")...)
	require.NotNil(t, f, "%v is null", path)
	return *f
}

// want are the golden figures of one case; durations in seconds.
type want struct {
	uptime                            *float64
	up, down, unknown, maint          float64
	coverage                          float64
	incidents                         float64
	longest                           float64
	mttr, mtbf                        *float64
	checks, failed                    float64
	latency                           bool
	accounting, maintenance, timeZone string
}

func f(v float64) *float64 { return &v }

func requireSLA(t *testing.T, w want, doc map[string]any) {
	t.Helper()
	if w.uptime == nil {
		require.Nil(t, num(t, doc, "uptime_percent"), "uptime")
	} else {
		require.NotNil(t, num(t, doc, "uptime_percent"), "uptime")
		require.InDelta(t, *w.uptime, *num(t, doc, "uptime_percent"), 1e-9, "uptime")
	}
	require.Equal(t, w.up, secs(t, doc, "up"), "up")
	require.Equal(t, w.down, secs(t, doc, "downtime"), "downtime")
	require.Equal(t, w.unknown, secs(t, doc, "unknown"), "unknown")
	require.Equal(t, w.maint, secs(t, doc, "in_maintenance"), "maintenance")
	require.InDelta(t, w.coverage, *num(t, doc, "coverage_percent"), 1e-9, "coverage")
	require.Equal(t, w.incidents, *num(t, doc, "incidents"), "incidents")
	require.Equal(t, w.longest, secs(t, doc, "longest_outage"), "longest")
	for name, v := range map[string]*float64{"mttr": w.mttr, "mtbf": w.mtbf} {
		if v == nil {
			require.Nil(t, doc[name], name)
		} else {
			require.Equal(t, *v, secs(t, doc, name), name)
		}
	}
	require.Equal(t, w.checks, *num(t, doc, "checks", "run"), "checks")
	require.Equal(t, w.failed, *num(t, doc, "checks", "failed"), "failed")
	if w.latency {
		for _, p := range []string{"p50", "p95", "p99"} {
			require.Equal(t, 0.04, secs(t, doc, "latency", p), p)
		}
	} else {
		require.Nil(t, doc["latency"])
	}
	acc := w.accounting
	if acc == "" {
		acc = "time"
	}
	m := w.maintenance
	if m == "" {
		m = "include"
	}
	require.Equal(t, acc, doc["accounting"])
	require.Equal(t, m, doc["maintenance"])
}

// TestSLAGolden checks the SLA route against cases worked out by hand,
// over samples written to the real sample store and incidents to the real
// registry. Every check runs every 30 s (120 an hour) and takes 40 ms;
// checks inside an incident fail.
func TestSLAGolden(t *testing.T) {
	h := newHarness(t)
	h.setClock(at(24*3, 0))
	full := func(id string, down ...[2]time.Time) {
		h.checks(id, at(-2, 0), at(26, 0), 30*time.Second, nil, down...)
	}
	gap := func(from, to time.Time) func(time.Time) bool {
		return func(x time.Time) bool { return !x.Before(from) && x.Before(to) }
	}
	// Maintenance [03:00, 05:00) covers targets labelled maint=yes.
	h.cfg.Maintenance = []alerting.Window{{Name: "patching", Start: at(3, 0), End: at(5, 0), Labels: map[string]string{"maint": "yes"}}}

	h.configTarget("start-edge", nil)
	full("start-edge", [2]time.Time{at(-1, 30), at(0, 45)})
	h.incident("start-edge", at(-1, 30), at(0, 45))

	h.configTarget("end-edge", nil)
	full("end-edge", [2]time.Time{at(23, 50), at(24, 20)})
	h.incident("end-edge", at(23, 50), at(24, 20))

	h.configTarget("maint", map[string]string{"maint": "yes"})
	full("maint", [2]time.Time{at(2, 0), at(4, 0)})
	h.incident("maint", at(2, 0), at(4, 0))

	h.configTarget("gap", nil)
	h.checks("gap", at(-2, 0), at(26, 0), 30*time.Second, gap(at(6, 0), at(9, 0)), [2]time.Time{at(7, 30), at(9, 30)})
	h.incident("gap", at(7, 30), at(9, 30))

	h.configTarget("silent", nil)

	h.configTarget("flaky", nil)
	// 12 failed checks in hour 05, 6 in hour 17; no incident.
	full("flaky", [2]time.Time{at(5, 0), at(5, 6)}, [2]time.Time{at(17, 0), at(17, 3)})

	key := h.key(tenantA, ScopeRead)
	get := func(id string, q url.Values) map[string]any {
		t.Helper()
		r := h.do(http.MethodGet, Prefix+"/targets/"+id+"/sla?"+q.Encode(), key, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r.JSON(t)
	}
	day := url.Values{"from": {slaDay.Format(time.RFC3339)}, "to": {at(24, 0).Format(time.RFC3339)}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, x := range day {
			v[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	t.Run("incident crossing the window start", func(t *testing.T) {
		// Inside: [00:00, 00:45) = 2 700 s. Up 83 700 s. Uptime
		// 83 700 / 86 400 = 96.875 %. 90 checks failed (00:00–00:44:30).
		requireSLA(t, want{uptime: f(96.875), up: 83700, down: 2700, coverage: 100, incidents: 1,
			longest: 2700, mttr: f(2700), mtbf: f(83700), checks: 2880, failed: 90, latency: true},
			get("start-edge", day))
	})
	t.Run("incident crossing the window end", func(t *testing.T) {
		// Inside: [23:50, 24:00) = 600 s; uptime 85 800 / 86 400.
		requireSLA(t, want{uptime: f(85800.0 / 86400 * 100), up: 85800, down: 600, coverage: 100, incidents: 1,
			longest: 600, mttr: f(600), mtbf: f(85800), checks: 2880, failed: 20, latency: true},
			get("end-edge", day))
	})
	t.Run("overlapping maintenance, included", func(t *testing.T) {
		// Incident [02:00, 04:00) counts in full: uptime 22 / 24.
		requireSLA(t, want{uptime: f(22.0 / 24 * 100), up: 22 * 3600, down: 7200, maint: 7200, coverage: 100,
			incidents: 1, longest: 7200, mttr: f(7200), mtbf: f(22 * 3600), checks: 2880, failed: 240, latency: true},
			get("maint", day))
	})
	t.Run("overlapping maintenance, excluded", func(t *testing.T) {
		// Downtime [02:00, 03:00) = 1 h; denominator 22 h; uptime 21 / 22.
		// Hours 03 and 04 lie wholly in maintenance: 2 640 checks, and of
		// the 240 failed only hour 02's 120 count.
		requireSLA(t, want{uptime: f(21.0 / 22 * 100), up: 21 * 3600, down: 3600, maint: 7200, coverage: 100,
			incidents: 1, longest: 3600, mttr: f(3600), mtbf: f(21 * 3600), checks: 2640, failed: 120, latency: true,
			maintenance: "exclude"},
			get("maint", with("maintenance", "exclude")))
		// The window does not cover targets without the label.
		doc := get("start-edge", with("maintenance", "exclude"))
		require.Equal(t, 0.0, secs(t, doc, "in_maintenance"))
	})
	t.Run("gap with no data under an incident", func(t *testing.T) {
		// No checks in [06:00, 09:00): coverage 21 / 24 (hourly rollups).
		// The incident [07:30, 09:30) counts as downtime; unknown is
		// [06:00, 07:30) = 5 400 s; up 20.5 h; uptime 20.5 / 22.5.
		// 21 × 120 = 2 520 checks; failed: [09:00, 09:30) = 60.
		requireSLA(t, want{uptime: f(20.5 / 22.5 * 100), up: 20.5 * 3600, down: 7200, unknown: 5400, coverage: 87.5,
			incidents: 1, longest: 7200, mttr: f(7200), mtbf: f(20.5 * 3600), checks: 2520, failed: 60, latency: true},
			get("gap", day))
	})
	t.Run("window with no checks", func(t *testing.T) {
		// Nothing known: uptime null, the whole day unknown, SLO neither
		// met nor missed (null) with a zero budget.
		doc := get("silent", with("slo", "99.9"))
		requireSLA(t, want{unknown: 86400}, doc)
		slo := doc["slo"].(map[string]any)
		require.Equal(t, 99.9, slo["target_percent"])
		met, ok := slo["met"]
		require.True(t, ok, "met is present")
		require.Nil(t, met, "met is null without data")
		require.Nil(t, slo["budget_left_percent"])
		require.Equal(t, 0.0, secs(t, slo, "budget"))
	})
	t.Run("checks accounting with an SLO", func(t *testing.T) {
		// 18 failed of 2 880: uptime 2 862 / 2 880 = 99.375 %. SLO 99.5:
		// budget 14.4 checks, used 18, left −3.6, not met.
		doc := get("flaky", with("accounting", "checks", "slo", "99.5"))
		requireSLA(t, want{uptime: f(99.375), up: 86400, coverage: 100, checks: 2880, failed: 18, latency: true,
			accounting: "checks"}, doc)
		slo := doc["slo"].(map[string]any)
		require.Equal(t, false, slo["met"])
		require.InDelta(t, 14.4, slo["budget_checks"], 1e-9)
		require.InDelta(t, 18, slo["used_checks"], 1e-9)
		require.InDelta(t, -3.6, slo["left_checks"], 1e-9)
		require.InDelta(t, -25, slo["budget_left_percent"], 1e-9)
	})
	t.Run("time SLO budget", func(t *testing.T) {
		// SLO 99: budget 1 % of 86 400 s = 864 s; used 600 s; left 264 s.
		doc := get("end-edge", with("slo", "99"))
		slo := doc["slo"].(map[string]any)
		require.Equal(t, true, slo["met"])
		require.Equal(t, 864.0, secs(t, slo, "budget"))
		require.Equal(t, 600.0, secs(t, slo, "used"))
		require.Equal(t, 264.0, secs(t, slo, "left"))
		require.Equal(t, "4m 24s", slo["left"].(map[string]any)["human"])
		require.InDelta(t, 264.0/864*100, slo["budget_left_percent"], 1e-9)
	})
	t.Run("a window starting mid-hour", func(t *testing.T) {
		// [00:30, 12:00) of start-edge: the incident covers [00:30, 00:45)
		// = 900 s of the 41 400 s; the partial first hour counts as covered
		// (rollups are hourly) and its own checks, from 00:30 on, are
		// counted from the raw samples: 60 + 11 × 120 = 1 380, the 30 of
		// [00:30, 00:45) failed.
		doc := get("start-edge", url.Values{"from": {at(0, 30).Format(time.RFC3339)}, "to": {at(12, 0).Format(time.RFC3339)}})
		requireSLA(t, want{uptime: f(40500.0 / 41400 * 100), up: 40500, down: 900, coverage: 100, incidents: 1,
			longest: 900, mttr: f(900), mtbf: f(40500), checks: 1380, failed: 30, latency: true}, doc)
	})
}

// TestSLACoverageToTheSecond: time before a target's first check and after
// its last is unknown to the second, not rounded to the hour (and so not
// counted as up).
func TestSLACoverageToTheSecond(t *testing.T) {
	h := newHarness(t)
	h.setClock(at(24, 0))
	h.configTarget("late", nil)
	// Checks every 30 s from 12:30:00 to 13:19:30: data [12:30, 13:20).
	h.checks("late", at(12, 30), at(13, 20), 30*time.Second, nil)
	key := h.key(tenantA, ScopeRead)
	get := func(from, to time.Time, slo string) map[string]any {
		t.Helper()
		q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
		if slo != "" {
			q.Set("slo", slo)
		}
		r := h.do(http.MethodGet, Prefix+"/targets/late/sla?"+q.Encode(), key, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r.JSON(t)
	}

	// [12:00, 13:20): the first 30 minutes have no check.
	requireSLA(t, want{uptime: f(100), up: 3000, unknown: 1800, coverage: 3000.0 / 4800 * 100,
		checks: 100, latency: true}, get(at(12, 0), at(13, 20), ""))
	// [12:00, 14:00): and none after 13:20.
	requireSLA(t, want{uptime: f(100), up: 3000, unknown: 4200, coverage: 3000.0 / 7200 * 100,
		checks: 100, latency: true}, get(at(12, 0), at(14, 0), ""))
	// Off the hour: [12:10, 13:10).
	requireSLA(t, want{uptime: f(100), up: 2400, unknown: 1200, coverage: 2400.0 / 3600 * 100,
		checks: 80, latency: true}, get(at(12, 10), at(13, 10), ""))
	// A window with no data at all: SLO met is null.
	doc := get(at(15, 0), at(16, 0), "99.9")
	requireSLA(t, want{unknown: 3600}, doc)
	met, ok := doc["slo"].(map[string]any)["met"]
	require.True(t, ok)
	require.Nil(t, met)
	// With data it is a boolean.
	require.Equal(t, true, get(at(12, 0), at(14, 0), "99.9")["slo"].(map[string]any)["met"])
}

// TestSLAPeriods checks calendar periods: a day, a month across the
// Berlin DST change (745 h), the current period by default, and a window
// still running (the rest is future).
func TestSLAPeriods(t *testing.T) {
	h := newHarness(t)
	h.configTarget("web", nil)
	key := h.key(tenantA, ScopeRead)
	get := func(q string) map[string]any {
		t.Helper()
		r := h.do(http.MethodGet, Prefix+"/targets/web/sla?"+q, key, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r.JSON(t)
	}
	h.setClock(time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC))

	doc := get("period=month&month=2026-10&tz=Europe/Berlin")
	win := doc["window"].(map[string]any)
	require.Equal(t, "2026-09-30T22:00:00Z", win["from"])
	require.Equal(t, "2026-10-31T23:00:00Z", win["to"])
	require.Equal(t, "month", win["period"])
	require.Equal(t, "Europe/Berlin", win["time_zone"])
	require.Equal(t, 745.0*3600, secs(t, win, "elapsed"))
	require.Equal(t, "31d 1h", win["elapsed"].(map[string]any)["human"])
	require.Equal(t, 745.0*3600, secs(t, doc, "unknown"))

	doc = get("period=day&day=2026-03-29&tz=Europe/Berlin") // spring forward: 23 h
	require.Equal(t, 23.0*3600, secs(t, doc["window"].(map[string]any), "elapsed"))

	// The current month, half gone: the rest is future.
	doc = get("period=month")
	win = doc["window"].(map[string]any)
	require.Equal(t, "2026-11-01T00:00:00Z", win["from"])
	require.Equal(t, (14*24+12)*3600.0, secs(t, win, "elapsed"))
	require.Equal(t, (15*24+12)*3600.0, secs(t, win, "future"))

	doc = get("period=year&year=2025")
	require.Equal(t, 365*24*3600.0, secs(t, doc["window"].(map[string]any), "elapsed"))
}

func TestSLABadQueries(t *testing.T) {
	h := newHarness(t)
	h.configTarget("web", nil)
	key := h.key(tenantA, ScopeRead)
	for q, wantPath := range map[string]string{
		"":               "query.from",
		"from=yesterday": "query.from",
		"from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z": "query.to",
		"from=2000-01-01T00:00:00Z":                         "query.from",
		"from=2026-03-01T00:00:00Z&accounting=money":        "query.accounting",
		"from=2026-03-01T00:00:00Z&maintenance=ignore":      "query.maintenance",
		"from=2026-03-01T00:00:00Z&slo=101":                 "query.slo",
		"from=2026-03-01T00:00:00Z&slo=0":                   "query.slo",
		"period=week":                                       "query.period",
		"period=month&month=2026-13":                        "query.month",
		"period=month&tz=Mars/Olympus":                      "query.tz",
		"period=month&tz=Local":                             "query.tz",
		"period=day&from=2026-03-01T00:00:00Z":              "query.from",
		"from=2026-03-01T00:00:00Z&month=2026-03":           "query.month",
	} {
		r := h.do(http.MethodGet, Prefix+"/targets/web/sla?"+q, key, nil)
		require.Equal(t, http.StatusBadRequest, r.Status, q)
		p := r.problem(t)
		var paths []string
		for _, e := range p.Errors {
			paths = append(paths, e.Path)
		}
		require.Contains(t, paths, wantPath, q)
	}
	// Another tenant's target, or none: 404.
	h.registryTarget(tenantB, "theirs", nil)
	r := h.do(http.MethodGet, Prefix+"/targets/theirs/sla?period=month", key, nil)
	require.Equal(t, http.StatusNotFound, r.Status)
	r = h.do(http.MethodGet, Prefix+"/targets/nope/sla?period=month", key, nil)
	require.Equal(t, http.StatusNotFound, r.Status)
}

// TestSelectorSLA checks per-target figures and the pooled aggregate.
func TestSelectorSLA(t *testing.T) {
	h := newHarness(t)
	h.setClock(at(48, 0))
	h.configTarget("web-1", map[string]string{"team": "web", "env": "prod"})
	h.configTarget("web-2", map[string]string{"team": "web", "env": "staging"})
	h.configTarget("db", map[string]string{"team": "db", "env": "prod"})
	h.registryTarget(tenantA, "web-3", map[string]string{"team": "web", "env": "prod"})
	webB := h.registryTarget(tenantB, "web-b", map[string]string{"team": "web", "env": "prod"})
	for _, id := range []string{"web-1", "web-2", "db", webB} {
		h.checks(id, at(0, 0), at(24, 0), 30*time.Second, nil)
	}
	// web-1: down 2 h; web-2: up all day; web-3: no data.
	h.incident("web-1", at(10, 0), at(12, 0))
	h.incident(webB, at(0, 0), at(24, 0))
	key := h.key(tenantA, ScopeRead)

	r := h.do(http.MethodGet, Prefix+"/sla?selector=team%3Dweb&period=day&day=2026-03-10", key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	doc := r.JSON(t)
	require.Equal(t, "team=web", doc["selector"])
	targets := doc["targets"].([]any)
	var ids []string
	for _, x := range targets {
		ids = append(ids, x.(map[string]any)["target_id"].(string))
	}
	require.Equal(t, []string{"web-1", "web-2", "web-3"}, ids) // not db, not tenant B's
	agg := doc["aggregate"].(map[string]any)
	require.Equal(t, 3.0, agg["targets"])
	require.Equal(t, 2.0, agg["targets_with_data"])
	// Pooled: up 22 h + 24 h, down 2 h → 46 / 48. Mean (22/24 + 1) / 2.
	require.InDelta(t, 46.0/48*100, *num(t, agg, "uptime_percent"), 1e-9)
	require.InDelta(t, (22.0/24*100+100)/2, *num(t, agg, "mean_uptime_percent"), 1e-9)
	require.InDelta(t, 22.0/24*100, *num(t, agg, "min_uptime_percent"), 1e-9)
	require.Equal(t, 7200.0, secs(t, agg, "downtime"))
	require.Equal(t, 24*3600.0, secs(t, agg, "unknown")) // web-3's day
	require.InDelta(t, 2.0/3*100, *num(t, agg, "coverage_percent"), 1e-9)
	require.Equal(t, 2*2880.0, *num(t, agg, "checks", "run"))
	require.Equal(t, 1.0, *num(t, agg, "incidents"))
	require.Contains(t, agg["method"], "pooled")

	r = h.do(http.MethodGet, Prefix+"/sla?selector=team%3Dweb,env!%3Dstaging&period=day&day=2026-03-10&slo=99", key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	doc = r.JSON(t)
	require.Len(t, doc["targets"], 2)
	agg = doc["aggregate"].(map[string]any)
	// Pooled over web-1 and web-3 (no data): 22 / 24; SLO 99: budget
	// 1 % of 24 h = 864 s, used 7 200 s.
	require.InDelta(t, 22.0/24*100, *num(t, agg, "uptime_percent"), 1e-9)
	slo := agg["slo"].(map[string]any)
	require.Equal(t, false, slo["met"])
	require.Equal(t, 864.0, secs(t, slo, "budget"))
	require.Equal(t, 7200.0-864, -secs(t, slo, "left"))

	// An empty selection is an empty answer, not an error.
	r = h.do(http.MethodGet, Prefix+"/sla?selector=team%3Dnone&period=day&day=2026-03-10", key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	doc = r.JSON(t)
	require.Empty(t, doc["targets"])
	require.Nil(t, doc["aggregate"].(map[string]any)["uptime_percent"])

	r = h.do(http.MethodGet, Prefix+"/sla?selector=team&period=day", key, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "query.selector", r.problem(t).Errors[0].Path)
}

// TestSLAWindowTooLong: a maintenance window that fires too often to expand
// over the SLA window is a 422 naming it, for one target and for a
// selector.
func TestSLAWindowTooLong(t *testing.T) {
	h := newHarness(t)
	h.configTarget("web", nil)
	r := h.do(http.MethodPost, Prefix+"/maintenance-windows", h.key(tenantA, ScopeWrite),
		map[string]any{"name": "busy", "cron": "* * * * *", "duration": "1m"})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	q := url.Values{"from": {harnessT0.Add(-366 * 24 * time.Hour).Format(time.RFC3339)}, "to": {harnessT0.Format(time.RFC3339)}}.Encode()
	for _, path := range []string{"/targets/web/sla?", "/sla?"} {
		r = h.do(http.MethodGet, Prefix+path+q, h.key(tenantA, ScopeRead), nil)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s %s", path, r.Body)
		p := r.problem(t)
		require.Equal(t, "Window Too Long", p.Title)
		require.Contains(t, p.Detail, `maintenance window "busy" fires too often`)
	}
}

// TestSLALatencyByLocation: a target checked from two locations gets each
// one's latency percentiles beside its own; from one location, none.
func TestSLALatencyByLocation(t *testing.T) {
	h := newHarness(t)
	h.setClock(at(24, 0))
	h.configTarget("web", nil)
	h.configTarget("solo", nil)
	h.checks("solo", at(0, 0), at(2, 0), time.Minute, nil)
	var batch []prober.Result
	for m := 0; m < 120; m++ {
		for loc, lat := range map[string]time.Duration{"eu-west": 20 * time.Millisecond, "us-east": 200 * time.Millisecond} {
			batch = append(batch, prober.Result{TargetID: "web", Target: "web", Kind: "http", Location: loc,
				Start: at(0, m), Duration: lat, Success: true, StatusCode: 200})
		}
	}
	require.NoError(t, h.samples.WriteSamples(t.Context(), batch))
	key := h.key(tenantA, ScopeRead)
	q := url.Values{"from": {at(0, 0).Format(time.RFC3339)}, "to": {at(24, 0).Format(time.RFC3339)}}

	r := h.do(http.MethodGet, Prefix+"/targets/web/sla?"+q.Encode(), key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	doc := r.JSON(t)
	require.Equal(t, 240.0, *num(t, doc, "checks", "run"))
	locs := doc["latency_by_location"].([]any)
	require.Len(t, locs, 2)
	eu, us := locs[0].(map[string]any), locs[1].(map[string]any)
	require.Equal(t, "eu-west", eu["location"])
	require.Equal(t, "us-east", us["location"])
	require.Equal(t, 120.0, eu["checks"])
	// Each within its histogram bucket (rollup buckets, as the target's).
	for _, p := range []string{"p50", "p95", "p99"} {
		require.Equal(t, 0.02, secs(t, eu, p), p)
		require.Equal(t, 0.2, secs(t, us, p), p)
	}
	require.NotContains(t, doc, "latency_by_location_truncated")

	r = h.do(http.MethodGet, Prefix+"/targets/solo/sla?"+q.Encode(), key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.NotContains(t, r.JSON(t), "latency_by_location")
}
