package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/sqlitedb"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

// rawRegistry is every byte of the registry: each row of the tables that
// hold API objects, read with SQL from the SQLite file, plus the file and
// its write-ahead log as they are on disk.
func (h *harness) rawRegistry() string {
	h.t.Helper()
	db, err := sqlitedb.Open(h.reg.Path(), 1)
	require.NoError(h.t, err)
	defer db.Close()
	var b strings.Builder
	for _, table := range []string{"api_targets", "contact_groups", "audit_log"} {
		rows, err := db.QueryContext(h.t.Context(), "SELECT * FROM "+table)
		require.NoError(h.t, err)
		cols, err := rows.Columns()
		require.NoError(h.t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(h.t, rows.Scan(ptrs...))
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%v\n", v)
			}
		}
		require.NoError(h.t, rows.Err())
		_ = rows.Close()
	}
	for _, suffix := range []string{"", "-wal"} {
		if raw, err := os.ReadFile(h.reg.Path() + suffix); err == nil {
			b.Write(raw)
		}
	}
	return b.String()
}

// seen records what a target received.
type seen struct {
	mu     sync.Mutex
	header http.Header
	query  string
	user   string
	pass   string
}

func recordingTarget(t *testing.T) (*httptest.Server, *seen) {
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.header, s.query = r.Header.Clone(), r.URL.RawQuery
		s.user, s.pass, _ = r.BasicAuth()
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

// Secret values of TestTargetCredentialsSealedAtRest.
var targetSecretValues = map[string]string{
	"Authorization":             "Bearer AUTHZ-S3CRET",
	"Cookie":                    "session=COOKIE-S3CRET",
	"X-Api-Key":                 "APIKEY-S3CRET",
	"Ocp-Apim-Subscription-Key": "OCP-S3CRET",
	"X-Tenant-Pin":              "PIN-S3CRET", // harmless name: secret because marked
}

const (
	urlPassword = "URLPASS-S3CRET"
	urlToken    = "QUERYTOKEN-S3CRET"
)

// Every credential of an API target (secret headers by the list, the
// pattern and secret_headers, the URL's password and ?token=) is absent
// from the registry file, redacted in every response, and still sent to
// the target by the prober.
func TestTargetCredentialsSealedAtRest(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	srv, got := recordingTarget(t)
	headers := map[string]any{"Accept": "application/json"}
	for k, v := range targetSecretValues {
		headers[k] = v
	}
	u := strings.Replace(srv.URL, "http://", "http://probe:"+urlPassword+"@", 1) + "/health?token=" + urlToken + "&page=2"
	doc := map[string]any{"id": "sealed", "name": "sealed", "kind": "http", "interval": "30s",
		"http": map[string]any{"url": u, "headers": headers, "secret_headers": []string{"Ocp-Apim-Subscription-Key", "X-Tenant-Pin"},
			"auth": map[string]any{"type": "api_key", "header": "X-Other-Key", "key": "AUTHKEY-S3CRET"}}}
	secrets := []string{urlPassword, urlToken, "AUTHKEY-S3CRET"}
	for _, v := range targetSecretValues {
		secrets = append(secrets, strings.TrimPrefix(strings.TrimPrefix(v, "Bearer "), "session="))
	}

	bodies := []response{h.do(http.MethodPost, Prefix+"/targets", w, doc)}
	require.Equal(t, http.StatusCreated, bodies[0].Status, string(bodies[0].Body))
	bodies = append(bodies,
		h.do(http.MethodGet, Prefix+"/targets/sealed", w, nil),
		h.do(http.MethodGet, Prefix+"/targets", w, nil),
		h.do(http.MethodGet, Prefix+"/targets?format=yaml", w, nil),
		h.do(http.MethodGet, Prefix+"/audit", h.key(tenantA, ScopeAdmin), nil),
	)
	for _, b := range bodies {
		require.Less(t, b.Status, 300, string(b.Body))
		for _, s := range secrets {
			assert.NotContains(t, string(b.Body), s)
		}
	}
	view := bodies[1].JSON(t)["http"].(map[string]any)
	for k := range targetSecretValues {
		assert.Equal(t, "<secret>", view["headers"].(map[string]any)[k], k)
	}
	assert.Equal(t, "application/json", view["headers"].(map[string]any)["Accept"])
	assert.Equal(t, strings.Replace(srv.URL, "http://", "http://probe:xxxxx@", 1)+"/health?token=xxxxx&page=2", view["url"])

	raw := h.rawRegistry()
	require.Contains(t, raw, `"sealed"`, "the row is there")
	require.Contains(t, raw, "application/json", "non-secret headers stay readable")
	for _, s := range secrets {
		assert.NotContains(t, raw, s, "plaintext credential in registry.db")
	}

	// A PATCH that changes the URL's page and the name keeps every stored
	// credential.
	r := h.do(http.MethodPatch, Prefix+"/targets/sealed", w, map[string]any{"name": "renamed",
		"http": map[string]any{"url": strings.Replace(view["url"].(string), "page=2", "page=3", 1)}},
		"Content-Type", "application/merge-patch+json")
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	for _, s := range secrets {
		assert.NotContains(t, string(r.Body), s)
		assert.NotContains(t, h.rawRegistry(), s)
	}

	// The prober sends the real values.
	probe := func() {
		t.Helper()
		rec, err := h.reg.Target(t.Context(), tenantA, "sealed")
		require.NoError(t, err)
		ti, err := tenancy.OpenTarget(rec, h.mk)
		require.NoError(t, err)
		res := prober.New(prober.Options{AllowPrivate: true}).Check(t.Context(), &ti.Target.Target)
		require.True(t, res.Success, res.Error)
	}
	probe()
	got.mu.Lock()
	for k, v := range targetSecretValues {
		assert.Equal(t, v, got.header.Get(k), k)
	}
	assert.Equal(t, "AUTHKEY-S3CRET", got.header.Get("X-Other-Key"))
	assert.Equal(t, "token="+urlToken+"&page=3", got.query)
	got.mu.Unlock()

	// Without an Authorization header Go's client sends the URL's userinfo
	// as basic auth: the stored password is the real one.
	r = h.do(http.MethodPatch, Prefix+"/targets/sealed", w, map[string]any{"http": map[string]any{"headers": map[string]any{"Authorization": nil}}},
		"Content-Type", "application/merge-patch+json")
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	probe()
	got.mu.Lock()
	defer got.mu.Unlock()
	assert.Equal(t, "probe", got.user)
	assert.Equal(t, urlPassword, got.pass)
	assert.Equal(t, "OCP-S3CRET", got.header.Get("Ocp-Apim-Subscription-Key"))
}

// The API refuses env: and file: header values (they would read the
// server's environment) and redacted values it cannot fill.
func TestTargetSecretInputRefused(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	for _, c := range []struct {
		http map[string]any
		path string
	}{
		{map[string]any{"url": "https://example.com/", "headers": map[string]any{"X-Token": "env:HOME"}}, "http.headers.X-Token"},
		{map[string]any{"url": "https://example.com/", "headers": map[string]any{"X-Plain": "file:/etc/passwd"}}, "http.headers.X-Plain"},
		{map[string]any{"url": "https://example.com/", "headers": map[string]any{"Authorization": "<secret>"}}, "http.headers.Authorization"},
		{map[string]any{"url": "https://u:xxxxx@example.com/"}, "http.url"},
		{map[string]any{"url": "https://example.com/?token=xxxxx"}, "http.url"},
		{map[string]any{"url": "https://example.com/", "headers": map[string]any{"A": "b"}, "secret_headers": []string{"B"}}, "http.secret_headers[0]"},
	} {
		r := h.do(http.MethodPost, Prefix+"/targets", w, map[string]any{"name": "x", "kind": "http", "http": c.http})
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
		p := r.problem(t)
		require.NotEmpty(t, p.Errors)
		assert.Equal(t, c.path, p.Errors[0].Path)
	}
}

// Rows written before headers, URL credentials and webhooks were sealed
// (credentials in the clear spec, the old sealed auth format) still load,
// and tenancy.Reseal then stores them sealed.
func TestOldStyleRowsLoadAndAreResealed(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	spec := `{"id":"old","name":"old","kind":"http","interval":"1m0s","timeout":"10s",` +
		`"http":{"url":"https://u:OLDPASS-S3CRET@example.com/?token=OLDTOKEN-S3CRET","headers":{"X-Api-Key":"OLDKEY-S3CRET","Accept":"text/plain"},` +
		`"auth":{"type":"basic","username":"bob"}}}`
	sealed, err := h.mk.Seal([]byte(`{"password":"OLDAUTH-S3CRET"}`), []byte("upwatch target secrets\x00"+tenantA+"\x00old") /* the stored format */)
	require.NoError(t, err)
	_, err = h.reg.CreateTarget(ctx, registry.TargetRecord{TenantID: tenantA, ID: "old", Spec: []byte(spec), Secrets: sealed,
		CreatedAt: harnessT0, UpdatedAt: harnessT0})
	require.NoError(t, err)
	require.NoError(t, h.reg.CreateObject(ctx, registry.ContactGroups, registry.Object{TenantID: tenantA, ID: "ops",
		Spec:      []byte(`{"name":"ops","webhooks":["https://hooks.example.com/services/OLDHOOK-S3CRET?token=OLDHOOKTOKEN-S3CRET"]}`),
		CreatedAt: harnessT0, UpdatedAt: harnessT0}))
	secrets := []string{"OLDPASS-S3CRET", "OLDTOKEN-S3CRET", "OLDKEY-S3CRET", "OLDAUTH-S3CRET", "OLDHOOK-S3CRET", "OLDHOOKTOKEN-S3CRET"}

	check := func() {
		t.Helper()
		r := h.do(http.MethodGet, Prefix+"/targets/old", h.key(tenantA, ScopeRead), nil)
		require.Equal(t, http.StatusOK, r.Status, string(r.Body))
		g := h.do(http.MethodGet, Prefix+"/contact-groups/ops", h.key(tenantA, ScopeRead), nil)
		require.Equal(t, http.StatusOK, g.Status, string(g.Body))
		for _, s := range secrets {
			assert.NotContains(t, string(r.Body), s)
			assert.NotContains(t, string(g.Body), s)
		}
		ten, err := tenancy.Load(ctx, h.reg, h.mk)
		require.NoError(t, err)
		require.Len(t, ten.Targets, 1)
		hs := ten.Targets[0].Target.HTTP
		assert.Equal(t, "https://u:OLDPASS-S3CRET@example.com/?token=OLDTOKEN-S3CRET", hs.URL)
		assert.Equal(t, "OLDKEY-S3CRET", hs.Headers["X-Api-Key"])
		assert.Equal(t, "OLDAUTH-S3CRET", hs.Auth.Password.Reveal())
		require.Len(t, ten.Groups[tenantA], 1)
		assert.Equal(t, []string{"https://hooks.example.com/services/OLDHOOK-S3CRET?token=OLDHOOKTOKEN-S3CRET"}, ten.Groups[tenantA][0].Webhooks)
	}
	check()
	require.Contains(t, h.rawRegistry(), "OLDKEY-S3CRET", "the old row is in clear before")

	n, err := tenancy.Reseal(ctx, h.reg, h.mk)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	raw := h.rawRegistry()
	for _, s := range secrets {
		// The old pages of the file may keep stale bytes until they are
		// reused; the rows themselves must be clean.
		assert.NotContains(t, rowsOnly(raw), s)
	}
	check()
	n, err = tenancy.Reseal(ctx, h.reg, h.mk)
	require.NoError(t, err)
	require.Zero(t, n, "resealing is idempotent")
}

// rowsOnly is the SQL part of rawRegistry (before the file bytes).
func rowsOnly(raw string) string {
	if i := strings.Index(raw, "SQLite format 3"); i >= 0 {
		return raw[:i]
	}
	return raw
}

// Contact group webhook URLs are sealed at rest and shown redacted; the
// redacted form sent back keeps them.
func TestContactGroupWebhooksRedacted(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	hook := "https://hooks.example.com/services/T0/B0/HOOK-S3CRET?token=HOOKTOKEN-S3CRET"
	other := "https://hooks.example.com/other/HOOK2-S3CRET"
	secrets := []string{"HOOK-S3CRET", "HOOKTOKEN-S3CRET", "HOOK2-S3CRET"}
	bodies := []response{h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "ops", "webhooks": []string{hook, other}})}
	require.Equal(t, http.StatusCreated, bodies[0].Status, string(bodies[0].Body))
	bodies = append(bodies,
		h.do(http.MethodGet, Prefix+"/contact-groups/ops", w, nil),
		h.do(http.MethodGet, Prefix+"/contact-groups", w, nil))
	for _, b := range bodies {
		for _, s := range secrets {
			assert.NotContains(t, string(b.Body), s)
		}
	}
	doc := bodies[1].JSON(t)
	shown := doc["webhooks"].([]any)
	require.Len(t, shown, 2)
	assert.True(t, strings.HasPrefix(shown[0].(string), "https://hooks.example.com/…#"), shown[0])
	assert.NotEqual(t, shown[0], shown[1])
	for _, s := range secrets {
		assert.NotContains(t, h.rawRegistry(), s)
	}

	// PUT of what GET showed, in another order, keeps both URLs.
	doc["webhooks"] = []any{shown[1], shown[0]}
	r := h.do(http.MethodPut, Prefix+"/contact-groups/ops", w, doc)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	ten, err := tenancy.Load(t.Context(), h.reg, h.mk)
	require.NoError(t, err)
	assert.Equal(t, []string{other, hook}, ten.Groups[tenantA][0].Webhooks)

	// A redacted URL that matches nothing stored is refused.
	r = h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "dev", "webhooks": []any{shown[0]}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	assert.Equal(t, "webhooks[0]", r.problem(t).Errors[0].Path)
}

// A contact group's chat and paging credentials (Slack webhook and bot
// token, PagerDuty routing key, Telegram bot token, ntfy topic, ...) are
// sealed at rest and shown redacted; GET's body sent back by PUT keeps
// them, and a redacted value with nothing stored behind it is refused by
// its field's path.
func TestContactGroupDestinationsRedacted(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	group := map[string]any{
		"name": "chat",
		"slack": []any{
			map[string]any{"webhook_url": "https://hooks.slack.com/services/T0/B0/SLACKHOOK-S3CRET"},
			map[string]any{"token": "xoxb-1-2-SLACKBOT-S3CRET", "channel": "C0123456789"},
		},
		"telegram":  []any{map[string]any{"bot_token": "123456:TGBOT-S3CRET", "chat_id": "-100123"}},
		"pagerduty": []any{map[string]any{"routing_key": "PDKEYS3CRET0123456789abcdefABCDE", "region": "eu"}},
		"ntfy":      []any{map[string]any{"topic": "NTFYTOPIC-S3CRET", "token": "tk_NTFYTOKEN-S3CRET"}},
	}
	secrets := []string{"SLACKHOOK-S3CRET", "SLACKBOT-S3CRET", "TGBOT-S3CRET", "PDKEYS3CRET", "NTFYTOPIC-S3CRET", "NTFYTOKEN-S3CRET"}
	r := h.do(http.MethodPost, Prefix+"/contact-groups", w, group)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	bodies := []response{r, h.do(http.MethodGet, Prefix+"/contact-groups/chat", w, nil), h.do(http.MethodGet, Prefix+"/contact-groups", w, nil)}
	for _, b := range bodies {
		for _, s := range secrets {
			assert.NotContains(t, string(b.Body), s)
		}
	}
	for _, s := range secrets {
		assert.NotContains(t, h.rawRegistry(), s)
	}
	doc := bodies[1].JSON(t)
	pd := doc["pagerduty"].([]any)[0].(map[string]any)
	assert.True(t, strings.HasPrefix(pd["routing_key"].(string), "<secret>#"), pd["routing_key"])
	assert.Equal(t, "eu", pd["region"], "what is not a credential is shown")
	assert.Equal(t, "C0123456789", doc["slack"].([]any)[1].(map[string]any)["channel"])

	// PUT of what GET showed keeps every credential.
	r = h.do(http.MethodPut, Prefix+"/contact-groups/chat", w, doc)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	ten, err := tenancy.Load(t.Context(), h.reg, h.mk)
	require.NoError(t, err)
	g := ten.Groups[tenantA][0]
	assert.Equal(t, "https://hooks.slack.com/services/T0/B0/SLACKHOOK-S3CRET", g.Slack[0].WebhookURL)
	assert.Equal(t, "xoxb-1-2-SLACKBOT-S3CRET", g.Slack[1].Token)
	assert.Equal(t, "123456:TGBOT-S3CRET", g.Telegram[0].BotToken)
	assert.Equal(t, "PDKEYS3CRET0123456789abcdefABCDE", g.PagerDuty[0].RoutingKey)
	assert.Equal(t, "NTFYTOPIC-S3CRET", g.Ntfy[0].Topic)
	assert.Equal(t, "tk_NTFYTOKEN-S3CRET", g.Ntfy[0].Token)

	// A redacted value that matches nothing stored is refused, by its path.
	r = h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "other", "pagerduty": []any{pd}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	assert.Equal(t, "pagerduty[0].routing_key", r.problem(t).Errors[0].Path)

	// A bad destination is a 422 naming the field.
	r = h.do(http.MethodPost, Prefix+"/contact-groups", w, map[string]any{"name": "bad", "slack": []any{map[string]any{"token": "xoxb-1"}}})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	assert.Equal(t, "slack[0].channel", r.problem(t).Errors[0].Path)

	// A policy may name the new channels.
	r = h.do(http.MethodPost, Prefix+"/alert-policies", w, map[string]any{"name": "page", "channels": []any{"pagerduty", "slack"}, "contact_groups": []any{"chat"}})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
}
