package api

// The test harness: a Server over httptest with a real SQLite registry and
// sample store, two tenants with a key of every scope, and every response
// validated against the served OpenAPI document.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/internal/logbuf"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

func init() {
	// Bodies the document describes that kin-openapi has no decoder for.
	openapi3filter.RegisterBodyDecoder("application/jose", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.PlainBodyDecoder)
}

// Tenants of the harness.
const (
	tenantA = registry.DefaultTenant
	tenantB = "other"
)

// harnessT0 is the harness clock's start.
var harnessT0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type harness struct {
	t       *testing.T
	srv     *Server
	ts      *httptest.Server
	reg     *registry.SQLite
	samples *sqlite.Store
	mk      crypt.MasterKey
	clock   *clocktest.Manual
	logs    *logbuf.Buffer
	cfg     *config.Config

	// keys[tenant][scope] is a valid key with just that scope.
	keys map[string]map[Scope]string

	router routers.Router
	docRaw []byte

	mu      sync.Mutex
	changes []string // OnChange calls
}

// harnessOption adjusts the Options before New.
type harnessOption func(*Options)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{7}, crypt.KeySize)
	mk, err := crypt.NewMasterKey(raw)
	require.NoError(t, err)
	h := &harness{t: t, mk: mk, clock: clocktest.NewManual(harnessT0), logs: &logbuf.Buffer{}, keys: map[string]map[Scope]string{}}
	h.reg, err = registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: filepath.Join(dir, "registry.db"), MasterKey: mk, Now: h.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.reg.Close() })
	h.samples, err = sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "samples.db"), PruneInterval: -1, Now: h.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.samples.Close() })
	h.cfg = &config.Config{}
	h.cfg.Normalize()

	o := Options{
		Stores: storesOf(h.reg), Samples: h.samples, Incidents: h.reg, Acks: h.reg, LocationEvents: h.reg, MasterKey: mk,
		Config: func() *config.Config { return h.cfg },
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    h.clock.Now,
		OnChange: func(tenant string) {
			h.mu.Lock()
			h.changes = append(h.changes, tenant)
			h.mu.Unlock()
		},
		States:    func(string) (alerting.State, bool) { return alerting.State{}, false },
		RateLimit: RateLimit{RPS: 1000, Burst: 100000},
		// The authorization matrix fails authentication on purpose, often.
		AuthFailures: MaxAuthFailureLimit,
	}
	for _, f := range opts {
		f(&o)
	}
	h.srv, err = New(o)
	require.NoError(t, err)
	h.ts = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.ts.Close)

	for _, tenant := range []string{tenantA, tenantB} {
		require.NoError(t, h.reg.CreateTenant(ctx, registry.Tenant{ID: tenant, Name: tenant, CreatedAt: harnessT0}))
		h.keys[tenant] = map[Scope]string{}
		for _, sc := range Scopes {
			h.keys[tenant][sc] = h.newKey(tenant, time.Time{}, sc)
		}
	}

	// The served document must be a valid OpenAPI document.
	resp, err := http.Get(h.ts.URL + Prefix + "/openapi.json")
	require.NoError(t, err)
	h.docRaw, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(h.docRaw))
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(h.docRaw)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(ctx), "the served OpenAPI document is invalid")
	h.router, err = gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return h
}

// newKey stores a key of tenant with scopes (expiring at expires unless
// zero) and returns it.
func (h *harness) newKey(tenant string, expires time.Time, scopes ...Scope) string {
	h.t.Helper()
	key, prefix, hash, err := NewKey()
	require.NoError(h.t, err)
	var ss []string
	for _, s := range scopes {
		ss = append(ss, string(s))
	}
	id, err := randomString(12)
	require.NoError(h.t, err)
	require.NoError(h.t, h.reg.CreateAPIKey(h.t.Context(), registry.APIKey{
		ID: "key_" + id, TenantID: tenant, Name: "test", Prefix: prefix, Hash: hash, Scopes: ss,
		CreatedAt: h.clock.Now(), ExpiresAt: expires,
	}))
	return key
}

// key returns tenant's key with scope.
func (h *harness) key(tenant string, scope Scope) string { return h.keys[tenant][scope] }

// response is a validated response with its body read.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic value.
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// List decodes a body that is a JSON array.
func (r response) List(t *testing.T) []any {
	t.Helper()
	var l []any
	require.NoError(t, json.Unmarshal(r.Body, &l), "body: %s", r.Body)
	return l
}

// do sends a request and validates the response against the document.
// body is nil, a string or []byte (sent as is, Content-Type
// application/json unless headers say otherwise) or a value marshalled as
// JSON. headers are name, value pairs.
func (h *harness) do(method, path, key string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		raw, err = json.Marshal(b)
		require.NoError(h.t, err)
	}
	if body != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.ts.URL+path, rd)
	require.NoError(h.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.ts.Client().Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: out}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	h.validate(req, r)
	return r
}

// validate checks a response against the OpenAPI document: documented
// routes by their operation, others (404/405 from the router) must be
// problems.
func (h *harness) validate(req *http.Request, r response) {
	h.t.Helper()
	route, params, err := h.router.FindRoute(req)
	if err != nil {
		require.GreaterOrEqual(h.t, r.Status, 400, "%s %s: undocumented route answered %d", req.Method, req.URL.Path, r.Status)
		h.requireProblem(r)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: r.Status, Header: r.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(r.Body)
	require.NoError(h.t, openapi3filter.ValidateResponse(context.Background(), in),
		"%s %s → %d does not match the OpenAPI document; body: %s", req.Method, req.URL.Path, r.Status, truncateBody(r.Body))
	if r.Status >= 400 {
		h.requireProblem(r)
	}
}

func truncateBody(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// requireProblem checks an error response is an RFC 9457 problem.
func (h *harness) requireProblem(r response) {
	h.t.Helper()
	require.Equal(h.t, "application/problem+json", r.Header.Get("Content-Type"), "body: %s", r.Body)
	var p ProblemError
	require.NoError(h.t, json.Unmarshal(r.Body, &p))
	require.Equal(h.t, r.Status, p.Status)
	require.NotEmpty(h.t, p.Title)
	require.True(h.t, strings.HasPrefix(p.Type, ProblemType), p.Type)
}

// problem decodes a problem body.
func (r response) problem(t *testing.T) ProblemError {
	t.Helper()
	var p ProblemError
	require.NoError(t, json.Unmarshal(r.Body, &p), "body: %s", r.Body)
	return p
}

// changed returns and clears the OnChange calls so far.
func (h *harness) changed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.changes
	h.changes = nil
	return out
}

func TestHarnessServesValidDocument(t *testing.T) {
	h := newHarness(t)
	r := h.do(http.MethodGet, Prefix+"/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	r = h.do(http.MethodGet, Prefix+"/no-such-thing", h.key(tenantA, ScopeRead), nil)
	require.Equal(t, http.StatusNotFound, r.Status)
}

// storesOf is the registry as every store the API needs.
func storesOf(reg *registry.SQLite) Stores {
	return Stores{Tenants: reg, Keys: reg, KeyAuth: reg, Audit: reg, Targets: reg, Batch: reg, Objects: reg, ReportKeys: reg, StatusPages: reg}
}
