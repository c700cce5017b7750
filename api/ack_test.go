package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAckIncident(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h.setClock(t0.Add(10 * time.Hour))
	h.configTarget("web", nil)
	theirs := h.registryTarget(tenantB, "theirs", nil)
	open := h.incident("web", t0.Add(5*time.Hour), time.Time{})
	past := h.incident("web", t0.Add(time.Hour), t0.Add(2*time.Hour))
	other := h.incident(theirs, t0.Add(2*time.Hour), time.Time{})
	ack := func(key, id string) response { return h.do(http.MethodPost, Prefix+"/incidents/"+id+"/ack", key, nil) }

	// Not acknowledged yet: both fields are there, null.
	r := h.do(http.MethodGet, Prefix+"/incidents?open=true", h.key(tenantA, ScopeRead), nil)
	require.Equal(t, http.StatusOK, r.Status)
	inc := r.JSON(t)["items"].([]any)[0].(map[string]any)
	require.Contains(t, inc, "acknowledged_by")
	require.Nil(t, inc["acknowledged_by"])
	require.Nil(t, inc["acknowledged_at"])

	require.Equal(t, http.StatusForbidden, ack(h.key(tenantA, ScopeRead), open.ID).Status, "acknowledging needs write")
	w := h.key(tenantA, ScopeWrite)
	r = ack(w, open.ID)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	doc := r.JSON(t)
	require.Equal(t, "web", doc["target_id"], "the caller's id, not the internal key")
	by := doc["acknowledged_by"].(string)
	require.NotEmpty(t, by)
	require.Equal(t, h.clock.Now().UTC().Format(time.RFC3339), doc["acknowledged_at"])

	// A second acknowledgement, later and by another key, changes nothing.
	h.setClock(t0.Add(11 * time.Hour))
	r = ack(h.key(tenantA, ScopeAdmin), open.ID)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, by, r.JSON(t)["acknowledged_by"])
	require.Equal(t, t0.Add(10*time.Hour).Format(time.RFC3339), r.JSON(t)["acknowledged_at"])
	r = h.do(http.MethodGet, Prefix+"/targets/web/incidents?open=true", w, nil)
	require.Equal(t, by, r.JSON(t)["items"].([]any)[0].(map[string]any)["acknowledged_by"])

	r = ack(w, past.ID)
	require.Equal(t, http.StatusConflict, r.Status, "an ended incident")
	h.requireProblem(r)
	require.Equal(t, http.StatusNotFound, ack(w, "nope").Status)
	// Another tenant's incident is as if it did not exist, and stays
	// unacknowledged.
	require.Equal(t, http.StatusNotFound, ack(w, other.ID).Status)
	_, at, err := h.reg.IncidentAck(t.Context(), other.ID)
	require.NoError(t, err)
	require.True(t, at.IsZero())
}
