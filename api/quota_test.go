package api

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/quota"
)

// withQuotas sets the harness config's quotas section.
func withQuotas(h *harness, q quota.Config) {
	c := *h.cfg
	c.Quotas = q
	c.Quotas.Normalize()
	h.cfg = &c
}

// quotaOf asserts r is a quota problem naming limit and returns it.
func quotaOf(t *testing.T, r response, limit string) ProblemError {
	t.Helper()
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(truncateBody(r.Body)))
	p := r.problem(t)
	assert.Equal(t, ProblemType+"quota", p.Type)
	assert.Equal(t, limit, p.Limit, p.Detail)
	return p
}

func tcpEvery(id, interval string) map[string]any {
	doc := tcpTarget(id)
	doc["interval"] = interval
	return doc
}

// TestQuotasAPI: each limit is enforced on POST, PUT, PATCH and resume,
// with a 422 naming the limit, its value and the usage.
func TestQuotasAPI(t *testing.T) {
	h := newHarness(t)
	withConfigTarget(h) // exempt: not counted
	withQuotas(h, quota.Config{
		Limits:  quota.Limits{MaxTargets: 3, MinInterval: 10 * time.Second, MaxChecksPerSecond: 0.1},
		Tenants: map[string]quota.Limits{tenantB: {MaxTargets: 5}},
	})
	w := h.key(tenantA, ScopeWrite)

	// min_interval: a 422 with the field's path.
	p := quotaOf(t, h.do(http.MethodPost, Prefix+"/targets", w, tcpEvery("fast", "5s")), quota.LimitMinInterval)
	assert.Equal(t, "10s", p.LimitValue)
	require.Len(t, p.Errors, 1)
	assert.Equal(t, "interval", p.Errors[0].Path)
	assert.Contains(t, p.Detail, "0.1 checks/s", "the rate it would break is named too")

	// max_targets: three at 30s (0.1 checks/s in all) fit, a fourth does not.
	for _, id := range []string{"a", "b", "c"} {
		h.post(tenantA, tcpEvery(id, "30s"))
	}
	p = quotaOf(t, h.do(http.MethodPost, Prefix+"/targets", w, tcpEvery("d", "1h")), quota.LimitMaxTargets)
	assert.Equal(t, 3.0, p.LimitValue)
	assert.Equal(t, 3.0, p.Usage)
	assert.Equal(t, 4.0, p.Requested)
	assert.Contains(t, p.Detail, "at most 3 targets")

	// max_checks_per_second: a shorter interval by PATCH or PUT raises the
	// rate over 0.1.
	p = quotaOf(t, h.do(http.MethodPatch, Prefix+"/targets/a", w, map[string]any{"interval": "10s"}), quota.LimitMaxChecksPerSecond)
	assert.Equal(t, 0.1, p.LimitValue)
	assert.Equal(t, 0.1, p.Usage)
	assert.Equal(t, 0.167, p.Requested)
	quotaOf(t, h.do(http.MethodPut, Prefix+"/targets/a", w, tcpEvery("a", "15s")), quota.LimitMaxChecksPerSecond)
	// A longer interval, or a change that keeps the rate, passes.
	require.Equal(t, http.StatusOK, h.do(http.MethodPatch, Prefix+"/targets/a", w, map[string]any{"labels": map[string]any{"x": "y"}}).Status)

	// Resume: pause a, spend the freed budget on b, then a cannot resume.
	require.Equal(t, http.StatusOK, h.do(http.MethodPost, Prefix+"/targets/a/pause", w, nil).Status)
	r := h.do(http.MethodPatch, Prefix+"/targets/b", w, map[string]any{"interval": "15s"})
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	quotaOf(t, h.do(http.MethodPost, Prefix+"/targets/a/resume", w, nil), quota.LimitMaxChecksPerSecond)
	got := h.do(http.MethodGet, Prefix+"/targets/a", w, nil).JSON(t)
	assert.Equal(t, true, got["paused"], "a stays paused")

	// The tenant override: tenant other may have five.
	wb := h.key(tenantB, ScopeWrite)
	for i := range 5 {
		r := h.do(http.MethodPost, Prefix+"/targets", wb, tcpEvery(fmt.Sprintf("o%d", i), "1h"))
		require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	}
	quotaOf(t, h.do(http.MethodPost, Prefix+"/targets", wb, tcpEvery("o5", "1h")), quota.LimitMaxTargets)
}

// TestQuotasConfigAsCode: PUT /targets?format=yaml is held to the quotas
// for the targets as the document leaves them, dry_run included; the
// issue's one PUT of a thousand-odd targets at 1s is refused whole.
func TestQuotasConfigAsCode(t *testing.T) {
	h := newHarness(t) // default quotas
	doc := func(n int, interval string) string {
		var b strings.Builder
		b.WriteString("targets:\n")
		for i := range n {
			fmt.Fprintf(&b, "- {name: t%d, kind: tcp, interval: %s, tcp: {address: 'db.example.com:%d'}}\n", i, interval, 1+i%60000)
		}
		return b.String()
	}
	p := quotaOf(t, h.apply(tenantA, doc(quota.DefaultMaxTargets+1, "1s"), ""), quota.LimitMinInterval)
	assert.Len(t, p.Errors, 1001, "each interval under min_interval has its path")
	assert.Equal(t, "targets[0].interval", p.Errors[0].Path)
	assert.Contains(t, p.Detail, "at most 1000 targets (has 0, the request makes 1001)")
	assert.Contains(t, p.Detail, "at most 20 checks/s")
	assert.Empty(t, h.apiTargets(tenantA), "nothing was applied")

	p = quotaOf(t, h.apply(tenantA, doc(quota.DefaultMaxTargets+1, "1h"), ""), quota.LimitMaxTargets)
	assert.Equal(t, 1000.0, p.LimitValue)
	assert.Equal(t, 0.0, p.Usage)
	assert.Equal(t, 1001.0, p.Requested)
	assert.Empty(t, p.Errors)

	// dry_run reports the violation the same way.
	p = quotaOf(t, h.apply(tenantA, doc(2, "5s"), "&dry_run=true"), quota.LimitMinInterval)
	assert.Equal(t, "10s", p.LimitValue)
	assert.Equal(t, "targets[1].interval", p.Errors[1].Path)

	// The budget: 201 targets at 10s are 20.1 checks/s.
	p = quotaOf(t, h.apply(tenantA, doc(201, "10s"), "&dry_run=true"), quota.LimitMaxChecksPerSecond)
	assert.Equal(t, 20.0, p.LimitValue)
	assert.Equal(t, 20.1, p.Requested)
	assert.Equal(t, http.StatusOK, h.apply(tenantA, doc(200, "10s"), "").Status)
	assert.Len(t, h.apiTargets(tenantA), 200)
}

// TestTargetBounds: the per-target bounds of issue 9 through the API.
func TestTargetBounds(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	cases := []struct {
		name, path string
		edit       func(doc map[string]any)
	}{
		{"interval of 292 years", "interval", func(d map[string]any) { d["interval"] = "2562047h" }},
		{"timeout over 60s", "timeout", func(d map[string]any) { d["interval"] = "10m"; d["timeout"] = "2m" }},
		{"timeout over interval", "timeout", func(d map[string]any) { d["interval"] = "30s"; d["timeout"] = "40s" }},
		{"max_body_bytes of 1 GiB", "http.max_body_bytes", func(d map[string]any) { d["http"].(map[string]any)["max_body_bytes"] = 1 << 30 }},
		{"100,000,000 redirects", "http.max_redirects", func(d map[string]any) { d["http"].(map[string]any)["max_redirects"] = 100_000_000 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := httpTarget("")
			tc.edit(doc)
			r := h.do(http.MethodPost, Prefix+"/targets", w, doc)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
			p := r.problem(t)
			require.Len(t, p.Errors, 1, "%v", p.Errors)
			assert.Equal(t, tc.path, p.Errors[0].Path)
		})
	}
	// The bounds themselves pass.
	doc := httpTarget("edge")
	doc["interval"], doc["timeout"] = "24h", "60s"
	doc["http"].(map[string]any)["max_body_bytes"] = prober.MaxBodyBytes
	doc["http"].(map[string]any)["max_redirects"] = prober.MaxRedirects
	r := h.do(http.MethodPost, Prefix+"/targets", w, doc)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	// The config file is held to the same bounds (config.Target shares them).
	_, err := config.Parse(strings.NewReader("targets:\n- {name: a, kind: http, http: {url: 'http://x/', max_body_bytes: 1073741824}}\n"), "t.yaml", nil)
	require.ErrorContains(t, err, "targets[0].http.max_body_bytes: must be between 0 and 10485760")
}

// TestQuotaHoldsUnderConcurrentCreates: creates sent all at once cannot
// each pass the check and together overshoot max_targets.
func TestQuotaHoldsUnderConcurrentCreates(t *testing.T) {
	h := newHarness(t)
	withQuotas(h, quota.Config{Limits: quota.Limits{MaxTargets: 5}})
	w := h.key(tenantA, ScopeWrite)
	const n = 20
	statuses := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses <- h.do(http.MethodPost, Prefix+"/targets", w, tcpEvery(fmt.Sprintf("c%02d", i), "1m")).Status
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	require.Equal(t, map[int]int{http.StatusCreated: 5, http.StatusUnprocessableEntity: n - 5}, count)
	ts, err := h.reg.Targets(t.Context(), tenantA)
	require.NoError(t, err)
	require.Len(t, ts, 5, "no more than the quota were stored")
}
