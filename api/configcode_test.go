package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

const yamlCT = "application/yaml"

// exportYAML is GET /targets?format=yaml as the tenant's reader.
func (h *harness) exportYAML(tenant string) string {
	h.t.Helper()
	r := h.do(http.MethodGet, Prefix+"/targets?format=yaml", h.key(tenant, ScopeRead), nil)
	require.Equal(h.t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(h.t, yamlCT, r.Header.Get("Content-Type"))
	return string(r.Body)
}

// apply is PUT /targets?format=yaml (query adds e.g. "&dry_run=true").
func (h *harness) apply(tenant, doc, query string) response {
	h.t.Helper()
	return h.do(http.MethodPut, Prefix+"/targets?format=yaml"+query, h.key(tenant, ScopeWrite), doc, "Content-Type", yamlCT)
}

func diffOf(t *testing.T, r response) tenancy.TargetsDiff {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	var d tenancy.TargetsDiff
	require.NoError(t, json.Unmarshal(r.Body, &d))
	return d
}

// apiTargets maps the tenant's API target ids to their documents.
func (h *harness) apiTargets(tenant string) map[string]map[string]any {
	h.t.Helper()
	r := h.do(http.MethodGet, Prefix+"/targets?source=api", h.key(tenant, ScopeRead), nil)
	require.Equal(h.t, http.StatusOK, r.Status)
	out := map[string]map[string]any{}
	for _, it := range r.JSON(h.t)["items"].([]any) {
		m := it.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

func (h *harness) auditActions(tenant string) []string {
	h.t.Helper()
	r := h.do(http.MethodGet, Prefix+"/audit", h.key(tenant, ScopeAdmin), nil)
	require.Equal(h.t, http.StatusOK, r.Status)
	var out []string
	for _, e := range r.JSON(h.t)["items"].([]any) {
		m := e.(map[string]any)
		out = append(out, m["action"].(string)+" "+m["object_type"].(string)+" "+m["object_id"].(string))
	}
	return out
}

func (h *harness) post(tenant string, doc map[string]any) {
	h.t.Helper()
	r := h.do(http.MethodPost, Prefix+"/targets", h.key(tenant, ScopeWrite), doc)
	require.Equal(h.t, http.StatusCreated, r.Status, string(r.Body))
}

func tcpTarget(id string) map[string]any {
	return map[string]any{"id": id, "name": "DB " + id, "kind": "tcp", "interval": "1m", "tcp": map[string]any{"address": "db.example.com:5432"}}
}

// withConfigTarget declares a config-file target "from-file" (tenant default).
func withConfigTarget(h *harness) {
	ct := config.Target{Target: prober.Target{Name: "from-file", Kind: "tcp", TCP: &prober.TCPSpec{Address: "db.example.com:5432"}}}
	ct.Normalize()
	h.cfg.Targets = []config.Target{ct}
}

func TestConfigCodeRoundTrip(t *testing.T) {
	h := newHarness(t)
	withConfigTarget(h)
	h.post(tenantA, httpTarget("shop"))
	h.post(tenantA, tcpTarget("db"))
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, Prefix+"/targets/db/pause", h.key(tenantA, ScopeWrite), nil).Status)
	h.changed()
	audits := len(h.auditActions(tenantA))

	out := h.exportYAML(tenantA)
	assert.NotContains(t, out, password)
	assert.NotContains(t, out, token)
	assert.Contains(t, out, "<secret>")
	assert.Contains(t, out, "# Not included, read-only (declared in the config file): from-file")

	// The export is a config file: config.Parse reads it as is.
	cfg, err := config.Parse(strings.NewReader(out), "export.yaml", nil)
	require.NoError(t, err, out)
	require.Len(t, cfg.Targets, 2, "config-file targets are left out")
	assert.Equal(t, "db", cfg.Targets[0].ID)
	assert.True(t, cfg.Targets[0].Paused, "paused is part of the document")
	assert.Equal(t, "shop", cfg.Targets[1].ID)
	assert.Equal(t, "probe", cfg.Targets[1].HTTP.Auth.Username)

	// Applied back, it changes nothing (dry run or not).
	for _, q := range []string{"&dry_run=true", ""} {
		d := diffOf(t, h.apply(tenantA, out, q))
		assert.Equal(t, tenancy.TargetsDiff{DryRun: q != "", Create: []string{}, Update: []tenancy.TargetChange{}, Delete: []string{}, Unchanged: 2}, d)
	}
	assert.Empty(t, h.changed(), "nothing changed, nothing to tell the scheduler")
	assert.Len(t, h.auditActions(tenantA), audits)
	ti, err := h.srv.targetOf(t.Context(), tenantA, "shop")
	require.NoError(t, err)
	assert.Equal(t, password, ti.Target.HTTP.Auth.Password.Reveal())
	assert.Equal(t, "Bearer "+token, ti.Target.HTTP.Headers["Authorization"])

	// text/yaml is accepted too; an empty tenant exports an empty list.
	r := h.do(http.MethodPut, Prefix+"/targets?format=yaml&dry_run=1", h.key(tenantA, ScopeWrite), out, "Content-Type", "text/yaml; charset=utf-8")
	assert.Equal(t, 2, diffOf(t, r).Unchanged)
	empty := h.exportYAML(tenantB)
	assert.Contains(t, empty, "targets: []")
	assert.Equal(t, tenancy.TargetsDiff{DryRun: true, Create: []string{}, Update: []tenancy.TargetChange{}, Delete: []string{}}, diffOf(t, h.apply(tenantB, empty, "&dry_run=true")))
}

// changedDoc is the export of shop, db, gone with: shop's interval and
// password changed, a label added; db as is (its token kept by
// "<secret>"); gone left out; new added.
const changedDoc = `
targets:
  - id: shop
    name: Shop shop
    kind: http
    interval: 1m
    timeout: 5s
    labels: {env: prod, team: web, tier: "1"}
    http:
      url: https://shop.example.com/health
      headers: {Authorization: <secret>, Accept: application/json}
      auth: {type: basic, username: probe, password: new-password-1}
  - id: db
    name: DB db
    kind: http
    http:
      url: https://db.example.com/
      auth: {type: bearer, token: <secret>}
  - name: new-one
    kind: tcp
    interval: 45s
    depends_on: [db]
    tcp: {address: new.example.com:443}
`

func TestConfigCodeApply(t *testing.T) {
	h := newHarness(t)
	h.post(tenantA, httpTarget("shop"))
	h.post(tenantA, map[string]any{"id": "db", "name": "DB db", "kind": "http",
		"http": map[string]any{"url": "https://db.example.com/", "auth": map[string]any{"type": "bearer", "token": token}}})
	h.post(tenantA, tcpTarget("gone"))
	h.post(tenantB, tcpTarget("theirs"))
	h.changed()
	before := h.apiTargets(tenantA)
	beforeB, auditsB := h.apiTargets(tenantB), h.auditActions(tenantB)
	audits := h.auditActions(tenantA)

	want := tenancy.TargetsDiff{
		Create: []string{"new-one"},
		Update: []tenancy.TargetChange{{ID: "shop", Fields: []string{"http.auth.password", "interval", "labels.tier"}}},
		Delete: []string{"gone"}, Unchanged: 1,
	}

	// A dry run answers the diff and changes nothing.
	d := diffOf(t, h.apply(tenantA, changedDoc, "&dry_run=true"))
	want.DryRun = true
	assert.Equal(t, want, d)
	assert.Equal(t, before, h.apiTargets(tenantA))
	assert.Equal(t, audits, h.auditActions(tenantA))
	assert.Empty(t, h.changed())

	// The real thing applies it.
	h.clock.Advance(60e9)
	d = diffOf(t, h.apply(tenantA, changedDoc, ""))
	want.DryRun = false
	assert.Equal(t, want, d)
	after := h.apiTargets(tenantA)
	require.ElementsMatch(t, []string{"shop", "db", "new-one"}, keys(after))
	assert.Equal(t, "1m0s", after["shop"]["interval"])
	assert.Equal(t, before["shop"]["created_at"], after["shop"]["created_at"])
	assert.NotEqual(t, before["shop"]["updated_at"], after["shop"]["updated_at"])
	assert.Equal(t, before["db"], after["db"], "unchanged targets are not rewritten")
	assert.Equal(t, "45s", after["new-one"]["interval"])
	assert.Equal(t, []string{tenantA}, h.changed(), "the scheduler is told once")

	// Credentials: the new one stored, "<secret>" kept the others.
	shop, err := h.srv.targetOf(t.Context(), tenantA, "shop")
	require.NoError(t, err)
	assert.Equal(t, "new-password-1", shop.Target.HTTP.Auth.Password.Reveal())
	assert.Equal(t, "Bearer "+token, shop.Target.HTTP.Headers["Authorization"])
	db, err := h.srv.targetOf(t.Context(), tenantA, "db")
	require.NoError(t, err)
	assert.Equal(t, token, db.Target.HTTP.Auth.Token.Reveal())

	// Audit: one entry per write, with the key.
	got := h.auditActions(tenantA)
	require.Len(t, got, len(audits)+3)
	assert.ElementsMatch(t, []string{"update target shop", "create target new-one", "delete target gone"}, got[:3])

	// Tenant B untouched.
	assert.Equal(t, beforeB, h.apiTargets(tenantB))

	// targets: [] deletes every API target of the tenant, and only those.
	d = diffOf(t, h.apply(tenantA, "targets: []\n", ""))
	assert.ElementsMatch(t, []string{"shop", "db", "new-one"}, d.Delete)
	assert.Empty(t, h.apiTargets(tenantA))
	assert.Equal(t, beforeB, h.apiTargets(tenantB))
	assert.Equal(t, auditsB, h.auditActions(tenantB))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestConfigCodeRefusals(t *testing.T) {
	h := newHarness(t)
	withConfigTarget(h)
	h.post(tenantA, httpTarget("shop"))
	h.post(tenantB, tcpTarget("theirs"))
	h.changed()
	before, beforeB := h.apiTargets(tenantA), h.apiTargets(tenantB)
	audits := h.auditActions(tenantA)
	export := h.exportYAML(tenantA)

	problem := func(r response, status int) ProblemError {
		t.Helper()
		require.Equal(t, status, r.Status, string(r.Body))
		return r.problem(t)
	}
	paths := func(p ProblemError) map[string]string {
		out := map[string]string{}
		for _, e := range p.Errors {
			out[e.Path] = e.Message
		}
		return out
	}

	// A config-file target's id is a conflict; another tenant's is not
	// (ids are per tenant, and nothing tells A that B has one).
	p := problem(h.apply(tenantA, export+"  - {id: from-file, name: x, kind: tcp, tcp: {address: a.example.com:1}}\n", ""), http.StatusConflict)
	assert.Contains(t, p.Detail, "config file")
	assert.Equal(t, []string{"theirs"}, diffOf(t, h.apply(tenantA, export+"  - {id: theirs, name: x, kind: tcp, tcp: {address: a.example.com:1}}\n", "&dry_run=true")).Create)

	// Depending on a config-file target is fine.
	d := diffOf(t, h.apply(tenantA, export+"  - {name: dep, kind: tcp, depends_on: [from-file], tcp: {address: a.example.com:1}}\n", "&dry_run=true"))
	assert.Equal(t, []string{"dep"}, d.Create)

	// An invalid document: every problem with its path, nothing applied.
	bad := `
targets:
  - id: shop
    name: Shop
    kind: http
    http:
      url: https://shop.example.com/
      auth: {type: basic, username: u, password: env:HOME}
  - name: fast
    kind: tcp
    interval: 1ms
    tcp: {address: a.example.com:1}
  - name: fast
    kind: tcp
    depends_on: [nowhere, fast]
    tcp: {address: a.example.com:1, tls_config: {ca_file: /etc/ssl/ca.pem}}
  - name: fresh
    kind: http
    http: {url: https://x.example.com/, auth: {type: basic, username: u, password: <secret>}}
`
	p = problem(h.apply(tenantA, bad, ""), http.StatusUnprocessableEntity)
	got := paths(p)
	assert.Contains(t, got, "targets[0].http.auth.password", "env: references are refused")
	assert.Contains(t, got, "targets[1].interval")
	r := h.apply(tenantA, strings.Replace(bad, "password: env:HOME", "password: pw", 1), "")
	got = paths(problem(r, http.StatusUnprocessableEntity))
	for _, path := range []string{"targets[1].interval", "targets[2].id", "targets[2].depends_on[0]", "targets[2].depends_on[1]", "targets[2].tcp.tls_config.ca_file", "targets[3].http.auth.password"} {
		assert.Contains(t, got, path, "errors: %v", got)
	}

	// A remaining target may not depend on one the document deletes.
	doc := "targets:\n  - {id: a, name: a, kind: tcp, depends_on: [shop], tcp: {address: a.example.com:1}}\n"
	assert.Contains(t, paths(problem(h.apply(tenantA, doc, ""), http.StatusUnprocessableEntity)), "targets[0].depends_on[0]")

	// Shape: other keys, no targets, not a list, not mappings.
	for doc, path := range map[string]string{
		"listen: 0.0.0.0:80\ntargets: []\n": "listen",
		"{}\n":                              "targets",
		"":                                  "targets",
		"targets: {a: 1}\n":                 "targets",
		"targets: [1]\n":                    "targets[0]",
		"targets:\n  - {name: x, kind: tcp, interval: soon, tcp: {address: a.example.com:1}}\n": "targets[0].interval",
	} {
		assert.Contains(t, paths(problem(h.apply(tenantA, doc, ""), http.StatusUnprocessableEntity)), path, "document %q", doc)
	}
	// Unknown fields and bad YAML are 400s.
	p = problem(h.apply(tenantA, "targets:\n  - {name: x, kind: tcp, bogus: 1, tcp: {address: a.example.com:1}}\n", ""), http.StatusBadRequest)
	assert.Contains(t, paths(p), "targets[0].bogus")
	problem(h.apply(tenantA, "targets: [\n", ""), http.StatusBadRequest)
	problem(h.apply(tenantA, "targets: []\n---\ntargets: []\n", ""), http.StatusBadRequest)
	problem(h.apply(tenantA, "targets: []\n", "&dry_run=maybe"), http.StatusBadRequest)

	// Content type, format, size, scope.
	w := h.key(tenantA, ScopeWrite)
	problem(h.do(http.MethodPut, Prefix+"/targets?format=yaml", w, export), http.StatusUnsupportedMediaType)
	problem(h.do(http.MethodPut, Prefix+"/targets?format=yaml", w, export, "Content-Type", ""), http.StatusUnsupportedMediaType)
	problem(h.do(http.MethodPut, Prefix+"/targets", w, export, "Content-Type", yamlCT), http.StatusBadRequest)
	problem(h.do(http.MethodPut, Prefix+"/targets?format=json", w, `{}`), http.StatusBadRequest)
	huge := "targets: []\n#" + string(bytes.Repeat([]byte("x"), MaxBodyBytes)) + "\n"
	problem(h.apply(tenantA, huge, ""), http.StatusRequestEntityTooLarge)
	problem(h.do(http.MethodPut, Prefix+"/targets?format=yaml", h.key(tenantA, ScopeRead), export, "Content-Type", yamlCT), http.StatusForbidden)
	problem(h.do(http.MethodPut, Prefix+"/targets?format=yaml", h.key(tenantA, ScopeReports), export, "Content-Type", yamlCT), http.StatusForbidden)
	problem(h.do(http.MethodPut, Prefix+"/targets?format=yaml", "", export, "Content-Type", yamlCT), http.StatusUnauthorized)

	// Export refusals.
	problem(h.do(http.MethodGet, Prefix+"/targets?format=yaml&label=env=prod", w, nil), http.StatusBadRequest)
	problem(h.do(http.MethodGet, Prefix+"/targets?format=yaml&source=config", w, nil), http.StatusBadRequest)
	problem(h.do(http.MethodGet, Prefix+"/targets?format=xml", w, nil), http.StatusBadRequest)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/targets?format=json", w, nil).Status)

	// Nothing of it changed anything.
	assert.Equal(t, before, h.apiTargets(tenantA))
	assert.Equal(t, beforeB, h.apiTargets(tenantB))
	assert.Equal(t, audits, h.auditActions(tenantA))
	assert.Empty(t, h.changed())
	assert.NotContains(t, h.logs.String(), password)
}

// TestConfigCodeAtomic: a write that fails inside the transaction (the id
// taken between planning and applying) leaves everything as it was.
func TestConfigCodeAtomic(t *testing.T) {
	h := newHarness(t)
	h.post(tenantA, tcpTarget("gone"))
	h.changed()
	plan, err := h.srv.planTargets(t.Context(), Principal{TenantID: tenantA, KeyID: "k"}, []map[string]any{tcpTarget("late")})
	require.NoError(t, err)
	assert.Equal(t, []string{"late"}, plan.Diff.Create)
	assert.Equal(t, []string{"gone"}, plan.Diff.Delete)
	h.post(tenantB, tcpTarget("late"))
	require.NoError(t, h.reg.ApplyTargets(t.Context(), plan.Batch), "another tenant's id is no conflict")
	assert.Equal(t, []string{"late"}, keys(h.apiTargets(tenantA)))

	plan, err = h.srv.planTargets(t.Context(), Principal{TenantID: tenantA, KeyID: "k"}, []map[string]any{tcpTarget("late"), tcpTarget("later")})
	require.NoError(t, err)
	h.post(tenantA, tcpTarget("later"))
	err = h.reg.ApplyTargets(t.Context(), plan.Batch)
	require.ErrorIs(t, err, registry.ErrConflict)
	assert.ElementsMatch(t, []string{"late", "later"}, keys(h.apiTargets(tenantA)))
}

// A dependency cycle (a parent DOWN suppresses its children) is refused on
// create, update and config-as-code, naming depends_on.
func TestDependencyCyclesRefused(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	fieldErrors := func(r response) map[string]string {
		t.Helper()
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
		out := map[string]string{}
		for _, e := range r.problem(t).Errors {
			out[e.Path] = e.Message
		}
		return out
	}
	h.post(tenantA, tcpTarget("a"))
	b := tcpTarget("b")
	b["depends_on"] = []string{"a"}
	h.post(tenantA, b)
	c := tcpTarget("c")
	c["depends_on"] = []string{"b"}
	h.post(tenantA, c)

	// a → c closes a → c → b → a.
	doc := h.do(http.MethodGet, Prefix+"/targets/a", w, nil).JSON(t)
	doc["depends_on"] = []string{"c"}
	got := fieldErrors(h.do(http.MethodPut, Prefix+"/targets/a", w, doc))
	assert.Equal(t, "cycle a → c → b → a", got["depends_on"])
	r := h.do(http.MethodPatch, Prefix+"/targets/a", w, `{"depends_on":["b"]}`, "Content-Type", "application/merge-patch+json")
	assert.Equal(t, "cycle a → b → a", fieldErrors(r)["depends_on"])
	doc["depends_on"] = []string{"a"}
	assert.Contains(t, fieldErrors(h.do(http.MethodPut, Prefix+"/targets/a", w, doc)), "depends_on[0]", "self-dependency")
	// Nothing changed.
	ti, err := h.srv.targetOf(t.Context(), tenantA, "a")
	require.NoError(t, err)
	assert.Empty(t, ti.Target.DependsOn)

	// Config as code: the whole document is the graph.
	bad := `
targets:
  - {id: x, name: x, kind: tcp, depends_on: [y], tcp: {address: a.example.com:1}}
  - {id: y, name: y, kind: tcp, depends_on: [z], tcp: {address: a.example.com:1}}
  - {id: z, name: z, kind: tcp, depends_on: [x], tcp: {address: a.example.com:1}}
  - {id: ok, name: ok, kind: tcp, depends_on: [x], tcp: {address: a.example.com:1}}
`
	got = fieldErrors(h.apply(tenantA, bad, "&dry_run=true"))
	assert.Equal(t, map[string]string{
		"targets[0].depends_on": "cycle x → y → z → x",
		"targets[1].depends_on": "cycle y → z → x → y",
		"targets[2].depends_on": "cycle z → x → y → z",
	}, got)
	diffOf(t, h.apply(tenantA, strings.Replace(bad, "depends_on: [x], tcp", "tcp", 1), "&dry_run=true"))
}
