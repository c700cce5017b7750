package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwe"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/report"
)

// newReportKey creates (or rotates) the tenant's report key through the
// API and returns the answer's JWK.
func (h *harness) newReportKey(tenant, path string) (kid string, jwkRaw []byte) {
	h.t.Helper()
	r := h.do(http.MethodPost, Prefix+path, h.key(tenant, ScopeAdmin), nil)
	require.Equal(h.t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(h.t, "no-store", r.Header.Get("Cache-Control"))
	var doc struct {
		KID     string          `json:"kid"`
		Current bool            `json:"current"`
		JWK     json.RawMessage `json:"jwk"`
	}
	require.NoError(h.t, json.Unmarshal(r.Body, &doc))
	require.True(h.t, doc.Current)
	return doc.KID, doc.JWK
}

// jwxOpen decrypts token with jwx (not go-jose, which encrypts) given the
// JWKs, and decodes the report.
func jwxOpen(t *testing.T, token string, jwks ...[]byte) (map[string]any, error) {
	t.Helper()
	set := jwk.NewSet()
	for _, raw := range jwks {
		k, err := jwk.ParseKey(raw)
		require.NoError(t, err)
		require.NoError(t, set.AddKey(k))
	}
	plain, err := jwe.Decrypt([]byte(token), jwe.WithKeySet(set))
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	require.NoError(t, json.Unmarshal(plain, &doc))
	return doc, nil
}

func TestReports(t *testing.T) {
	h := newHarness(t)
	h.setClock(at(30, 0))
	h.configTarget("web", map[string]string{"team": "web"})
	h.configTarget("db", map[string]string{"team": "db"})
	h.checks("web", at(0, 0), at(24, 0), 30*time.Second, nil, [2]time.Time{at(10, 0), at(11, 0)})
	h.checks("db", at(0, 0), at(24, 0), 30*time.Second, nil)
	h.incident("web", at(10, 0), at(11, 0))
	reports := h.key(tenantA, ScopeReports)
	query := "/reports/sla?period=day&day=2026-03-10&slo=99.9"

	// No key yet: 409.
	r := h.do(http.MethodGet, Prefix+query, reports, nil)
	require.Equal(t, http.StatusConflict, r.Status)
	require.Contains(t, r.problem(t).Detail, "POST /api/v1/report-keys")

	kid1, jwk1 := h.newReportKey(tenantA, "/report-keys")
	// The first key exists: creating another is a conflict; rotate instead.
	r = h.do(http.MethodPost, Prefix+"/report-keys", h.key(tenantA, ScopeAdmin), nil)
	require.Equal(t, http.StatusConflict, r.Status)

	r = h.do(http.MethodGet, Prefix+query, reports, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, report.MediaType, r.Header.Get("Content-Type"))
	token1 := string(r.Body)
	require.Equal(t, 5, len(strings.Split(token1, ".")))

	msg, err := jwe.Parse([]byte(token1))
	require.NoError(t, err)
	kid, _ := msg.ProtectedHeaders().KeyID()
	require.Equal(t, kid1, kid)
	enc, _ := msg.ProtectedHeaders().ContentEncryption()
	require.Equal(t, "A256GCM", enc.String())

	doc, err := jwxOpen(t, token1, jwk1)
	require.NoError(t, err)
	require.Equal(t, 1.0, doc["version"])
	require.Equal(t, at(30, 0).Format(time.RFC3339), doc["generated_at"])
	require.Equal(t, map[string]any{"id": tenantA, "name": tenantA}, doc["tenant"])
	require.Equal(t, slaDay.Format(time.RFC3339), doc["window"].(map[string]any)["from"])
	require.Equal(t, "time", doc["accounting"])
	targets := doc["targets"].([]any)
	require.Len(t, targets, 2)
	web := targets[1].(map[string]any)
	require.Equal(t, "web", web["target_id"])
	require.InDelta(t, 23.0/24*100, *num(t, web, "uptime_percent"), 1e-9)
	require.Equal(t, 3600.0, secs(t, web, "downtime"))
	require.Equal(t, 120.0, *num(t, web, "checks", "failed"))
	require.Equal(t, false, web["slo"].(map[string]any)["met"])
	agg := doc["aggregate"].(map[string]any)
	require.InDelta(t, 47.0/48*100, *num(t, agg, "uptime_percent"), 1e-9)

	// The same report through go-jose with the stored key.
	plain, _, err := report.Decrypt(token1, func(id string) (report.Key, bool) {
		k, ok, err := h.reg.LookupReportKey(t.Context(), tenantA, id)
		require.NoError(t, err)
		return k, ok
	})
	require.NoError(t, err)
	require.Contains(t, string(plain), `"generated_at"`)

	// A tampered token is refused by both libraries.
	parts := strings.Split(token1, ".")
	c := []byte(parts[3])
	c[len(c)/2] ^= 1
	if c[len(c)/2] == '.' || !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", rune(c[len(c)/2])) {
		c[len(c)/2] = 'A'
	}
	parts[3] = string(c)
	tampered := strings.Join(parts, ".")
	require.NotEqual(t, token1, tampered)
	_, err = jwxOpen(t, tampered, jwk1)
	require.Error(t, err)
	_, _, err = report.Decrypt(tampered, report.Keys(mustParseJWK(t, jwk1)))
	require.Error(t, err)

	// A selector narrows the report.
	r = h.do(http.MethodGet, Prefix+query+"&selector=team%3Ddb", reports, nil)
	require.Equal(t, http.StatusOK, r.Status)
	doc, err = jwxOpen(t, string(r.Body), jwk1)
	require.NoError(t, err)
	require.Len(t, doc["targets"], 1)

	// Rotate: new reports use the new key; the old one still opens the old
	// report, through the API's key store and a JWK set.
	h.clock.Advance(time.Hour)
	kid2, jwk2 := h.newReportKey(tenantA, "/report-keys/rotate")
	require.NotEqual(t, kid1, kid2)
	r = h.do(http.MethodGet, Prefix+query, reports, nil)
	require.Equal(t, http.StatusOK, r.Status)
	token2 := string(r.Body)
	_, err = jwxOpen(t, token2, jwk1)
	require.Error(t, err, "the old key must not open a new report")
	_, err = jwxOpen(t, token2, jwk2)
	require.NoError(t, err)
	_, err = jwxOpen(t, token1, jwk1, jwk2)
	require.NoError(t, err)
	_, _, err = report.Decrypt(token1, func(id string) (report.Key, bool) {
		k, ok, err := h.reg.LookupReportKey(t.Context(), tenantA, id)
		require.NoError(t, err)
		return k, ok
	})
	require.NoError(t, err)

	// A rotation in the same instant still makes the new key current.
	kid3, _ := h.newReportKey(tenantA, "/report-keys/rotate")
	r = h.do(http.MethodGet, Prefix+"/report-keys", h.key(tenantA, ScopeAdmin), nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.NotContains(t, string(r.Body), `"k"`)
	require.NotContains(t, string(r.Body), "jwk")
	var list reportKeysDoc
	require.NoError(t, json.Unmarshal(r.Body, &list))
	require.Len(t, list.Keys, 3)
	require.Equal(t, []string{kid3, kid2, kid1}, []string{list.Keys[0].KID, list.Keys[1].KID, list.Keys[2].KID})
	require.True(t, list.Keys[0].Current)
	require.False(t, list.Keys[1].Current)
	// Each key retired when the next one was made; the current one has no
	// retired_at.
	require.Nil(t, list.Keys[0].RetiredAt)
	require.NotContains(t, string(r.Body), `"retired_at":null`)
	require.NotNil(t, list.Keys[1].RetiredAt)
	require.True(t, list.Keys[1].RetiredAt.Equal(list.Keys[0].CreatedAt), "%v", list.Keys[1].RetiredAt)
	require.NotNil(t, list.Keys[2].RetiredAt)
	require.True(t, list.Keys[2].RetiredAt.Equal(list.Keys[1].CreatedAt), "%v", list.Keys[2].RetiredAt)

	// Keys are per tenant: tenant B sees none and has no report.
	r = h.do(http.MethodGet, Prefix+"/report-keys", h.key(tenantB, ScopeAdmin), nil)
	require.Equal(t, `{"items":[],"keys":[]}`, strings.TrimSpace(string(r.Body)))
	r = h.do(http.MethodGet, Prefix+query, h.key(tenantB, ScopeReports), nil)
	require.Equal(t, http.StatusConflict, r.Status)

	// Scopes: reports needs reports (or admin); keys need admin.
	r = h.do(http.MethodGet, Prefix+query, h.key(tenantA, ScopeRead), nil)
	require.Equal(t, http.StatusForbidden, r.Status)
	r = h.do(http.MethodPost, Prefix+"/report-keys/rotate", h.key(tenantA, ScopeReports), nil)
	require.Equal(t, http.StatusForbidden, r.Status)
	r = h.do(http.MethodGet, Prefix+"/report-keys", "", nil)
	require.Equal(t, http.StatusUnauthorized, r.Status)

	// The secret is never logged.
	k1 := mustParseJWK(t, jwk1)
	require.NotContains(t, h.logs.String(), string(k1.Secret))
}

func mustParseJWK(t *testing.T, raw []byte) report.Key {
	t.Helper()
	k, err := report.ParseJWK(raw)
	require.NoError(t, err)
	return k
}
