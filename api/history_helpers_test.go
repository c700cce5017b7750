package api

import (
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tenancy"
)

// Helpers for the history, SLA, export and report tests: targets in the
// config file (tenant "default") or the registry (any tenant), samples in
// the real sample store, incidents in the real registry.

// configTarget adds an http target to the config file (tenant "default").
// Call it before the requests that should see it.
func (h *harness) configTarget(id string, labels map[string]string) {
	h.t.Helper()
	t := config.Target{Target: prober.Target{ID: id, Name: id + " site", Kind: "http", Labels: labels,
		Interval: 30 * time.Second, HTTP: &prober.HTTPSpec{URL: "https://" + id + ".example/"}}}
	t.Normalize()
	require.Empty(h.t, t.Validate("target"))
	h.cfg.Targets = append(h.cfg.Targets, t)
}

// registryTarget stores an http target of tenant in the registry and
// returns the key its data belongs to.
func (h *harness) registryTarget(tenant, id string, labels map[string]string) string {
	h.t.Helper()
	t := config.Target{Target: prober.Target{ID: id, Name: id + " site", Kind: "http", Labels: labels,
		Interval: 30 * time.Second, HTTP: &prober.HTTPSpec{URL: "https://" + id + ".example/"}}}
	t.Normalize()
	rec, err := tenancy.SealTarget(tenant, t, h.mk)
	require.NoError(h.t, err)
	rec.CreatedAt, rec.UpdatedAt = h.clock.Now(), h.clock.Now()
	key, err := h.reg.CreateTarget(h.t.Context(), rec)
	require.NoError(h.t, err)
	return key
}

// setClock moves the harness clock to t.
func (h *harness) setClock(t time.Time) { h.clock.Set(t) }

// lat40 is the latency of every check the tests write unless they say
// otherwise.
const lat40 = 40 * time.Millisecond

// checks writes a check of id every `every` in [from, to), skipping
// those for which skip is true and failing those in any of the down
// intervals.
func (h *harness) checks(id string, from, to time.Time, every time.Duration, skip func(time.Time) bool, down ...[2]time.Time) int {
	h.t.Helper()
	var batch []prober.Result
	n := 0
	flush := func() {
		if len(batch) > 0 {
			require.NoError(h.t, h.samples.WriteSamples(h.t.Context(), batch))
			batch = batch[:0]
		}
	}
	for at := from; at.Before(to); at = at.Add(every) {
		if skip != nil && skip(at) {
			continue
		}
		r := prober.Result{TargetID: id, Target: id, Kind: "http", Location: "local", Start: at,
			Duration: lat40, Success: true, StatusCode: 200,
			Phases: prober.Phases{DNS: time.Millisecond, Connect: 5 * time.Millisecond, TTFB: 30 * time.Millisecond}}
		for _, d := range down {
			if !at.Before(d[0]) && at.Before(d[1]) {
				r = r.Fail(prober.ClassStatus, "status 503")
				r.StatusCode = 503
			}
		}
		batch = append(batch, r)
		n++
		if len(batch) == 5000 {
			flush()
		}
	}
	flush()
	return n
}

// incident stores an incident of id; a zero end leaves it open.
func (h *harness) incident(id string, start, end time.Time) alerting.Incident {
	h.t.Helper()
	inc := alerting.Incident{ID: alerting.IncidentID(id, start), TargetID: id, Start: start, End: end,
		Cause: fmt.Sprintf("status: status 503 since %s", start.Format(time.RFC3339))}
	require.NoError(h.t, h.reg.Commit(h.t.Context(), alerting.State{TargetID: id, Status: alerting.StatusDown}, []alerting.Incident{inc}, nil))
	return inc
}
