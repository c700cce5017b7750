package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

const (
	password = "hunter2-very-secret-password"
	token    = "tok-3f9a0c1d-super-secret"
)

func httpTarget(id string) map[string]any {
	t := map[string]any{
		"name": "Shop " + id, "kind": "http", "interval": "30s", "timeout": "5s",
		"labels": map[string]any{"env": "prod", "team": "web"},
		"http": map[string]any{
			"url":     "https://shop.example.com/health",
			"headers": map[string]any{"Authorization": "Bearer " + token, "Accept": "application/json"},
			"auth":    map[string]any{"type": "basic", "username": "probe", "password": password},
		},
	}
	if id != "" {
		t["id"] = id
	}
	return t
}

func TestTargetLifecycle(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)

	r := h.do(http.MethodPost, Prefix+"/targets", w, httpTarget("shop"))
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	require.Equal(t, Prefix+"/targets/shop", r.Header.Get("Location"))
	got := r.JSON(t)
	assert.Equal(t, "shop", got["id"])
	assert.Equal(t, "api", got["source"])
	assert.Equal(t, "30s", got["interval"])
	assert.Equal(t, []string{tenantA}, h.changed())

	// Read back, list with label filters.
	r = h.do(http.MethodGet, Prefix+"/targets/shop", h.key(tenantA, ScopeRead), nil)
	require.Equal(t, http.StatusOK, r.Status)
	auth := r.JSON(t)["http"].(map[string]any)["auth"].(map[string]any)
	assert.Equal(t, "<secret>", auth["password"])
	assert.Len(t, h.do(http.MethodGet, Prefix+"/targets?label=env=prod", h.key(tenantA, ScopeRead), nil).JSON(t)["items"], 1)
	assert.Len(t, h.do(http.MethodGet, Prefix+"/targets?label=env=dev", h.key(tenantA, ScopeRead), nil).JSON(t)["items"], 0)

	// The credentials are sealed in the registry, opened with tenant + id.
	rec, err := h.reg.Target(t.Context(), tenantA, "shop")
	require.NoError(t, err)
	assert.NotContains(t, string(rec.Spec), password)
	assert.NotContains(t, string(rec.Secrets), password)
	ti, err := tenancy.OpenTarget(rec, h.mk)
	require.NoError(t, err)
	assert.Equal(t, password, ti.Target.HTTP.Auth.Password.Reveal())
	rec.TenantID = tenantB
	_, err = tenancy.OpenTarget(rec, h.mk)
	require.Error(t, err, "sealed credentials must not open under another tenant")

	// PUT the document read back: "<secret>" keeps the stored credential.
	doc := h.do(http.MethodGet, Prefix+"/targets/shop", w, nil).JSON(t)
	doc["interval"] = "1m"
	r = h.do(http.MethodPut, Prefix+"/targets/shop", w, doc)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	assert.Equal(t, "1m0s", r.JSON(t)["interval"])
	ti, err = h.srv.targetOf(t.Context(), tenantA, "shop")
	require.NoError(t, err)
	assert.Equal(t, password, ti.Target.HTTP.Auth.Password.Reveal())
	assert.Equal(t, "Bearer "+token, ti.Target.HTTP.Headers["Authorization"])

	// PATCH (merge patch).
	r = h.do(http.MethodPatch, Prefix+"/targets/shop", w, `{"labels":{"team":null,"tier":"1"}}`, "Content-Type", "application/merge-patch+json")
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	assert.Equal(t, map[string]any{"env": "prod", "tier": "1"}, r.JSON(t)["labels"])

	// Pause and resume.
	r = h.do(http.MethodPost, Prefix+"/targets/shop/pause", w, nil)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	assert.Equal(t, true, r.JSON(t)["paused"])
	st := h.do(http.MethodGet, Prefix+"/status", h.key(tenantA, ScopeRead), nil).JSON(t)["items"].([]any)
	require.Len(t, st, 1)
	assert.Equal(t, "paused", st[0].(map[string]any)["state"])
	r = h.do(http.MethodPost, Prefix+"/targets/shop/resume", w, nil)
	assert.Equal(t, false, r.JSON(t)["paused"])

	// Delete.
	r = h.do(http.MethodDelete, Prefix+"/targets/shop", w, nil)
	require.Equal(t, http.StatusNoContent, r.Status)
	r = h.do(http.MethodGet, Prefix+"/targets/shop", w, nil)
	require.Equal(t, http.StatusNotFound, r.Status)

	// Every write is in the audit log, newest first, with the key id.
	r = h.do(http.MethodGet, Prefix+"/audit", h.key(tenantA, ScopeAdmin), nil)
	require.Equal(t, http.StatusOK, r.Status)
	var actions []string
	for _, e := range r.JSON(t)["items"].([]any) {
		m := e.(map[string]any)
		assert.Equal(t, "target", m["object_type"])
		assert.Equal(t, "shop", m["object_id"])
		assert.NotEmpty(t, m["key_id"])
		actions = append(actions, m["action"].(string))
	}
	assert.Equal(t, []string{"delete", "resume", "pause", "update", "update", "create"}, actions)
	// Tenant B sees none of it.
	assert.Empty(t, h.do(http.MethodGet, Prefix+"/audit", h.key(tenantB, ScopeAdmin), nil).JSON(t)["items"])

	// Credentials never reached the log, nor any answer.
	assert.NotContains(t, h.logs.String(), password)
	assert.NotContains(t, h.logs.String(), token)
}

func TestCredentialsNeverReturned(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	bodies := []response{h.do(http.MethodPost, Prefix+"/targets", w, httpTarget("a"))}
	oauth := httpTarget("b")
	oauth["http"].(map[string]any)["auth"] = map[string]any{"type": "oauth2", "token_url": "https://idp.example.com/token",
		"client_id": "c", "client_secret": password}
	oauth["http"].(map[string]any)["url"] = "https://user:" + token + "@example.com/"
	bodies = append(bodies,
		h.do(http.MethodPost, Prefix+"/targets", w, oauth),
		h.do(http.MethodGet, Prefix+"/targets", w, nil),
		h.do(http.MethodGet, Prefix+"/targets/a", w, nil),
		h.do(http.MethodGet, Prefix+"/targets/b", w, nil),
		h.do(http.MethodGet, Prefix+"/status", w, nil),
		h.do(http.MethodPost, Prefix+"/targets/b/pause", w, nil),
	)
	for _, b := range bodies {
		require.Less(t, b.Status, 300, string(b.Body))
		assert.NotContains(t, string(b.Body), password)
		assert.NotContains(t, string(b.Body), token)
	}
	assert.NotContains(t, h.logs.String(), password)
	assert.NotContains(t, h.logs.String(), token)
	// The redacted URL put back keeps the stored one.
	doc := h.do(http.MethodGet, Prefix+"/targets/b", w, nil).JSON(t)
	require.Equal(t, http.StatusOK, h.do(http.MethodPut, Prefix+"/targets/b", w, doc).Status)
	ti, err := h.srv.targetOf(t.Context(), tenantA, "b")
	require.NoError(t, err)
	assert.Contains(t, ti.Target.HTTP.URL, token)
	assert.Equal(t, password, ti.Target.HTTP.Auth.ClientSecret.Reveal())
}

func TestTenantIsolation(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", h.key(tenantA, ScopeWrite), httpTarget("mine")).Status)
	b := h.key(tenantB, ScopeAdmin)
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		assert.Equal(t, http.StatusNotFound, h.do(m, Prefix+"/targets/mine", b, nil).Status)
	}
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodPut, Prefix+"/targets/mine", b, httpTarget("mine")).Status)
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodPost, Prefix+"/targets/mine/pause", b, nil).Status)
	assert.Empty(t, h.do(http.MethodGet, Prefix+"/targets", b, nil).JSON(t)["items"])
	assert.Empty(t, h.do(http.MethodGet, Prefix+"/status", b, nil).JSON(t)["items"])
	// Ids are per tenant: B can take an id A has, without learning that A
	// has it, and gets a target of its own.
	assert.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", b, httpTarget("mine")).Status)
	assert.Equal(t, http.StatusConflict, h.do(http.MethodPost, Prefix+"/targets", b, httpTarget("mine")).Status, "its own id again")
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/targets/mine", b, nil).Status)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/targets/mine", h.key(tenantA, ScopeRead), nil).Status, "A's is untouched")
	// Generated ids.
	r := h.do(http.MethodPost, Prefix+"/targets", b, httpTarget(""))
	require.Equal(t, http.StatusCreated, r.Status)
	assert.True(t, strings.HasPrefix(r.JSON(t)["id"].(string), "tgt_"))
	// B's key list does not show A's keys.
	for _, k := range h.do(http.MethodGet, Prefix+"/keys", b, nil).JSON(t)["items"].([]any) {
		id := k.(map[string]any)["id"].(string)
		_, err := h.reg.APIKey(t.Context(), tenantB, id)
		require.NoError(t, err)
	}
}

func TestConfigTargetsReadOnly(t *testing.T) {
	h := newHarness(t)
	ct := config.Target{Target: prober.Target{Name: "from-file", Kind: "tcp", TCP: &prober.TCPSpec{Address: "db.example.com:5432"}}}
	ct.Normalize()
	h.cfg.Targets = []config.Target{ct}
	h.cfg.ContactGroups = []config.ContactGroup{{Name: "ops", Members: []config.Member{{Email: "ops@example.com"}}}}
	w := h.key(tenantA, ScopeWrite)
	r := h.do(http.MethodGet, Prefix+"/targets/from-file", w, nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "config", r.JSON(t)["source"])
	for _, req := range []struct{ method, path string }{
		{http.MethodPut, "/targets/from-file"}, {http.MethodPatch, "/targets/from-file"},
		{http.MethodDelete, "/targets/from-file"}, {http.MethodPost, "/targets/from-file/pause"},
		{http.MethodPut, "/contact-groups/ops"}, {http.MethodDelete, "/contact-groups/ops"},
	} {
		r := h.do(req.method, Prefix+req.path, w, `{"name":"x"}`)
		assert.Equal(t, http.StatusConflict, r.Status, "%s %s: %s", req.method, req.path, r.Body)
	}
	// A config id cannot be taken through the API; tenant B does not see it.
	assert.Equal(t, http.StatusConflict, h.do(http.MethodPost, Prefix+"/targets", w, httpTarget("from-file")).Status)
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodGet, Prefix+"/targets/from-file", h.key(tenantB, ScopeRead), nil).Status)
	assert.Len(t, h.do(http.MethodGet, Prefix+"/targets?source=config", w, nil).JSON(t)["items"], 1)
}

func TestObjects(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	r := h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "ops", "members": []any{map[string]any{"name": "Ann", "email": "ann@example.com"}}})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	assert.Equal(t, "ops", r.JSON(t)["id"])
	// Policies need configured providers for their channels.
	r = h.do(http.MethodPost, Prefix+"/alert-policies", w, map[string]any{"name": "p", "channels": []any{"email"}, "contact_groups": []any{"ops"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	assert.Equal(t, "channels[0]", r.problem(t).Errors[0].Path)
	h.cfg.Alerting.SMTP = nil
	r = h.do(http.MethodPost, Prefix+"/alert-policies", w, map[string]any{"name": "p", "channels": []any{"sms"}, "contact_groups": []any{"nope"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	paths := []string{}
	for _, e := range r.problem(t).Errors {
		paths = append(paths, e.Path)
	}
	assert.Contains(t, paths, "contact_groups[0]")

	// The quorum over probe locations: named or a number, checked by name.
	h.cfg.Alerting.Webhook = &webhook.Config{URL: "https://hooks.example.com/x"}
	r = h.do(http.MethodPost, Prefix+"/alert-policies", w, map[string]any{"name": "q", "channels": []any{"webhook"}, "contact_groups": []any{"ops"}, "down_when": "most", "stale_after": "-1s"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	paths = paths[:0]
	for _, e := range r.problem(t).Errors {
		paths = append(paths, e.Path)
	}
	assert.ElementsMatch(t, []string{"down_when", "stale_after"}, paths)
	r = h.do(http.MethodPost, Prefix+"/alert-policies", w, map[string]any{"name": "q", "channels": []any{"webhook"}, "contact_groups": []any{"ops"}, "down_when": 2, "stale_after": "5m"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	assert.Equal(t, "2", r.JSON(t)["down_when"])
	assert.Equal(t, "5m0s", r.JSON(t)["stale_after"])
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/alert-policies/q", w, nil).Status)
	h.cfg.Alerting.Webhook = nil

	// Maintenance windows: generated id, validated with the config's rules.
	r = h.do(http.MethodPost, Prefix+"/maintenance-windows", w, map[string]any{"name": "nightly", "cron": "0 2 * * *", "duration": "1h", "time_zone": "Europe/Berlin"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	id := r.JSON(t)["id"].(string)
	assert.True(t, strings.HasPrefix(id, "mw_"))
	r = h.do(http.MethodPut, Prefix+"/maintenance-windows/"+id, w, map[string]any{"cron": "bad", "duration": "1h"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, "cron", r.problem(t).Errors[0].Path)
	r = h.do(http.MethodPost, Prefix+"/maintenance-windows", w, map[string]any{"targets": []any{"not-mine"}, "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, "targets[0]", r.problem(t).Errors[0].Path)

	// A target using a policy keeps it from being deleted; a policy keeps its group.
	h.cfg.Alerting.Webhook = nil
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "solo", "members": []any{map[string]any{"phone": "+4915112345678"}}}).Status)
	r = h.do(http.MethodPost, Prefix+"/targets", w, map[string]any{"id": "t1", "name": "t1", "kind": "tcp", "tcp": map[string]any{"address": "a.example.com:1"}, "alert_policy": "missing"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, "alert_policy", r.problem(t).Errors[0].Path)
	assert.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/contact-groups/solo", w, nil).Status)
	assert.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/maintenance-windows/"+id, w, nil).Status)
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodGet, Prefix+"/maintenance-windows/"+id, w, nil).Status)
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodGet, Prefix+"/contact-groups/ops", h.key(tenantB, ScopeRead), nil).Status)
	// Duplicate name.
	assert.Equal(t, http.StatusConflict, h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "ops"}).Status)
}

func TestKeys(t *testing.T) {
	h := newHarness(t)
	admin := h.key(tenantA, ScopeAdmin)
	r := h.do(http.MethodPost, Prefix+"/keys", admin, map[string]any{"name": "ci", "scopes": []any{"read"}})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	created := r.JSON(t)
	key := created["key"].(string)
	require.True(t, wellFormed(key))
	assert.True(t, strings.HasPrefix(key, created["prefix"].(string)))
	// Stored only as a hash.
	k, err := h.reg.APIKey(t.Context(), tenantA, created["id"].(string))
	require.NoError(t, err)
	assert.Equal(t, HashKey(key), k.Hash)
	// Usable, never shown again.
	r = h.do(http.MethodGet, Prefix+"/keys/"+created["id"].(string), admin, nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.NotContains(t, string(r.Body), key)
	assert.NotContains(t, string(h.do(http.MethodGet, Prefix+"/keys", admin, nil).Body), key)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/targets", key, nil).Status)
	assert.Equal(t, http.StatusForbidden, h.do(http.MethodPost, Prefix+"/targets", key, httpTarget("x")).Status)
	assert.NotEmpty(t, h.do(http.MethodGet, Prefix+"/keys/"+created["id"].(string), admin, nil).JSON(t)["last_used_at"])
	// Revoked: 401 at once.
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/keys/"+created["id"].(string), admin, nil).Status)
	r = h.do(http.MethodGet, Prefix+"/targets", key, nil)
	require.Equal(t, http.StatusUnauthorized, r.Status)
	assert.Contains(t, r.problem(t).Detail, "revoked")
	// Expiry.
	exp := h.clock.Now().Add(time.Hour)
	r = h.do(http.MethodPost, Prefix+"/keys", admin, map[string]any{"name": "tmp", "scopes": []any{"read"}, "expires_at": exp.Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, r.Status)
	tmp := r.JSON(t)["key"].(string)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/tenant", tmp, nil).Status)
	h.clock.Advance(time.Hour)
	assert.Equal(t, http.StatusUnauthorized, h.do(http.MethodGet, Prefix+"/tenant", tmp, nil).Status)
	// Bad scopes.
	r = h.do(http.MethodPost, Prefix+"/keys", admin, map[string]any{"name": "x", "scopes": []any{"root"}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	assert.Equal(t, "scopes[0]", r.problem(t).Errors[0].Path)
	// The keys never reached the log.
	assert.NotContains(t, h.logs.String(), key)
	assert.NotContains(t, h.logs.String(), admin)
}

func TestTenants(t *testing.T) {
	h := newHarness(t)
	r := h.do(http.MethodPost, Prefix+"/tenants", h.key(tenantA, ScopeAdmin), map[string]any{"id": "acme", "name": "ACME"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	key := r.JSON(t)["admin_key"].(map[string]any)["key"].(string)
	r = h.do(http.MethodGet, Prefix+"/tenant", key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "acme", r.JSON(t)["id"])
	assert.Equal(t, http.StatusForbidden, h.do(http.MethodPost, Prefix+"/tenants", key, map[string]any{"id": "evil"}).Status)
	assert.Equal(t, http.StatusForbidden, h.do(http.MethodGet, Prefix+"/tenants", h.key(tenantB, ScopeAdmin), nil).Status)
	assert.Equal(t, http.StatusConflict, h.do(http.MethodPost, Prefix+"/tenants", h.key(tenantA, ScopeAdmin), map[string]any{"id": "acme"}).Status)
	assert.Len(t, h.do(http.MethodGet, Prefix+"/tenants", h.key(tenantA, ScopeAdmin), nil).JSON(t)["items"], 3)
}

// TestStatusCodes covers each error status the API answers.
func TestStatusCodes(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", w, httpTarget("t")).Status)
	cases := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		hdr    []string
		status int
		check  func(t *testing.T, p ProblemError)
	}{
		{"400 bad json", http.MethodPost, "/targets", w, `{"name":`, nil, 400, nil},
		{"400 unknown field", http.MethodPost, "/targets", w, `{"name":"x","kind":"tcp","tcp":{"address":"a:1","bogus":1}}`, nil, 400,
			func(t *testing.T, p ProblemError) { assert.Equal(t, "tcp.bogus", p.Errors[0].Path) }},
		{"400 unknown top field", http.MethodPost, "/keys", h.key(tenantA, ScopeAdmin), `{"name":"x","scopes":["read"],"admin":true}`, nil, 400,
			func(t *testing.T, p ProblemError) { assert.Equal(t, "admin", p.Errors[0].Path) }},
		{"400 not an object", http.MethodPost, "/targets", w, `[1]`, nil, 400, nil},
		{"400 label filter", http.MethodGet, "/targets?label=nolabel", w, nil, nil, 400, nil},
		{"401 no key", http.MethodGet, "/targets", "", nil, nil, 401, nil},
		{"401 basic auth", http.MethodGet, "/targets", "", nil, []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, nil},
		{"401 unknown key", http.MethodGet, "/targets", "uw_" + strings.Repeat("A", 43), nil, nil, 401, nil},
		{"403 scope", http.MethodDelete, "/targets/t", h.key(tenantA, ScopeRead), nil, nil, 403, nil},
		{"404 other tenant", http.MethodGet, "/targets/t", h.key(tenantB, ScopeRead), nil, nil, 404, nil},
		{"404 route", http.MethodGet, "/nope", w, nil, nil, 404, nil},
		{"405 method", http.MethodPut, "/status", w, nil, nil, 405, nil},
		{"409 id taken", http.MethodPost, "/targets", w, httpTarget("t"), nil, 409, nil},
		{"413 body too large", http.MethodPost, "/targets", w, `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, nil, 413, nil},
		{"415 content type", http.MethodPost, "/targets", w, `{}`, []string{"Content-Type", "text/plain"}, 415, nil},
		{"422 validation", http.MethodPost, "/targets", w, `{"name":"x","kind":"http","interval":"500ms","http":{"url":"ftp://x"}}`, nil, 422,
			func(t *testing.T, p ProblemError) {
				paths := map[string]bool{}
				for _, e := range p.Errors {
					paths[e.Path] = true
				}
				assert.True(t, paths["interval"], "%v", p.Errors)
				assert.True(t, paths["http.url"], "%v", p.Errors)
			}},
		{"422 duration type", http.MethodPost, "/targets", w, `{"name":"x","kind":"tcp","interval":30,"tcp":{"address":"a:1"}}`, nil, 422,
			func(t *testing.T, p ProblemError) { assert.Equal(t, "interval", p.Errors[0].Path) }},
		{"422 env secret", http.MethodPost, "/targets", w, `{"name":"x","kind":"http","http":{"url":"https://a","auth":{"type":"bearer","token":"env:HOME"}}}`, nil, 422,
			func(t *testing.T, p ProblemError) { assert.Equal(t, "http.auth.token", p.Errors[0].Path) }},
		{"422 server file", http.MethodPost, "/targets", w, `{"name":"x","kind":"tls","tls":{"address":"a:443","ca_file":"/etc/shadow"}}`, nil, 422,
			func(t *testing.T, p ProblemError) { assert.Equal(t, "tls.ca_file", p.Errors[0].Path) }},
		{"422 id change", http.MethodPut, "/targets/t", w, `{"id":"u","name":"x","kind":"tcp","tcp":{"address":"a:1"}}`, nil, 422, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, Prefix+tc.path, tc.key, tc.body, tc.hdr...)
			require.Equal(t, tc.status, r.Status, string(truncateBody(r.Body)))
			if tc.check != nil {
				tc.check(t, r.problem(t))
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.RateLimit = RateLimit{RPS: 1, Burst: 3} })
	k := h.key(tenantA, ScopeRead)
	for i := range 3 {
		require.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/tenant", k, nil).Status, "request %d", i)
	}
	r := h.do(http.MethodGet, Prefix+"/tenant", k, nil)
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	assert.Equal(t, "1", r.Header.Get("Retry-After"))
	// Another key has its own bucket; time refills.
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/tenant", h.key(tenantA, ScopeWrite), nil).Status)
	// Refused requests spend nothing: hammering while empty does not
	// push the next token further away.
	for range 5 {
		require.Equal(t, http.StatusTooManyRequests, h.do(http.MethodGet, Prefix+"/tenant", k, nil).Status)
	}
	h.clock.Advance(time.Second)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/tenant", k, nil).Status)
	assert.Equal(t, http.StatusTooManyRequests, h.do(http.MethodGet, Prefix+"/tenant", k, nil).Status)
}

func TestBootstrap(t *testing.T) {
	h := newHarness(t)
	key, _, _, err := NewKey()
	require.NoError(t, err)
	// Tenant default already has an admin key in the harness: nothing stored.
	created, err := Bootstrap(t.Context(), h.reg, h.reg, key, h.clock.Now())
	require.NoError(t, err)
	assert.False(t, created)
	for _, k := range mustKeys(t, h, tenantA) {
		if k.Name != "bootstrap" {
			require.NoError(t, h.reg.RevokeAPIKey(t.Context(), tenantA, k.ID, h.clock.Now()))
		}
	}
	created, err = Bootstrap(t.Context(), h.reg, h.reg, key, h.clock.Now())
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/audit", key, nil).Status)
	created, err = Bootstrap(t.Context(), h.reg, h.reg, key, h.clock.Now())
	require.NoError(t, err)
	assert.False(t, created, "second start stores nothing")
	_, err = Bootstrap(t.Context(), h.reg, h.reg, "not-a-key", h.clock.Now())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "not-a-key")
}

func mustKeys(t *testing.T, h *harness, tenant string) []registry.APIKey {
	ks, err := h.reg.APIKeys(t.Context(), tenant)
	require.NoError(t, err)
	return ks
}
