package app

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/statuspage"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb"
)

// TestStatusPageAndBadgeServedLive: a running instance serves a page made
// through its API at /status/{slug} and on its custom domain, and a
// target's badge, with the state the checks give.
func TestStatusPageAndBadgeServedLive(t *testing.T) {
	flap := &flapper{}
	target := httptest.NewServer(flap)
	defer target.Close()
	cfg := testConfig(t, "allow_private_targets: true\nquotas: {min_interval: 1s}\nstatus_pages: {custom_domains: true}\n")
	key, _, _, err := api.NewKey()
	require.NoError(t, err)
	r := start(t, cfg, Options{Getenv: func(name string) string {
		if name == EnvBootstrapKey {
			return key
		}
		return ""
	}})
	status, body := apiCall(t, http.MethodPost, r.addr+"/api/v1/targets", key, map[string]any{
		"id": "shop", "name": "Shop", "kind": "http", "interval": "1s", "timeout": "500ms", "http": map[string]any{"url": target.URL + "/"},
	})
	require.Equal(t, http.StatusCreated, status, body)
	status, body = apiCall(t, http.MethodPost, r.addr+"/api/v1/status-pages", key, map[string]any{
		"slug": "live", "title": "Live status", "domain": "status.live.example.com",
		"components": []any{map[string]any{"name": "Storefront", "targets": []any{"shop"}}},
	})
	require.Equal(t, http.StatusCreated, status, body)
	status, badge := apiCall(t, http.MethodPost, r.addr+"/api/v1/targets/shop/badge", key, nil)
	require.Equal(t, http.StatusCreated, status, badge)
	statusSVG := badge["images"].(map[string]any)["status"].(string)

	get := func(path, host string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, r.addr+path, nil)
		require.NoError(t, err)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Pages and badges are cached for 30 s: ask for them once the API
	// shows the target up.
	require.Eventually(t, func() bool {
		_, st := apiCall(t, http.MethodGet, r.addr+"/api/v1/status", key, nil)
		items, _ := st["items"].([]any)
		return len(items) == 1 && items[0].(map[string]any)["state"] == "up"
	}, 60*time.Second, 100*time.Millisecond)
	code, page := get("/status/live", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, "Storefront")
	require.Contains(t, page, "Operational")
	code, svg := get(statusSVG, "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, svg, ">up</text>")
	code, page = get("/", "status.live.example.com")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, "<h1>Live status</h1>")
	require.NotContains(t, page, target.URL, "the target's URL is not on the page")
	code, _ = get("/status/nope", "")
	require.Equal(t, http.StatusNotFound, code)
}

// fakePages finds a page for every slug and domain.
type fakePages struct{ statuspage.Store }

func (fakePages) StatusPageBySlug(context.Context, string, string) (registry.StatusPage, error) {
	return registry.StatusPage{TenantID: "t", ID: "p", Slug: "p", Domain: "status.example.com", Spec: []byte(`{"title":"P"}`)}, nil
}

func (fakePages) StatusIncidents(context.Context, string, string, time.Time) ([]registry.StatusIncident, error) {
	return nil, nil
}

// TestCustomDomainsOnlyWhenAllowed: without status_pages.custom_domains a
// page's domain does not take the server's / away.
func TestCustomDomainsOnlyWhenAllowed(t *testing.T) {
	pages, err := statuspage.New(statuspage.Options{
		Store:     fakePages{},
		Targets:   func(context.Context, string) ([]tenancy.TargetInfo, error) { return nil, nil },
		Windows:   func(context.Context, string) ([]alerting.Window, error) { return nil, nil },
		Samples:   nopSamples{},
		Incidents: nopIncidents{},
	})
	require.NoError(t, err)
	rest := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "dashboard") })
	for allowed, want := range map[bool]string{false: "dashboard", true: "<h1>P</h1>"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = "status.example.com"
		rec := httptest.NewRecorder()
		mountPublic(rest, pages, allowed).ServeHTTP(rec, req)
		require.Contains(t, rec.Body.String(), want, "custom_domains: %v", allowed)
	}
}

type nopSamples struct{}

func (nopSamples) RollupTotals(_ context.Context, ids []string, _, _ time.Time) (map[string]tsdb.RollupTotal, error) {
	return map[string]tsdb.RollupTotal{}, nil
}

func (nopSamples) Samples(context.Context, tsdb.SampleQuery) (tsdb.SamplePage, error) {
	return tsdb.SamplePage{}, nil
}

type nopIncidents struct{}

func (nopIncidents) Incidents(context.Context, registry.IncidentQuery) ([]alerting.Incident, error) {
	return nil, nil
}
