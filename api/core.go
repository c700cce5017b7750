package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/registry"
)

func (s *Server) registerCoreRoutes(r *mux.Router) {
	s.route(r, http.MethodGet, "/tenant", ScopeRead, s.getTenant)
	s.route(r, http.MethodGet, "/tenants", ScopeAdmin, s.listTenants)
	s.route(r, http.MethodPost, "/tenants", ScopeAdmin, s.createTenant)

	s.route(r, http.MethodGet, "/keys", ScopeAdmin, s.listKeys)
	s.route(r, http.MethodPost, "/keys", ScopeAdmin, s.createKey)
	s.route(r, http.MethodGet, "/keys/{id}", ScopeAdmin, s.getKey)
	s.route(r, http.MethodDelete, "/keys/{id}", ScopeAdmin, s.revokeKey)
	s.route(r, http.MethodGet, "/audit", ScopeAdmin, s.listAudit)

	s.route(r, http.MethodGet, "/targets", ScopeRead, s.listTargets)
	s.route(r, http.MethodPost, "/targets", ScopeWrite, s.createTarget)
	s.route(r, http.MethodPut, "/targets", ScopeWrite, s.applyTargets)
	s.route(r, http.MethodGet, "/targets/{id}", ScopeRead, s.getTarget)
	s.route(r, http.MethodPut, "/targets/{id}", ScopeWrite, s.putTarget)
	s.route(r, http.MethodPatch, "/targets/{id}", ScopeWrite, s.patchTarget)
	s.route(r, http.MethodDelete, "/targets/{id}", ScopeWrite, s.deleteTarget)
	s.route(r, http.MethodPost, "/targets/{id}/pause", ScopeWrite, s.pauseTarget(true))
	s.route(r, http.MethodPost, "/targets/{id}/resume", ScopeWrite, s.pauseTarget(false))
	s.route(r, http.MethodGet, "/status", ScopeRead, s.getStatus)
}

// list is every list answer's envelope.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func newList[T any](items []T) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items}
}

// readObject reads a JSON object body (the rules of decodeJSON), numbers
// kept exact.
func readObject(r *http.Request) (map[string]any, error) {
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, Problem(http.StatusBadRequest, "Bad Request", "the body must be a JSON object")
	}
	return m, nil
}

// audit records a write; failing to record it fails the request (the write
// itself is done by then and stays).
func (s *Server) audit(ctx context.Context, p Principal, action, objectType, objectID string) error {
	return s.o.Audit.AppendAudit(ctx, registry.AuditEntry{
		TenantID: p.TenantID, KeyID: p.KeyID, Action: action,
		ObjectType: objectType, ObjectID: objectID, At: s.o.Now(),
	})
}

// changed records the write and tells the running scheduler and engine.
func (s *Server) changed(ctx context.Context, p Principal, action, objectType, objectID string) error {
	err := s.audit(ctx, p, action, objectType, objectID)
	s.o.OnChange(p.TenantID)
	return err
}

// storeErr maps the registry's not-found and conflict errors to problems.
func storeErr(err error, kind, id string) error {
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return notFound(kind, id)
	case errors.Is(err, registry.ErrConflict):
		return Problem(http.StatusConflict, "Conflict", kind+" "+quote(id)+" already exists")
	}
	return err
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// randomID is prefix + 20 lowercase base62-ish characters.
func randomID(prefix string) (string, error) {
	s, err := randomString(20)
	if err != nil {
		return "", err
	}
	return prefix + strings.ToLower(s), nil
}

// timePtr is t for JSON, nil when zero.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// mergePatch applies an RFC 7396 JSON merge patch to doc.
func mergePatch(doc, patch map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, v := range patch {
		if v == nil {
			delete(doc, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			dm, _ := doc[k].(map[string]any)
			doc[k] = mergePatch(dm, pm)
			continue
		}
		doc[k] = v
	}
	return doc
}
