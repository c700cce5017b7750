package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecretResponsesAreNotStored: every answer that carries a secret
// (a tenant's first admin key, a new API key, a new report key) says
// Cache-Control: no-store.
func TestSecretResponsesAreNotStored(t *testing.T) {
	h := newHarness(t)
	admin := h.key(tenantA, ScopeAdmin)
	for _, c := range []struct {
		path, secret string
		body         any
	}{
		{"/tenants", "admin_key", map[string]any{"id": "acme"}},
		{"/keys", "key", map[string]any{"name": "ci", "scopes": []string{"read"}}},
		{"/report-keys", "jwk", nil},
		{"/report-keys/rotate", "jwk", nil},
	} {
		r := h.do(http.MethodPost, Prefix+c.path, admin, c.body)
		require.Equal(t, http.StatusCreated, r.Status, "%s: %s", c.path, r.Body)
		require.NotEmpty(t, r.JSON(t)[c.secret], c.path)
		require.Equal(t, "no-store", r.Header.Get("Cache-Control"), c.path)
	}
}
