package api

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/registry"
)

// Every list answers with one envelope, list[T]: items, and next_cursor
// while more follow. Lists of resources (tenants, keys, targets, objects,
// report keys, status) take limit (default and most registry.MaxLimit, so
// a tenant's whole list comes in one page unless asked otherwise) and
// cursor, in id order. Incidents and samples page by time the same way.

// pageOf pages items by id: the cursor is the last id of the page before.
func pageOf[T any](r *http.Request, items []T, id func(T) string) (list[T], error) {
	sorted := slices.Clone(items)
	slices.SortStableFunc(sorted, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	return pageFrom(r, sorted, id, func(after string) int {
		i, _ := slices.BinarySearchFunc(sorted, after, func(e T, key string) int { return strings.Compare(id(e), key) })
		for i < len(sorted) && id(sorted[i]) <= after {
			i++
		}
		return i
	})
}

// pageInOrder pages items in the order given (newest first, say): the
// next page starts after the item the cursor names, or is empty if that
// item is gone.
func pageInOrder[T any](r *http.Request, items []T, id func(T) string) (list[T], error) {
	return pageFrom(r, items, id, func(after string) int {
		if i := slices.IndexFunc(items, func(e T) bool { return id(e) == after }); i >= 0 {
			return i + 1
		}
		return len(items)
	})
}

// pageFrom reads limit and cursor and cuts the page of items that starts
// at next(cursor's id).
func pageFrom[T any](r *http.Request, items []T, id func(T) string, next func(after string) int) (list[T], error) {
	v := r.URL.Query()
	var iss queryIssues
	limit := iss.int(v, "limit", registry.MaxLimit, 1, registry.MaxLimit)
	start := 0
	if c := v.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 {
			iss.add("cursor", "is not a cursor this API gave")
		} else {
			start = next(string(b))
		}
	}
	if err := iss.problem(); err != nil {
		return list[T]{}, err
	}
	rest := items[start:]
	out := newList(rest)
	if len(rest) > limit {
		out.Items = rest[:limit]
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(id(rest[limit-1])))
	}
	return out, nil
}

// writePage answers a list of resources, paged by id.
func writePage[T any](w http.ResponseWriter, r *http.Request, items []T, id func(T) string) error {
	page, err := pageOf(r, items, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// incidentCursor is where a page of incidents (newest first, then by id)
// ended: the next page holds the incidents after it in that order.
type incidentCursor struct {
	start time.Time
	id    string
}

func (c incidentCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.start.UnixNano(), 10) + "." + c.id))
}

func parseIncidentCursor(s string) (incidentCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return incidentCursor{}, false
	}
	ns, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return incidentCursor{}, false
	}
	return incidentCursor{start: time.Unix(0, n), id: id}, true
}

// after reports whether an incident starting at start with id comes after
// the cursor in the list's order (newest first, then by id).
func (c incidentCursor) after(start time.Time, id string) bool {
	if !start.Equal(c.start) {
		return start.Before(c.start)
	}
	return id > c.id
}

// viewID is the id of a resource's view (a target, a contact group).
func viewID(v map[string]any) string {
	id, _ := v["id"].(string)
	return id
}
