package api

import (
	"net/http"

	"github.com/upwatch/upwatch/registry"
)

// OperatorOnly serves h, outside /api/v1, to admin keys of tenant
// "default" (the operator's) only: the same key check, failed-authentication
// limit and log, per-key rate limit and problem answers as every API route
// (401 without a valid key, 403 for another scope or tenant). It guards
// process-wide endpoints such as /debug/pprof/ that no single tenant owns.
func (s *Server) OperatorOnly(h http.Handler) http.Handler {
	return s.wrap(ScopeAdmin, func(w http.ResponseWriter, r *http.Request, p Principal) error {
		if p.TenantID != registry.DefaultTenant {
			return Problem(http.StatusForbidden, "Forbidden", "only admin keys of tenant \"default\" may use "+r.URL.Path)
		}
		h.ServeHTTP(w, r)
		return nil
	})
}
