package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestControlCharactersAreRefused: names and labels with control
// characters (they forge log lines and rewrite terminals) are a 422 naming
// the field, on every route that takes one.
func TestControlCharactersAreRefused(t *testing.T) {
	h := newHarness(t)
	admin := h.key(tenantA, ScopeAdmin)
	target := httpTarget("cc")
	target["name"] = "Shop\r\nlevel=INFO msg=forged"
	target["labels"] = map[string]any{"env": "prod\x1b[2J"}
	for _, c := range []struct {
		path  string
		body  any
		field []string
	}{
		{"/targets", target, []string{"name", "labels.env"}},
		{"/contact-groups", map[string]any{"name": "ops\x00", "webhooks": []any{"https://hooks.example.com/g"}}, []string{"name"}},
		{"/contact-groups", map[string]any{"name": "ops", "members": []any{map[string]any{"name": "Ann\u009b", "email": "ann@example.com"}}}, []string{"members[0].name"}},
		{"/maintenance-windows", map[string]any{"name": "nightly\x7f", "cron": "0 3 * * *", "duration": "1h", "labels": map[string]any{"team": "web\n"}}, []string{"name", "labels.team"}},
		{"/keys", map[string]any{"name": "ci\x1b]0;pwned\x07", "scopes": []any{"read"}}, []string{"name"}},
		{"/tenants", map[string]any{"id": "acme", "name": "ACME\r\n"}, []string{"name"}},
	} {
		r := h.do(http.MethodPost, Prefix+c.path, admin, c.body)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", c.path, r.Body)
		var paths []string
		for _, e := range r.problem(t).Errors {
			require.Contains(t, e.Message, "control characters", c.path)
			paths = append(paths, e.Path)
		}
		require.ElementsMatch(t, c.field, paths, "%s: %s", c.path, r.Body)
	}
}
