package api

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/cputime"
)

// nestedBody is a target whose labels nest depth objects deep (≈6 bytes a
// level: 9,990 levels are the 60 KB body of issue 9, just inside
// encoding/json's own bound of 10,000).
func nestedBody(depth int) string {
	return `{"name":"x","kind":"http","http":{"url":"https://a.example"},"labels":` +
		strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth) + `}`
}

// serveOnce sends body to POST /targets straight to the handler and
// returns the status.
func serveOnce(h *harness, body string) int {
	req := httptest.NewRequest(http.MethodPost, Prefix+"/targets", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.key(tenantA, ScopeWrite))
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec.Code
}

// TestNestedJSONCost sends the 60 KB, 10,000-level body of issue 9 and
// reports what one request costs; it must be refused (400) without
// allocating more than a few times the body.
func TestNestedJSONCost(t *testing.T) {
	h := newHarness(t)
	body := nestedBody(9990)
	var status int
	var cpu time.Duration
	alloc := allocatedBy(func() { cpu = cpuTime(func() { status = serveOnce(h, body) }) })
	t.Logf("one %d-byte request nested 9990 deep: CPU %s, allocated %d bytes (%.1f MB)", len(body), cpu, alloc, float64(alloc)/1e6)
	require.Equal(t, http.StatusBadRequest, status)
	assert.Less(t, alloc, uint64(4<<20))
}

// cpuTime is the process CPU time (user+system) spent while f runs.
func cpuTime(f func()) time.Duration {
	before := cputime.Used()
	f()
	return cputime.Used() - before
}

// TestDepthLimit: a body nested deeper than MaxDepth is a 400 naming the
// bound, in JSON and in a config-as-code YAML document; MaxDepth itself
// passes on to the usual checks.
func TestDepthLimit(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	r := h.do(http.MethodPost, Prefix+"/targets", w, nestedBody(MaxDepth))
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
	assert.Contains(t, r.problem(t).Detail, "deeper than 32 levels")
	// Within the bound the body is read, and labels of the wrong shape are
	// a 422 naming the field.
	r = h.do(http.MethodPost, Prefix+"/targets", w, nestedBody(MaxDepth-2))
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	assert.Equal(t, "labels.a", r.problem(t).Errors[0].Path)
	// Brackets inside strings do not count.
	doc := httpTarget("brackets")
	doc["name"] = strings.Repeat("[{", 100)
	require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", w, doc).Status)

	yamlDoc := "targets:\n- name: x\n  kind: tcp\n  tcp: {address: 'a:1'}\n  labels: " +
		strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n"
	r = h.apply(tenantA, yamlDoc, "&dry_run=true")
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
	assert.Contains(t, r.problem(t).Detail, "deeper than 32 levels")
}

// TestDocumentDecoding: documents are decoded straight into the structs
// with the config file's names and syntax; every unknown field is listed,
// every bad value named.
func TestDocumentDecoding(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeWrite)
	r := h.do(http.MethodPost, Prefix+"/targets", w, `{"name":"x","kind":"http","bogus":1,"http":{"url":"https://a.example","nope":2}}`)
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
	var paths []string
	for _, e := range r.problem(t).Errors {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"bogus", "http.nope"}, paths)

	// A misspelt field gets the name it was probably meant to be.
	r = h.do(http.MethodPost, Prefix+"/targets", w, `{"name":"x","kind":"http","intervall":"30s","http":{"url":"https://a.example"}}`)
	require.Equal(t, http.StatusBadRequest, r.Status, string(r.Body))
	require.Len(t, r.problem(t).Errors, 1)
	assert.Equal(t, "intervall", r.problem(t).Errors[0].Path)
	assert.Equal(t, "unknown field; did you mean interval?", r.problem(t).Errors[0].Message)

	r = h.do(http.MethodPost, Prefix+"/targets", w, `{"name":"x","kind":"http","timeout":"soon","http":{"url":"https://a.example","max_redirects":"many","follow_redirects":"yes","expect_status":"200"}}`)
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, string(r.Body))
	issues := map[string]string{}
	for _, e := range r.problem(t).Errors {
		issues[e.Path] = e.Message
	}
	assert.Equal(t, map[string]string{
		"timeout":               `must be a duration such as "30s" or "1h30m"`,
		"http.max_redirects":    "must be a whole number",
		"http.follow_redirects": "must be true or false",
		"http.expect_status":    "must be a list",
	}, issues)

	// What the YAML route accepted still reads: numbers as strings, secrets,
	// durations; the target reads back the same.
	doc := httpTarget("ok")
	doc["http"].(map[string]any)["expect_status"] = []any{200, "3xx"}
	doc["http"].(map[string]any)["max_latency"] = "1.5s"
	r = h.do(http.MethodPost, Prefix+"/targets", w, doc)
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	got := h.do(http.MethodGet, Prefix+"/targets/ok", w, nil).JSON(t)
	assert.Equal(t, []any{"200", "3xx"}, got["http"].(map[string]any)["expect_status"])
	assert.Equal(t, "1.5s", got["http"].(map[string]any)["max_latency"])
	assert.Equal(t, "30s", got["interval"])
	assert.Equal(t, "<secret>", got["http"].(map[string]any)["auth"].(map[string]any)["password"])
}

// allocatedBy is the bytes allocated while f runs.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// BenchmarkTargetFromDocument is the decoding cost of an ordinary target.
func BenchmarkTargetFromDocument(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		doc := httpTarget("t")
		if _, err := targetFromDocument(doc); err != nil {
			b.Fatal(err)
		}
	}
}
