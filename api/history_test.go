package api

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
)

func TestDownsampler(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	var got []sampleBucket
	d := newDownsampler(5*time.Minute, func(b sampleBucket) error { got = append(got, b); return nil })
	add := func(at time.Duration, ms int, ok bool) {
		require.NoError(t, d.add(prober.Result{Start: t0.Add(at), Duration: time.Duration(ms) * time.Millisecond, Success: ok}))
	}
	// Bucket [10:00, 10:05): 20 checks of 1..20 ms, the 20 ms one failed.
	for i := 1; i <= 20; i++ {
		add(time.Duration(i)*10*time.Second, i, i != 20)
	}
	// [10:05, 10:10) is empty; [10:10, 10:15): one check in another zone's
	// clothing (same instant, aligned in UTC).
	require.NoError(t, d.add(prober.Result{Start: t0.Add(12 * time.Minute).In(time.FixedZone("X", 5400)), Duration: 7 * time.Millisecond, Success: true}))
	require.NoError(t, d.flush())
	require.NoError(t, d.flush()) // nothing left: no empty bucket

	require.Len(t, got, 2)
	b := got[0]
	require.Equal(t, t0, b.Start)
	require.Equal(t, t0.Add(5*time.Minute), b.End)
	require.Equal(t, int64(20), b.Checks)
	require.Equal(t, int64(1), b.Failures)
	require.Equal(t, 0.95, b.UpRatio)
	require.Equal(t, latencySeconds{Avg: 0.0105, Min: 0.001, Max: 0.02, P95: 0.019}, b.Latency)
	require.Equal(t, t0.Add(10*time.Minute), got[1].Start)
	require.Equal(t, latencySeconds{Avg: 0.007, Min: 0.007, Max: 0.007, P95: 0.007}, got[1].Latency)
	require.Equal(t, 1.0, got[1].UpRatio)
}

func TestParseStep(t *testing.T) {
	for s, want := range map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour, "90s": 90 * time.Second} {
		got, err := parseStep(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "30s", "7m", "2d", "25h", "fast", "-5m"} {
		_, err := parseStep(s)
		require.Error(t, err, s)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 40 * time.Millisecond: "40ms", 1500 * time.Microsecond: "1.5ms", 850 * time.Microsecond: "850µs",
		12500 * time.Millisecond: "12.5s", 45 * time.Minute: "45m", 2*time.Hour + 40*time.Minute: "2h 40m",
		745 * time.Hour: "31d 1h", -264 * time.Second: "-4m 24s", 90*time.Minute + 30*time.Second: "1h 30m 30s",
		5 * time.Nanosecond: "5ns",
	} {
		require.Equal(t, want, humanDuration(d), "%d", d)
	}
}

func TestSamplesRoute(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h.setClock(t0.Add(2 * time.Hour))
	h.configTarget("web", nil)
	h.registryTarget(tenantB, "theirs", nil)
	// 2 h of 30 s checks (240); [00:30, 00:40) failing.
	n := h.checks("web", t0, t0.Add(2*time.Hour), 30*time.Second, nil, [2]time.Time{t0.Add(30 * time.Minute), t0.Add(40 * time.Minute)})
	require.Equal(t, 240, n)
	key := h.key(tenantA, ScopeRead)
	base := Prefix + "/targets/web/samples?from=" + url.QueryEscape(t0.Format(time.RFC3339))

	// Pages of 100: 100, 100, 40, following next_cursor.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		path := base + "&limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := h.do(http.MethodGet, path, key, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		doc := r.JSON(t)
		for _, s := range doc["samples"].([]any) {
			seen = append(seen, s.(map[string]any)["time"].(string))
		}
		next, ok := doc["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
	}
	require.Len(t, seen, 240)
	require.Equal(t, t0.Format(time.RFC3339), seen[0])
	require.Equal(t, t0.Add(2*time.Hour-30*time.Second).Format(time.RFC3339), seen[239])

	// One sample's shape: seconds.
	r := h.do(http.MethodGet, base+"&limit=1", key, nil)
	s := r.JSON(t)["samples"].([]any)[0].(map[string]any)
	require.Equal(t, 0.04, s["duration_seconds"])
	require.Equal(t, 0.005, s["phases_seconds"].(map[string]any)["connect"])
	require.Equal(t, true, s["success"])

	// Downsampled to 15 minutes: 8 buckets of 30 checks; the third
	// ([00:30, 00:45)) has 20 failed.
	r = h.do(http.MethodGet, base+"&step=15m", key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	doc := r.JSON(t)
	require.Equal(t, 900.0, secs(t, doc, "step"))
	buckets := doc["buckets"].([]any)
	require.Len(t, buckets, 8)
	b2 := buckets[2].(map[string]any)
	require.Equal(t, t0.Add(30*time.Minute).Format(time.RFC3339), b2["start"])
	require.Equal(t, 30.0, b2["checks"])
	require.Equal(t, 20.0, b2["failures"])
	require.InDelta(t, 1.0/3, b2["up_ratio"], 1e-12)
	require.Equal(t, map[string]any{"avg": 0.04, "min": 0.04, "max": 0.04, "p95": 0.04}, b2["latency_seconds"])
	require.Nil(t, doc["samples"])

	// An empty range: an empty list.
	r = h.do(http.MethodGet, Prefix+"/targets/web/samples?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z", key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, []any{}, r.JSON(t)["samples"])

	// Bad queries name their parameter.
	for q, param := range map[string]string{
		"&step=7m": "query.step", "&step=1m&from=2020-01-01T00:00:00Z": "query.step", "&limit=0": "query.limit",
		"&cursor=bogus": "query.cursor", "&step=1h&cursor=x": "query.cursor", "&to=2026-02-01T00:00:00Z": "query.to",
	} {
		path := base + q
		if param == "query.step" && q != "&step=7m" {
			path = Prefix + "/targets/web/samples?" + q[1:]
		}
		r := h.do(http.MethodGet, path, key, nil)
		require.Equal(t, http.StatusBadRequest, r.Status, q)
		require.Equal(t, param, r.problem(t).Errors[0].Path, q)
	}

	// Latest.
	r = h.do(http.MethodGet, Prefix+"/targets/web/latest", key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, t0.Add(2*time.Hour-30*time.Second).Format(time.RFC3339), r.JSON(t)["time"])
	h.configTarget("new", nil)
	r = h.do(http.MethodGet, Prefix+"/targets/new/latest", key, nil)
	require.Equal(t, http.StatusNotFound, r.Status)

	// Another tenant's target is not found, on every history route.
	for _, p := range []string{"samples", "latest", "incidents", "export", "sla?period=day"} {
		r = h.do(http.MethodGet, Prefix+"/targets/theirs/"+p, key, nil)
		require.Equal(t, http.StatusNotFound, r.Status, p)
	}
}

func TestIncidentRoutes(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h.setClock(t0.Add(10 * time.Hour))
	h.configTarget("web", nil)
	h.configTarget("db", nil)
	theirs := h.registryTarget(tenantB, "theirs", nil)
	h.incident("web", t0.Add(time.Hour), t0.Add(time.Hour+45*time.Minute))
	h.incident("web", t0.Add(5*time.Hour), time.Time{}) // open
	h.incident("db", t0.Add(3*time.Hour), t0.Add(3*time.Hour+10*time.Second))
	h.incident(theirs, t0.Add(2*time.Hour), time.Time{})
	key := h.key(tenantA, ScopeRead)

	r := h.do(http.MethodGet, Prefix+"/targets/web/incidents", key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	incs := r.JSON(t)["incidents"].([]any)
	require.Len(t, incs, 2)
	open := incs[0].(map[string]any)
	require.Equal(t, true, open["open"])
	require.Nil(t, open["end"])
	require.Equal(t, 5*3600.0, secs(t, open, "duration")) // to now
	closed := incs[1].(map[string]any)
	require.Equal(t, t0.Add(time.Hour+45*time.Minute).Format(time.RFC3339), closed["end"])
	require.Equal(t, "45m", closed["duration"].(map[string]any)["human"])
	require.Contains(t, closed["cause"], "status 503")

	r = h.do(http.MethodGet, Prefix+"/targets/web/incidents?open=true", key, nil)
	require.Len(t, r.JSON(t)["incidents"], 1)
	r = h.do(http.MethodGet, Prefix+"/targets/web/incidents?from="+url.QueryEscape(t0.Add(2*time.Hour).Format(time.RFC3339)), key, nil)
	require.Len(t, r.JSON(t)["incidents"], 1)

	// Tenant-wide: web's and db's, newest first, never tenant B's.
	r = h.do(http.MethodGet, Prefix+"/incidents", key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	var order []string
	for _, x := range r.JSON(t)["incidents"].([]any) {
		m := x.(map[string]any)
		order = append(order, fmt.Sprint(m["target_id"], "@", m["start"]))
	}
	require.Equal(t, []string{
		"web@" + t0.Add(5*time.Hour).Format(time.RFC3339),
		"db@" + t0.Add(3*time.Hour).Format(time.RFC3339),
		"web@" + t0.Add(time.Hour).Format(time.RFC3339),
	}, order)
	r = h.do(http.MethodGet, Prefix+"/incidents?limit=2", key, nil)
	require.Len(t, r.JSON(t)["incidents"], 2)
	r = h.do(http.MethodGet, Prefix+"/incidents", h.key(tenantB, ScopeRead), nil)
	require.Len(t, r.JSON(t)["incidents"], 1)

	// An incident seen from several locations says where and when.
	multi := alerting.Incident{ID: alerting.IncidentID("db", t0.Add(6*time.Hour)), TargetID: "db", Start: t0.Add(6 * time.Hour), Cause: "connect: refused",
		Locations: []alerting.IncidentLocation{
			{Location: "eu-west", FirstFailure: t0.Add(6 * time.Hour), LastFailure: t0.Add(6*time.Hour + 2*time.Minute)},
			{Location: "us-east", FirstFailure: t0.Add(6*time.Hour + time.Minute), LastFailure: t0.Add(6*time.Hour + 3*time.Minute)},
		}}
	require.NoError(t, h.reg.Commit(t.Context(), alerting.State{TargetID: "db", Status: alerting.StatusDown}, []alerting.Incident{multi}, nil))
	r = h.do(http.MethodGet, Prefix+"/targets/db/incidents?open=true", key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	got := r.JSON(t)["incidents"].([]any)[0].(map[string]any)
	require.Equal(t, []any{
		map[string]any{"location": "eu-west", "first_failure": t0.Add(6 * time.Hour).Format(time.RFC3339), "last_failure": t0.Add(6*time.Hour + 2*time.Minute).Format(time.RFC3339)},
		map[string]any{"location": "us-east", "first_failure": t0.Add(6*time.Hour + time.Minute).Format(time.RFC3339), "last_failure": t0.Add(6*time.Hour + 3*time.Minute).Format(time.RFC3339)},
	}, got["locations"])
	require.NotContains(t, closed, "locations", "one location: no list")

	r = h.do(http.MethodGet, Prefix+"/incidents?open=maybe", key, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "query.open", r.problem(t).Errors[0].Path)
}

// TestLocationEvents: the operator sees the probe locations' events,
// newest first; other tenants' admins do not.
func TestLocationEvents(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, ev := range []alerting.LocationEvent{
		{Kind: alerting.LocationUnavailable, Location: "eu-west", Detail: "no result for 3m0s (window 3m0s); it drops out of every quorum"},
		{Kind: alerting.LocationAvailable, Location: "eu-west", Detail: "results arrive again"},
	} {
		ev.At = t0.Add(time.Duration(i) * time.Minute)
		require.NoError(t, h.reg.RecordLocationEvent(t.Context(), ev))
	}
	r := h.do(http.MethodGet, Prefix+"/location-events", h.key(tenantA, ScopeAdmin), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	evs := r.JSON(t)["items"].([]any)
	require.Len(t, evs, 2)
	require.Equal(t, map[string]any{"kind": "location_available", "location": "eu-west",
		"at": t0.Add(time.Minute).Format(time.RFC3339), "detail": "results arrive again"}, evs[0])
	r = h.do(http.MethodGet, Prefix+"/location-events?limit=1", h.key(tenantA, ScopeAdmin), nil)
	require.Len(t, r.JSON(t)["items"], 1)
	r = h.do(http.MethodGet, Prefix+"/location-events?limit=0", h.key(tenantA, ScopeAdmin), nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "query.limit", r.problem(t).Errors[0].Path)
	require.Equal(t, http.StatusForbidden, h.do(http.MethodGet, Prefix+"/location-events", h.key(tenantB, ScopeAdmin), nil).Status)
	require.Equal(t, http.StatusForbidden, h.do(http.MethodGet, Prefix+"/location-events", h.key(tenantA, ScopeRead), nil).Status)
}
