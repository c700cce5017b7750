package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/upwatch/upwatch/api"
)

// call runs an API request as the signed-in user and decodes its JSON
// answer into out (when not nil). An answer of 400 or more becomes an
// *httpError carrying the API's problem: its title, detail and fields.
func (s *Server) call(ctx context.Context, sess *session, method, path string, body []byte, out any) error {
	status, _, b := s.o.API.Call(ctx, sess.principal(), method, path, body)
	if status >= 400 {
		var p api.ProblemError
		if err := json.Unmarshal(b, &p); err != nil || p.Title == "" {
			return fmt.Errorf("API %s %s: status %d", method, path, status)
		}
		if status >= 500 {
			return fmt.Errorf("API %s %s: %d %s: %s", method, path, status, p.Title, p.Detail)
		}
		return &httpError{Status: status, Title: p.Title, Detail: p.Detail, Fields: p.Errors}
	}
	if out == nil || status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("API %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}
