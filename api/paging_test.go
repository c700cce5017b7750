package api

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pages follows next_cursor from path to the end and returns what each
// item's field holds, page by page.
func pages(t *testing.T, h *harness, path, key, field string) [][]string {
	t.Helper()
	var out [][]string
	cursor := ""
	for range 100 {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		r := h.do(http.MethodGet, p, key, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", p, r.Body)
		doc := r.JSON(t)
		var page []string
		for _, it := range doc["items"].([]any) {
			page = append(page, fmt.Sprint(it.(map[string]any)[field]))
		}
		out = append(out, page)
		next, _ := doc["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
	t.Fatal("no last page after 100")
	return nil
}

// TestListsPage: every list answers {items, next_cursor} and takes limit
// and cursor; following the cursors visits each item once, in order.
func TestListsPage(t *testing.T) {
	h := newHarness(t)
	w := h.key(tenantA, ScopeAdmin)
	for _, id := range []string{"e", "a", "d", "c", "b"} {
		require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/targets", w, httpTarget(id)).Status)
	}
	require.Equal(t, [][]string{{"a", "b"}, {"c", "d"}, {"e"}}, pages(t, h, Prefix+"/targets?limit=2", w, "id"))
	require.Equal(t, [][]string{{"a", "b", "c"}, {"d", "e"}}, pages(t, h, Prefix+"/status?limit=3", w, "id"))
	// Without limit, the whole list in one page, as before.
	require.Equal(t, [][]string{{"a", "b", "c", "d", "e"}}, pages(t, h, Prefix+"/targets?source=api", w, "id"))

	for _, name := range []string{"k1", "k2"} {
		require.Equal(t, http.StatusCreated, h.do(http.MethodPost, Prefix+"/keys", w, map[string]any{"name": name, "scopes": []string{"read"}}).Status)
	}
	all := pages(t, h, Prefix+"/keys", w, "id")
	require.Len(t, all, 1)
	seen := map[string]bool{}
	paged := pages(t, h, Prefix+"/keys?limit=1", w, "id")
	for _, p := range paged {
		require.Len(t, p, 1)
		require.False(t, seen[p[0]], "key %s on two pages", p[0])
		seen[p[0]] = true
	}
	require.Len(t, seen, len(all[0]), "every key once")

	r := h.do(http.MethodGet, Prefix+"/targets?cursor=!!", w, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "query.cursor", r.problem(t).Errors[0].Path)
	r = h.do(http.MethodGet, Prefix+"/targets?limit=0", w, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "query.limit", r.problem(t).Errors[0].Path)
}

// TestIncidentsPage: incidents page newest first by cursor, across targets,
// with ties on the start time broken by id, none seen twice or skipped.
func TestIncidentsPage(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h.setClock(t0.Add(48 * time.Hour))
	h.configTarget("web", nil)
	h.configTarget("db", nil)
	var want []string
	for i := 9; i >= 0; i-- {
		start := t0.Add(time.Duration(i) * time.Hour)
		h.incident("web", start, start.Add(time.Minute))
		h.incident("db", start, start.Add(2*time.Minute)) // same start: ties
		want = append(want, start.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	key := h.key(tenantA, ScopeRead)
	var got []string
	ps := pages(t, h, Prefix+"/incidents?limit=3", key, "start")
	require.Len(t, ps, 7)
	for _, p := range ps {
		got = append(got, p...)
	}
	require.Equal(t, want, got)

	// One target's list pages the same way; the old key still holds the page.
	ps = pages(t, h, Prefix+"/targets/web/incidents?limit=4", key, "start")
	require.Equal(t, []int{4, 4, 2}, []int{len(ps[0]), len(ps[1]), len(ps[2])})
	r := h.do(http.MethodGet, Prefix+"/targets/web/incidents?limit=4", key, nil)
	require.Len(t, r.JSON(t)["incidents"], 4)
}
