package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/registry"
)

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := hashPassword("s3cret password", cheapParams)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$"), h)
	ok, err := checkPassword("s3cret password", h)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = checkPassword("s3cret passwore", h)
	require.NoError(t, err)
	require.False(t, ok)
	h2, _ := hashPassword("s3cret password", cheapParams)
	require.NotEqual(t, h, h2, "salted")
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43)} {
		_, err := checkPassword("x", bad)
		require.ErrorIs(t, err, errBadHash, bad)
	}
}

func TestNewUserNamesEveryBadField(t *testing.T) {
	_, err := NewUser("", "-bad name", Role("root"), "short", t0)
	require.Error(t, err)
	for _, want := range []string{"tenant: is required", "name: must be", `role: must be viewer, editor or admin (got "root")`, "password: must be at least 10"} {
		require.Contains(t, err.Error(), want)
	}
}

// page is one route of the interface and the weakest role it needs.
type page struct {
	method, path string
	min          Role
}

// TestAuthzMatrix: anonymous visitors are sent to sign in, each role gets
// exactly its pages and forms (403 otherwise), and another tenant's admin
// gets 404 for this tenant's target.
func TestAuthzMatrix(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createTarget(tenantA, "shop", nil)
	pages := []page{
		{"GET", "/ui/", RoleViewer},
		{"GET", "/ui/fragments/targets", RoleViewer},
		{"GET", "/ui/targets/shop", RoleViewer},
		{"GET", "/ui/incidents", RoleViewer},
		{"GET", "/ui/targets/new", RoleEditor},
		{"GET", "/ui/targets/shop/edit", RoleEditor},
		{"GET", "/ui/settings", RoleAdmin},
		{"POST", "/ui/targets/shop/pause", RoleEditor},
		{"POST", "/ui/targets/shop/resume", RoleEditor},
		{"POST", "/ui/targets/shop/edit", RoleEditor},
		{"POST", "/ui/targets/new", RoleEditor},
		{"POST", "/ui/targets/shop/delete", RoleEditor},
		{"POST", "/ui/incidents/inc1/ack", RoleEditor},
		{"POST", "/ui/incidents/inc1/notes", RoleEditor},
		{"POST", "/ui/settings/contact-groups", RoleAdmin},
		{"POST", "/ui/settings/contact-groups/ops/delete", RoleAdmin},
		{"POST", "/ui/settings/keys", RoleAdmin},
		{"POST", "/ui/settings/keys/k1/revoke", RoleAdmin},
		{"POST", "/ui/settings/users", RoleAdmin},
		{"POST", "/ui/settings/users/vera/delete", RoleAdmin},
		{"POST", "/ui/settings/report-keys", RoleAdmin},
		{"POST", "/ui/settings/report-keys/rotate", RoleAdmin},
	}
	anon := h.client()
	users := map[Role]*client{RoleViewer: h.as(tenantA, "vera"), RoleEditor: h.as(tenantA, "ed"), RoleAdmin: h.as(tenantA, "ada")}
	for _, p := range pages {
		t.Run(p.method+" "+p.path, func(t *testing.T) {
			requireSignIn(t, anon.do(p.method, p.path, url.Values{}), "anonymous")
			for _, role := range Roles {
				if role.atLeast(p.min) {
					continue
				}
				c := users[role]
				var a answer
				if p.method == "GET" {
					a = c.get(p.path)
				} else {
					a = c.post(p.path, url.Values{})
				}
				require.Equal(t, http.StatusForbidden, a.status, "%s may not: %s", role, a.body)
			}
			if p.method == "GET" {
				for _, role := range Roles {
					if !role.atLeast(p.min) {
						continue
					}
					a := users[role].get(p.path)
					require.Equal(t, http.StatusOK, a.status, "%s may: %s", role, a.body)
				}
			}
		})
	}
	// Another tenant's admin: this tenant's target does not exist for them.
	oscar := h.as(tenantB, "oscar")
	for _, p := range []page{
		{"GET", "/ui/targets/shop", RoleViewer}, {"GET", "/ui/targets/shop/edit", RoleEditor},
		{"POST", "/ui/targets/shop/pause", RoleEditor}, {"POST", "/ui/targets/shop/delete", RoleEditor},
	} {
		var a answer
		if p.method == "GET" {
			a = oscar.get(p.path)
		} else {
			a = oscar.post(p.path, url.Values{})
		}
		require.Equal(t, http.StatusNotFound, a.status, "other tenant %s %s: %s", p.method, p.path, a.body)
	}
	require.NotContains(t, oscar.get("/ui/").body, `data-target="shop"`)
	// The target is untouched.
	ti := must[[]string](t)(targetIDs(h, tenantA))
	require.Equal(t, []string{"shop"}, ti)
}

func targetIDs(h *harness, tenant string) ([]string, error) {
	ts, err := h.api.TargetsOf(h.t.Context(), tenant)
	var ids []string
	for _, ti := range ts {
		ids = append(ids, ti.Target.ID)
	}
	return ids, err
}

func TestRootRedirectsToDashboardAndStaticFilesAreServed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.client()
	a := c.get("/")
	require.Equal(t, http.StatusSeeOther, a.status)
	require.Equal(t, "/ui/", a.header.Get("Location"))
	for _, f := range []string{"htmx-2.0.11.min.js", "app.js", "app.css"} {
		a := c.get("/ui/static/" + f)
		require.Equal(t, http.StatusOK, a.status, f)
		require.Contains(t, a.header.Get("Cache-Control"), "max-age")
	}
}

func TestCSRFLessPostIsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createTarget(tenantA, "shop", nil)
	ada := h.as(tenantA, "ada")
	for _, token := range []string{"", "forged"} {
		a := ada.do(http.MethodPost, "/ui/targets/shop/pause", url.Values{"csrf": {token}})
		require.Equal(t, http.StatusForbidden, a.status, a.body)
	}
	// Another session's token is not this one's.
	ed := h.as(tenantA, "ed")
	a := ada.do(http.MethodPost, "/ui/targets/shop/pause", url.Values{"csrf": {ed.csrf("/ui/")}})
	require.Equal(t, http.StatusForbidden, a.status)
	require.Contains(t, ada.get("/ui/targets/shop").body, `id="pause"`, "still running")
	// With the token it works.
	a = ada.post("/ui/targets/shop/pause", nil)
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Contains(t, ada.get("/ui/targets/shop").body, `id="resume"`)
}

func TestSignInFormNeedsItsToken(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.client()
	a := c.do(http.MethodPost, "/ui/signin", url.Values{"tenant": {tenantA}, "name": {"ada"}, "password": {password}})
	require.Equal(t, http.StatusForbidden, a.status)
	requireSignIn(t, c.get("/ui/"), "no session")
}

func TestSignInWrongPasswordAndRateLimit(t *testing.T) {
	h := newHarness(t, harnessOpts{api: func(o *api.Options) {
		o.AuthFailures = api.AuthFailureLimit{Max: 3, Window: time.Minute}
	}})
	c := h.client()
	for _, try := range []struct{ tenant, name, pw string }{{tenantA, "ada", "wrong password"}, {tenantA, "nobody", password}, {tenantB, "ada", password}} {
		a := c.signIn(try.tenant, try.name, try.pw)
		require.Equal(t, http.StatusUnauthorized, a.status)
		require.Contains(t, a.body, "Wrong tenant, user name or password.")
	}
	a := c.signIn(tenantA, "ada", password)
	require.Equal(t, http.StatusTooManyRequests, a.status, "blocked even with the right password")
	require.NotEmpty(t, a.header.Get("Retry-After"))
	h.clock.Advance(time.Minute)
	require.Equal(t, http.StatusSeeOther, c.signIn(tenantA, "ada", password).status)
}

func TestSessionCookieFlags(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		secure    bool
	}{{"", false}, {"http://upwatch.example.com", false}, {"https://upwatch.example.com", true}} {
		h := newHarness(t, harnessOpts{web: func(o *Options) { o.Web = config.Web{PublicURL: tc.publicURL, SessionTTL: time.Hour} }})
		a := h.client().signIn(tenantA, "ada", password)
		require.Equal(t, http.StatusSeeOther, a.status)
		var found bool
		for _, raw := range a.header.Values("Set-Cookie") {
			if !strings.HasPrefix(raw, sessionCookie+"=") {
				continue
			}
			found = true
			require.Contains(t, raw, "HttpOnly")
			require.Contains(t, raw, "SameSite=Lax")
			require.Contains(t, raw, "Max-Age=3600")
			require.Equal(t, tc.secure, strings.Contains(raw, "Secure"), "%s: %s", tc.publicURL, raw)
		}
		require.True(t, found)
	}
}

func TestSessionIsStoredHashedAndExpires(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.as(tenantA, "ada")
	u, _ := url.Parse(h.ts.URL + "/ui/")
	var token string
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == sessionCookie {
			token = ck.Value
		}
	}
	require.NotEmpty(t, token)
	_, err := h.reg.WebSession(t.Context(), []byte(token))
	require.ErrorIs(t, err, registry.ErrNotFound, "the token itself is not stored")
	ws, err := h.reg.WebSession(t.Context(), tokenHash(token))
	require.NoError(t, err)
	require.Equal(t, t0.Add(config.DefaultSessionTTL), ws.ExpiresAt)
	h.clock.Advance(config.DefaultSessionTTL)
	requireSignIn(t, c.get("/ui/"), "expired session")
}

func TestSignOutEndsTheSession(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	c := h.as(tenantA, "ada")
	stolen := h.client()
	u, _ := url.Parse(h.ts.URL + "/ui/")
	stolen.jar.SetCookies(u, c.jar.Cookies(u)) // a copy of the cookie, kept
	require.Equal(t, http.StatusOK, stolen.get("/ui/").status)
	a := c.post("/ui/signout", nil)
	require.Equal(t, http.StatusSeeOther, a.status)
	requireSignIn(t, c.get("/ui/"), "after sign-out")
	requireSignIn(t, stolen.get("/ui/"), "the old cookie after sign-out")
}

func TestSignOutEverywhere(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	laptop, phone, other := h.as(tenantA, "ada"), h.as(tenantA, "ada"), h.as(tenantA, "ed")
	require.Equal(t, http.StatusSeeOther, phone.post("/ui/signout-everywhere", nil).status)
	requireSignIn(t, laptop.get("/ui/"), "laptop")
	requireSignIn(t, phone.get("/ui/"), "phone")
	require.Equal(t, http.StatusOK, other.get("/ui/").status, "another user stays signed in")
}

func TestDeletedUserLosesSession(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	vera, ada := h.as(tenantA, "vera"), h.as(tenantA, "ada")
	require.Equal(t, http.StatusSeeOther, ada.post("/ui/settings/users/vera/delete", nil).status)
	requireSignIn(t, vera.get("/ui/"), "deleted user")
}

func TestDemoUserIsReadOnlyAndAnnounced(t *testing.T) {
	h := newHarness(t, harnessOpts{web: func(o *Options) { o.Demo = true }})
	require.NoError(t, h.web.EnsureDemoUser(t.Context()))
	require.NoError(t, h.web.EnsureDemoUser(t.Context()), "idempotent")
	h.createTarget(tenantA, "shop", nil)
	c := h.client()
	require.Contains(t, c.get("/ui/signin").body, `id="demo-note"`)
	a := c.signIn(tenantA, DemoUser, DemoPassword)
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Equal(t, http.StatusOK, c.get("/ui/targets/shop").status)
	require.Equal(t, http.StatusForbidden, c.post("/ui/targets/shop/pause", nil).status)

	plain := newHarness(t, harnessOpts{})
	require.NotContains(t, plain.client().get("/ui/signin").body, `id="demo-note"`)
	require.Equal(t, http.StatusUnauthorized, plain.client().signIn(tenantA, DemoUser, DemoPassword).status)
}

func TestSignInRedirectsBackOnlyToOurPages(t *testing.T) {
	require.Equal(t, "/ui/incidents", safeNext("/ui/incidents"))
	for _, bad := range []string{"https://evil.example", "//evil.example", "/ui/\\evil", "/api/v1/keys", ""} {
		require.Equal(t, "/ui/", safeNext(bad), bad)
	}
}

// A role's scopes are the API's: the API itself refuses a viewer's write.
func TestRoleScopesAreEnforcedByTheAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createTarget(tenantA, "shop", nil)
	vera := &session{TenantID: tenantA, User: "vera", Role: RoleViewer}
	status, _, _ := h.api.Call(t.Context(), vera.principal(), http.MethodPost, "/targets/shop/pause", nil)
	require.Equal(t, http.StatusForbidden, status)
	ed := &session{TenantID: tenantA, User: "ed", Role: RoleEditor}
	status, _, _ = h.api.Call(t.Context(), ed.principal(), http.MethodGet, "/keys", nil)
	require.Equal(t, http.StatusForbidden, status)
	status, _, body := h.api.Call(t.Context(), ed.principal(), http.MethodPost, "/targets/shop/pause", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	audit, err := h.reg.Audit(t.Context(), tenantA, registry.AuditQuery{})
	require.NoError(t, err)
	require.Equal(t, "user:ed", audit[0].KeyID, "the audit log names the user")
}
