package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEveryRouteIsDocumented: the OpenAPI document lists every route, so
// its query parameters are the ones the route takes (and clients can read
// them there).
func TestEveryRouteIsDocumented(t *testing.T) {
	h := newHarness(t)
	var missing []string
	for _, route := range h.srv.Routes() {
		if _, ok := h.srv.queryParams[route]; !ok {
			missing = append(missing, route)
		}
	}
	assert.Empty(t, missing, "routes missing from api/openapi/*.yaml")
}

// TestUnknownQueryParameter: a parameter the operation does not take is a
// 400 naming it, with the likely intended one, and changes nothing; the
// documented ones still work.
func TestUnknownQueryParameter(t *testing.T) {
	h := newHarness(t)
	k := h.key(tenantA, ScopeAdmin)
	r := h.do(http.MethodGet, Prefix+"/audit?limt=5", k, nil)
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
	pr := r.problem(t)
	assert.Contains(t, pr.Detail, "limt")
	require.Len(t, pr.Errors, 1)
	assert.Equal(t, "query.limt", pr.Errors[0].Path)
	assert.Equal(t, "unknown query parameter; did you mean limit?", pr.Errors[0].Message)

	require.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/audit?limit=5", k, nil).Status)

	// A write with a stray parameter does nothing.
	r = h.do(http.MethodPost, Prefix+"/targets?dryrun=true", k, httpTarget("stray"))
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
	require.Equal(t, http.StatusNotFound, h.do(http.MethodGet, Prefix+"/targets/stray", k, nil).Status)

	// Without a key the answer is 401, whatever the query says.
	require.Equal(t, http.StatusUnauthorized, h.do(http.MethodGet, Prefix+"/audit?limt=5", "", nil).Status)
}
