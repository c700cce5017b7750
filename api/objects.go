package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
	"github.com/upwatch/upwatch/store"
	"github.com/upwatch/upwatch/tenancy"
)

// objectKind describes one of the tenant-scoped object collections:
// contact groups, alert policies and maintenance windows. Their documents
// have the config file's shape.
type objectKind struct {
	kind      store.ObjectKind
	path      string // under /api/v1
	noun      string // for messages
	auditType string
	// idFromName: the object's name is its id (groups and policies are
	// referred to by name); else ids are generated with idPrefix.
	idFromName bool
	idPrefix   string
	// decode reads a document into the object's value.
	decode func(doc map[string]any) (any, error)
	// name returns the value's name.
	name func(v any) string
	// validate checks a value of tenant.
	validate func(s *Server, ctx context.Context, tenant string, v any) []prober.FieldError
	// fromConfig lists the config file's objects (tenant "default").
	fromConfig func(c *config.Config) []configObject
	// inUse says what still refers to the object, if anything.
	inUse func(s *Server, ctx context.Context, tenant, id string) (string, error)
	// redact, when set, returns the value fit to show and to store in
	// the spec, and the credentials it took out (sealed apart, see
	// sealObject); unredact puts them back. keep puts cur's credentials
	// where an update shows them redacted.
	redact   func(v any) (any, []string)
	unredact func(v any, secrets []string) any
	keep     func(v, cur any) any
}

type configObject struct {
	id string
	v  any
}

// objectKinds is set in init: its functions refer back to it.
var objectKinds []*objectKind

func init() {
	objectKinds = []*objectKind{
		{
			kind: store.ContactGroups, path: "/contact-groups", noun: "contact group", auditType: "contact_group",
			idFromName: true,
			decode: func(doc map[string]any) (any, error) {
				var g config.ContactGroup
				err := fromDocument(doc, &g)
				return g, err
			},
			name: func(v any) string { return v.(config.ContactGroup).Name },
			validate: func(_ *Server, _ context.Context, _ string, v any) []prober.FieldError {
				return trimPaths(config.ValidateContactGroup("group", v.(config.ContactGroup)), "group.")
			},
			fromConfig: func(c *config.Config) []configObject {
				var out []configObject
				for _, g := range c.ContactGroups {
					out = append(out, configObject{g.Name, g})
				}
				return out
			},
			redact:   redactGroup,
			unredact: unredactGroup,
			keep:     keepGroupWebhooks,
			inUse: func(s *Server, ctx context.Context, tenant, id string) (string, error) {
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
			},
		},
		{
			kind: store.AlertPolicies, path: "/alert-policies", noun: "alert policy", auditType: "alert_policy",
			idFromName: true,
			decode: func(doc map[string]any) (any, error) {
				var p config.AlertPolicy
				err := fromDocument(doc, &p)
				return p, err
			},
			name: func(v any) string { return v.(config.AlertPolicy).Name },
			validate: func(s *Server, ctx context.Context, tenant string, v any) []prober.FieldError {
				groups, err := s.groupsOf(ctx, tenant)
				if err != nil {
					return []prober.FieldError{{Path: "contact_groups", Msg: "could not be checked"}}
				}
				exists := func(n string) bool {
					return slices.ContainsFunc(groups, func(g config.ContactGroup) bool { return g.Name == n })
				}
				return trimPaths(s.o.Config().Alerting.ValidatePolicy("policy", v.(config.AlertPolicy), exists), "policy.")
			},
			fromConfig: func(c *config.Config) []configObject {
				var out []configObject
				for _, p := range c.Policies {
					out = append(out, configObject{p.Name, p})
				}
				return out
			},
			inUse: func(s *Server, ctx context.Context, tenant, id string) (string, error) {
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
			},
		},
		{
			kind: store.MaintenanceWindows, path: "/maintenance-windows", noun: "maintenance window", auditType: "maintenance_window",
			idPrefix: "mw_",
			decode: func(doc map[string]any) (any, error) {
				var w alerting.Window
				err := fromDocument(doc, &w)
				return w, err
			},
			name: func(v any) string { return v.(alerting.Window).Name },
			validate: func(s *Server, ctx context.Context, tenant string, v any) []prober.FieldError {
				w := v.(alerting.Window)
				var errs []prober.FieldError
				for _, e := range w.Validate("window") {
					var fe prober.FieldError
					if errors.As(e, &fe) {
						errs = append(errs, fe)
					} else {
						errs = append(errs, prober.FieldError{Path: "window", Msg: e.Error()})
					}
				}
				errs = trimPaths(errs, "window.")
				if len(w.Targets) > 0 {
					ts, err := s.targetsOf(ctx, tenant)
					if err != nil {
						return append(errs, prober.FieldError{Path: "targets", Msg: "could not be checked"})
					}
					for i, id := range w.Targets {
						if !slices.ContainsFunc(ts, func(t tenancy.TargetInfo) bool { return t.Target.ID == id }) {
							errs = append(errs, prober.FieldError{Path: fmt.Sprintf("targets[%d]", i), Msg: fmt.Sprintf("unknown target id %q", id)})
						}
					}
				}
				return errs
			},
			fromConfig: func(c *config.Config) []configObject {
				var out []configObject
				for i, w := range c.Maintenance {
					out = append(out, configObject{"config-" + strconv.Itoa(i), w})
				}
				return out
			},
			inUse: func(*Server, context.Context, string, string) (string, error) { return "", nil },
		},
	}
}

func trimPaths(errs []prober.FieldError, prefix string) []prober.FieldError {
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

// objectInfo is one object with where it comes from.
type objectInfo struct {
	ID, Source           string
	V                    any
	CreatedAt, UpdatedAt time.Time
}

func (k *objectKind) view(o objectInfo) (map[string]any, error) {
	v := o.V
	if k.redact != nil {
		v, _ = k.redact(v)
	}
	doc, err := toDocument(v)
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

// sealedField is the spec field that holds an object's sealed credentials
// (the store keeps one spec per object; the rest of it is in clear).
const sealedField = "sealed_secrets"

func objectAAD(k *objectKind, tenant, id string) []byte {
	return []byte("upwatch " + string(k.kind) + " secrets\x00" + tenant + "\x00" + id)
}

// spec is the stored form of v: its document with credentials redacted,
// and those sealed with mk under sealedField.
func (k *objectKind) spec(tenant, id string, v any, mk crypt.MasterKey) ([]byte, error) {
	var secrets []string
	if k.redact != nil {
		v, secrets = k.redact(v)
	}
	doc, err := toDocument(v)
	if err != nil {
		return nil, err
	}
	if len(secrets) > 0 {
		plain, err := json.Marshal(secrets)
		if err != nil {
			return nil, err
		}
		sealed, err := mk.Seal(plain, objectAAD(k, tenant, id))
		if err != nil {
			return nil, fmt.Errorf("sealing the credentials of %s %s: %w", k.noun, id, err)
		}
		doc[sealedField] = base64.StdEncoding.EncodeToString(sealed)
	}
	return json.Marshal(doc)
}

// open reverses spec. A spec written before credentials were sealed holds
// them in clear and opens as it is (ResealStored rewrites it).
func (k *objectKind) open(o store.Object, mk crypt.MasterKey) (objectInfo, error) {
	var doc map[string]any
	if err := json.Unmarshal(o.Spec, &doc); err != nil {
		return objectInfo{}, fmt.Errorf("%s %s: stored spec: %w", k.noun, o.ID, err)
	}
	sealed, _ := doc[sealedField].(string)
	delete(doc, sealedField)
	v, err := k.decode(doc)
	if err != nil {
		return objectInfo{}, fmt.Errorf("%s %s: stored spec: %w", k.noun, o.ID, err)
	}
	if sealed != "" && k.unredact != nil {
		b, err := base64.StdEncoding.DecodeString(sealed)
		if err != nil {
			return objectInfo{}, fmt.Errorf("%s %s: credentials do not decode", k.noun, o.ID)
		}
		plain, err := mk.Open(b, objectAAD(k, o.TenantID, o.ID))
		if err != nil {
			return objectInfo{}, fmt.Errorf("%s %s: credentials: %w", k.noun, o.ID, err)
		}
		var secrets []string
		if err := json.Unmarshal(plain, &secrets); err != nil {
			return objectInfo{}, fmt.Errorf("%s %s: credentials do not decode", k.noun, o.ID)
		}
		v = k.unredact(v, secrets)
	}
	return objectInfo{ID: o.ID, Source: tenancy.SourceAPI, V: v, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}, nil
}

// redactGroup takes a contact group's webhook URLs out: each is a
// credential as a whole (its path or query is the token).
func redactGroup(v any) (any, []string) {
	g := v.(config.ContactGroup)
	if len(g.Webhooks) == 0 {
		return g, nil
	}
	secrets := g.Webhooks
	g.Webhooks = make([]string, len(secrets))
	for i, w := range secrets {
		g.Webhooks[i] = secret.RedactURL(w, secret.URLWhole)
	}
	return g, secrets
}

func unredactGroup(v any, secrets []string) any {
	g := v.(config.ContactGroup)
	if len(secrets) == len(g.Webhooks) {
		g.Webhooks = secrets
	}
	return g
}

// keepGroupWebhooks puts back each stored webhook whose redacted form an
// update sends.
func keepGroupWebhooks(v, cur any) any {
	g, c := v.(config.ContactGroup), cur.(config.ContactGroup)
	ws := slices.Clone(g.Webhooks)
	for i, w := range ws {
		for _, stored := range c.Webhooks {
			if w == secret.RedactURL(stored, secret.URLWhole) {
				ws[i] = stored
				break
			}
		}
	}
	g.Webhooks = ws
	return g
}

// objectsOf lists a tenant's objects of kind k: the config file's first
// (tenant "default"), then the API's.
func (s *Server) objectsOf(ctx context.Context, k *objectKind, tenant string) ([]objectInfo, error) {
	var out []objectInfo
	if tenant == store.DefaultTenant {
		for _, c := range k.fromConfig(s.o.Config()) {
			out = append(out, objectInfo{ID: c.id, Source: tenancy.SourceConfig, V: c.v})
		}
	}
	os, err := s.o.Store.Objects(ctx, k.kind, tenant)
	if err != nil {
		return nil, err
	}
	for _, o := range os {
		oi, err := k.open(o, s.o.MasterKey)
		if err != nil {
			return nil, err
		}
		out = append(out, oi)
	}
	return out, nil
}

func (s *Server) objectOf(ctx context.Context, k *objectKind, tenant, id string) (objectInfo, error) {
	o, err := s.o.Store.Object(ctx, k.kind, tenant, id)
	switch {
	case err == nil:
		return k.open(o, s.o.MasterKey)
	case !errors.Is(err, store.ErrNotFound):
		return objectInfo{}, err
	}
	if tenant == store.DefaultTenant {
		for _, c := range k.fromConfig(s.o.Config()) {
			if c.id == id {
				return objectInfo{ID: c.id, Source: tenancy.SourceConfig, V: c.v}, nil
			}
		}
	}
	return objectInfo{}, notFound(k.noun, id)
}

func kindOf(ks store.ObjectKind) *objectKind {
	for _, k := range objectKinds {
		if k.kind == ks {
			return k
		}
	}
	panic("unknown object kind " + string(ks))
}

// groupsOf and policiesOf are a tenant's contact groups and policies.
func (s *Server) groupsOf(ctx context.Context, tenant string) ([]config.ContactGroup, error) {
	os, err := s.objectsOf(ctx, kindOf(store.ContactGroups), tenant)
	out := make([]config.ContactGroup, 0, len(os))
	for _, o := range os {
		out = append(out, o.V.(config.ContactGroup))
	}
	return out, err
}

func (s *Server) policiesOf(ctx context.Context, tenant string) ([]config.AlertPolicy, error) {
	os, err := s.objectsOf(ctx, kindOf(store.AlertPolicies), tenant)
	out := make([]config.AlertPolicy, 0, len(os))
	for _, o := range os {
		out = append(out, o.V.(config.AlertPolicy))
	}
	return out, err
}

func (s *Server) policyExists(ctx context.Context, tenant, name string) (bool, error) {
	ps, err := s.policiesOf(ctx, tenant)
	return slices.ContainsFunc(ps, func(p config.AlertPolicy) bool { return p.Name == name }), err
}

func (s *Server) listObjects(k *objectKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		os, err := s.objectsOf(r.Context(), k, p.TenantID)
		if err != nil {
			return err
		}
		out := []map[string]any{}
		for _, o := range os {
			v, err := k.view(o)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		writeJSON(w, http.StatusOK, newList(out))
		return nil
	}
}

func (s *Server) getObject(k *objectKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		o, err := s.objectOf(r.Context(), k, p.TenantID, mux.Vars(r)["id"])
		if err != nil {
			return err
		}
		v, err := k.view(o)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

// readValue reads and validates an object document; id is the path id on
// update ("" on create).
func (s *Server) readValue(r *http.Request, k *objectKind, tenant, id string) (any, string, error) {
	doc, err := readObject(r)
	if err != nil {
		return nil, "", err
	}
	for _, f := range objectReadOnly {
		delete(doc, f)
	}
	if v, ok := doc["id"]; ok {
		if id == "" || v != id {
			return nil, "", ValidationProblem([]prober.FieldError{{Path: "id", Msg: "is chosen by the server (or is the name); leave it out"}})
		}
		delete(doc, "id")
	}
	if id != "" && k.idFromName {
		if _, ok := doc["name"]; !ok {
			doc["name"] = id
		}
	}
	v, err := k.decode(doc)
	if err != nil {
		return nil, "", err
	}
	if id != "" && k.keep != nil {
		if cur, err := s.objectOf(r.Context(), k, tenant, id); err == nil {
			v = k.keep(v, cur.V)
		}
	}
	if errs := k.validate(s, r.Context(), tenant, v); len(errs) > 0 {
		return nil, "", ValidationProblem(errs)
	}
	if k.idFromName {
		name := k.name(v)
		if id != "" && name != id {
			return nil, "", ValidationProblem([]prober.FieldError{{Path: "name", Msg: fmt.Sprintf("cannot change (it is the id, %q)", id)}})
		}
		if len(name) > 128 {
			return nil, "", ValidationProblem([]prober.FieldError{{Path: "name", Msg: "must be at most 128 characters"}})
		}
		id = name
	}
	if id == "" {
		if id, err = randomID(k.idPrefix); err != nil {
			return nil, "", err
		}
	}
	return v, id, nil
}

func (s *Server) createObject(k *objectKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		ctx := r.Context()
		v, id, err := s.readValue(r, k, p.TenantID, "")
		if err != nil {
			return err
		}
		if _, err := s.objectOf(ctx, k, p.TenantID, id); err == nil {
			return Problem(http.StatusConflict, "Conflict", fmt.Sprintf("%s %q already exists", k.noun, id))
		}
		spec, err := k.spec(p.TenantID, id, v, s.o.MasterKey)
		if err != nil {
			return err
		}
		now := s.o.Now()
		if err := s.o.Store.CreateObject(ctx, k.kind, store.Object{TenantID: p.TenantID, ID: id, Spec: spec, CreatedAt: now, UpdatedAt: now}); err != nil {
			return storeErr(err, k.noun, id)
		}
		if err := s.changed(ctx, p, "create", k.auditType, id); err != nil {
			return err
		}
		out, err := k.view(objectInfo{ID: id, Source: tenancy.SourceAPI, V: v, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return err
		}
		w.Header().Set("Location", Prefix+k.path+"/"+id)
		writeJSON(w, http.StatusCreated, out)
		return nil
	}
}

func (s *Server) writableObject(ctx context.Context, k *objectKind, p Principal, id string) (objectInfo, error) {
	o, err := s.objectOf(ctx, k, p.TenantID, id)
	if err != nil {
		return o, err
	}
	if o.Source == tenancy.SourceConfig {
		return o, Problem(http.StatusConflict, "Conflict", fmt.Sprintf("%s %q is declared in the config file; change it there", k.noun, id))
	}
	return o, nil
}

func (s *Server) putObject(k *objectKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		ctx := r.Context()
		id := mux.Vars(r)["id"]
		cur, err := s.writableObject(ctx, k, p, id)
		if err != nil {
			return err
		}
		v, _, err := s.readValue(r, k, p.TenantID, id)
		if err != nil {
			return err
		}
		spec, err := k.spec(p.TenantID, id, v, s.o.MasterKey)
		if err != nil {
			return err
		}
		now := s.o.Now()
		if err := s.o.Store.UpdateObject(ctx, k.kind, store.Object{TenantID: p.TenantID, ID: id, Spec: spec, UpdatedAt: now}); err != nil {
			return storeErr(err, k.noun, id)
		}
		if err := s.changed(ctx, p, "update", k.auditType, id); err != nil {
			return err
		}
		out, err := k.view(objectInfo{ID: id, Source: tenancy.SourceAPI, V: v, CreatedAt: cur.CreatedAt, UpdatedAt: now})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func (s *Server) deleteObject(k *objectKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		ctx := r.Context()
		id := mux.Vars(r)["id"]
		if _, err := s.writableObject(ctx, k, p, id); err != nil {
			return err
		}
		by, err := k.inUse(s, ctx, p.TenantID, id)
		if err != nil {
			return err
		}
		if by != "" {
			return Problem(http.StatusConflict, "Conflict", fmt.Sprintf("%s %q is used by %s; change that first", k.noun, id, by))
		}
		if err := s.o.Store.DeleteObject(ctx, k.kind, p.TenantID, id); err != nil {
			return storeErr(err, k.noun, id)
		}
		if err := s.changed(ctx, p, "delete", k.auditType, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
