package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

// objectRoutes serves one kind of tenant-scoped objects (tenancy.Kind):
// its collection's path and what only the API checks.
type objectRoutes[T any] struct {
	*tenancy.Kind[T]
	path      string // under /api/v1
	auditType string
	// validate checks a value of tenant.
	validate func(ctx context.Context, tenant string, v T) []invalid.Field
	// inUse says what still refers to the object, if anything.
	inUse func(ctx context.Context, tenant, id string) (string, error)
}

func (s *Server) registerObjectRoutes(r *mux.Router) {
	registerObjects(s, r, objectRoutes[config.ContactGroup]{
		Kind: tenancy.ContactGroups, path: "/contact-groups", auditType: "contact_group",
		validate: func(_ context.Context, _ string, g config.ContactGroup) []invalid.Field {
			return trimPaths(config.ValidateContactGroup("group", g), "group.")
		},
		inUse: s.groupInUse,
	})
	registerObjects(s, r, objectRoutes[config.AlertPolicy]{
		Kind: tenancy.AlertPolicies, path: "/alert-policies", auditType: "alert_policy",
		validate: s.validatePolicy, inUse: s.policyInUse,
	})
	registerObjects(s, r, objectRoutes[alerting.Window]{
		Kind: tenancy.MaintenanceWindows, path: "/maintenance-windows", auditType: "maintenance_window",
		validate: s.validateWindow,
		inUse:    func(context.Context, string, string) (string, error) { return "", nil },
	})
}

func registerObjects[T any](s *Server, r *mux.Router, k objectRoutes[T]) {
	s.route(r, http.MethodGet, k.path, ScopeRead, listObjects(s, k))
	s.route(r, http.MethodPost, k.path, ScopeWrite, createObject(s, k))
	s.route(r, http.MethodGet, k.path+"/{id}", ScopeRead, getObject(s, k))
	s.route(r, http.MethodPut, k.path+"/{id}", ScopeWrite, putObject(s, k))
	s.route(r, http.MethodDelete, k.path+"/{id}", ScopeWrite, deleteObject(s, k))
}

func (s *Server) groupInUse(ctx context.Context, tenant, id string) (string, error) {
	ps, err := s.policiesOf(ctx, tenant)
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if slices.Contains(p.ContactGroups, id) || slices.Contains(p.EscalateTo, id) {
			return "alert policy " + quote(p.Name), nil
		}
	}
	return "", nil
}

func (s *Server) validatePolicy(ctx context.Context, tenant string, p config.AlertPolicy) []invalid.Field {
	groups, err := s.groupsOf(ctx, tenant)
	if err != nil {
		return []invalid.Field{{Path: "contact_groups", Msg: "could not be checked"}}
	}
	exists := func(n string) bool {
		return slices.ContainsFunc(groups, func(g config.ContactGroup) bool { return g.Name == n })
	}
	return trimPaths(s.o.Config().Alerting.ValidatePolicy("policy", p, exists), "policy.")
}

func (s *Server) policyInUse(ctx context.Context, tenant, id string) (string, error) {
	ts, err := s.targetsOf(ctx, tenant)
	if err != nil {
		return "", err
	}
	for _, t := range ts {
		if t.Target.AlertPolicy == id {
			return "target " + quote(t.Target.ID), nil
		}
	}
	return "", nil
}

func (s *Server) validateWindow(ctx context.Context, tenant string, w alerting.Window) []invalid.Field {
	var errs []invalid.Field
	for _, e := range w.Validate("window") {
		var fe invalid.Field
		if errors.As(e, &fe) {
			errs = append(errs, fe)
		} else {
			errs = append(errs, invalid.Field{Path: "window", Msg: e.Error()})
		}
	}
	errs = trimPaths(errs, "window.")
	if len(w.Targets) > 0 {
		ts, err := s.targetsOf(ctx, tenant)
		if err != nil {
			return append(errs, invalid.Field{Path: "targets", Msg: "could not be checked"})
		}
		for i, id := range w.Targets {
			if !slices.ContainsFunc(ts, func(t tenancy.TargetInfo) bool { return t.Target.ID == id }) {
				errs = append(errs, invalid.Field{Path: fmt.Sprintf("targets[%d]", i), Msg: fmt.Sprintf("unknown target id %q", id)})
			}
		}
	}
	return errs
}

func trimPaths(errs []invalid.Field, prefix string) []invalid.Field {
	for i := range errs {
		errs[i].Path = strings.TrimPrefix(errs[i].Path, prefix)
		if errs[i].Path == strings.TrimSuffix(prefix, ".") {
			errs[i].Path = ""
		}
	}
	return errs
}

// objectReadOnly are fields a document read with GET holds that input
// ignores.
var objectReadOnly = []string{"source", "created_at", "updated_at"}

// viewObject is an object as the API shows it: credentials redacted, plus
// id, source and times.
func viewObject[T any](k objectRoutes[T], o tenancy.Object[T]) (map[string]any, error) {
	doc, err := toDocument(k.Redacted(o.V))
	if err != nil {
		return nil, err
	}
	doc["id"], doc["source"] = o.ID, o.Source
	if o.Source == tenancy.SourceAPI {
		doc["created_at"] = o.CreatedAt.UTC().Format(time.RFC3339Nano)
		doc["updated_at"] = o.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return doc, nil
}

// objectOf is a tenant's object of kind k, or a 404 problem.
func objectOf[T any](s *Server, ctx context.Context, k objectRoutes[T], tenant, id string) (tenancy.Object[T], error) {
	o, err := k.Get(ctx, s.o.Objects, s.o.Config(), tenant, id, s.o.MasterKey)
	if errors.Is(err, registry.ErrNotFound) {
		return o, notFound(k.Noun, id)
	}
	return o, err
}

// groupsOf and policiesOf are a tenant's contact groups and policies.
func (s *Server) groupsOf(ctx context.Context, tenant string) ([]config.ContactGroup, error) {
	os, err := tenancy.ContactGroups.List(ctx, s.o.Objects, s.o.Config(), tenant, s.o.MasterKey)
	return tenancy.Values(os), err
}

func (s *Server) policiesOf(ctx context.Context, tenant string) ([]config.AlertPolicy, error) {
	os, err := tenancy.AlertPolicies.List(ctx, s.o.Objects, s.o.Config(), tenant, s.o.MasterKey)
	return tenancy.Values(os), err
}

func (s *Server) policyExists(ctx context.Context, tenant, name string) (bool, error) {
	ps, err := s.policiesOf(ctx, tenant)
	return slices.ContainsFunc(ps, func(p config.AlertPolicy) bool { return p.Name == name }), err
}

func listObjects[T any](s *Server, k objectRoutes[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		os, err := k.List(r.Context(), s.o.Objects, s.o.Config(), p.TenantID, s.o.MasterKey)
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for _, o := range os {
			v, err := viewObject(k, o)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return writePage(w, r, out, viewID)
	}
}

func getObject[T any](s *Server, k objectRoutes[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		o, err := objectOf(s, r.Context(), k, p.TenantID, mux.Vars(r)["id"])
		if err != nil {
			return err
		}
		v, err := viewObject(k, o)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

// readValue reads and validates an object document; id is the path id on
// update ("" on create).
func readValue[T any](s *Server, r *http.Request, k objectRoutes[T], tenant, id string) (T, string, error) {
	var zero T
	doc, err := readObject(r)
	if err != nil {
		return zero, "", err
	}
	for _, f := range objectReadOnly {
		delete(doc, f)
	}
	if v, ok := doc["id"]; ok {
		if id == "" || v != id {
			return zero, "", ValidationProblem([]invalid.Field{{Path: "id", Msg: "is chosen by the server (or is the name); leave it out"}})
		}
		delete(doc, "id")
	}
	if id != "" && k.IDFromName {
		if _, ok := doc["name"]; !ok {
			doc["name"] = id
		}
	}
	v, err := k.Decode(doc)
	if err != nil {
		return zero, "", documentProblem(err)
	}
	if id != "" {
		if cur, err := objectOf(s, r.Context(), k, tenant, id); err == nil {
			v = k.Keep(v, cur.V)
		}
	}
	if errs := k.validate(r.Context(), tenant, v); len(errs) > 0 {
		return zero, "", ValidationProblem(errs)
	}
	if k.IDFromName {
		name := k.Name(v)
		if id != "" && name != id {
			return zero, "", ValidationProblem([]invalid.Field{{Path: "name", Msg: fmt.Sprintf("cannot change (it is the id, %q)", id)}})
		}
		if len(name) > 128 {
			return zero, "", ValidationProblem([]invalid.Field{{Path: "name", Msg: "must be at most 128 characters"}})
		}
		id = name
	}
	if id == "" {
		if id, err = randomID(k.IDPrefix); err != nil {
			return zero, "", err
		}
	}
	return v, id, nil
}

func createObject[T any](s *Server, k objectRoutes[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		ctx := r.Context()
		v, id, err := readValue(s, r, k, p.TenantID, "")
		if err != nil {
			return err
		}
		if _, err := objectOf(s, ctx, k, p.TenantID, id); err == nil {
			return Problem(http.StatusConflict, "Conflict", fmt.Sprintf("%s %q already exists", k.Noun, id))
		}
		spec, err := k.Spec(p.TenantID, id, v, s.o.MasterKey)
		if err != nil {
			return err
		}
		now := s.o.Now()
		if err := s.o.Objects.CreateObject(ctx, k.Kind.Kind, registry.Object{TenantID: p.TenantID, ID: id, Spec: spec, CreatedAt: now, UpdatedAt: now}); err != nil {
			return storeErr(err, k.Noun, id)
		}
		if err := s.changed(ctx, p, "create", k.auditType, id); err != nil {
			return err
		}
		out, err := viewObject(k, tenancy.Object[T]{ID: id, Source: tenancy.SourceAPI, V: v, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return err
		}
		w.Header().Set("Location", Prefix+k.path+"/"+id)
		writeJSON(w, http.StatusCreated, out)
		return nil
	}
}

func writableObject[T any](s *Server, ctx context.Context, k objectRoutes[T], p Principal, id string) (tenancy.Object[T], error) {
	o, err := objectOf(s, ctx, k, p.TenantID, id)
	if err != nil {
		return o, err
	}
	if o.Source == tenancy.SourceConfig {
		return o, Problem(http.StatusConflict, "Conflict", fmt.Sprintf("%s %q is declared in the config file; change it there", k.Noun, id))
	}
	return o, nil
}

func putObject[T any](s *Server, k objectRoutes[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		ctx := r.Context()
		id := mux.Vars(r)["id"]
		cur, err := writableObject(s, ctx, k, p, id)
		if err != nil {
			return err
		}
		v, _, err := readValue(s, r, k, p.TenantID, id)
		if err != nil {
			return err
		}
		spec, err := k.Spec(p.TenantID, id, v, s.o.MasterKey)
		if err != nil {
			return err
		}
		now := s.o.Now()
		if err := s.o.Objects.UpdateObject(ctx, k.Kind.Kind, registry.Object{TenantID: p.TenantID, ID: id, Spec: spec, UpdatedAt: now}); err != nil {
			return storeErr(err, k.Noun, id)
		}
		if err := s.changed(ctx, p, "update", k.auditType, id); err != nil {
			return err
		}
		out, err := viewObject(k, tenancy.Object[T]{ID: id, Source: tenancy.SourceAPI, V: v, CreatedAt: cur.CreatedAt, UpdatedAt: now})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func deleteObject[T any](s *Server, k objectRoutes[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		ctx := r.Context()
		id := mux.Vars(r)["id"]
		if _, err := writableObject(s, ctx, k, p, id); err != nil {
			return err
		}
		by, err := k.inUse(ctx, p.TenantID, id)
		if err != nil {
			return err
		}
		if by != "" {
			return Problem(http.StatusConflict, "Conflict", fmt.Sprintf("%s %q is used by %s; change that first", k.Noun, id, by))
		}
		if err := s.o.Objects.DeleteObject(ctx, k.Kind.Kind, p.TenantID, id); err != nil {
			return storeErr(err, k.Noun, id)
		}
		if err := s.changed(ctx, p, "delete", k.auditType, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
