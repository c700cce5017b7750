package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/statuspage"
)

// newPageFixture makes targets "web" and "db" of tenant A and returns a
// valid page document naming them.
func newPageFixture(t *testing.T, h *harness) map[string]any {
	t.Helper()
	w := h.key(tenantA, ScopeWrite)
	for _, id := range []string{"web", "db"} {
		require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", w, httpTarget(id)).Status)
	}
	return map[string]any{
		"slug": "acme", "title": "Acme status", "logo_url": "https://acme.example.com/logo.png",
		"components": []any{
			map[string]any{"name": "Website", "targets": []any{"web"}},
			map[string]any{"name": "Database", "description": "Primary", "targets": []any{"db"}},
		},
	}
}

func TestStatusPageCRUD(t *testing.T) {
	h := newHarness(t)
	doc := newPageFixture(t, h)
	w, rd := h.key(tenantA, ScopeWrite), h.key(tenantA, ScopeRead)

	r := h.do(http.MethodPost, Prefix+"/status-pages", w, doc)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	page := r.JSON(t)
	id := page["id"].(string)
	require.Equal(t, "/status/acme", page["url"])
	require.Equal(t, Prefix+"/status-pages/"+id, r.Header.Get("Location"))

	r = h.do(http.MethodGet, Prefix+"/status-pages/"+id, rd, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "Acme status", r.JSON(t)["title"])
	require.Len(t, h.do(http.MethodGet, Prefix+"/status-pages", rd, nil).JSON(t)["items"], 1)

	doc["title"], doc["domain"] = "Acme", "Status.Acme.Example.com."
	r = h.do(http.MethodPut, Prefix+"/status-pages/"+id, w, doc)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, "status.acme.example.com", r.JSON(t)["domain"], "domains are normalized")

	r = h.do(http.MethodPut, Prefix+"/status-pages/"+id+"/components", w, map[string]any{
		"components": []any{map[string]any{"name": "All", "targets": []any{"web", "db"}}}})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	r = h.do(http.MethodGet, Prefix+"/status-pages/"+id+"/components", rd, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Len(t, r.JSON(t)["components"], 1)

	require.Equal(t, http.StatusForbidden, h.do(http.MethodDelete, Prefix+"/status-pages/"+id, rd, nil).Status, "editing needs write")
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/status-pages/"+id, w, nil).Status)
	require.Equal(t, http.StatusNotFound, h.do(http.MethodGet, Prefix+"/status-pages/"+id, rd, nil).Status)
}

func TestStatusPageValidationNamesFields(t *testing.T) {
	h := newHarness(t)
	base := newPageFixture(t, h)
	w := h.key(tenantA, ScopeWrite)
	with := func(k string, v any) map[string]any {
		d := map[string]any{}
		for kk, vv := range base {
			d[kk] = vv
		}
		d[k] = v
		return d
	}
	many := []any{}
	for i := range statuspage.MaxComponents + 1 {
		many = append(many, map[string]any{"name": fmt.Sprint("c", i), "targets": []any{"web"}})
	}
	for _, tc := range []struct {
		name string
		doc  map[string]any
		path string
	}{
		{"slug upper case", with("slug", "Acme"), "slug"},
		{"slug too short", with("slug", "ab"), "slug"},
		{"slug too long", with("slug", strings.Repeat("a", 64)), "slug"},
		{"slug with slash", with("slug", "a/b/c"), "slug"},
		{"domain with scheme", with("domain", "https://status.example.com"), "domain"},
		{"domain with port", with("domain", "status.example.com:8080"), "domain"},
		{"no title", with("title", " "), "title"},
		{"title too long", with("title", strings.Repeat("x", statuspage.MaxTitleLen+1)), "title"},
		{"logo javascript", with("logo_url", "javascript:alert(1)"), "logo_url"},
		{"logo with credentials", with("logo_url", "https://u:p@example.com/x.png"), "logo_url"},
		{"unknown target", with("components", []any{map[string]any{"name": "A", "targets": []any{"web", "nope"}}}), "components[0].targets[1]"},
		{"target twice", with("components", []any{map[string]any{"name": "A", "targets": []any{"web", "web"}}}), "components[0].targets[1]"},
		{"no targets", with("components", []any{map[string]any{"name": "A", "targets": []any{}}}), "components[0].targets"},
		{"no component name", with("components", []any{map[string]any{"name": "", "targets": []any{"web"}}}), "components[0].name"},
		{"same component name", with("components", []any{map[string]any{"name": "A", "targets": []any{"web"}}, map[string]any{"name": "A", "targets": []any{"db"}}}), "components[1].name"},
		{"description too long", with("components", []any{map[string]any{"name": "A", "description": strings.Repeat("d", statuspage.MaxDescriptionLen+1), "targets": []any{"web"}}}), "components[0].description"},
		{"too many components", with("components", many), "components"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(http.MethodPost, Prefix+"/status-pages", w, tc.doc)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
			var paths []string
			for _, e := range r.problem(t).Errors {
				paths = append(paths, e.Path)
			}
			require.Contains(t, paths, tc.path)
		})
	}

	r := h.do(http.MethodPost, Prefix+"/status-pages", w, with("colour", "red"))
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "colour", r.problem(t).Errors[0].Path)

	h.cfg.StatusPages.ReservedDomains = []string{"upwatch.example.com"}
	r = h.do(http.MethodPost, Prefix+"/status-pages", w, with("domain", "UPWATCH.example.com"))
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Equal(t, "domain", r.problem(t).Errors[0].Path, "the operator's own names are reserved")

	// The other tenant's target ids are unknown here.
	r = h.do(http.MethodPost, Prefix+"/status-pages", h.key(tenantB, ScopeWrite), base)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Equal(t, "components[0].targets[0]", r.problem(t).Errors[0].Path)
}

func TestStatusPageSlugAndDomainUniqueAcrossTenants(t *testing.T) {
	h := newHarness(t)
	doc := newPageFixture(t, h)
	doc["domain"] = "status.acme.example.com"
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/status-pages", h.key(tenantA, ScopeWrite), doc).Status)

	wb := h.key(tenantB, ScopeWrite)
	r := h.do(http.MethodPost, Prefix+"/status-pages", wb, map[string]any{"slug": "acme", "title": "Not Acme"})
	require.Equal(t, http.StatusConflict, r.Status)
	require.Equal(t, "slug", r.problem(t).Errors[0].Path)
	r = h.do(http.MethodPost, Prefix+"/status-pages", wb, map[string]any{"slug": "other", "title": "Other", "domain": "STATUS.acme.example.com"})
	require.Equal(t, http.StatusConflict, r.Status)
	require.Equal(t, "domain", r.problem(t).Errors[0].Path)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/status-pages", wb, map[string]any{"slug": "other", "title": "Other"}).Status)
}

func TestStatusPageOtherTenantCannotSeeOrEdit(t *testing.T) {
	h := newHarness(t)
	doc := newPageFixture(t, h)
	wa := h.key(tenantA, ScopeWrite)
	r := h.do(http.MethodPost, Prefix+"/status-pages", wa, doc)
	require.Equal(t, http.StatusCreated, r.Status)
	id := r.JSON(t)["id"].(string)
	r = h.do(http.MethodPost, Prefix+"/status-pages/"+id+"/incidents", wa, map[string]any{"title": "Slow", "status": "investigating", "body": "Looking"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	inc := r.JSON(t)["id"].(string)

	other := h.key(tenantB, ScopeAdmin)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/status-pages/" + id, nil},
		{http.MethodPut, "/status-pages/" + id, map[string]any{"slug": "taken-over", "title": "Mine"}},
		{http.MethodPut, "/status-pages/" + id + "/components", map[string]any{"components": []any{}}},
		{http.MethodDelete, "/status-pages/" + id, nil},
		{http.MethodGet, "/status-pages/" + id + "/incidents", nil},
		{http.MethodPost, "/status-pages/" + id + "/incidents", map[string]any{"title": "x", "status": "resolved", "body": "y"}},
		{http.MethodPatch, "/status-pages/" + id + "/incidents/" + inc, map[string]any{"title": "x"}},
		{http.MethodPost, "/status-pages/" + id + "/incidents/" + inc + "/updates", map[string]any{"status": "resolved", "body": "y"}},
		{http.MethodDelete, "/status-pages/" + id + "/incidents/" + inc, nil},
		{http.MethodPost, "/targets/web/badge", nil},
	} {
		require.Equal(t, http.StatusNotFound, h.do(c.method, Prefix+c.path, other, c.body).Status, "%s %s", c.method, c.path)
	}
	require.Len(t, h.do(http.MethodGet, Prefix+"/status-pages", other, nil).JSON(t)["items"], 0)
	r = h.do(http.MethodGet, Prefix+"/status-pages/"+id+"/incidents/"+inc, wa, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "Slow", r.JSON(t)["title"], "untouched")
}

func TestStatusPageIncidentLifecycle(t *testing.T) {
	h := newHarness(t)
	doc := newPageFixture(t, h)
	w := h.key(tenantA, ScopeWrite)
	id := h.do(http.MethodPost, Prefix+"/status-pages", w, doc).JSON(t)["id"].(string)
	base := Prefix + "/status-pages/" + id + "/incidents"

	r := h.do(http.MethodPost, base, w, map[string]any{"title": "", "status": "broken", "body": ""})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	var paths []string
	for _, e := range r.problem(t).Errors {
		paths = append(paths, e.Path)
	}
	require.ElementsMatch(t, []string{"title", "status", "body"}, paths)

	r = h.do(http.MethodPost, base, w, map[string]any{"title": "Checkout errors", "status": "investigating", "body": "We are looking."})
	require.Equal(t, http.StatusCreated, r.Status)
	inc := r.JSON(t)
	incID := inc["id"].(string)
	require.Equal(t, "investigating", inc["status"])
	require.Nil(t, inc["resolved_at"])

	h.clock.Advance(10 * time.Minute)
	for _, st := range []string{"identified", "monitoring", "resolved"} {
		r = h.do(http.MethodPost, base+"/"+incID+"/updates", w, map[string]any{"status": st, "body": "Now " + st})
		require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	}
	got := r.JSON(t)
	require.Equal(t, "resolved", got["status"])
	require.NotNil(t, got["resolved_at"])
	require.Len(t, got["updates"], 4)
	r = h.do(http.MethodPost, base+"/"+incID+"/updates", w, map[string]any{"status": "fixed", "body": "x"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Equal(t, "status", r.problem(t).Errors[0].Path)

	r = h.do(http.MethodPatch, base+"/"+incID, w, map[string]any{"title": "Checkout errors (EU)"})
	require.Equal(t, http.StatusOK, r.Status)
	items := h.do(http.MethodGet, base, w, nil).JSON(t)["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, "Checkout errors (EU)", items[0].(map[string]any)["title"])
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, base+"/"+incID, w, nil).Status)
	require.Equal(t, http.StatusNotFound, h.do(http.MethodGet, base+"/"+incID, w, nil).Status)
}

func TestStatusPagesPerTenantBounded(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantB, ScopeWrite)
	for i := range statuspage.MaxPagesPerTenant {
		require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/status-pages", w, map[string]any{"slug": fmt.Sprint("page-", i), "title": "P"}).Status)
	}
	r := h.do(http.MethodPost, Prefix+"/status-pages", w, map[string]any{"slug": "one-more", "title": "P"})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status)
	require.Equal(t, "max_status_pages", r.problem(t).Limit)
}

func TestBadgeOptIn(t *testing.T) {
	h := newHarness(t)
	w, rd := h.key(tenantA, ScopeWrite), h.key(tenantA, ScopeRead)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", w, httpTarget("web")).Status)

	require.Equal(t, http.StatusNotFound, h.do(http.MethodGet, Prefix+"/targets/web/badge", rd, nil).Status, "off by default")
	require.Equal(t, http.StatusForbidden, h.do(http.MethodPost, Prefix+"/targets/web/badge", rd, nil).Status)
	r := h.do(http.MethodPost, Prefix+"/targets/web/badge", w, nil)
	require.Equal(t, http.StatusCreated, r.Status)
	b := r.JSON(t)
	token := b["token"].(string)
	require.GreaterOrEqual(t, len(token), 40)
	require.Equal(t, "/badge/"+token+"/status.svg", b["images"].(map[string]any)["status"])
	require.NotContains(t, fmt.Sprint(b["images"]), "web", "no target id in the badge URLs")

	r = h.do(http.MethodPost, Prefix+"/targets/web/badge", w, nil)
	require.Equal(t, http.StatusOK, r.Status, "enabling twice keeps the token")
	require.Equal(t, token, r.JSON(t)["token"])

	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/targets/web/badge", w, nil).Status)
	require.Equal(t, http.StatusNotFound, h.do(http.MethodGet, Prefix+"/targets/web/badge", rd, nil).Status)
	r = h.do(http.MethodPost, Prefix+"/targets/web/badge", w, nil)
	require.Equal(t, http.StatusCreated, r.Status)
	require.NotEqual(t, token, r.JSON(t)["token"], "a re-enabled badge has a new token")
	require.Equal(t, http.StatusNotFound, h.do(http.MethodPost, Prefix+"/targets/nope/badge", w, nil).Status)
}

// Every status page, incident and badge write is audited, with the object
// it touched.
func TestStatusPageWritesAudited(t *testing.T) {
	h := newHarness(t)
	doc := newPageFixture(t, h)
	w := h.key(tenantA, ScopeWrite)
	id := h.do(http.MethodPost, Prefix+"/status-pages", w, doc).JSON(t)["id"].(string)
	require.Equal(t, http.StatusOK, h.do(http.MethodPut, Prefix+"/status-pages/"+id+"/components", w, map[string]any{"components": []any{}}).Status)
	base := Prefix + "/status-pages/" + id + "/incidents"
	inc := h.do(http.MethodPost, base, w, map[string]any{"title": "T", "status": "investigating", "body": "b"}).JSON(t)["id"].(string)
	require.Equal(t, http.StatusOK, h.do(http.MethodPatch, base+"/"+inc, w, map[string]any{"title": "T2"}).Status)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, base+"/"+inc+"/updates", w, map[string]any{"status": "resolved", "body": "ok"}).Status)
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, base+"/"+inc, w, nil).Status)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets/web/badge", w, nil).Status)
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/targets/web/badge", w, nil).Status)
	require.Equal(t, http.StatusNoContent, h.do(http.MethodDelete, Prefix+"/status-pages/"+id, w, nil).Status)

	r := h.do(http.MethodGet, Prefix+"/audit", h.key(tenantA, ScopeAdmin), nil)
	require.Equal(t, http.StatusOK, r.Status)
	var got []string
	for _, e := range r.JSON(t)["items"].([]any) {
		m := e.(map[string]any)
		if m["object_type"] != "target" {
			got = append(got, fmt.Sprint(m["action"], " ", m["object_type"], " ", m["object_id"]))
		}
	}
	require.Equal(t, []string{
		"delete status_page " + id, "delete badge web", "create badge web",
		"delete status_incident " + inc, "update status_incident " + inc, "update status_incident " + inc,
		"create status_incident " + inc, "update status_page " + id, "create status_page " + id,
	}, got)
}
