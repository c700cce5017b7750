package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTargetLocations: an API target chooses its locations; a bad one is
// refused naming the entry.
func TestTargetLocations(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	tg := map[string]any{"id": "t1", "name": "t1", "kind": "tcp", "tcp": map[string]any{"address": "a.example.com:1"}, "locations": []any{"eu-west", "eu west"}}
	r := h.do(http.MethodPost, Prefix+"/targets", w, tg)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	require.Equal(t, "locations[1]", r.problem(t).Errors[0].Path)
	tg["locations"] = []any{"eu-west", "us-east"}
	r = h.do(http.MethodPost, Prefix+"/targets", w, tg)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	require.Equal(t, []any{"eu-west", "us-east"}, h.do(http.MethodGet, Prefix+"/targets/t1", w, nil).JSON(t)["locations"])
}

// TestAgentKeys: agent keys are tenant default's, scope agent alone, with
// a location; the agent routes answer 404 on a server that takes no agents.
func TestAgentKeys(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		tenant string
		body   map[string]any
		path   string
	}{
		{tenantA, map[string]any{"name": "a", "scopes": []any{"agent", "read"}, "location": "eu"}, "scopes"},
		{tenantA, map[string]any{"name": "a", "scopes": []any{"agent"}}, "location"},
		{tenantA, map[string]any{"name": "a", "scopes": []any{"agent"}, "location": "e u"}, "location"},
		{tenantA, map[string]any{"name": "a", "scopes": []any{"read"}, "location": "eu"}, "location"},
		{tenantB, map[string]any{"name": "a", "scopes": []any{"agent"}, "location": "eu"}, "scopes"},
	} {
		r := h.do(http.MethodPost, Prefix+"/keys", h.key(tc.tenant, ScopeAdmin), tc.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%v: %s", tc.body, r.Body)
		require.Equal(t, tc.path, r.problem(t).Errors[0].Path, "%v", tc.body)
	}
	r := h.do(http.MethodPost, Prefix+"/keys", h.key(tenantA, ScopeAdmin), map[string]any{"name": "eu", "scopes": []any{"agent"}, "location": "eu-west"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	k := r.JSON(t)
	require.Equal(t, "eu-west", k["location"])
	require.Equal(t, []any{"agent"}, k["scopes"])
	r = h.do(http.MethodPost, Prefix+"/agent/heartbeat", k["key"].(string), map[string]any{"id": "a1"})
	require.Equal(t, http.StatusNotFound, r.Status, "no agent service in this harness")
}
