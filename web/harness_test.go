package web

// The test harness: the web interface over httptest with the real API, a
// real SQLite registry and sample store, tenant "default" with a viewer,
// an editor and an admin, and tenant "other" with an admin.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

const (
	tenantA  = registry.DefaultTenant
	tenantB  = "other"
	password = "correct horse battery"
)

// t0 is the harness clock's start.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// cheapParams keep argon2id fast in tests.
var cheapParams = argonParams{time: 1, memory: 64, threads: 1, keyLen: 32}

type harness struct {
	t       testing.TB
	api     *api.Server
	web     *Server
	ts      *httptest.Server
	reg     *registry.SQLite
	samples *sqlite.Store
	clock   *clocktest.Manual
	cfg     *config.Config

	mu     sync.Mutex
	states map[string]alerting.State // by target key
}

type harnessOpts struct {
	web  func(*Options)
	api  func(*api.Options)
	cfg  func(*config.Config)
	skip bool // no users
}

func newHarness(t testing.TB, ho harnessOpts) *harness {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{7}, crypt.KeySize))
	require.NoError(t, err)
	h := &harness{t: t, clock: clocktest.NewManual(t0), states: map[string]alerting.State{}}
	h.reg, err = registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: filepath.Join(dir, "registry.db"), MasterKey: mk, Now: h.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.reg.Close() })
	h.samples, err = sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "samples.db"), PruneInterval: -1, Now: h.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.samples.Close() })
	h.cfg = &config.Config{}
	if ho.cfg != nil {
		ho.cfg(h.cfg)
	}
	h.cfg.Normalize()
	ao := api.Options{
		Stores:  api.Stores{Tenants: h.reg, Keys: h.reg, KeyAuth: h.reg, Audit: h.reg, Targets: h.reg, Batch: h.reg, Objects: h.reg, ReportKeys: h.reg, StatusPages: h.reg},
		Samples: h.samples, Incidents: h.reg, Acks: h.reg, MasterKey: mk, Now: h.clock.Now,
		Config: func() *config.Config { return h.cfg },
	}
	if ho.api != nil {
		ho.api(&ao)
	}
	h.api, err = api.New(ao)
	require.NoError(t, err)
	wo := Options{
		API: h.api, Samples: h.samples, Users: h.reg, Sessions: h.reg, Notes: h.reg, Notifications: h.reg,
		States: h.state, SignIn: h.api.AuthFailures(), Now: h.clock.Now,
	}
	if ho.web != nil {
		ho.web(&wo)
	}
	h.web, err = New(wo)
	require.NoError(t, err)
	h.web.params = cheapParams
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", h.web.Handler())
	mux.Handle(Prefix+"/", h.web.Handler())
	mux.Handle(api.Prefix+"/", h.api.Handler())
	h.ts = httptest.NewServer(mux)
	t.Cleanup(h.ts.Close)

	for _, tenant := range []string{tenantA, tenantB} {
		require.NoError(t, h.reg.CreateTenant(ctx, registry.Tenant{ID: tenant, Name: tenant, CreatedAt: t0}))
	}
	if !ho.skip {
		for _, u := range []struct {
			tenant, name string
			role         Role
		}{{tenantA, "vera", RoleViewer}, {tenantA, "ed", RoleEditor}, {tenantA, "ada", RoleAdmin}, {tenantB, "oscar", RoleAdmin}} {
			h.addUser(u.tenant, u.name, u.role)
		}
	}
	return h
}

func (h *harness) addUser(tenant, name string, role Role) {
	u, err := newUser(tenant, name, role, password, t0, cheapParams, true)
	require.NoError(h.t, err)
	require.NoError(h.t, h.reg.CreateWebUser(h.t.Context(), u))
}

func (h *harness) state(key string) (alerting.State, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.states[key]
	return st, ok
}

func (h *harness) setState(key string, st alerting.State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.states[key] = st
}

// createTarget makes an API target of tenant through the API.
func (h *harness) createTarget(tenant, id string, labels map[string]string) string {
	doc := map[string]any{"id": id, "name": "Target " + id, "kind": "http", "interval": "30s",
		"http": map[string]any{"url": "https://" + id + ".example.com/"}}
	if labels != nil {
		doc["labels"] = labels
	}
	b, _ := json.Marshal(doc)
	status, _, body := h.api.Call(h.t.Context(), api.Principal{TenantID: tenant, KeyID: "test", Scopes: []api.Scope{api.ScopeAdmin}}, http.MethodPost, "/targets", b)
	require.Equal(h.t, http.StatusCreated, status, string(body))
	return h.keyOf(tenant, id)
}

func (h *harness) keyOf(tenant, id string) string {
	ts, err := h.api.TargetsOf(h.t.Context(), tenant)
	require.NoError(h.t, err)
	for _, ti := range ts {
		if ti.Target.ID == id {
			return ti.Key
		}
	}
	h.t.Fatalf("no target %s/%s", tenant, id)
	return ""
}

// client is a browser: a cookie jar, no redirects followed.
type client struct {
	h   *harness
	c   *http.Client
	jar *cookiejar.Jar
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path string, form url.Values) answer {
	c.h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.h.t.Context(), method, c.h.ts.URL+path, body)
	require.NoError(c.h.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.c.Do(req)
	require.NoError(c.h.t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.h.t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (c *client) get(path string) answer { return c.do(http.MethodGet, path, nil) }

var csrfPattern = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads a form token from a page of path.
func (c *client) csrf(path string) string {
	c.h.t.Helper()
	a := c.get(path)
	m := csrfPattern.FindStringSubmatch(a.body)
	require.NotNil(c.h.t, m, "no csrf token on %s (%d): %s", path, a.status, a.body)
	return m[1]
}

// post submits form with the session's CSRF token (read from the
// dashboard).
func (c *client) post(path string, form url.Values) answer {
	c.h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf(Prefix+"/"))
	return c.do(http.MethodPost, path, form)
}

func (c *client) signIn(tenant, name, pw string) answer {
	c.h.t.Helper()
	tok := c.csrf(Prefix + "/signin")
	return c.do(http.MethodPost, Prefix+"/signin", url.Values{"csrf": {tok}, "tenant": {tenant}, "name": {name}, "password": {pw}})
}

// as returns a client signed in as tenant/name.
func (h *harness) as(tenant, name string) *client {
	h.t.Helper()
	c := h.client()
	a := c.signIn(tenant, name, password)
	require.Equal(h.t, http.StatusSeeOther, a.status, a.body)
	require.Equal(h.t, Prefix+"/", a.header.Get("Location"))
	return c
}

func requireSignIn(t *testing.T, a answer, what string) {
	t.Helper()
	require.Equal(t, http.StatusSeeOther, a.status, "%s: %s", what, a.body)
	require.True(t, strings.HasPrefix(a.header.Get("Location"), Prefix+"/signin"), "%s redirects to %q", what, a.header.Get("Location"))
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		require.NoError(t, err)
		return v
	}
}

// short is what a failed assertion shows of a page: its problem box and
// main content, cut.
func short(body string) string {
	if i := strings.Index(body, `<main id="main">`); i >= 0 {
		body = body[i:]
	}
	if len(body) > 1500 {
		body = body[:1500] + "…"
	}
	return body
}

// has fails unless body holds want, showing the page's main part.
func has(t *testing.T, body, want string, msg ...any) {
	t.Helper()
	if !strings.Contains(body, want) {
		t.Fatalf("%v: missing %q in:\n%s", msg, want, short(body))
	}
}
