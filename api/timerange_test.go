package api

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTimeParamsOutsideTheStoreRange: the stores count nanoseconds in an
// int64 (1677-2262); a time outside that range used to wrap around and
// answer 200 with no rows. It is a 400 naming the parameter; the widest
// window inside the range still finds the samples.
func TestTimeParamsOutsideTheStoreRange(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h.setClock(t0.Add(time.Hour))
	h.configTarget("web", nil)
	h.checks("web", t0, t0.Add(10*time.Minute), time.Minute, nil)
	key := h.key(tenantA, ScopeRead)

	for _, c := range []struct{ route, query, param string }{
		{"/targets/web/samples", "from=1600-01-01T00:00:00Z", "query.from"},
		{"/targets/web/samples", "from=2026-03-01T00:00:00Z&to=2300-01-01T00:00:00Z", "query.to"},
		{"/targets/web/samples", "to=0001-01-01T00:00:00Z", "query.to"},
		{"/targets/web/export", "from=1677-09-21T00:00:00Z", "query.from"},
		{"/targets/web/export", "from=2026-03-01T00:00:00Z&to=9999-12-31T23:59:59Z", "query.to"},
		{"/targets/web/export", "format=ndjson&from=1000-01-01T00:00:00Z&to=2026-03-02T00:00:00Z", "query.from"},
		{"/targets/web/incidents", "from=1500-01-01T00:00:00Z", "query.from"},
		{"/targets/web/sla", "from=1600-01-01T00:00:00Z", "query.from"},
	} {
		r := h.do(http.MethodGet, Prefix+c.route+"?"+c.query, key, nil)
		require.Equal(t, http.StatusBadRequest, r.Status, "%s?%s: %s", c.route, c.query, r.Body)
		p := r.problem(t)
		require.Len(t, p.Errors, 1, "%s?%s", c.route, c.query)
		require.Equal(t, c.param, p.Errors[0].Path, "%s?%s", c.route, c.query)
		require.Contains(t, p.Errors[0].Message, "must be from 1678-01-01T00:00:00Z to 2262-01-01T00:00:00Z")
	}

	wide := "from=" + url.QueryEscape("1678-01-01T00:00:00Z") + "&to=" + url.QueryEscape("2262-01-01T00:00:00Z")
	r := h.do(http.MethodGet, Prefix+"/targets/web/samples?"+wide, key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.JSON(t)["samples"], 10)
	r = h.do(http.MethodGet, Prefix+"/targets/web/export?format=ndjson&"+wide, key, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, 10, countLines(r.Body))
}

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}
