package api

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify/webhook"
)

// wrongScope is a key scope that does not satisfy need.
var wrongScope = map[Scope]Scope{
	ScopeRead:    ScopeReports,
	ScopeWrite:   ScopeRead,
	ScopeAdmin:   ScopeWrite,
	ScopeReports: ScopeRead,
	ScopeAgent:   ScopeAdmin, // admin does not imply agent
}

type matrixRoute struct {
	method, path string
	scope        Scope
}

// walkRoutes lists every route of the router, with the scope s.route
// recorded for it; a route registered some other way fails the test.
func walkRoutes(t *testing.T, s *Server) []matrixRoute {
	scopes := s.RouteScopes()
	var out []matrixRoute
	require.NoError(t, s.router.Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := r.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := r.GetMethods()
		require.NoError(t, err, "route %s has no method", tpl)
		for _, m := range methods {
			sc, ok := scopes[m+" "+tpl]
			require.True(t, ok, "%s %s was not registered with s.route", m, tpl)
			out = append(out, matrixRoute{m, tpl, sc})
		}
		return nil
	}))
	// Deletes last, so the objects the other routes name still exist.
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].method != http.MethodDelete && out[j].method == http.MethodDelete
	})
	return out
}

// TestAuthorizationMatrix sends every route each kind of key.
func TestAuthorizationMatrix(t *testing.T) {
	h := newHarness(t)
	h.cfg.Alerting.Webhook = &webhook.Config{URL: "https://hooks.example.com/x"}
	w := h.key(tenantA, ScopeAdmin)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", w, httpTarget("mx")).Status)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "g", "webhooks": []any{"https://hooks.example.com/g"}}).Status)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/alert-policies", w, map[string]any{"name": "p", "channels": []any{"webhook"}, "contact_groups": []any{"g"}}).Status)
	r := h.do(http.MethodPost, Prefix+"/maintenance-windows", w, map[string]any{"cron": "0 3 * * *", "duration": "1h"})
	require.Equal(t, http.StatusCreated, r.Status)
	windowID := r.JSON(t)["id"].(string)
	r = h.do(http.MethodPost, Prefix+"/keys", w, map[string]any{"name": "victim", "scopes": []any{"read"}})
	require.Equal(t, http.StatusCreated, r.Status)
	keyID := r.JSON(t)["id"].(string)
	r = h.do(http.MethodPost, Prefix+"/status-pages", w, map[string]any{"slug": "matrix", "title": "M",
		"components": []any{map[string]any{"name": "C", "targets": []any{"mx"}}}})
	require.Equal(t, http.StatusCreated, r.Status)
	pageID := r.JSON(t)["id"].(string)
	ids := map[string]string{
		"/keys/": keyID, "/contact-groups/": "g", "/alert-policies/": "p", "/maintenance-windows/": windowID,
		"/status-pages/": pageID,
	}

	all := []Scope{ScopeAdmin, ScopeReports, ScopeAgent}
	revoked := h.newKey(tenantA, time.Time{}, all...)
	ks, err := h.reg.APIKeys(t.Context(), tenantA)
	require.NoError(t, err)
	for _, k := range ks {
		if string(k.Hash) == string(HashKey(revoked)) {
			require.NoError(t, h.reg.RevokeAPIKey(t.Context(), tenantA, k.ID, h.clock.Now()))
		}
	}
	expired := h.newKey(tenantA, h.clock.Now().Add(-time.Second), all...)
	right := h.newKey(tenantA, time.Time{}, all...)
	other := h.newKey(tenantB, time.Time{}, all...)

	routes := walkRoutes(t, h.srv)
	require.Greater(t, len(routes), 30)
	for _, rt := range routes {
		path := rt.path
		for prefix, id := range ids {
			if strings.HasPrefix(path, Prefix+prefix) {
				path = strings.Replace(path, "{id}", id, 1)
			}
		}
		path = strings.Replace(path, "{id}", "mx", 1)
		hasID := path != rt.path
		var body any
		if rt.method == http.MethodPost || rt.method == http.MethodPut || rt.method == http.MethodPatch {
			body = `{}`
		}
		name := rt.method + " " + rt.path
		t.Run(name, func(t *testing.T) {
			send := func(key string) response { return h.do(rt.method, path, key, body) }
			if rt.scope == ScopePublic {
				assert.Less(t, send("").Status, 400)
				return
			}
			for label, key := range map[string]string{
				"no key": "", "malformed": "uw_short", "revoked": revoked, "expired": expired,
			} {
				assert.Equal(t, http.StatusUnauthorized, send(key).Status, label)
			}
			assert.Equal(t, http.StatusForbidden, send(h.key(tenantA, wrongScope[rt.scope])).Status, "wrong scope")
			st := send(other).Status
			switch {
			case strings.HasPrefix(rt.path, Prefix+"/tenants"), rt.path == Prefix+"/location-events":
				assert.Equal(t, http.StatusForbidden, st, "other tenant: only default's admins manage tenants and see probe locations")
			case hasID:
				assert.Equal(t, http.StatusNotFound, st, "other tenant")
			default:
				assert.NotContains(t, []int{401, 403}, st, "other tenant")
				assert.Less(t, st, 500, "other tenant")
			}
			st = send(right).Status
			assert.NotContains(t, []int{401, 403}, st, "right key")
			assert.Less(t, st, 500, "right key")
			if strings.HasSuffix(rt.path, "{id}") && rt.method == http.MethodGet {
				assert.NotEqual(t, http.StatusNotFound, st, "right key")
			}
		})
	}
}
