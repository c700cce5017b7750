package api

import "net/http"

// writeView writes view(v) as JSON with status, or returns view's error
// (nothing written).
func writeView[T, V any](w http.ResponseWriter, status int, v T, view func(T) (V, error)) error {
	doc, err := view(v)
	if err != nil {
		return err
	}
	writeJSON(w, status, doc)
	return nil
}
