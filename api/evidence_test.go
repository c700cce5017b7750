package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

// TestEvidenceRoute: a sample's evidence is read by the sample's time,
// only by its own tenant; an incident links to its first failure's.
func TestEvidenceRoute(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 123456789, time.UTC)
	h.setClock(t0.Add(time.Hour))
	h.configTarget("web", nil)
	theirs := h.registryTarget(tenantB, "theirs", nil)
	failed := func(key string, at time.Time, body string) prober.Result {
		r := prober.Result{TargetID: key, Target: key, Kind: "http", Location: "local", Start: at, Duration: lat40, StatusCode: 503}
		r = r.Fail(prober.ClassStatus, "status 503")
		r.Evidence = &prober.Evidence{Reason: prober.CaptureFailures, Body: body,
			Headers: map[string][]string{"Retry-After": {"120"}, "Set-Cookie": {"<secret>"}}}
		return r
	}
	ok := prober.Result{TargetID: "web", Target: "web", Kind: "http", Location: "local", Start: t0.Add(-time.Minute), Duration: lat40, Success: true, StatusCode: 200}
	require.NoError(t, h.samples.WriteSamples(t.Context(), []prober.Result{
		ok, failed("web", t0, "database unreachable"), failed(theirs, t0, "their secret page"),
	}))
	keyA, keyB := h.key(tenantA, ScopeRead), h.key(tenantB, ScopeRead)
	at := t0.Format(time.RFC3339Nano)

	r := h.do(http.MethodGet, Prefix+"/targets/web/samples/"+at+"/evidence", keyA, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	doc := r.JSON(t)
	require.Equal(t, "web", doc["target_id"])
	require.Equal(t, at, doc["time"])
	require.Equal(t, []any{map[string]any{
		"location": "local", "reason": "failures", "body": "database unreachable",
		"headers": map[string]any{"Retry-After": []any{"120"}, "Set-Cookie": []any{"<secret>"}},
	}}, doc["evidence"])

	// The sample itself does not carry it.
	r = h.do(http.MethodGet, Prefix+"/targets/web/samples?from=2026-02-28T00:00:00Z", keyA, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.NotContains(t, string(r.Body), "database unreachable")

	// A check that kept none, another location, another tenant's target: 404.
	for _, path := range []string{
		"/targets/web/samples/" + ok.Start.Format(time.RFC3339Nano) + "/evidence",
		"/targets/web/samples/" + at + "/evidence?location=us-east",
		"/targets/theirs/samples/" + at + "/evidence",
	} {
		r = h.do(http.MethodGet, Prefix+path, keyA, nil)
		require.Equal(t, http.StatusNotFound, r.Status, path)
		require.NotContains(t, string(r.Body), "their secret page")
	}
	// Its own tenant reads it.
	r = h.do(http.MethodGet, Prefix+"/targets/theirs/samples/"+at+"/evidence", keyB, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "their secret page")

	// A time that is not one names the parameter.
	r = h.do(http.MethodGet, Prefix+"/targets/web/samples/yesterday/evidence", keyA, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, r.problem(t).Errors[0].Path, "time")

	// The incident that started at the failed check links to its evidence.
	h.incident("web", t0, time.Time{})
	r = h.do(http.MethodGet, Prefix+"/targets/web/incidents", keyA, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	inc := r.JSON(t)["incidents"].([]any)[0].(map[string]any)
	link := inc["first_failure_evidence"].(string)
	require.Equal(t, Prefix+"/targets/web/samples/"+at+"/evidence", link)
	r = h.do(http.MethodGet, link, keyA, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "database unreachable")
}
