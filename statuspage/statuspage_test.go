package statuspage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
	"github.com/upwatch/upwatch/internal/cputime"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/sla/slainput"
	"github.com/upwatch/upwatch/statuspage"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// t0 is the clock's start: the page's last bar is Mar 2, its first Dec 3.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// env is the public pages over real stores: a SQLite registry and sample
// store, the real API (for targets, pages, incidents and badges) and the
// handler mounted as app mounts it.
type env struct {
	t       *testing.T
	reg     *registry.SQLite
	samples *sqlite.Store
	clock   *clocktest.Manual
	apiTS   *httptest.Server
	apiSrv  *api.Server
	pages   *statuspage.Handler
	ts      *httptest.Server
	keys    map[string]string // tenant → write key

	mu     sync.Mutex
	states map[string]alerting.State // by target key
}

func newEnv(t testing.TB) *env {
	tt, _ := t.(*testing.T)
	ctx := t.Context()
	dir := t.TempDir()
	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{9}, crypt.KeySize))
	require.NoError(t, err)
	e := &env{t: tt, clock: clocktest.NewManual(t0), keys: map[string]string{}, states: map[string]alerting.State{}}
	e.reg, err = registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: filepath.Join(dir, "registry.db"), MasterKey: mk, Now: e.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.reg.Close() })
	e.samples, err = sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "samples.db"), PruneInterval: -1, Now: e.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.samples.Close() })
	cfg := &config.Config{}
	cfg.Normalize()
	states := func(key string) (alerting.State, bool) {
		e.mu.Lock()
		defer e.mu.Unlock()
		st, ok := e.states[key]
		return st, ok
	}
	r := e.reg
	e.apiSrv, err = api.New(api.Options{
		Stores:  api.Stores{Tenants: r, Keys: r, KeyAuth: r, Audit: r, Targets: r, Batch: r, Objects: r, ReportKeys: r, StatusPages: r},
		Samples: e.samples, Incidents: r, MasterKey: mk, Config: func() *config.Config { return cfg },
		Now: e.clock.Now, States: states, RateLimit: api.RateLimit{RPS: 10000, Burst: 100000},
	})
	require.NoError(t, err)
	e.apiTS = httptest.NewServer(e.apiSrv.Handler())
	t.Cleanup(e.apiTS.Close)
	for _, tenant := range []string{registry.DefaultTenant, "other"} {
		require.NoError(t, r.CreateTenant(ctx, registry.Tenant{ID: tenant, Name: tenant, CreatedAt: t0}))
		key, prefix, hash, err := api.NewKey()
		require.NoError(t, err)
		require.NoError(t, r.CreateAPIKey(ctx, registry.APIKey{ID: "key-" + tenant, TenantID: tenant, Name: "t", Prefix: prefix, Hash: hash,
			Scopes: []string{"read", "write"}, CreatedAt: t0}))
		e.keys[tenant] = key
	}
	e.pages, err = statuspage.New(statuspage.Options{
		Store: r, Targets: e.apiSrv.TargetsOf, Windows: e.apiSrv.MaintenanceWindows,
		Samples: e.samples, Incidents: r, States: states, Now: e.clock.Now,
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/status/", e.pages)
	mux.Handle("/badge/", e.pages)
	mux.Handle("/", http.NotFoundHandler())
	e.ts = httptest.NewServer(e.pages.Domains(mux))
	t.Cleanup(e.ts.Close)
	return e
}

// call sends an API request as tenant and decodes the answer.
func (e *env) call(t testing.TB, tenant, method, path string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.apiTS.URL+api.Prefix+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.keys[tenant])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out))
	}
	return out
}

// target creates an API target of tenant and returns its key.
func (e *env) target(t testing.TB, tenant, id, name, url string) string {
	t.Helper()
	e.call(t, tenant, http.MethodPost, "/targets", map[string]any{
		"id": id, "name": name, "kind": "http", "interval": "60s", "timeout": "5s", "http": map[string]any{"url": url},
	}, http.StatusCreated)
	ts, err := e.apiSrv.TargetsOf(t.Context(), tenant)
	require.NoError(t, err)
	for _, ti := range ts {
		if ti.Target.ID == id {
			return ti.Key
		}
	}
	t.Fatalf("target %s not listed", id)
	return ""
}

// checks stores a check of key every step in [from, to).
func (e *env) checks(t testing.TB, key string, from, to time.Time, step time.Duration, ok bool) {
	t.Helper()
	var batch []prober.Result
	for at := from; at.Before(to); at = at.Add(step) {
		r := prober.Result{TargetID: key, Kind: "http", Location: "local", Start: at, Duration: 40 * time.Millisecond, Success: ok}
		if !ok {
			r = r.Fail(prober.ClassConnect, "dial tcp 10.1.2.3:443: connection refused (secret-host.internal)")
		}
		batch = append(batch, r)
		if len(batch) == 5000 {
			require.NoError(t, e.samples.WriteSamples(t.Context(), batch))
			batch = batch[:0]
		}
	}
	require.NoError(t, e.samples.WriteSamples(t.Context(), batch))
}

// incident stores a closed incident of key.
func (e *env) incident(t testing.TB, key string, start, end time.Time) {
	t.Helper()
	e.incidents(t, key, sla.Interval{Start: start, End: end})
}

// incidents stores closed incidents of key in one commit.
func (e *env) incidents(t testing.TB, key string, ivs ...sla.Interval) {
	t.Helper()
	var incs []alerting.Incident
	for _, iv := range ivs {
		incs = append(incs, alerting.Incident{ID: alerting.IncidentID(key, iv.Start), TargetID: key, Start: iv.Start, End: iv.End,
			Cause: "connect: refused by secret-host.internal"})
	}
	require.NoError(t, e.reg.Commit(t.Context(), alerting.NewState(key), incs, nil))
}

func (e *env) setState(key string, s alerting.Status) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := alerting.NewState(key)
	st.Status, st.Since = s, t0
	e.states[key] = st
}

type got struct {
	status int
	header http.Header
	body   string
}

// get fetches a public URL path, with headers as name, value pairs ("Host"
// sets the request's host).
func (e *env) get(t testing.TB, path string, headers ...string) got {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.ts.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return got{resp.StatusCode, resp.Header, string(b)}
}

// acme makes tenant default's page "acme" with components Website (target
// web-7f) and API (api-3c), and a target hidden-9d that is on no page.
func (e *env) acme(t *testing.T) (pageID, webKey, apiKey, hiddenKey string) {
	t.Helper()
	webKey = e.target(t, registry.DefaultTenant, "web-7f", "Web shop", "https://shop.example.com/health")
	apiKey = e.target(t, registry.DefaultTenant, "api-3c", "Public API", "https://api.example.com/ping")
	hiddenKey = e.target(t, registry.DefaultTenant, "hidden-9d", "Hidden billing DB", "https://billing.internal.example.com/")
	page := e.call(t, registry.DefaultTenant, http.MethodPost, "/status-pages", map[string]any{
		"slug": "acme", "title": "Acme <Cloud>", "logo_url": "https://acme.example.com/logo.png",
		"components": []any{
			map[string]any{"name": "Website", "description": "Shop & checkout", "targets": []any{"web-7f"}},
			map[string]any{"name": "API", "targets": []any{"api-3c"}},
		},
	}, http.StatusCreated)
	return page["id"].(string), webKey, apiKey, hiddenKey
}

func TestPageRendersComponentsAndUptimeBarsFromStoredSamples(t *testing.T) {
	e := newEnv(t)
	_, webKey, apiKey, hiddenKey := e.acme(t)
	from := t0.Add(-72 * time.Hour) // Feb 27 10:00
	e.checks(t, webKey, from, t0, 5*time.Minute, true)
	e.checks(t, apiKey, from, t0, 5*time.Minute, true)
	e.checks(t, hiddenKey, from, t0, 5*time.Minute, false)
	// API down two hours on Mar 1: 22 of 24 hours up.
	e.incident(t, apiKey, time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC))
	e.incident(t, hiddenKey, from, t0)
	e.setState(webKey, alerting.StatusUp)
	e.setState(apiKey, alerting.StatusDown)
	e.setState(hiddenKey, alerting.StatusDown)

	r := e.get(t, "/status/acme")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	require.Less(t, len(r.body), 150<<10, "page weight")
	body := r.body
	for _, want := range []string{
		"<title>Acme &lt;Cloud&gt; status</title>", "Website", "Shop &amp; checkout", "API",
		`<span class="s up"><b aria-hidden="true">✓</b> Operational</span>`,
		`<span class="s down"><b aria-hidden="true">✕</b> Major outage</span>`,
		"Partial outage", // the banner: one of two components is down
		`<i class="major"><b>Mar 1: 91.66% up, 2h down</b></i>`,
		`<i class="full" style="flex:4"><b>Feb 27 – Mar 2: 100% up</b></i>`,
		`<i class="none" style="flex:86"><b>Dec 3 – Feb 26: no data</b></i>`,
		"97.22% uptime", // the API over its days with data: 70 h up, 2 h down
		`<img src="https://acme.example.com/logo.png" alt="">`,
	} {
		require.Contains(t, body, want)
	}
	for _, secret := range []string{"hidden-9d", "Hidden billing", "billing", "web-7f", "api-3c", "shop.example.com", "api.example.com", "secret-host", "refused", webKey, apiKey} {
		require.NotContains(t, body, secret, "the page shows nothing its editors did not put on it")
	}
	require.NotContains(t, body, "<script", "no JavaScript")

	// Cacheable: an ETag and max-age; the same ETag again is a 304.
	require.Equal(t, "public, max-age=30", r.header.Get("Cache-Control"))
	etag := r.header.Get("ETag")
	require.NotEmpty(t, etag)
	again := e.get(t, "/status/acme", "If-None-Match", etag)
	require.Equal(t, http.StatusNotModified, again.status)
	require.Empty(t, again.body)

	// Rendered again past max-age, from kept sums of the settled days and
	// fresh ones of today: the same figures, and today's new checks count.
	e.clock.Advance(31 * time.Second)
	e.checks(t, webKey, t0, t0.Add(30*time.Second), 10*time.Second, true)
	re := e.get(t, "/status/acme")
	require.Contains(t, re.body, `<b>Mar 1: 91.66% up, 2h down</b>`)
	require.Contains(t, re.body, "97.22% uptime")
	require.NotEqual(t, etag, re.header.Get("ETag"))
}

func TestUnknownSlugAndOtherPathsAre404(t *testing.T) {
	e := newEnv(t)
	e.acme(t)
	for _, p := range []string{"/status/nope", "/status/nope/feed.atom", "/status/ACME", "/status/acme/targets", "/badge/nope/status.svg"} {
		require.Equal(t, http.StatusNotFound, e.get(t, p).status, p)
	}
}

func TestIncidentsOnPageAndFeedIsValidAtom(t *testing.T) {
	e := newEnv(t)
	id, _, _, _ := e.acme(t)
	inc := e.call(t, registry.DefaultTenant, http.MethodPost, "/status-pages/"+id+"/incidents",
		map[string]any{"title": "Checkout <errors>", "status": "investigating", "body": "We see failed payments & are looking."}, http.StatusCreated)
	e.clock.Advance(20 * time.Minute)
	e.call(t, registry.DefaultTenant, http.MethodPost, "/status-pages/"+id+"/incidents/"+inc["id"].(string)+"/updates",
		map[string]any{"status": "identified", "body": "A bad deploy; rolling back."}, http.StatusCreated)
	old := e.call(t, registry.DefaultTenant, http.MethodPost, "/status-pages/"+id+"/incidents",
		map[string]any{"title": "DNS blip", "status": "resolved", "body": "Resolved."}, http.StatusCreated)

	page := e.get(t, "/status/acme")
	require.Equal(t, http.StatusOK, page.status)
	require.Contains(t, page.body, "Current incidents")
	require.Contains(t, page.body, "Checkout &lt;errors&gt;")
	require.Contains(t, page.body, "Past incidents")
	require.Contains(t, page.body, `id="incident-`+old["id"].(string)+`"`)

	r := e.get(t, "/status/acme/feed.atom")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/atom+xml; charset=utf-8", r.header.Get("Content-Type"))
	require.NotEmpty(t, r.header.Get("ETag"))
	var feed struct {
		XMLName xml.Name `xml:"http://www.w3.org/2005/Atom feed"`
		Title   string   `xml:"title"`
		ID      string   `xml:"id"`
		Updated string   `xml:"updated"`
		Links   []struct {
			Rel  string `xml:"rel,attr"`
			Href string `xml:"href,attr"`
		} `xml:"link"`
		Entries []struct {
			Title   string `xml:"title"`
			ID      string `xml:"id"`
			Updated string `xml:"updated"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	require.NoError(t, xml.Unmarshal([]byte(r.body), &feed))
	require.Equal(t, "Acme <Cloud> status", feed.Title)
	require.Equal(t, e.ts.URL+"/status/acme", feed.ID)
	require.Len(t, feed.Entries, 2)
	require.Equal(t, "[identified] Checkout <errors>", feed.Entries[0].Title)
	require.Contains(t, feed.Entries[0].Content, "A bad deploy")
	require.Contains(t, feed.Entries[0].Content, "failed payments & are looking")
	require.Equal(t, t0.Add(20*time.Minute).Format(time.RFC3339), feed.Entries[0].Updated)
	require.Equal(t, feed.Entries[0].Updated, feed.Updated, "the feed's updated is its newest entry's")
	for _, en := range feed.Entries {
		_, err := time.Parse(time.RFC3339, en.Updated)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(en.ID, e.ts.URL+"/status/acme#incident-"), en.ID)
	}
	require.NotContains(t, r.body, "web-7f")
}

func TestOtherTenantsPageIsNotEditableAndShowsOnlyItsOwn(t *testing.T) {
	e := newEnv(t)
	id, _, _, _ := e.acme(t)
	e.call(t, "other", http.MethodPut, "/status-pages/"+id, map[string]any{"slug": "acme", "title": "Pwned"}, http.StatusNotFound)
	e.call(t, "other", http.MethodPost, "/status-pages/"+id+"/incidents", map[string]any{"title": "Pwned", "status": "investigating", "body": "x"}, http.StatusNotFound)
	require.NotContains(t, e.get(t, "/status/acme").body, "Pwned")
}

func TestCustomDomainServesThePage(t *testing.T) {
	e := newEnv(t)
	id, _, _, _ := e.acme(t)
	e.call(t, registry.DefaultTenant, http.MethodPut, "/status-pages/"+id, map[string]any{
		"slug": "acme", "title": "Acme", "domain": "status.acme.example.com",
		"components": []any{map[string]any{"name": "Website", "targets": []any{"web-7f"}}},
	}, http.StatusOK)
	r := e.get(t, "/", "Host", "Status.Acme.Example.com:8443")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, "<h1>Acme</h1>")
	require.Contains(t, r.body, `href="http://status.acme.example.com/feed.atom"`)
	feed := e.get(t, "/feed.atom", "Host", "status.acme.example.com")
	require.Equal(t, http.StatusOK, feed.status)
	require.NoError(t, xml.Unmarshal([]byte(feed.body), new(struct{})))
	require.Equal(t, http.StatusNotFound, e.get(t, "/", "Host", "other.example.com").status, "other hosts fall through")
	require.Equal(t, http.StatusNotFound, e.get(t, "/admin", "Host", "status.acme.example.com").status, "only the page and its feed")
}

func TestMaintenanceShownInAdvance(t *testing.T) {
	e := newEnv(t)
	e.acme(t)
	start := t0.Add(48 * time.Hour)
	e.call(t, registry.DefaultTenant, http.MethodPost, "/maintenance-windows", map[string]any{
		"name": "internal: patch db-7 cluster", "targets": []any{"api-3c"}, "start": start.Format(time.RFC3339), "end": start.Add(2 * time.Hour).Format(time.RFC3339),
	}, http.StatusCreated)
	e.call(t, registry.DefaultTenant, http.MethodPost, "/maintenance-windows", map[string]any{
		"name": "hidden only", "targets": []any{"hidden-9d"}, "start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339),
	}, http.StatusCreated)
	body := e.get(t, "/status/acme").body
	require.Contains(t, body, "Scheduled maintenance")
	require.Contains(t, body, `<time datetime="2026-03-04T10:00:00Z">Mar 4, 2026 10:00 UTC</time> – <time datetime="2026-03-04T12:00:00Z">`)
	require.Contains(t, body, "Affects: API")
	require.NotContains(t, body, "patch db-7", "window names are not shown")
	require.Equal(t, 1, strings.Count(body, "Affects:"), "a window of a target not on the page is not shown")
}

func TestBadges(t *testing.T) {
	e := newEnv(t)
	key := e.target(t, registry.DefaultTenant, "x-1", `<script>alert("x")</script> & 'q'`, "https://x.example.com/")
	e.target(t, registry.DefaultTenant, "y-2", "Not opted in", "https://y.example.com/")
	e.checks(t, key, t0.Add(-24*time.Hour), t0, 5*time.Minute, true)
	e.incident(t, key, t0.Add(-6*time.Hour), t0.Add(-5*time.Hour-48*time.Minute)) // 12 min of 24 h down
	e.setState(key, alerting.StatusUp)

	b := e.call(t, registry.DefaultTenant, http.MethodPost, "/targets/x-1/badge", nil, http.StatusCreated)
	token := b["token"].(string)
	imgs := b["images"].(map[string]any)

	r := e.get(t, imgs["status"].(string))
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "image/svg+xml; charset=utf-8", r.header.Get("Content-Type"))
	require.NotEmpty(t, r.header.Get("ETag"))
	requireWellFormedXML(t, r.body)
	require.NotContains(t, r.body, "<script")
	require.Contains(t, r.body, "&lt;script&gt;")
	require.Contains(t, r.body, ">up</text>")
	require.NotContains(t, r.body, "x-1")

	r = e.get(t, "/badge/"+token+"/uptime-24h.svg")
	require.Equal(t, http.StatusOK, r.status)
	requireWellFormedXML(t, r.body)
	require.Contains(t, r.body, ">99.16% (24h)</text>") // 1 − 12 min / 24 h, not rounded up
	require.Equal(t, http.StatusOK, e.get(t, "/badge/"+token+"/uptime-30d.svg").status)
	require.Equal(t, http.StatusOK, e.get(t, "/badge/"+token+"/uptime-7d.svg").status)
	require.Equal(t, http.StatusNotFound, e.get(t, "/badge/"+token+"/uptime-1y.svg").status)

	e.call(t, registry.DefaultTenant, http.MethodPost, "/targets/x-1/pause", nil, http.StatusOK)
	e.clock.Advance(statuspage.DefaultMaxAge)
	require.Contains(t, e.get(t, "/badge/"+token+"/status.svg").body, ">paused</text>")

	e.call(t, registry.DefaultTenant, http.MethodDelete, "/targets/x-1/badge", nil, http.StatusNoContent)
	require.Equal(t, http.StatusNotFound, e.get(t, "/badge/"+token+"/status.svg").status, "a disabled badge is gone at once, cached or not")

	// A new target with a deleted one's id does not inherit its badge.
	b = e.call(t, registry.DefaultTenant, http.MethodPost, "/targets/x-1/badge", nil, http.StatusCreated)
	e.call(t, registry.DefaultTenant, http.MethodDelete, "/targets/x-1", nil, http.StatusNoContent)
	e.target(t, registry.DefaultTenant, "x-1", "Reborn", "https://x.example.com/")
	require.Equal(t, http.StatusNotFound, e.get(t, b["images"].(map[string]any)["status"].(string)).status)
}

func requireWellFormedXML(t *testing.T, s string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err, "not well-formed XML: %s", s)
	}
}

// pageOf50 makes page "big": 50 components of one target each, 90 days of
// checks every step and a 17-minute incident every fifth day per target.
func pageOf50(b testing.TB, e *env, step time.Duration) {
	b.Helper()
	var comps []any
	from := t0.AddDate(0, 0, -90)
	for i := range 50 {
		id := fmt.Sprintf("t-%02d", i)
		key := e.target(b, registry.DefaultTenant, id, "Target "+id, "https://"+id+".example.com/")
		e.checks(b, key, from, t0, step, true)
		var incs []sla.Interval
		for d := i % 5; d < 90; d += 5 {
			s := from.AddDate(0, 0, d).Add(time.Duration(i) * time.Minute)
			incs = append(incs, sla.Interval{Start: s, End: s.Add(17 * time.Minute)})
		}
		e.incidents(b, key, incs...)
		e.setState(key, alerting.StatusUp)
		comps = append(comps, map[string]any{"name": fmt.Sprintf("Component %02d", i), "targets": []any{id}})
	}
	e.call(b, registry.DefaultTenant, http.MethodPost, "/status-pages", map[string]any{"slug": "big", "title": "Big", "components": comps}, http.StatusCreated)
}

// TestFiftyComponentPageWeight: a page of 50 components with downtime every
// fifth day stays under 150 KB before compression.
func TestFiftyComponentPageWeight(t *testing.T) {
	e := newEnv(t)
	pageOf50(t, e, 6*time.Hour) // bars need the hours covered, not every check
	r := e.get(t, "/status/big", "Accept-Encoding", "identity")
	require.Equal(t, http.StatusOK, r.status)
	require.Empty(t, r.header.Get("Content-Encoding"))
	require.Less(t, len(r.body), 150<<10)
	require.Equal(t, 50, strings.Count(r.body, `<li class="c">`))
	// 18 incidents per target, less the 10 on Dec 2, the day before the first bar.
	require.Equal(t, 50*18-10, strings.Count(r.body, `<i class="major">`), "a bar for each day with downtime")
}

// BenchmarkStatusPage50Components renders page "big" past the response
// cache each time (the server time of a render once max-age is over); the
// sums of settled days are kept, as in a running server.
func BenchmarkStatusPage50Components(b *testing.B) {
	e := newEnv(b)
	pageOf50(b, e, time.Hour)
	size := 0
	// The first render reads every day; the kept sums serve the others.
	e.pages.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/status/big", nil))
	cpu0 := cputime.Used()
	for b.Loop() {
		e.clock.Advance(statuspage.DefaultMaxAge) // past the cache: render each time
		rec := httptest.NewRecorder()
		e.pages.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status/big", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(cputime.Used()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(size), "bytes/page")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/status/big", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	e.pages.ServeHTTP(rec, req)
	b.ReportMetric(float64(rec.Body.Len()), "gzip-bytes/page")
}

// BenchmarkStatusPage50ComponentsCold is the same page rendered with no
// kept day sums: the first render after a start.
func BenchmarkStatusPage50ComponentsCold(b *testing.B) {
	e := newEnv(b)
	pageOf50(b, e, time.Hour)
	cpu0 := cputime.Used()
	for b.Loop() {
		e.clock.Advance(25 * time.Hour) // past the cache and every kept sum
		rec := httptest.NewRecorder()
		e.pages.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status/big", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
	b.ReportMetric(float64(cputime.Used()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}

// BenchmarkStatusPage50ComponentsHourly is the render once an hour in a
// running server: the recent days' sums and a few old days' (their expiry
// staggered) are read again.
func BenchmarkStatusPage50ComponentsHourly(b *testing.B) {
	e := newEnv(b)
	pageOf50(b, e, time.Hour)
	e.pages.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/status/big", nil))
	cpu0 := cputime.Used()
	for b.Loop() {
		e.clock.Advance(time.Hour)
		rec := httptest.NewRecorder()
		e.pages.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status/big", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
	b.ReportMetric(float64(cputime.Used()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}

// TestStoreFailureIs503: a registry that fails is not a missing page.
func TestStoreFailureIs503(t *testing.T) {
	e := newEnv(t)
	e.acme(t)
	b := e.call(t, registry.DefaultTenant, http.MethodPost, "/targets/web-7f/badge", nil, http.StatusCreated)
	require.NoError(t, e.reg.Close())
	for _, p := range []string{"/status/acme", "/status/acme/feed.atom", b["images"].(map[string]any)["status"].(string)} {
		r := e.get(t, p)
		require.Equal(t, http.StatusServiceUnavailable, r.status, p)
		require.Equal(t, "5", r.header.Get("Retry-After"))
	}
}

// countingSamples counts the rollup reads a render makes.
type countingSamples struct {
	store slainput.Samples
	mu    sync.Mutex
	reads int
}

func (c *countingSamples) Samples(ctx context.Context, q tsdb.SampleQuery) (tsdb.SamplePage, error) {
	return c.store.Samples(ctx, q)
}

func (c *countingSamples) RollupTotals(ctx context.Context, ids []string, from, to time.Time) (map[string]tsdb.RollupTotal, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.store.RollupTotals(ctx, ids, from, to)
}

func (c *countingSamples) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// TestWarmKeepsTheDaysForTheFirstVisitor: after Warm (what the server does
// in the background after a start) the first render reads only the days
// not yet settled, not all 90.
func TestWarmKeepsTheDaysForTheFirstVisitor(t *testing.T) {
	e := newEnv(t)
	pageOf50(t, e, 6*time.Hour)
	for _, warm := range []bool{false, true} {
		samples := &countingSamples{store: e.samples}
		h, err := statuspage.New(statuspage.Options{
			Store: e.reg, Targets: e.apiSrv.TargetsOf, Windows: e.apiSrv.MaintenanceWindows,
			Samples: samples, Incidents: e.reg, Now: e.clock.Now,
		})
		require.NoError(t, err)
		if warm {
			p, err := e.reg.StatusPageBySlug(t.Context(), "big", "")
			require.NoError(t, err)
			require.NoError(t, h.Warm(t.Context(), p))
		}
		before := samples.count()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status/big", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		if warm {
			require.LessOrEqual(t, samples.count()-before, 2, "today, and yesterday while it settles")
		} else {
			require.GreaterOrEqual(t, samples.count()-before, 89, "a cold first render reads every day")
		}
	}
}
