package api

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

type tenantView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

func viewTenant(t registry.Tenant) tenantView {
	return tenantView{ID: t.ID, Name: t.Name, CreatedAt: timePtr(t.CreatedAt)}
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request, p Principal) error {
	t, err := s.o.Tenants.Tenant(r.Context(), p.TenantID)
	if err != nil {
		return storeErr(err, "tenant", p.TenantID)
	}
	writeJSON(w, http.StatusOK, viewTenant(t))
	return nil
}

// operator reports whether p may manage tenants: an admin of "default".
func operator(p Principal) error {
	if p.TenantID != registry.DefaultTenant {
		return Problem(http.StatusForbidden, "Forbidden", "only admin keys of tenant \"default\" manage tenants")
	}
	return nil
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := operator(p); err != nil {
		return err
	}
	ts, err := s.o.Tenants.Tenants(r.Context())
	if err != nil {
		return err
	}
	out := make([]tenantView, len(ts))
	for i, t := range ts {
		out[i] = viewTenant(t)
	}
	return writePage(w, r, out, func(t tenantView) string { return t.ID })
}

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

type tenantInput struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type tenantCreated struct {
	tenantView
	AdminKey keyCreated `json:"admin_key"`
}

// createTenant makes a tenant and its first admin key (shown once).
func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, p Principal) error {
	if err := operator(p); err != nil {
		return err
	}
	var in tenantInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if !tenantIDPattern.MatchString(in.ID) {
		return ValidationProblem([]invalid.Field{{Path: "id", Msg: "must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit"}})
	}
	if errs := prober.CheckText("name", in.Name); errs != nil {
		return ValidationProblem(errs)
	}
	if in.Name == "" {
		in.Name = in.ID
	}
	ctx := r.Context()
	t := registry.Tenant{ID: in.ID, Name: in.Name, CreatedAt: s.o.Now()}
	if err := s.o.Tenants.CreateTenant(ctx, t); err != nil {
		return storeErr(err, "tenant", in.ID)
	}
	k, err := s.issueKey(r, in.ID, keyInput{Name: "admin", Scopes: []string{string(ScopeAdmin)}})
	if err != nil {
		return err
	}
	if err := s.audit(ctx, p, "create", "tenant", in.ID); err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/tenants/"+in.ID)
	writeSecretJSON(w, http.StatusCreated, tenantCreated{viewTenant(t), k})
	return nil
}

type keyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []string   `json:"scopes"`
	Location   string     `json:"location,omitempty"` // agent keys'
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// keyCreated is the one answer that holds the key itself.
type keyCreated struct {
	keyView
	Key string `json:"key"`
}

func viewKey(k registry.APIKey) keyView {
	scopes := make([]string, 0, len(k.Scopes))
	var location string
	for _, sc := range k.Scopes {
		if loc, ok := parseAgentScope(sc); ok {
			sc, location = string(ScopeAgent), loc
		}
		scopes = append(scopes, sc)
	}
	return keyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: scopes, Location: location,
		CreatedAt: timePtr(k.CreatedAt), ExpiresAt: timePtr(k.ExpiresAt),
		RevokedAt: timePtr(k.RevokedAt), LastUsedAt: timePtr(k.LastUsedAt)}
}

type keyInput struct {
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Location binds an agent key to the location its agents check from.
	Location string `json:"location,omitempty"`
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p Principal) error {
	ks, err := s.o.Keys.APIKeys(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	out := make([]keyView, len(ks))
	for i, k := range ks {
		out[i] = viewKey(k)
	}
	return writePage(w, r, out, func(k keyView) string { return k.ID })
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request, p Principal) error {
	id := mux.Vars(r)["id"]
	k, err := s.o.Keys.APIKey(r.Context(), p.TenantID, id)
	if err != nil {
		return storeErr(err, "API key", id)
	}
	writeJSON(w, http.StatusOK, viewKey(k))
	return nil
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p Principal) error {
	var in keyInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	k, err := s.issueKey(r, p.TenantID, in)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "create", "api_key", k.ID); err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/keys/"+k.ID)
	writeSecretJSON(w, http.StatusCreated, k)
	return nil
}

// writeSecretJSON writes an answer that carries a secret (a new API key, a
// report key) with Cache-Control: no-store, so no cache or proxy keeps it.
func writeSecretJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, v)
}

// issueKey validates in and stores a new key of tenant.
func (s *Server) issueKey(r *http.Request, tenant string, in keyInput) (keyCreated, error) {
	var errs []invalid.Field
	if in.Name == "" {
		errs = append(errs, invalid.Field{Path: "name", Msg: "is required"})
	} else if len(in.Name) > 200 {
		errs = append(errs, invalid.Field{Path: "name", Msg: "must be at most 200 characters"})
	}
	errs = append(errs, prober.CheckText("name", in.Name)...)
	if len(in.Scopes) == 0 {
		errs = append(errs, invalid.Field{Path: "scopes", Msg: "is required (read, write, admin, reports or agent)"})
	}
	for i, sc := range in.Scopes {
		if !validScope(sc) {
			errs = append(errs, invalid.Field{Path: "scopes[" + strconv.Itoa(i) + "]", Msg: fmt.Sprintf("unknown scope %q (want read, write, admin, reports or agent)", sc)})
		}
	}
	scopes := in.Scopes
	agentErrs, isAgent := checkAgentKey(tenant, in)
	errs = append(errs, agentErrs...)
	if isAgent {
		scopes = []string{agentScope(in.Location)}
	}
	now := s.o.Now()
	var expires time.Time
	if in.ExpiresAt != nil {
		expires = *in.ExpiresAt
		if !expires.After(now) {
			errs = append(errs, invalid.Field{Path: "expires_at", Msg: "must be in the future"})
		}
	}
	if len(errs) > 0 {
		return keyCreated{}, ValidationProblem(errs)
	}
	key, prefix, hash, err := NewKey()
	if err != nil {
		return keyCreated{}, err
	}
	id, err := randomID("key_")
	if err != nil {
		return keyCreated{}, err
	}
	rec := registry.APIKey{ID: id, TenantID: tenant, Name: in.Name, Prefix: prefix, Hash: hash,
		Scopes: scopes, CreatedAt: now, ExpiresAt: expires}
	if err := s.o.Keys.CreateAPIKey(r.Context(), rec); err != nil {
		return keyCreated{}, err
	}
	return keyCreated{viewKey(rec), key}, nil
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p Principal) error {
	id := mux.Vars(r)["id"]
	if err := s.o.Keys.RevokeAPIKey(r.Context(), p.TenantID, id, s.o.Now()); err != nil {
		return storeErr(err, "API key", id)
	}
	if err := s.audit(r.Context(), p, "revoke", "api_key", id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type auditView struct {
	ID         int64     `json:"id"`
	KeyID      string    `json:"key_id"`
	Action     string    `json:"action"`
	ObjectType string    `json:"object_type"`
	ObjectID   string    `json:"object_id"`
	At         time.Time `json:"at"`
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p Principal) error {
	q := registry.AuditQuery{}
	var errs []invalid.Field
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > registry.MaxLimit {
			errs = append(errs, invalid.Field{Path: "limit", Msg: fmt.Sprintf("must be 1-%d", registry.MaxLimit)})
		}
		q.Limit = n
	}
	if v := r.URL.Query().Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, invalid.Field{Path: "cursor", Msg: "is not a cursor this API gave"})
		}
		q.Before = n
	}
	if len(errs) > 0 {
		return Problem(http.StatusBadRequest, "Bad Request", errs[0].Path+": "+errs[0].Msg)
	}
	limit := q.Limit
	if limit == 0 {
		limit = registry.DefaultLimit
	}
	q.Limit = limit
	es, err := s.o.Audit.Audit(r.Context(), p.TenantID, q)
	if err != nil {
		return err
	}
	out := make([]auditView, len(es))
	for i, e := range es {
		out[i] = auditView{ID: e.ID, KeyID: e.KeyID, Action: e.Action, ObjectType: e.ObjectType, ObjectID: e.ObjectID, At: e.At.UTC()}
	}
	l := newList(out)
	if len(es) == limit {
		l.NextCursor = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

// checkAgentKey checks the agent side of a key request: an agent key has
// scope agent alone, a location, and belongs to tenant default (its agents
// check every tenant's targets). isAgent says whether in asks for one.
func checkAgentKey(tenant string, in keyInput) (errs []invalid.Field, isAgent bool) {
	isAgent = slices.Contains(in.Scopes, string(ScopeAgent))
	switch {
	case !isAgent && in.Location != "":
		errs = append(errs, invalid.Field{Path: "location", Msg: "is only for keys with scope agent"})
	case !isAgent:
	case len(in.Scopes) != 1:
		errs = append(errs, invalid.Field{Path: "scopes", Msg: "scope agent cannot be combined with other scopes"})
	case in.Location == "":
		errs = append(errs, invalid.Field{Path: "location", Msg: "is required for scope agent"})
	case !prober.ValidLocation(in.Location):
		errs = append(errs, invalid.Field{Path: "location", Msg: fmt.Sprintf("must be 1-64 letters, digits, '-', '_' or '.' (got %q)", in.Location)})
	}
	if isAgent && tenant != registry.DefaultTenant {
		errs = append(errs, invalid.Field{Path: "scopes", Msg: "only tenant default issues agent keys"})
	}
	return errs, isAgent
}
